// forgeml._cpu bindings for the structure checks of forgeml/validate.h, so ops validate CSR
// input with the same code the sanitizer executable and the fuzz targets exercise.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bind/registry.h"
#include "forgeml/validate.h"

namespace py = pybind11;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

void check_csr(const Arr<int64_t>& indptr, const Arr<int64_t>& indices, int64_t n_data, int64_t n_rows,
               int64_t n_cols) {
  FORGEML_CHECK_ARG(indptr.ndim() == 1 && indices.ndim() == 1, "X: indptr and indices must be 1-D");
  FORGEML_CHECK_ARG(indptr.size() >= 1, "X.indptr: expected ", n_rows + 1, " entries, got 0");
  forgeml::check_csr(indptr.data(), indptr.size(), indices.data(), indices.size(), n_data, n_rows, n_cols);
}

void check_forest_nodes(const Arr<int32_t>& nodes, const Arr<int64_t>& roots, int64_t n_features) {
  FORGEML_CHECK_ARG(nodes.ndim() == 2 && nodes.shape(1) == 4, "nodes: expected an (N, 4) int32 array");
  FORGEML_CHECK_ARG(roots.ndim() == 1, "roots: expected a 1-D array");
  forgeml::check_forest_nodes(nodes.data(), nodes.shape(0), roots.data(), roots.size(), n_features);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("check_csr", &check_csr, py::arg("indptr"), py::arg("indices"), py::arg("n_data"), py::arg("n_rows"),
        py::arg("n_cols"), "ValueError unless (indptr, indices) is a valid CSR structure of that shape.");
  m.def("check_forest_nodes", &check_forest_nodes, py::arg("nodes"), py::arg("roots"), py::arg("n_features"),
        "ValueError unless every walk through the node array stays inside it and ends at a leaf.");
}};

}  // namespace
