// forgeml._cpu.TreeCompactForest: the prediction layout of a forest (cpu/tree/compact.h), built
// and validated once from the flat node array, then used by every predict call with O(1) checks.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>

#include "bind/registry.h"
#include "cpu/tree/compact.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace ft = forgeml::tree;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::unique_ptr<ft::CompactForest> make(Arr<int32_t> nodes, Arr<int64_t> roots, int64_t n_features) {
  FORGEML_CHECK_ARG(nodes.ndim() == 2 && nodes.shape(1) == 4, "nodes: expected an (N, 4) int32 array");
  FORGEML_CHECK_ARG(roots.ndim() == 1, "roots: expected a 1-D array");
  FORGEML_CHECK_ARG(n_features >= 0, "n_features: must be >= 0");
  py::gil_scoped_release nogil;
  return std::make_unique<ft::CompactForest>(
      ft::compact_forest(nodes.data(), nodes.shape(0), roots.data(), roots.size(), n_features));
}

std::unique_ptr<ft::CompactForest> from_arrays(Arr<int32_t> nodes, Arr<int32_t> source, Arr<int64_t> roots,
                                               int64_t n_source_nodes, int64_t n_features) {
  FORGEML_CHECK_ARG(nodes.ndim() == 2 && nodes.shape(1) == 3, "nodes: expected an (m, 3) int32 array");
  FORGEML_CHECK_ARG(source.ndim() == 1 && source.shape(0) == nodes.shape(0), "source: expected ", nodes.shape(0),
                    " entries");
  FORGEML_CHECK_ARG(roots.ndim() == 1 && roots.size() >= 1, "roots: expected a non-empty 1-D array");
  FORGEML_CHECK_ARG(n_features >= 0 && n_source_nodes >= 0, "n_features, n_source_nodes: must be >= 0");
  static_assert(sizeof(ft::CompactNode) == 12, "CompactNode is three 32-bit words");
  py::gil_scoped_release nogil;
  return std::make_unique<ft::CompactForest>(
      ft::compact_forest_from_arrays(reinterpret_cast<const ft::CompactNode*>(nodes.data()), nodes.shape(0),
                                     source.data(), roots.data(), roots.size(), n_source_nodes, n_features));
}

py::tuple arrays(const ft::CompactForest& f) {
  const auto m = static_cast<py::ssize_t>(f.nodes.size());
  Arr<int32_t> nodes({m, py::ssize_t{3}});
  std::memcpy(nodes.mutable_data(), f.nodes.data(), f.nodes.size() * sizeof(ft::CompactNode));
  Arr<int32_t> source(m);
  std::memcpy(source.mutable_data(), f.source.data(), f.source.size() * sizeof(int32_t));
  Arr<int64_t> roots(static_cast<py::ssize_t>(f.roots.size()));
  std::memcpy(roots.mutable_data(), f.roots.data(), f.roots.size() * sizeof(int64_t));
  return py::make_tuple(nodes, source, roots);
}

Arr<double> predict(const ft::CompactForest& f, Arr<float> X, Arr<double> values, std::optional<Arr<int64_t>> trees,
                    int threads) {
  FORGEML_CHECK_ARG(X.ndim() == 2 && X.shape(1) == f.n_features, "X: expected shape (n_samples, ", f.n_features,
                    "), got ", X.ndim() == 2 ? X.shape(1) : -1, " features");
  FORGEML_CHECK_ARG(values.ndim() == 2 && values.shape(0) == f.n_source_nodes && values.shape(1) >= 1,
                    "values: expected (", f.n_source_nodes, ", k)");
  const int64_t T = static_cast<int64_t>(f.roots.size());
  const int64_t* sel = nullptr;
  int64_t n_sel = T;
  if (trees) {
    FORGEML_CHECK_ARG(trees->ndim() == 1, "trees: expected a 1-D array");
    sel = trees->data();
    n_sel = trees->size();
    for (int64_t i = 0; i < n_sel; ++i)
      FORGEML_CHECK_ARG(sel[i] >= 0 && sel[i] < T, "trees: entry ", i, " = ", sel[i], " is outside [0, ", T, ")");
  }
  const int k = static_cast<int>(values.shape(1));
  Arr<double> out({X.shape(0), static_cast<py::ssize_t>(k)});
  if (X.shape(0) <= 4) {  // a few rows: releasing the GIL costs more than the walk
    ft::compact_predict(f, X.data(), X.shape(0), values.data(), k, sel, n_sel, out.mutable_data(), threads);
    return out;
  }
  py::gil_scoped_release nogil;
  ft::compact_predict(f, X.data(), X.shape(0), values.data(), k, sel, n_sel, out.mutable_data(), threads);
  return out;
}

forgeml::bind::Register reg{[](py::module_& m) {
  py::class_<ft::CompactForest>(m, "TreeCompactForest",
                                "A forest laid out for prediction; validates the flat node array once.")
      .def(py::init(&make), py::arg("nodes"), py::arg("roots"), py::arg("n_features"))
      .def_static("from_arrays", &from_arrays, py::arg("nodes"), py::arg("source"), py::arg("roots"),
                  py::arg("n_source_nodes"), py::arg("n_features"))
      .def("arrays", &arrays, "(nodes (m, 3) int32, source (m) int32, roots (T) int64): for from_arrays")
      .def("predict", &predict, py::arg("X"), py::arg("values"), py::arg("trees") = py::none(), py::arg("threads") = 0)
      .def_property_readonly("n_nodes", [](const ft::CompactForest& f) { return f.nodes.size(); })
      .def_property_readonly("n_trees", [](const ft::CompactForest& f) { return f.roots.size(); })
      .def_property_readonly("n_features", [](const ft::CompactForest& f) { return f.n_features; })
      .def_property_readonly("depth", [](const ft::CompactForest& f) { return f.depth; })
      .def_property_readonly(
          "coded_layout",
          [](const ft::CompactForest& f) {
            const ft::CodedForest& c = f.coded();
            return py::make_tuple(!c.usable ? "floats" : c.words.empty() ? "two words" : "one word", c.code_bytes);
          },
          "(layout, code bytes) of the AVX-512 walk over quantized X (compact_coded.h; builds it)");
}};

}  // namespace
