// Binding of the CPU convolution and pooling kernels into forgeml._cpu. Python (ops/conv.py) has
// validated ranks and turned "same"/"valid" into explicit pads; shapes are checked again here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>

#include "bind/registry.h"
#include "cpu/conv/conv.h"
#include "forgeml/check.h"

namespace {

namespace py = pybind11;
using Arr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Pair = std::array<int64_t, 2>;
using Pads = std::array<int64_t, 4>;  // top, bottom, left, right

void check_rank(const Arr& a, const char* name, int nd) {
  FORGEML_CHECK_ARG(a.ndim() == nd, name, ": expected a ", nd, "-D array, got ", a.ndim(), "-D");
}

forgeml::conv::Geom make_geom(const Arr& x, int64_t KH, int64_t KW, int64_t O, Pair strides, Pair dilation,
                              Pads pads) {
  check_rank(x, "x", 4);
  forgeml::conv::Geom g;
  g.N = x.shape(0), g.H = x.shape(1), g.W = x.shape(2), g.C = x.shape(3);
  g.KH = KH, g.KW = KW, g.O = O;
  g.sh = strides[0], g.sw = strides[1], g.dh = dilation[0], g.dw = dilation[1];
  g.pt = pads[0], g.pb = pads[1], g.pl = pads[2], g.pr = pads[3];
  g.finish();
  return g;
}

forgeml::conv::Geom conv_geom(const Arr& x, const Arr& w, Pair strides, Pair dilation, Pads pads) {
  check_rank(w, "w", 4);
  check_rank(x, "x", 4);
  FORGEML_CHECK_ARG(w.shape(2) == x.shape(3), "w: expected ", x.shape(3), " input channels (x has shape (",
                    x.shape(0), ", ", x.shape(1), ", ", x.shape(2), ", ", x.shape(3), ")), got ", w.shape(2));
  return make_geom(x, w.shape(0), w.shape(1), w.shape(3), strides, dilation, pads);
}

void check_dy(const Arr& dy, const forgeml::conv::Geom& g, int64_t channels) {
  check_rank(dy, "dy", 4);
  FORGEML_CHECK_ARG(dy.shape(0) == g.N && dy.shape(1) == g.OH && dy.shape(2) == g.OW && dy.shape(3) == channels,
                    "dy: expected shape (", g.N, ", ", g.OH, ", ", g.OW, ", ", channels, "), got (", dy.shape(0),
                    ", ", dy.shape(1), ", ", dy.shape(2), ", ", dy.shape(3), ")");
}

forgeml::conv::Pool pool_kind(const std::string& kind) {
  if (kind == "max") return forgeml::conv::Pool::max;
  if (kind == "avg") return forgeml::conv::Pool::avg;
  throw std::invalid_argument("kind: expected 'max' or 'avg', got '" + kind + "'");
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("conv2d_forward", [](const Arr& x, const Arr& w, std::optional<Arr> bias, Pair strides, Pair dilation,
                             Pads pads, int act) {
    auto g = conv_geom(x, w, strides, dilation, pads);
    if (bias) {
      FORGEML_CHECK_ARG(bias->ndim() == 1 && bias->shape(0) == g.O, "bias: expected shape (", g.O, ",)");
    }
    FORGEML_CHECK_ARG(act >= 0 && act <= 4, "activation: unknown code ", act);
    Arr y({g.N, g.OH, g.OW, g.O});
    const float* b = bias ? bias->data() : nullptr;
    float* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      forgeml::conv::forward(g, x.data(), w.data(), b, static_cast<forgeml::gemm::Activation>(act), yp);
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("strides"), py::arg("dilation"), py::arg("pads"),
     py::arg("activation"), "y = act(conv(x, w) + bias), channels last, explicit pads (top, bottom, left, right).");

  m.def("conv2d_backward", [](const Arr& x, const Arr& w, const Arr& dy, Pair strides, Pair dilation, Pads pads,
                              bool want_dx, bool want_dw, bool want_db) {
    auto g = conv_geom(x, w, strides, dilation, pads);
    check_dy(dy, g, g.O);
    std::optional<Arr> dx, dw, db;
    if (want_dx) dx.emplace(std::vector<py::ssize_t>{g.N, g.H, g.W, g.C});
    if (want_dw) dw.emplace(std::vector<py::ssize_t>{g.KH, g.KW, g.C, g.O});
    if (want_db) db.emplace(std::vector<py::ssize_t>{g.O});
    float* px = dx ? dx->mutable_data() : nullptr;
    float* pw = dw ? dw->mutable_data() : nullptr;
    float* pb = db ? db->mutable_data() : nullptr;
    {
      py::gil_scoped_release nogil;
      forgeml::conv::backward(g, x.data(), w.data(), dy.data(), px, pw, pb);
    }
    return py::make_tuple(dx ? py::object(*dx) : py::none(), dw ? py::object(*dw) : py::none(),
                          db ? py::object(*db) : py::none());
  }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("strides"), py::arg("dilation"), py::arg("pads"),
     py::arg("want_dx") = true, py::arg("want_dw") = true, py::arg("want_db") = true,
     "(dx, dw, db) of conv2d for the upstream gradient dy (None where not wanted).");

  m.def("pool2d_forward", [](const Arr& x, const std::string& kind, Pair pool, Pair strides, Pads pads) {
    auto k = pool_kind(kind);
    auto g = make_geom(x, pool[0], pool[1], 0, strides, {1, 1}, pads);
    Arr y({g.N, g.OH, g.OW, g.C});
    float* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      forgeml::conv::pool_forward(g, k, x.data(), yp);
    }
    return y;
  }, py::arg("x"), py::arg("kind"), py::arg("pool"), py::arg("strides"), py::arg("pads"));

  m.def("pool2d_backward", [](const Arr& x, const Arr& dy, const std::string& kind, Pair pool, Pair strides,
                              Pads pads) {
    auto k = pool_kind(kind);
    auto g = make_geom(x, pool[0], pool[1], 0, strides, {1, 1}, pads);
    check_dy(dy, g, g.C);
    Arr dx({g.N, g.H, g.W, g.C});
    float* p = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      forgeml::conv::pool_backward(g, k, x.data(), dy.data(), p);
    }
    return dx;
  }, py::arg("x"), py::arg("dy"), py::arg("kind"), py::arg("pool"), py::arg("strides"), py::arg("pads"));
}};

}  // namespace
