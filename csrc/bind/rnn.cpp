// forgeml._cpu recurrent sequences: rnn_forward / rnn_backward (ops/rnn.py is the public door).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "bind/registry.h"
#include "cpu/rnn/rnn.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace py = pybind11;
namespace r = forgeml::rnn;

namespace {

using Arr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using OptArr = std::optional<Arr>;

Arr empty(std::vector<py::ssize_t> shape) { return Arr(shape); }

const float* ptr(const OptArr& a) { return a ? a->data() : nullptr; }

void expect(const Arr& a, const char* name, std::vector<int64_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  FORGEML_CHECK_ARG(ok, name, ": wrong shape for this sequence (ops/rnn.py validates before calling)");
}

r::Dims dims_of(int cell, const Arr& x, int64_t H) {
  FORGEML_CHECK_ARG(cell >= 0 && cell <= 2, "cell: expected 0, 1 or 2, got ", cell);
  FORGEML_CHECK_ARG(x.ndim() == 3, "x: expected (N, T, F)");
  return {x.shape(0), x.shape(1), x.shape(2), H, r::gates_of(static_cast<r::Cell>(cell))};
}

// Keras-layout weights -> the permuted copies the kernels use (identity for SimpleRNN).
Arr to_perm(const std::vector<int64_t>& perm, const Arr& a, int64_t rows) {
  Arr out = empty({a.shape(), a.shape() + a.ndim()});
  r::permute_columns(perm, rows, a.data(), out.mutable_data(), true);
  return out;
}

// Inference (keep == false) reuses one per-thread buffer for the gates and cell states: fresh
// multi-MB arrays on every call cost page faults comparable to the recurrent GEMMs themselves.
float* reusable(std::vector<float>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf.data();
}

py::dict forward(int cell, int act, const Arr& x, const Arr& kernel, const Arr& rkernel, const Arr& bias,
                 const OptArr& h0, const OptArr& c0, int parts, bool keep, bool bf16, int lstm_rows) {
  const int64_t H = rkernel.ndim() == 2 ? rkernel.shape(0) : -1;
  r::Dims d = dims_of(cell, x, H);
  r::Cell c = static_cast<r::Cell>(cell);
  const int64_t nb = c == r::Cell::gru ? 2 : 1;
  expect(kernel, "kernel", {d.F, d.GH()});
  expect(rkernel, "recurrent_kernel", {d.H, d.GH()});
  if (nb == 2) expect(bias, "bias", {2, d.GH()}); else expect(bias, "bias", {d.GH()});
  if (h0) expect(*h0, "h0", {d.N, d.H});
  if (c0) expect(*c0, "c0", {d.N, d.H});

  r::Split split = r::make_split(d, forgeml::num_threads(), parts);
  std::vector<int64_t> perm = r::column_perm(d, split);
  Arr kp = to_perm(perm, kernel, d.F), rp = to_perm(perm, rkernel, d.H), bp = to_perm(perm, bias, nb);
  const int64_t nk = c == r::Cell::simple ? 0 : d.N;
  Arr y = empty({d.N, d.T, d.H});
  Arr xg = empty({keep ? nk : 0, d.T, d.GH()});
  Arr aux = empty({keep ? nk : 0, d.T, d.H});
  Arr c_T = empty({c == r::Cell::lstm ? d.N : 0, d.H});
  thread_local std::vector<float> xg_buf, aux_buf;
  // LSTM inference keeps its gates in per-thread buffers inside forward (xg null)
  float* xg_p = keep ? xg.mutable_data() : c == r::Cell::lstm ? nullptr : reusable(xg_buf, nk * d.T * d.GH());
  float* aux_p = keep ? aux.mutable_data() : reusable(aux_buf, nk * d.T * d.H);
  r::Forward f{x.data(), kp.data(), rp.data(), bp.data(), ptr(h0), ptr(c0), y.mutable_data(), xg_p, aux_p, bf16, lstm_rows};
  {
    py::gil_scoped_release nogil;
    r::forward(c, static_cast<r::Act>(act), d, split, f);
    if (c == r::Cell::lstm && d.T > 0)
      for (int64_t n = 0; n < d.N; ++n)
        std::copy_n(aux_p + (n * d.T + d.T - 1) * d.H, d.H, c_T.mutable_data() + n * d.H);
  }
  py::dict out;
  out["c_T"] = c_T;
  out["y"] = y, out["xg"] = xg, out["aux"] = aux, out["kernel"] = kp, out["recurrent_kernel"] = rp;
  out["split"] = py::array_t<int64_t>(static_cast<py::ssize_t>(split.size()), split.data());
  return out;
}

py::tuple backward(int cell, int act, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& split_a,
                   const Arr& x, const Arr& kp, const Arr& rp, const OptArr& h0, const OptArr& c0, const Arr& y,
                   const Arr& xg, const Arr& aux, const OptArr& dy, const OptArr& dh_T, const OptArr& dc_T,
                   bool bf16) {
  const int64_t H = rp.ndim() == 2 ? rp.shape(0) : -1;
  r::Dims d = dims_of(cell, x, H);
  r::Cell c = static_cast<r::Cell>(cell);
  const int64_t nb = c == r::Cell::gru ? 2 : 1;
  r::Split split(split_a.data(), split_a.data() + split_a.size());
  expect(kp, "kernel", {d.F, d.GH()});
  expect(y, "y", {d.N, d.T, d.H});
  if (c != r::Cell::simple) {
    expect(xg, "cache", {d.N, d.T, d.GH()});
    expect(aux, "cache", {d.N, d.T, d.H});
  }
  if (dy) expect(*dy, "dy", {d.N, d.T, d.H});
  if (dh_T) expect(*dh_T, "dh_T", {d.N, d.H});
  if (dc_T) expect(*dc_T, "dc_T", {d.N, d.H});

  Arr dx = empty({d.N, d.T, d.F}), dk = empty({d.F, d.GH()}), dr = empty({d.H, d.GH()});
  Arr dbias = nb == 2 ? empty({2, d.GH()}) : empty({d.GH()});
  Arr dh0 = empty({d.N, d.H}), dc0 = empty({c == r::Cell::lstm ? d.N : 0, d.H});
  Arr dk_p = empty({d.F, d.GH()}), dr_p = empty({d.H, d.GH()}), db_p = empty({nb, d.GH()});
  r::Forward f{x.data(), kp.data(), rp.data(), nullptr, ptr(h0), ptr(c0),
               const_cast<float*>(y.data()), const_cast<float*>(xg.data()), const_cast<float*>(aux.data()), bf16};
  r::Backward b{ptr(dy), ptr(dh_T), ptr(dc_T), dx.mutable_data(), dk_p.mutable_data(), dr_p.mutable_data(),
                db_p.mutable_data(), dh0.mutable_data(), dc0.mutable_data()};
  {
    py::gil_scoped_release nogil;
    r::backward(c, static_cast<r::Act>(act), d, split, f, b);
    std::vector<int64_t> perm = r::column_perm(d, split);
    r::permute_columns(perm, d.F, dk_p.data(), dk.mutable_data(), false);
    r::permute_columns(perm, d.H, dr_p.data(), dr.mutable_data(), false);
    r::permute_columns(perm, nb, db_p.data(), dbias.mutable_data(), false);
  }
  return py::make_tuple(dx, dk, dr, dbias, dh0, dc0);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("rnn_forward", &forward, py::arg("cell"), py::arg("act"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        py::arg("parts") = 0, py::arg("keep") = true, py::arg("bf16") = false, py::arg("lstm_rows") = -1,
        "Recurrent sequence forward (cell 0 SimpleRNN, 1 LSTM, 2 GRU; bf16: every product on the bf16 GEMM); "
        "returns the cache dict.");
  m.def("rnn_backward", &backward, py::arg("cell"), py::arg("act"), py::arg("split"), py::arg("x"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("h0"), py::arg("c0"), py::arg("y"),
        py::arg("xg"), py::arg("aux"), py::arg("dy"), py::arg("dh_T"), py::arg("dc_T"), py::arg("bf16") = false,
        "Backward through time from rnn_forward's cache: (dx, dkernel, drecurrent_kernel, dbias, dh0, dc0).");
}};

}  // namespace
