// forgeml._emu: the CUDA convolution and pooling kernels on the SIMT emulator, NumPy in and out
// (emulated device memory is host memory). Same arguments as forgeml._cpu's conv functions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>

#include "bind/registry.h"
#include "cuda/conv.cuh"
#include "forgeml/check.h"

namespace {

namespace py = pybind11;
namespace cc = forgeml::cuda::conv;
using Arr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Pair = std::array<int64_t, 2>;
using Pads = std::array<int64_t, 4>;

cc::Shape shape(const Arr& x, int64_t KH, int64_t KW, int64_t O, Pair s, Pair d, Pads p) {
  FORGEML_CHECK_ARG(x.ndim() == 4, "x: expected a 4-D array, got ", x.ndim(), "-D");
  return cc::make_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), KH, KW, O, s[0], s[1], d[0], d[1], p[0],
                        p[1], p[2], p[3]);
}

cc::Shape conv_shape(const Arr& x, const Arr& w, Pair s, Pair d, Pads p) {
  FORGEML_CHECK_ARG(w.ndim() == 4 && x.ndim() == 4 && w.shape(2) == x.shape(3), "w: expected (KH, KW, ",
                    x.ndim() == 4 ? x.shape(3) : -1, ", O)");
  return shape(x, w.shape(0), w.shape(1), w.shape(3), s, d, p);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("conv2d_forward", [](const Arr& x, const Arr& w, std::optional<Arr> bias, Pair s, Pair d, Pads p, int act) {
    auto sh = conv_shape(x, w, s, d, p);
    Arr y({sh.N, sh.OH, sh.OW, sh.O});
    float* yp = y.mutable_data();
    const float* b = bias ? bias->data() : nullptr;
    py::gil_scoped_release nogil;
    cc::forward(sh, x.data(), w.data(), b, act, yp, nullptr);
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("strides"), py::arg("dilation"), py::arg("pads"),
     py::arg("activation"));
  m.def("conv2d_backward", [](const Arr& x, const Arr& w, const Arr& dy, Pair s, Pair d, Pads p) {
    auto sh = conv_shape(x, w, s, d, p);
    FORGEML_CHECK_ARG(dy.ndim() == 4 && dy.shape(0) == sh.N && dy.shape(1) == sh.OH && dy.shape(2) == sh.OW &&
                      dy.shape(3) == sh.O, "dy: expected shape (", sh.N, ", ", sh.OH, ", ", sh.OW, ", ", sh.O, ")");
    Arr dx({sh.N, sh.H, sh.W, sh.C}), dw({sh.KH, sh.KW, sh.C, sh.O}), db(std::vector<py::ssize_t>{sh.O});
    float *px = dx.mutable_data(), *pw = dw.mutable_data(), *pb = db.mutable_data();
    {
      py::gil_scoped_release nogil;
      cc::backward_data(sh, w.data(), dy.data(), px, nullptr);
      cc::backward_weight(sh, x.data(), dy.data(), pw, pb, nullptr);
    }
    return py::make_tuple(dx, dw, db);
  }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("strides"), py::arg("dilation"), py::arg("pads"));
  m.def("conv_set_tile", &cc::set_tile, py::arg("tile"),
        "Tests: 0 picks the conv kernel by size, 64 forces the 64 x 64 tiles, 128 the large tiles where they apply.");
  m.def("pool2d_forward", [](const Arr& x, const std::string& kind, Pair pool, Pair s, Pads p) {
    FORGEML_CHECK_ARG(kind == "max" || kind == "avg", "kind: expected 'max' or 'avg'");
    auto sh = shape(x, pool[0], pool[1], 0, s, {1, 1}, p);
    Arr y({sh.N, sh.OH, sh.OW, sh.C});
    float* yp = y.mutable_data();
    py::gil_scoped_release nogil;
    cc::pool_forward(sh, kind == "max" ? 0 : 1, x.data(), yp, nullptr);
    return y;
  }, py::arg("x"), py::arg("kind"), py::arg("pool"), py::arg("strides"), py::arg("pads"));
  m.def("pool2d_backward", [](const Arr& x, const Arr& dy, const std::string& kind, Pair pool, Pair s, Pads p) {
    FORGEML_CHECK_ARG(kind == "max" || kind == "avg", "kind: expected 'max' or 'avg'");
    auto sh = shape(x, pool[0], pool[1], 0, s, {1, 1}, p);
    Arr dx({sh.N, sh.H, sh.W, sh.C});
    float* pd = dx.mutable_data();
    py::gil_scoped_release nogil;
    cc::pool_backward(sh, kind == "max" ? 0 : 1, x.data(), dy.data(), pd, nullptr);
    return dx;
  }, py::arg("x"), py::arg("dy"), py::arg("kind"), py::arg("pool"), py::arg("strides"), py::arg("pads"));
}};

}  // namespace
