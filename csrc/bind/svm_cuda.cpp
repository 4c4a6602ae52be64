// forgeml._cuda svm_*: the CUDA kernel SVC on device pointers (integers) and a stream handle;
// labels and bounds come as NumPy arrays (the driver keeps its bookkeeping on the host).
// Validated in python/forgeml/ops/svm.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>

#include "bind/registry.h"
#include "cuda/svm.cuh"
#include "forgeml/check.h"

namespace py = pybind11;
namespace cs = forgeml::cuda::svm;

namespace {

template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

cs::Kernel kernel(int type, double gamma, double coef0, int degree) {
  return cs::Kernel{type, float(gamma), float(coef0), degree};
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("svm_workspace_bytes", [](int type, int64_t n, int64_t d, int q) {
    return cs::workspace_bytes(kernel(type, 1.0, 0.0, 3), n, d, q);
  }, py::arg("type"), py::arg("n"), py::arg("d"), py::arg("q"));
  m.def("svm_kernel_block", [](uintptr_t A, int64_t m_rows, uintptr_t B, int64_t nb, int64_t d, int type,
                               double gamma, double coef0, int degree, uintptr_t norms_a, uintptr_t norms_b,
                               uintptr_t out, uintptr_t stream) {
    py::gil_scoped_release nogil;
    cs::kernel_block(kernel(type, gamma, coef0, degree), ptr<const float>(A), m_rows, ptr<const float>(B), nb, d,
                     ptr<float>(norms_a), ptr<float>(norms_b), ptr<float>(out), ptr<CUstream_st>(stream));
  }, py::arg("A"), py::arg("m"), py::arg("B"), py::arg("n"), py::arg("d"), py::arg("type"), py::arg("gamma"),
     py::arg("coef0"), py::arg("degree"), py::arg("norms_a"), py::arg("norms_b"), py::arg("out"), py::arg("stream"));
  m.def("svm_solve", [](uintptr_t X, int64_t n, int64_t d, F64 y, F64 C, int type, double gamma, double coef0,
                        int degree, double tol, int64_t max_iter, int ws_size, uintptr_t workspace, uintptr_t stream,
                        std::optional<F64> p, std::optional<F64> alpha0, bool nu) {
    FORGEML_CHECK_ARG(y.size() == n && C.size() == n, "y, C: expected (", n, ",)");
    FORGEML_CHECK_ARG((!p || p->size() == n) && (!alpha0 || alpha0->size() == n), "p, alpha0: expected (", n, ",)");
    cs::Options o;
    o.tol = tol, o.max_iter = max_iter, o.ws_size = ws_size;
    o.p = p ? p->data() : nullptr;
    o.alpha0 = alpha0 ? alpha0->data() : nullptr;
    o.nu = nu;
    cs::Result r;
    {
      py::gil_scoped_release nogil;
      r = cs::solve(kernel(type, gamma, coef0, degree), ptr<const float>(X), n, d, y.data(), C.data(), o,
                    ptr<void>(workspace), ptr<CUstream_st>(stream));
    }
    F64 alpha(n);
    std::copy_n(r.alpha.data(), n, alpha.mutable_data());
    return py::make_tuple(alpha, r.rho, r.obj, r.iterations, r.outer, r.converged, r.r);
  }, py::arg("X"), py::arg("n"), py::arg("d"), py::arg("y"), py::arg("C"), py::arg("type"), py::arg("gamma"),
     py::arg("coef0"), py::arg("degree"), py::arg("tol"), py::arg("max_iter"), py::arg("ws_size"),
     py::arg("workspace"), py::arg("stream"), py::arg("p") = py::none(), py::arg("alpha0") = py::none(), py::arg("nu") = false);
}};

}  // namespace
