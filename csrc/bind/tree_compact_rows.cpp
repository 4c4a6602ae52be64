// forgeml._cpu.TreeCompactRows: a few-row predictor over a CompactForest's arrays as stored (e.g.
// memory-mapped from a compact forest file), checked step by step (cpu/tree/compact_rows.h). It
// keeps the arrays alive and checks their shapes and roots once (O(trees)), never the nodes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bind/registry.h"
#include "cpu/tree/compact_rows.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace ft = forgeml::tree;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

class CompactRows {
 public:
  CompactRows(Arr<int32_t> nodes, Arr<int32_t> source, Arr<int64_t> roots, Arr<double> values, int64_t n_features)
      : nodes_(nodes), source_(source), roots_(roots), values_(values) {
    static_assert(sizeof(ft::CompactNode) == 12, "CompactNode is three 32-bit words");
    FORGEML_CHECK_ARG(nodes.ndim() == 2 && nodes.shape(1) == 3, "nodes: expected an (m, 3) int32 array");
    FORGEML_CHECK_ARG(source.ndim() == 1 && source.shape(0) == nodes.shape(0), "source: expected ", nodes.shape(0),
                      " entries");
    FORGEML_CHECK_ARG(roots.ndim() == 1 && roots.size() >= 1, "roots: expected a non-empty 1-D array");
    FORGEML_CHECK_ARG(values.ndim() == 2 && values.shape(1) >= 1 && values.shape(1) < (1 << 20),
                      "values: expected an (N, k) float64 array");
    FORGEML_CHECK_ARG(n_features >= 0, "n_features: must be >= 0");
    f_ = {reinterpret_cast<const ft::CompactNode*>(nodes_.data()),
          nodes_.shape(0),
          source_.data(),
          roots_.data(),
          roots_.size(),
          values_.data(),
          values_.shape(0),
          static_cast<int>(values_.shape(1)),
          n_features};
    ft::check_compact_arrays(f_);
  }

  Arr<double> predict(Arr<float> X) const {
    FORGEML_CHECK_ARG(X.ndim() == 2 && X.shape(1) == f_.n_features, "X: expected shape (n_samples, ", f_.n_features,
                      "), got ", X.ndim() == 2 ? X.shape(1) : -1, " features");
    Arr<double> out({X.shape(0), static_cast<py::ssize_t>(f_.k)});
    if (X.shape(0) <= 4) {  // a few rows: releasing the GIL costs more than the walks
      ft::compact_predict_rows(f_, X.data(), X.shape(0), out.mutable_data());
      return out;
    }
    py::gil_scoped_release nogil;
    ft::compact_predict_rows(f_, X.data(), X.shape(0), out.mutable_data());
    return out;
  }

 private:
  Arr<int32_t> nodes_, source_;
  Arr<int64_t> roots_;
  Arr<double> values_;
  ft::CompactArrays f_{};
};

// A few rows through a validated TreeCompactForest (a fitted forest): the same walk, trees in lockstep.
Arr<double> predict_rows(const ft::CompactForest& c, Arr<float> X, Arr<double> values) {
  FORGEML_CHECK_ARG(X.ndim() == 2 && X.shape(1) == c.n_features, "X: expected shape (n_samples, ", c.n_features,
                    "), got ", X.ndim() == 2 ? X.shape(1) : -1, " features");
  FORGEML_CHECK_ARG(values.ndim() == 2 && values.shape(0) == c.n_source_nodes && values.shape(1) >= 1,
                    "values: expected (", c.n_source_nodes, ", k)");
  const ft::CompactArrays f{c.nodes.data(),  static_cast<int64_t>(c.nodes.size()), c.source.data(),
                            c.roots.data(),  static_cast<int64_t>(c.roots.size()), values.data(),
                            values.shape(0), static_cast<int>(values.shape(1)),    c.n_features};
  ft::check_compact_arrays(f);
  Arr<double> out({X.shape(0), values.shape(1)});
  if (X.shape(0) <= 4) {
    ft::compact_predict_rows(f, X.data(), X.shape(0), out.mutable_data());
    return out;
  }
  py::gil_scoped_release nogil;
  ft::compact_predict_rows(f, X.data(), X.shape(0), out.mutable_data());
  return out;
}

forgeml::bind::Register reg{[](py::module_& m) {
  py::class_<CompactRows>(m, "TreeCompactRows",
                          "Predicts a few rows from a compact forest's stored arrays, checking each node it reads.")
      .def(py::init<Arr<int32_t>, Arr<int32_t>, Arr<int64_t>, Arr<double>, int64_t>(), py::arg("nodes"),
           py::arg("source"), py::arg("roots"), py::arg("values"), py::arg("n_features"))
      .def("predict", &CompactRows::predict, py::arg("X"));
  m.def("tree_compact_predict_rows", &predict_rows, py::arg("compact"), py::arg("X"), py::arg("values"),
        "A few rows through a TreeCompactForest, on the calling thread (the same sums as its predict).");
}};

}  // namespace
