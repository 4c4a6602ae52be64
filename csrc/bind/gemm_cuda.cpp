// forgeml._cuda.sgemm: device pointers as integers, on the caller's stream (CuPy's current one).
// Validation of shapes and dtypes happens once in forgeml.ops.matmul; the launcher re-checks sizes.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bind/registry.h"
#include "cuda/gemm.cuh"

namespace py = pybind11;

namespace {

template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("sgemm",
        [](bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, uintptr_t a_ptr, int64_t lda,
           uintptr_t b_ptr, int64_t ldb, float beta, uintptr_t c_ptr, int64_t ldc, uintptr_t bias_ptr,
           int activation, uintptr_t stream) {
          py::gil_scoped_release release;
          forgeml::cuda::sgemm(trans_a, trans_b, M, N, K, alpha, ptr<const float>(a_ptr), lda, ptr<const float>(b_ptr),
                               ldb, beta, ptr<float>(c_ptr), ldc, ptr<const float>(bias_ptr), activation,
                               ptr<CUstream_st>(stream));
        },
        py::arg("trans_a"), py::arg("trans_b"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("alpha"),
        py::arg("a_ptr"), py::arg("lda"), py::arg("b_ptr"), py::arg("ldb"), py::arg("beta"), py::arg("c_ptr"),
        py::arg("ldc"), py::arg("bias_ptr"), py::arg("activation"), py::arg("stream"),
        "C = act(alpha * op(A) @ op(B) + beta * C + bias) on device memory (row-major float32; bias_ptr 0 = none; "
        "activation 0 none, 1 relu, 2 sigmoid, 3 tanh, 4 gelu).");
}};

}  // namespace
