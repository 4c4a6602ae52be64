// forgeml._emu.rnn_forward / rnn_backward: the CUDA recurrent kernels under the emulator, NumPy in
// and out, Keras layouts (tests only; forgeml.ops.rnn validates for users).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>

#include "bind/registry.h"
#include "cuda/rnn.cuh"
#include "forgeml/check.h"

namespace py = pybind11;
namespace cr = forgeml::cuda::rnn;

namespace {

using Arr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using OptArr = std::optional<Arr>;

Arr filled(std::vector<py::ssize_t> shape, float v) {
  Arr a(shape);
  std::fill_n(a.mutable_data(), a.size(), v);
  return a;
}

cr::Forward dims(int cell, int act, const Arr& x, const Arr& rk) {
  FORGEML_CHECK_ARG(x.ndim() == 3 && rk.ndim() == 2, "x, recurrent_kernel: expected 3-D and 2-D arrays");
  cr::Forward f{};
  f.cell = cell, f.act = act, f.N = x.shape(0), f.T = x.shape(1), f.F = x.shape(2), f.H = rk.shape(0);
  return f;
}

int64_t gates(int cell) { return cell == 1 ? 4 : cell == 2 ? 3 : 1; }

py::tuple forward(int cell, int act, const Arr& x, const Arr& k, const Arr& rk, const Arr& bias, const Arr& h0,
                  const Arr& c0) {
  cr::Forward f = dims(cell, act, x, rk);
  const int64_t GH = gates(cell) * f.H;
  Arr y = filled({f.N, f.T, f.H}, NAN), xg = filled({f.N, f.T, GH}, NAN), aux = filled({f.N, f.T, f.H}, NAN);
  Arr scratch = filled({f.N, GH}, NAN);
  f.x = x.data(), f.kernel = k.data(), f.rkernel = rk.data(), f.bias = bias.data(), f.h0 = h0.data(), f.c0 = c0.data();
  f.y = y.mutable_data(), f.xg = xg.mutable_data(), f.aux = aux.mutable_data(), f.scratch = scratch.mutable_data();
  {
    py::gil_scoped_release nogil;
    cr::forward(f, nullptr);
  }
  return py::make_tuple(y, xg, aux);
}

py::tuple backward(int cell, int act, const Arr& x, const Arr& k, const Arr& rk, const Arr& h0, const Arr& c0,
                   const Arr& y, const Arr& xg, const Arr& aux, const OptArr& dy, const OptArr& dh_T,
                   const OptArr& dc_T) {
  cr::Forward f = dims(cell, act, x, rk);
  const int64_t GH = gates(cell) * f.H, nb = cell == 2 ? 2 : 1;
  f.x = x.data(), f.kernel = k.data(), f.rkernel = rk.data(), f.h0 = h0.data(), f.c0 = c0.data();
  f.y = const_cast<float*>(y.data()), f.xg = const_cast<float*>(xg.data()), f.aux = const_cast<float*>(aux.data());
  Arr dx = filled({f.N, f.T, f.F}, NAN), dk = filled({f.F, GH}, NAN), dr = filled({f.H, GH}, NAN);
  Arr dbias = filled({nb, GH}, NAN), dh0 = filled({f.N, f.H}, NAN), dc0 = filled({f.N, f.H}, NAN);
  Arr da = filled({f.N, f.T, GH}, NAN), db = filled({f.N, f.T, GH}, NAN), hprev = filled({f.N, f.T, f.H}, NAN);
  cr::Backward b{dy ? dy->data() : nullptr, dh_T ? dh_T->data() : nullptr, dc_T ? dc_T->data() : nullptr,
                 dx.mutable_data(), dk.mutable_data(), dr.mutable_data(), dbias.mutable_data(),
                 dh0.mutable_data(), dc0.mutable_data(), da.mutable_data(), db.mutable_data(), hprev.mutable_data()};
  {
    py::gil_scoped_release nogil;
    cr::backward(f, b, nullptr);
  }
  return py::make_tuple(dx, dk, dr, dbias, dh0, dc0);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("rnn_forward", &forward, py::arg("cell"), py::arg("act"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        "CUDA recurrent forward under the emulator: (y, xg, aux).");
  m.def("rnn_backward", &backward, py::arg("cell"), py::arg("act"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("h0"), py::arg("c0"), py::arg("y"), py::arg("xg"), py::arg("aux"),
        py::arg("dy"), py::arg("dh_T"), py::arg("dc_T"),
        "CUDA recurrent backward under the emulator: (dx, dkernel, drecurrent_kernel, dbias, dh0, dc0).");
}};

}  // namespace
