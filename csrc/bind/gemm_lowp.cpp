// forgeml._cpu bindings for the bf16 and int8 GEMMs (forgeml/gemm_lowp.h). ops/gemm_lowp.py
// validates and converts; these take 2-D arrays with a unit inner stride (leading dimensions
// read from the strides) and re-check what could make a wrong call touch foreign memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bind/int8_layers.h"
#include "bind/registry.h"
#include "forgeml/check.h"
#include "forgeml/gemm_lowp.h"

namespace py = pybind11;
namespace fg = forgeml::gemm;

namespace {

struct View {
  void* p;
  int64_t rows, cols, ld;
};

View view_of(const py::array& x, const char* name, char kind, int itemsize, bool writable = false) {
  FORGEML_CHECK_ARG(x.dtype().kind() == kind && x.itemsize() == itemsize, name, ": expected ",
                    kind == 'f' ? "float32" : "int8", ", got ", std::string(py::str(x.dtype())));
  FORGEML_CHECK_ARG(x.ndim() == 2, name, ": expected a 2-D array, got ", x.ndim(), "-D");
  if (writable) FORGEML_CHECK_ARG(x.writeable(), name, ": array is read-only");
  View v{const_cast<void*>(x.data()), x.shape(0), x.shape(1), std::max<int64_t>(1, x.shape(1))};
  if (x.size() == 0) return v;
  FORGEML_CHECK_ARG(v.cols <= 1 || x.strides(1) == itemsize, name, ": expected a unit inner stride");
  if (v.rows > 1) {
    FORGEML_CHECK_ARG(x.strides(0) % itemsize == 0 && x.strides(0) >= itemsize * v.cols, name,
                      ": unsupported row stride");
    v.ld = x.strides(0) / itemsize;
  }
  return v;
}

const float* vec_of(const py::object& o, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  py::array b = py::reinterpret_borrow<py::array>(o);
  FORGEML_CHECK_ARG(b.dtype().kind() == 'f' && b.itemsize() == 4 && b.ndim() == 1 && b.shape(0) == n &&
                        (n <= 1 || b.strides(0) == 4),
                    name, ": expected a contiguous float32 vector of length ", n);
  return static_cast<const float*>(b.data());
}

fg::Activation act_of(int act) {
  FORGEML_CHECK_ARG(act >= 0 && act <= 4, "activation: expected 0..4, got ", act);
  return static_cast<fg::Activation>(act);
}

}  // namespace

