// forgeml._cuda conv functions: device pointers as integers, on the caller's stream (CuPy's current
// one). forgeml.ops.conv validates and allocates; the shape is re-checked here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>

#include "bind/registry.h"
#include "cuda/conv.cuh"

namespace {

namespace py = pybind11;
namespace cc = forgeml::cuda::conv;
using Dims = std::array<int64_t, 7>;  // N, H, W, C, KH, KW, O
using Pair = std::array<int64_t, 2>;
using Pads = std::array<int64_t, 4>;

template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

cc::Shape shape(Dims d, Pair s, Pair dil, Pads p) {
  return cc::make_shape(d[0], d[1], d[2], d[3], d[4], d[5], d[6], s[0], s[1], dil[0], dil[1], p[0], p[1], p[2], p[3]);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("conv2d_forward_ptr", [](Dims d, Pair s, Pair dil, Pads p, uintptr_t x, uintptr_t w, uintptr_t bias, int act,
                                 uintptr_t y, uintptr_t stream) {
    auto sh = shape(d, s, dil, p);
    py::gil_scoped_release nogil;
    cc::forward(sh, ptr<const float>(x), ptr<const float>(w), ptr<const float>(bias), act, ptr<float>(y),
                ptr<CUstream_st>(stream));
  }, py::arg("dims"), py::arg("strides"), py::arg("dilation"), py::arg("pads"), py::arg("x"), py::arg("w"),
     py::arg("bias"), py::arg("activation"), py::arg("y"), py::arg("stream"));
  m.def("conv2d_backward_ptr", [](Dims d, Pair s, Pair dil, Pads p, uintptr_t x, uintptr_t w, uintptr_t dy,
                                  uintptr_t dx, uintptr_t dw, uintptr_t db, uintptr_t stream) {
    auto sh = shape(d, s, dil, p);
    py::gil_scoped_release nogil;
    if (dx) cc::backward_data(sh, ptr<const float>(w), ptr<const float>(dy), ptr<float>(dx), ptr<CUstream_st>(stream));
    cc::backward_weight(sh, ptr<const float>(x), ptr<const float>(dy), ptr<float>(dw), ptr<float>(db),
                        ptr<CUstream_st>(stream));
  }, py::arg("dims"), py::arg("strides"), py::arg("dilation"), py::arg("pads"), py::arg("x"), py::arg("w"),
     py::arg("dy"), py::arg("dx"), py::arg("dw"), py::arg("db"), py::arg("stream"));
  m.def("pool2d_forward_ptr", [](Dims d, int kind, Pair s, Pads p, uintptr_t x, uintptr_t y, uintptr_t stream) {
    auto sh = shape(d, s, {1, 1}, p);
    py::gil_scoped_release nogil;
    cc::pool_forward(sh, kind, ptr<const float>(x), ptr<float>(y), ptr<CUstream_st>(stream));
  }, py::arg("dims"), py::arg("kind"), py::arg("strides"), py::arg("pads"), py::arg("x"), py::arg("y"),
     py::arg("stream"));
  m.def("pool2d_backward_ptr", [](Dims d, int kind, Pair s, Pads p, uintptr_t x, uintptr_t dy, uintptr_t dx,
                                  uintptr_t stream) {
    auto sh = shape(d, s, {1, 1}, p);
    py::gil_scoped_release nogil;
    cc::pool_backward(sh, kind, ptr<const float>(x), ptr<const float>(dy), ptr<float>(dx), ptr<CUstream_st>(stream));
  }, py::arg("dims"), py::arg("kind"), py::arg("strides"), py::arg("pads"), py::arg("x"), py::arg("dy"),
     py::arg("dx"), py::arg("stream"));
}};

}  // namespace
