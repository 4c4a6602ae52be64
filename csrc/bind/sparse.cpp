// forgeml._cpu bindings for sparse-weight inference (forgeml/sparse.h). ops/sparse.py builds
// the CSC arrays and validates shapes; this re-checks what could touch foreign memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bind/registry.h"
#include "forgeml/check.h"
#include "forgeml/sparse.h"

namespace py = pybind11;
namespace fs = forgeml::sparse;

namespace {

template <class T>
const T* contiguous(const py::array& a, const char* name, char kind, int64_t min_len) {
  FORGEML_CHECK_ARG(a.dtype().kind() == kind && a.itemsize() == sizeof(T) && a.ndim() == 1, name,
                    ": expected a 1-D array of ", kind == 'f' ? "float32" : (sizeof(T) == 8 ? "int64" : "int32"),
                    ", got ", std::string(py::str(a.dtype())), " ", a.ndim(), "-D");
  FORGEML_CHECK_ARG(a.shape(0) >= min_len, name, ": expected at least ", min_len, " entries, got ", a.shape(0));
  FORGEML_CHECK_ARG(a.shape(0) <= 1 || a.strides(0) == static_cast<py::ssize_t>(sizeof(T)), name,
                    ": expected a contiguous array");
  return static_cast<const T*>(a.data());
}

}  // namespace

static forgeml::bind::Register reg{[](py::module_& m) {
  m.def("dense_x_csc", [](const py::array& x, const py::array& indptr, const py::array& indices, const py::array& values,
                          int64_t k, int64_t n, py::array out, const py::object& bias, int activation) {
    FORGEML_CHECK_ARG(x.dtype().kind() == 'f' && x.itemsize() == 4 && x.ndim() == 2 && x.shape(1) == k, "x: expected a ",
                      "float32 (M, ", k, ") array");
    FORGEML_CHECK_ARG(x.shape(1) <= 1 || x.strides(1) == 4, "x: expected a unit inner stride");
    FORGEML_CHECK_ARG(out.dtype().kind() == 'f' && out.itemsize() == 4 && out.ndim() == 2 && out.shape(0) == x.shape(0) &&
                          out.shape(1) == n && out.writeable() && (n <= 1 || out.strides(1) == 4),
                      "out: expected a writable float32 (", x.shape(0), ", ", n, ") array");
    FORGEML_CHECK_ARG(activation >= 0 && activation <= 4, "activation: expected 0..4, got ", activation);
    const int64_t M = x.shape(0);
    const int64_t* ptr = contiguous<int64_t>(indptr, "indptr", 'i', n + 1);
    const int64_t nnz = ptr[n];
    FORGEML_CHECK_ARG(nnz >= 0, "indptr: negative end offset");
    fs::CscMatrix W{k, n, ptr, contiguous<int32_t>(indices, "indices", 'i', nnz),
                    contiguous<float>(values, "values", 'f', nnz)};
    const float* b = nullptr;
    if (!bias.is_none()) b = contiguous<float>(py::reinterpret_borrow<py::array>(bias), "bias", 'f', n);
    const int64_t ldx = M > 1 ? x.strides(0) / 4 : std::max<int64_t>(1, k);
    const int64_t ldy = M > 1 ? out.strides(0) / 4 : std::max<int64_t>(1, n);
    FORGEML_CHECK_ARG(M <= 1 || (x.strides(0) % 4 == 0 && out.strides(0) % 4 == 0), "x, out: unsupported row stride");
    py::gil_scoped_release nogil;
    fs::dense_x_csc(M, static_cast<const float*>(x.data()), ldx, W, static_cast<float*>(out.mutable_data()), ldy, b,
                    static_cast<forgeml::gemm::Activation>(activation));
  }, py::arg("x"), py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("k"), py::arg("n"), py::arg("out"),
     py::arg("bias"), py::arg("activation"), "out = act(x @ W + bias) for a CSC (by output column) W of shape (k, n).");

  m.def("sparse_kernel_name", &fs::sparse_kernel_name);
}};