static forgeml::bind::Register reg{[](py::module_& m) {
  m.def("gemm_bf16", [](const py::array& a, const py::array& b, const py::array& out, bool ta, bool tb,
                        const py::object& bias, int activation) {
    View A = view_of(a, "a", 'f', 4), B = view_of(b, "b", 'f', 4), C = view_of(out, "out", 'f', 4, true);
    const int64_t M = ta ? A.cols : A.rows, K = ta ? A.rows : A.cols, N = tb ? B.rows : B.cols;
    FORGEML_CHECK_ARG((tb ? B.cols : B.rows) == K, "b: inner dimension differs from a's ", K);
    FORGEML_CHECK_ARG(C.rows == M && C.cols == N, "out: expected (", M, ", ", N, "), got (", C.rows, ", ", C.cols, ")");
    fg::Epilogue ep{vec_of(bias, N, "bias"), act_of(activation)};
    py::gil_scoped_release nogil;
    fg::gemm_bf16(ta, tb, M, N, K, static_cast<float*>(A.p), A.ld, static_cast<float*>(B.p), B.ld,
                  static_cast<float*>(C.p), C.ld, ep);
  }, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"), py::arg("trans_b"), py::arg("bias"),
     py::arg("activation"), "out = act(bf16(op(a)) @ bf16(op(b)) + bias), float32 accumulation.");

  m.def("gemm_int8", [](const py::array& a, const py::array& a_scale, const py::array& b, const py::array& b_scale,
                        const py::array& out, const py::object& bias, int activation) {
    View A = view_of(a, "a", 'i', 1), B = view_of(b, "b", 'i', 1), C = view_of(out, "out", 'f', 4, true);
    const int64_t M = A.rows, K = A.cols, N = B.cols;
    FORGEML_CHECK_ARG(B.rows == K, "b: expected ", K, " rows (a's columns), got ", B.rows);
    FORGEML_CHECK_ARG(C.rows == M && C.cols == N, "out: expected (", M, ", ", N, "), got (", C.rows, ", ", C.cols, ")");
    const float* as = vec_of(a_scale, M, "a_scale");
    const float* bs = vec_of(b_scale, N, "b_scale");
    fg::Epilogue ep{vec_of(bias, N, "bias"), act_of(activation)};
    py::gil_scoped_release nogil;
    fg::gemm_int8(M, N, K, static_cast<int8_t*>(A.p), A.ld, as, static_cast<int8_t*>(B.p), B.ld, bs,
                  static_cast<float*>(C.p), C.ld, ep);
  }, py::arg("a"), py::arg("a_scale"), py::arg("b"), py::arg("b_scale"), py::arg("out"), py::arg("bias"),
     py::arg("activation"), "out = act(a_scale[:, None] * b_scale * (a @ b) + bias), int32 accumulation.");

  py::class_<fg::PackedInt8>(m, "PackedInt8", "An int8 (K, N) matrix packed once for the int8 GEMM.")
      .def_property_readonly("shape", [](const fg::PackedInt8& p) { return py::make_tuple(p.k(), p.n()); })
      .def_property_readonly("isa", [](const fg::PackedInt8& p) { return std::string(forgeml::isa_name(p.isa())); });

  m.def("pack_int8", [](const py::array& b) {
    View B = view_of(b, "b", 'i', 1);
    py::gil_scoped_release nogil;
    return fg::PackedInt8(B.rows, B.cols, static_cast<int8_t*>(B.p), B.ld);
  }, py::arg("b"), "b (K, N) int8 packed into the int8 GEMM's panels for the active ISA.");

  m.def("gemm_int8_packed", [](const py::array& a, const py::object& a_scale, const fg::PackedInt8& b,
                               const py::array& b_scale, const py::array& out, const py::object& bias, int activation) {
    const bool dyn = a_scale.is_none();
    View A = dyn ? view_of(a, "a", 'f', 4) : view_of(a, "a", 'i', 1), C = view_of(out, "out", 'f', 4, true);
    const int64_t M = A.rows, K = A.cols, N = b.n();
    FORGEML_CHECK_ARG(b.k() == K, "b: expected ", K, " rows (a's columns), got ", b.k());
    FORGEML_CHECK_ARG(C.rows == M && C.cols == N, "out: expected (", M, ", ", N, "), got (", C.rows, ", ", C.cols, ")");
    const float* as = dyn ? nullptr : vec_of(a_scale, M, "a_scale");
    const float* bs = vec_of(b_scale, N, "b_scale");
    fg::Epilogue ep{vec_of(bias, N, "bias"), act_of(activation)};
    py::gil_scoped_release nogil;
    fg::gemm_int8_packed(M, dyn ? nullptr : static_cast<int8_t*>(A.p), dyn ? static_cast<float*>(A.p) : nullptr, A.ld,
                         as, b, bs, static_cast<float*>(C.p), C.ld, ep);
  }, py::arg("a"), py::arg("a_scale"), py::arg("b"), py::arg("b_scale"), py::arg("out"), py::arg("bias"),
     py::arg("activation"),
     "gemm_int8 with a PackedInt8 b; a float32 a with a_scale=None is quantized per row first.");

  m.def("conv2d_int8_packed", [](const py::array& x, const fg::PackedInt8& w, const py::array& w_scale,
                                 const py::array& out, const py::tuple& kernel, const py::tuple& strides,
                                 const py::tuple& dilation, const py::tuple& pad, const py::object& bias,
                                 int activation, const py::object& pool, const py::object& chain) {
    FORGEML_CHECK_ARG(x.dtype().kind() == 'f' && x.itemsize() == 4 && x.ndim() == 4 &&
                          (x.flags() & py::array::c_style),
                      "x: expected a C-contiguous float32 (N, H, W, C) array");
    FORGEML_CHECK_ARG(out.dtype().kind() == 'f' && out.itemsize() == 4 && out.ndim() == 4 &&
                          (out.flags() & py::array::c_style) && out.writeable(),
                      "out: expected a writable C-contiguous float32 (N, OH, OW, filters) array");
    // pool: None, or (conv oh, conv ow, pool kh, kw, sh, sw, pad top, pad left); out is then pooled
    fg::MaxPoolGeometry mp{};
    int64_t oh = out.shape(1), ow = out.shape(2);
    if (!pool.is_none()) {
      const auto t = pool.cast<py::tuple>();
      FORGEML_CHECK_ARG(t.size() == 8, "pool: expected (oh, ow, kh, kw, sh, sw, pad_top, pad_left)");
      oh = t[0].cast<int64_t>(), ow = t[1].cast<int64_t>();
      mp = fg::MaxPoolGeometry{t[2].cast<int64_t>(), t[3].cast<int64_t>(), t[4].cast<int64_t>(), t[5].cast<int64_t>(),
                               t[6].cast<int64_t>(), t[7].cast<int64_t>(), out.shape(1), out.shape(2)};
    }
    fg::ConvGeometry g{x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                       kernel[0].cast<int64_t>(), kernel[1].cast<int64_t>(), strides[0].cast<int64_t>(),
                       strides[1].cast<int64_t>(), dilation[0].cast<int64_t>(), dilation[1].cast<int64_t>(),
                       pad[0].cast<int64_t>(), pad[1].cast<int64_t>(), oh, ow};
    FORGEML_CHECK_ARG(out.shape(0) == g.n && out.shape(3) == w.n(), "out: expected (", g.n, ", oh, ow, ", w.n(),
                      "), got a different shape");
    const float* ws = vec_of(w_scale, w.n(), "w_scale");
    fg::Epilogue ep{vec_of(bias, w.n(), "bias"), act_of(activation)};
    // chain: None, or (int8 Dense layers as int8_dense_chain takes them, softmax, chain_out)
    std::vector<fg::Int8Dense> layers;
    fg::Int8DenseTail tail;
    if (!chain.is_none()) {
      const auto t = chain.cast<py::tuple>();
      FORGEML_CHECK_ARG(t.size() == 3, "chain: expected (layers, softmax, out)");
      layers = forgeml::bind::int8_layers_of(t[0]);
      View Yc = view_of(t[2].cast<py::array>(), "chain out", 'f', 4, true);
      FORGEML_CHECK_ARG(Yc.rows == g.n && Yc.cols == layers.back().w->n(), "chain out: expected (", g.n, ", ",
                        layers.back().w->n(), "), got (", Yc.rows, ", ", Yc.cols, ")");
      tail = fg::Int8DenseTail{layers.data(), static_cast<int>(layers.size()), t[1].cast<bool>(),
                               static_cast<float*>(Yc.p), Yc.ld};
    }
    py::gil_scoped_release nogil;
    fg::conv2d_int8_packed(g, static_cast<const float*>(x.data()), w, ws,
                           static_cast<float*>(const_cast<void*>(out.data())), ep, 0, pool.is_none() ? nullptr : &mp,
                           chain.is_none() ? nullptr : &tail);
  }, py::arg("x"), py::arg("w"), py::arg("w_scale"), py::arg("out"), py::arg("kernel"), py::arg("strides"),
     py::arg("dilation"), py::arg("pad"), py::arg("bias"), py::arg("activation"), py::arg("pool") = py::none(),
     py::arg("chain") = py::none(),
     "int8 NHWC convolution: per-image dynamic int8 quantization + the packed int8 GEMM + epilogue, "
     "optionally followed by a max pooling (pool) so only the pooled output is written, and by int8 "
     "Dense layers (chain) on each flattened image.");

  m.def("quantize_rows_int8", [](const py::array& x) {
    View X = view_of(x, "x", 'f', 4);
    py::array_t<int8_t> q({X.rows, X.cols});
    py::array_t<float> s(X.rows);
    int8_t* qp = q.mutable_data();
    float* sp = s.mutable_data();
    {
      py::gil_scoped_release nogil;
      fg::quantize_rows_int8(X.rows, X.cols, static_cast<float*>(X.p), X.ld, qp, sp);
    }
    return py::make_tuple(q, s);
  }, py::arg("x"), "(q, scale): symmetric per-row int8 quantization, scale = max|row| / 127.");

  m.def("lowp_kernel_name", &fg::lowp_kernel_name, py::arg("int8"));
}};
