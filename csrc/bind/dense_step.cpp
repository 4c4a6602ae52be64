// forgeml._cpu bindings for the fused Dense-stack steps (csrc/cpu/dense_step). ops/dense_step.py
// validates shapes and builds the layout once per fit; the checks here only keep a wrong call
// from touching memory it does not own.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <tuple>

#include "bind/registry.h"
#include "cpu/dense_step/dense_step.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace fd = forgeml::dense;

namespace {

template <class T>
T* ptr_of(const py::array& a, const char* name, int64_t size, bool writable = false) {
  FORGEML_CHECK_ARG(a.dtype().is(py::dtype::of<T>()), name, ": expected dtype ",
                    std::string(py::str(py::dtype::of<T>())), ", got ", std::string(py::str(a.dtype())));
  FORGEML_CHECK_ARG(a.flags() & py::array::c_style, name, ": expected a C-contiguous array");
  FORGEML_CHECK_ARG(size < 0 || a.size() == size, name, ": expected ", size, " elements, got ", a.size());
  if (writable) FORGEML_CHECK_ARG(a.writeable(), name, ": array is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

template <class T>
T* opt_ptr(const py::object& o, const char* name, int64_t size, bool writable = false) {
  if (o.is_none()) return nullptr;
  return ptr_of<T>(py::reinterpret_borrow<py::array>(o), name, size, writable);
}

fd::Net net_of(const py::array& params, const py::object& grads, const py::array& dims, const py::array& acts,
               const py::array& w_off, const py::array& b_off) {
  fd::Net net;
  net.layers = static_cast<int>(acts.size());
  net.dims = ptr_of<int64_t>(dims, "dims", net.layers + 1);
  net.acts = ptr_of<int>(acts, "acts", net.layers);
  net.w_off = ptr_of<int64_t>(w_off, "w_off", net.layers);
  net.b_off = ptr_of<int64_t>(b_off, "b_off", net.layers);
  net.n_params = params.size();
  net.params = ptr_of<float>(params, "params", -1, true);
  net.grads = opt_ptr<float>(grads, "grads", net.n_params, true);
  return net;
}

fd::Optimizer optimizer_of(int kind, const py::dict& hyper, const py::dict& slots, int64_t n) {
  FORGEML_CHECK_ARG(kind >= 0 && kind <= 2, "kind: expected 0 (sgd), 1 (adam) or 2 (rmsprop)");
  fd::Optimizer o;
  o.kind = static_cast<fd::OptKind>(kind);
  auto get = [&](const char* k, double dflt) { return hyper.contains(k) ? hyper[k].cast<double>() : dflt; };
  o.beta_1 = get("beta_1", 0.9);
  o.beta_2 = get("beta_2", 0.999);
  o.epsilon = get("epsilon", 1e-7);
  o.amsgrad = get("amsgrad", 0) != 0;
  o.momentum = get("momentum", 0);
  o.nesterov = get("nesterov", 0) != 0;
  o.rho = get("rho", 0.9);
  o.centered = get("centered", 0) != 0;
  o.weight_decay = get("weight_decay", 0);
  o.clipnorm = get("clipnorm", 0);
  o.clipvalue = get("clipvalue", 0);
  o.global_clipnorm = get("global_clipnorm", 0);
  auto slot = [&](const char* k) {
    return slots.contains(k) ? opt_ptr<float>(slots[k], k, n, true) : nullptr;
  };
  o.momentum_slot = slot("momentum");
  o.velocity = slot("velocity");
  o.velocity_hat = slot("velocity_hat");
  o.average_gradient = slot("average_gradient");
  FORGEML_CHECK_ARG(o.kind != fd::OptKind::adam || (o.momentum_slot && o.velocity),
                    "slots: adam needs momentum and velocity");
  FORGEML_CHECK_ARG(o.kind != fd::OptKind::rmsprop || o.velocity, "slots: rmsprop needs velocity");
  FORGEML_CHECK_ARG(o.kind != fd::OptKind::sgd || o.momentum == 0 || o.momentum_slot,
                    "slots: sgd with momentum needs a momentum slot");
  FORGEML_CHECK_ARG(!(o.amsgrad && !o.velocity_hat), "slots: amsgrad needs velocity_hat");
  FORGEML_CHECK_ARG(!(o.centered && !o.average_gradient), "slots: centered needs average_gradient");
  FORGEML_CHECK_ARG(o.momentum == 0 || o.kind != fd::OptKind::rmsprop || o.momentum_slot,
                    "slots: rmsprop with momentum needs a momentum slot");
  return o;
}

}  // namespace

static forgeml::bind::Register reg{[](py::module_& m) {
  m.def("dense_train_steps",
        [](const py::array& x, const py::object& perm, const py::array& y, const py::object& sw,
           const py::array& params, const py::array& grads, const py::array& dims, const py::array& acts,
           const py::array& w_off, const py::array& b_off, int64_t batch, int64_t first_step, int64_t steps,
           int kind, const py::dict& hyper, const py::dict& slots, const py::array& lrs, int64_t t0) {
          fd::Net net = net_of(params, grads, dims, acts, w_off, b_off);
          fd::Data d;
          FORGEML_CHECK_ARG(x.ndim() == 2 && x.shape(1) == net.dims[0], "x: expected (n, ", net.dims[0], ")");
          d.n = x.shape(0);
          d.x = ptr_of<float>(x, "x", -1);
          d.perm = opt_ptr<int64_t>(perm, "perm", d.n);
          d.y = ptr_of<int64_t>(y, "y", d.n);
          d.sw = opt_ptr<double>(sw, "sample_weight", d.n);
          d.batch = batch;
          d.first_step = first_step;
          d.steps = steps;
          fd::Optimizer o = optimizer_of(kind, hyper, slots, net.n_params);
          const double* lr = ptr_of<double>(lrs, "lrs", steps);
          FORGEML_CHECK_ARG(net.grads, "grads: required");
          fd::Totals t;
          {
            py::gil_scoped_release nogil;
            t = fd::train_steps(net, d, o, lr, t0);
          }
          return std::make_tuple(t.loss, t.correct, t.count);
        },
        py::arg("x"), py::arg("perm"), py::arg("y"), py::arg("sample_weight"), py::arg("params"),
        py::arg("grads"), py::arg("dims"), py::arg("acts"), py::arg("w_off"), py::arg("b_off"), py::arg("batch"),
        py::arg("first_step"), py::arg("steps"), py::arg("kind"), py::arg("hyper"), py::arg("slots"),
        py::arg("lrs"), py::arg("t0"),
        "Run `steps` fused training steps of a Dense stack + softmax cross-entropy; returns "
        "(weighted loss sum, argmax hits, samples).");

  m.def("optimizer_update",
        [](const py::array& params, const py::array& grads, int kind, const py::dict& hyper, const py::dict& slots,
           double lr, int64_t t) {
          const int64_t n = params.size();
          float* p = ptr_of<float>(params, "params", -1, true);
          const float* g = ptr_of<float>(grads, "grads", n);
          fd::Optimizer o = optimizer_of(kind, hyper, slots, n);
          py::gil_scoped_release nogil;
          fd::optimizer_update(p, g, n, o, lr, t);
        },
        py::arg("params"), py::arg("grads"), py::arg("kind"), py::arg("hyper"), py::arg("slots"), py::arg("lr"),
        py::arg("t"), "One optimizer step in place on flat float32 vectors (no clipping).");

  m.def("dense_forward",
        [](const py::array& x, const py::array& params, const py::array& dims, const py::array& acts,
           const py::array& w_off, const py::array& b_off, int64_t batch, bool softmax, const py::array& out) {
          fd::Net net = net_of(params, py::none(), dims, acts, w_off, b_off);
          FORGEML_CHECK_ARG(x.ndim() == 2 && x.shape(1) == net.dims[0], "x: expected (n, ", net.dims[0], ")");
          const int64_t n = x.shape(0);
          const float* px = ptr_of<float>(x, "x", -1);
          float* po = ptr_of<float>(out, "out", n * net.dims[net.layers], true);
          py::gil_scoped_release nogil;
          fd::forward(net, px, n, batch, softmax, po);
        },
        py::arg("x"), py::arg("params"), py::arg("dims"), py::arg("acts"), py::arg("w_off"), py::arg("b_off"),
        py::arg("batch"), py::arg("softmax"), py::arg("out"), "Logits or probabilities of a Dense stack.");

  m.def("softmax_rows_backward",
        [](const py::array& y, const py::array& dy, const py::array& dx) {
          FORGEML_CHECK_ARG(y.ndim() == 2 && y.shape(1) >= 1, "y: expected (m, c) with c >= 1");
          const int64_t m = y.shape(0), c = y.shape(1);
          const float* py_ = ptr_of<float>(y, "y", -1);
          const float* pdy = ptr_of<float>(dy, "dy", m * c);
          float* pdx = ptr_of<float>(dx, "dx", m * c, true);
          py::gil_scoped_release nogil;
          fd::softmax_rows_backward(py_, pdy, m, c, pdx);
        },
        py::arg("y"), py::arg("dy"), py::arg("dx"), "dx = y * (dy - rowsum(dy * y)) for softmax rows y.");

  m.def("layer_norm_rows",
        [](const py::array& x, const py::object& gamma, const py::object& beta, double eps, const py::array& y,
           const py::array& xhat, const py::array& inv) {
          FORGEML_CHECK_ARG(x.ndim() == 2 && x.shape(1) >= 1, "x: expected (m, c) with c >= 1");
          const int64_t m = x.shape(0), c = x.shape(1);
          const float* px = ptr_of<float>(x, "x", -1);
          const float* pg = opt_ptr<float>(gamma, "gamma", c);
          const float* pb = opt_ptr<float>(beta, "beta", c);
          float* py_ = ptr_of<float>(y, "y", m * c, true);
          float* ph = ptr_of<float>(xhat, "xhat", m * c, true);
          float* pi = ptr_of<float>(inv, "inv", m, true);
          py::gil_scoped_release nogil;
          fd::layer_norm(px, m, c, pg, pb, static_cast<float>(eps), py_, ph, pi);
        },
        py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"), py::arg("y"), py::arg("xhat"),
        py::arg("inv"), "Layer normalization of each row of x into y, keeping xhat and inv for the backward.");

  m.def("layer_norm_rows_backward",
        [](const py::array& dy, const py::array& xhat, const py::array& inv, const py::object& gamma,
           const py::object& dx, const py::object& dgamma, const py::object& dbeta) {
          FORGEML_CHECK_ARG(dy.ndim() == 2 && dy.shape(1) >= 1, "dy: expected (m, c) with c >= 1");
          const int64_t m = dy.shape(0), c = dy.shape(1);
          const float* pdy = ptr_of<float>(dy, "dy", -1);
          const float* ph = ptr_of<float>(xhat, "xhat", m * c);
          const float* pi = ptr_of<float>(inv, "inv", m);
          const float* pg = opt_ptr<float>(gamma, "gamma", c);
          float* pdx = opt_ptr<float>(dx, "dx", m * c, true);
          float* pdg = opt_ptr<float>(dgamma, "dgamma", c, true);
          float* pdb = opt_ptr<float>(dbeta, "dbeta", c, true);
          py::gil_scoped_release nogil;
          fd::layer_norm_backward(pdy, ph, pi, m, c, pg, pdx, pdg, pdb);
        },
        py::arg("dy"), py::arg("xhat"), py::arg("inv"), py::arg("gamma"), py::arg("dx"), py::arg("dgamma"),
        py::arg("dbeta"), "The layer normalization backward: dx, dgamma and dbeta (each optional) from dy.");

  m.def("scatter_add_rows",
        [](const py::array& target, const py::array& idx, const py::array& values) {
          FORGEML_CHECK_ARG(target.ndim() == 2, "target: expected a 2-D array");
          const int64_t rows = target.shape(0), d = target.shape(1), n = idx.size();
          float* pt = ptr_of<float>(target, "target", -1, true);
          const int64_t* pi = ptr_of<int64_t>(idx, "indices", -1);
          const float* pv = ptr_of<float>(values, "values", n * d);
          py::gil_scoped_release nogil;
          fd::scatter_add_rows(pt, rows, d, pi, n, pv);
        },
        py::arg("target"), py::arg("indices"), py::arg("values"),
        "target[indices[i], :] += values[i, :] in order, in place (an out-of-range index raises first).");
}};
