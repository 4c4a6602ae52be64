// forgeml._cuda.gemm_bf16 / gemm_int8: device pointers as integers, on the caller's stream.
// Validation happens once in forgeml.ops (gemm_lowp.py); the launchers re-check sizes.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bind/registry.h"
#include "cuda/gemm_lowp.cuh"

namespace py = pybind11;

namespace {

template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("gemm_bf16", [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, uintptr_t a, int64_t lda, uintptr_t b,
                        int64_t ldb, uintptr_t c, int64_t ldc, uintptr_t bias, int activation, uintptr_t stream) {
    py::gil_scoped_release release;
    forgeml::cuda::gemm_bf16(ta, tb, M, N, K, ptr<const float>(a), lda, ptr<const float>(b), ldb, ptr<float>(c), ldc,
                             ptr<const float>(bias), activation, ptr<CUstream_st>(stream));
  }, "C = act(bf16(op(A)) @ bf16(op(B)) + bias) on device memory (float32 row-major; bias 0 = none).");
  m.def("gemm_int8", [](int64_t M, int64_t N, int64_t K, uintptr_t a, int64_t lda, uintptr_t a_scale, uintptr_t b,
                        int64_t ldb, uintptr_t b_scale, uintptr_t c, int64_t ldc, uintptr_t bias, int activation,
                        uintptr_t stream) {
    py::gil_scoped_release release;
    forgeml::cuda::gemm_int8(M, N, K, ptr<const int8_t>(a), lda, ptr<const float>(a_scale), ptr<const int8_t>(b), ldb,
                             ptr<const float>(b_scale), ptr<float>(c), ldc, ptr<const float>(bias), activation,
                             ptr<CUstream_st>(stream));
  }, "C = act(a_scale b_scale (A @ B) + bias) on device memory (int8 A, B row-major; bias 0 = none).");
}};

}  // namespace
