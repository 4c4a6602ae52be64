// forgeml._cuda.rnn_forward / rnn_backward: device pointers as integers (0 = null), on the caller's
// stream (CuPy's current one). forgeml.ops.rnn validates shapes and allocates every buffer.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bind/registry.h"
#include "cuda/rnn.cuh"

namespace py = pybind11;
namespace cr = forgeml::cuda::rnn;

namespace {

template <class T>
T* p(uintptr_t v) { return reinterpret_cast<T*>(v); }

cr::Forward make(int cell, int act, int64_t N, int64_t T, int64_t F, int64_t H, uintptr_t x, uintptr_t k,
                 uintptr_t rk, uintptr_t bias, uintptr_t h0, uintptr_t c0, uintptr_t y, uintptr_t xg, uintptr_t aux,
                 uintptr_t scratch) {
  return {cell, act, N, T, F, H, p<const float>(x), p<const float>(k), p<const float>(rk), p<const float>(bias),
          p<const float>(h0), p<const float>(c0), p<float>(y), p<float>(xg), p<float>(aux), p<float>(scratch)};
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("rnn_forward",
        [](int cell, int act, int64_t N, int64_t T, int64_t F, int64_t H, uintptr_t x, uintptr_t k, uintptr_t rk,
           uintptr_t bias, uintptr_t h0, uintptr_t c0, uintptr_t y, uintptr_t xg, uintptr_t aux, uintptr_t scratch,
           uintptr_t stream) {
          py::gil_scoped_release nogil;
          cr::forward(make(cell, act, N, T, F, H, x, k, rk, bias, h0, c0, y, xg, aux, scratch), p<CUstream_st>(stream));
        });
  m.def("rnn_backward",
        [](int cell, int act, int64_t N, int64_t T, int64_t F, int64_t H, uintptr_t x, uintptr_t k, uintptr_t rk,
           uintptr_t h0, uintptr_t c0, uintptr_t y, uintptr_t xg, uintptr_t aux, uintptr_t dy, uintptr_t dh_T,
           uintptr_t dc_T, uintptr_t dx, uintptr_t dk, uintptr_t dr, uintptr_t dbias, uintptr_t dh0, uintptr_t dc0,
           uintptr_t da, uintptr_t db, uintptr_t hprev, uintptr_t stream) {
          py::gil_scoped_release nogil;
          cr::Forward f = make(cell, act, N, T, F, H, x, k, rk, 0, h0, c0, y, xg, aux, 0);
          cr::Backward b{p<const float>(dy), p<const float>(dh_T), p<const float>(dc_T), p<float>(dx), p<float>(dk),
                         p<float>(dr), p<float>(dbias), p<float>(dh0), p<float>(dc0), p<float>(da), p<float>(db),
                         p<float>(hprev)};
          cr::backward(f, b, p<CUstream_st>(stream));
        });
}};

}  // namespace
