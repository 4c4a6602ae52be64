// forgeml._cpu bindings for SGEMM. matmul_fast serves ops.matmul's common case (float32 or bf16) in one call;
// sgemm (alpha/beta), PackedB/sgemm_packed and the epilogue test hook take float32 arrays with
// a unit inner stride. Leading dimensions and batch strides are read from the arrays' strides,
// so a transposed or sliced view costs no copy. Shapes are checked in Python; the checks here
// keep a wrong call from touching memory it does not own.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "bind/registry.h"
#include "forgeml/check.h"
#include "forgeml/gemm.h"
#include "forgeml/gemm_lowp.h"

namespace py = pybind11;
namespace fg = forgeml::gemm;

namespace {

// A (batch of) row-major matrix view: element (b, r, c) at p[b * stride + r * ld + c].
struct Mat {
  float* p;
  int64_t batch, rows, cols, ld, stride;
};

// A dtype's byte-order character is '>' on a little-endian machine (or '<' on a big-endian
// one) only when its bytes must be swapped before use; those arrays take the converting path.
constexpr char kForeignOrder = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '>' : '<';

Mat mat_of(const py::array& x, const char* name, bool writable = false) {
  FORGEML_CHECK_ARG(x.dtype().kind() == 'f' && x.itemsize() == 4 && x.dtype().byteorder() != kForeignOrder, name,
                    ": expected native float32, got ", std::string(py::str(x.dtype())));
  const int nd = static_cast<int>(x.ndim());
  FORGEML_CHECK_ARG(nd == 2 || nd == 3, name, ": expected a 2-D or 3-D array, got ", nd, "-D");
  if (writable) FORGEML_CHECK_ARG(x.writeable(), name, ": array is read-only");
  Mat m{static_cast<float*>(const_cast<void*>(x.data())), nd == 3 ? x.shape(0) : 1, x.shape(nd - 2),
        x.shape(nd - 1), 0, 0};
  if (x.size() == 0) {  // empty arrays may have zero strides
    m.ld = std::max<int64_t>(1, m.cols);
    return m;
  }
  const int64_t s_row = x.strides(nd - 2), s_col = x.strides(nd - 1);
  FORGEML_CHECK_ARG(m.cols <= 1 || s_col == 4, name, ": expected a unit inner stride");
  FORGEML_CHECK_ARG(s_row % 4 == 0 && (m.rows <= 1 || s_row >= 4 * m.cols), name, ": unsupported row stride");
  m.ld = m.rows <= 1 || m.cols == 0 ? std::max<int64_t>(1, m.cols) : s_row / 4;
  if (nd == 3) {
    const int64_t s_b = x.strides(0);
    FORGEML_CHECK_ARG(s_b % 4 == 0 && s_b >= 0, name, ": unsupported batch stride");
    m.stride = m.batch <= 1 ? 0 : s_b / 4;
  }
  return m;
}

const float* bias_of(const py::object& bias, int64_t N) {
  if (bias.is_none()) return nullptr;
  py::array b = py::reinterpret_borrow<py::array>(bias);
  FORGEML_CHECK_ARG(b.dtype().kind() == 'f' && b.itemsize() == 4 && b.dtype().byteorder() != kForeignOrder &&
                        b.ndim() == 1 && b.shape(0) == N &&
                        (N <= 1 || b.strides(0) == 4),
                    "bias: expected a contiguous float32 vector of length ", N);
  return static_cast<const float*>(b.data());
}

fg::Activation act_of(int act) {
  FORGEML_CHECK_ARG(act >= 0 && act <= 4, "activation: expected 0..4, got ", act);
  return static_cast<fg::Activation>(act);
}

// op(a) @ op(b) for 2-D or batched 3-D views; a 2-D operand is broadcast over the batch.
void run_sgemm(const py::array& a, const py::array& b, const py::array& c, bool ta, bool tb, float alpha,
               float beta, const fg::Epilogue& ep) {
  Mat A = mat_of(a, "a"), B = mat_of(b, "b"), C = mat_of(c, "out", true);
  const int64_t M = ta ? A.cols : A.rows, K = ta ? A.rows : A.cols;
  const int64_t Kb = tb ? B.cols : B.rows, N = tb ? B.rows : B.cols;
  FORGEML_CHECK_ARG(K == Kb, "b: inner dimensions differ: op(a) is (", M, ", ", K, "), op(b) is (", Kb, ", ", N, ")");
  FORGEML_CHECK_ARG(C.rows == M && C.cols == N, "out: expected (", M, ", ", N, ") matrices, got (", C.rows, ", ",
                    C.cols, ")");
  const bool batched = a.ndim() == 3 || b.ndim() == 3;
  FORGEML_CHECK_ARG(batched == (c.ndim() == 3), "out: expected a ", batched ? 3 : 2, "-D array");
  const int64_t batch = C.batch;
  FORGEML_CHECK_ARG((a.ndim() == 2 || A.batch == batch) && (b.ndim() == 2 || B.batch == batch),
                    "a, b: batch sizes differ from out's ", batch);
  py::gil_scoped_release nogil;
  if (!batched)
    return fg::sgemm(ta, tb, M, N, K, alpha, A.p, A.ld, B.p, B.ld, beta, C.p, C.ld, ep);
  fg::sgemm_batched(ta, tb, batch, M, N, K, alpha, A.p, A.ld, A.stride, B.p, B.ld, B.stride, beta, C.p, C.ld,
                    C.stride, ep);
}

// Test hook for the custom epilogue: out = 2 * out + 0.5 at each element, and counts[i, j]
// records how many times the element was visited (must be exactly once).
struct CountCtx {
  int32_t* counts;
  int64_t ldn;
};
void count_epilogue(void* ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* c, int64_t ldc) {
  auto* cc = static_cast<CountCtx*>(ctx);
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      float& v = c[(i - i0) * ldc + (j - j0)];
      v = 2.f * v + 0.5f;
      cc->counts[i * cc->ldn + j] += 1;
    }
}

// ---------------------------------------------------------------- the per-call fast path
// matmul's common case (float32 NumPy arrays with a unit stride in one dimension, a float32
// bias, a known activation, an out that fits) goes straight from here to the kernel; for any
// other input this returns None and ops/gemm.py takes its general path, which also owns every
// error message.

namespace npy = py::detail;

// A 2-D or 3-D float32 ndarray as a (batch of) row-major matrix, transposed if it is a
// transposed view. False when it is not such an array.
bool fast_mat(PyObject* o, bool& trans, Mat& m, int& nd) {
  auto& api = npy::npy_api::get();
  if (!api.PyArray_Check_(o)) return false;
  auto* a = npy::array_proxy(o);
  nd = a->nd;
  auto* descr = npy::array_descriptor_proxy(a->descr);
  if ((nd != 2 && nd != 3) || descr->type_num != npy::npy_api::NPY_FLOAT_ || descr->byteorder == kForeignOrder)
    return false;
  const Py_intptr_t* sh = a->dimensions;
  const Py_intptr_t* st = a->strides;
  int64_t rows = sh[nd - 2], cols = sh[nd - 1], s_r = st[nd - 2], s_c = st[nd - 1];
  m.p = reinterpret_cast<float*>(a->data);
  m.batch = nd == 3 ? sh[0] : 1;
  m.stride = 0;
  if (nd == 3 && m.batch > 1) {
    if (st[0] < 0 || st[0] % 4) return false;
    m.stride = st[0] / 4;
  }
  if (rows * cols * m.batch == 0) {
    m.rows = rows, m.cols = cols, m.ld = std::max<int64_t>(1, cols);
    return true;
  }
  if ((s_c == 4 || cols == 1) && (rows == 1 || (s_r % 4 == 0 && s_r >= 4 * cols))) {
    m.rows = rows, m.cols = cols, m.ld = rows == 1 ? cols : s_r / 4;
  } else if ((s_r == 4 || rows == 1) && (cols == 1 || (s_c % 4 == 0 && s_c >= 4 * rows))) {
    m.rows = cols, m.cols = rows, m.ld = cols == 1 ? rows : s_c / 4;  // a transposed view
    trans = !trans;
  } else {
    return false;
  }
  return true;
}

int fast_activation(PyObject* o) {
  if (o == Py_None) return 0;
  if (!PyUnicode_Check(o)) return -1;
  static const char* names[] = {"relu", "sigmoid", "tanh", "gelu"};
  for (int i = 0; i < 4; ++i)
    if (PyUnicode_CompareWithASCIIString(o, names[i]) == 0) return i + 1;
  return -1;
}

py::object fast_matmul(py::handle a, py::handle b, py::handle trans_a, py::handle trans_b, py::handle bias,
                       py::handle activation, py::handle out, bool bf16) {
  bool ta = PyObject_IsTrue(trans_a.ptr()) == 1, tb = PyObject_IsTrue(trans_b.ptr()) == 1;
  Mat A, B;
  int nda, ndb;
  if (!fast_mat(a.ptr(), ta, A, nda) || !fast_mat(b.ptr(), tb, B, ndb)) return py::none();
  const int act = fast_activation(activation.ptr());
  if (act < 0) return py::none();
  const int64_t M = ta ? A.cols : A.rows, K = ta ? A.rows : A.cols;
  const int64_t Kb = tb ? B.cols : B.rows, N = tb ? B.rows : B.cols;
  if (K != Kb) return py::none();
  const bool batched = nda == 3 || ndb == 3;
  if (bf16 && batched) return py::none();  // ops/gemm_lowp.py loops over the batch
  const int64_t batch = nda == 3 ? A.batch : B.batch;
  if (nda == 3 && ndb == 3 && A.batch != B.batch) return py::none();
  const float* bias_p = nullptr;
  if (bias.ptr() != Py_None) {
    auto& api = npy::npy_api::get();
    if (!api.PyArray_Check_(bias.ptr())) return py::none();
    auto* bp = npy::array_proxy(bias.ptr());
    if (bp->nd != 1 || bp->dimensions[0] != N || (N > 1 && bp->strides[0] != 4) ||
        npy::array_descriptor_proxy(bp->descr)->type_num != npy::npy_api::NPY_FLOAT_ ||
        npy::array_descriptor_proxy(bp->descr)->byteorder == kForeignOrder)
      return py::none();
    bias_p = reinterpret_cast<const float*>(bp->data);
  }
  py::object result;
  Mat C;
  if (out.ptr() == Py_None) {
    py::array_t<float> c = batched ? py::array_t<float>({batch, M, N}) : py::array_t<float>({M, N});
    C = Mat{c.mutable_data(), batch, M, N, std::max<int64_t>(1, N), M * N};
    result = std::move(c);
  } else {
    bool tc = false;
    int ndc;
    if (!fast_mat(out.ptr(), tc, C, ndc) || tc || ndc != (batched ? 3 : 2) || C.rows != M || C.cols != N ||
        (batched && C.batch != batch) || !(npy::array_proxy(out.ptr())->flags & npy::npy_api::NPY_ARRAY_WRITEABLE_))
      return py::none();
    result = py::reinterpret_borrow<py::object>(out);
  }
  fg::Epilogue ep{bias_p, static_cast<fg::Activation>(act)};
  {
    py::gil_scoped_release nogil;
    if (bf16)
      fg::gemm_bf16(ta, tb, M, N, K, A.p, A.ld, B.p, B.ld, C.p, C.ld, ep);
    else if (!batched)
      fg::sgemm(ta, tb, M, N, K, 1.f, A.p, A.ld, B.p, B.ld, 0.f, C.p, C.ld, ep);
    else
      fg::sgemm_batched(ta, tb, batch, M, N, K, 1.f, A.p, A.ld, nda == 3 ? A.stride : 0, B.p, B.ld,
                        ndb == 3 ? B.stride : 0, 0.f, C.p, C.ld, C.stride, ep);
  }
  return result;
}

}  // namespace

static forgeml::bind::Register reg{[](py::module_& m) {
  m.def("matmul_fast", &fast_matmul, py::arg("a"), py::arg("b"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("bias"), py::arg("activation"), py::arg("out"), py::arg("bf16") = false,
        "matmul's common case (bf16: precision='bf16' on 2-D operands), or None when ops/gemm.py must handle "
        "the input.");
  m.def("sgemm", [](const py::array& a, const py::array& b, const py::array& out, bool trans_a, bool trans_b,
                    float alpha, float beta, const py::object& bias, int activation) {
    const int64_t N = trans_b ? b.shape(b.ndim() - 2) : b.shape(b.ndim() - 1);
    fg::Epilogue ep{bias_of(bias, N), act_of(activation)};
    run_sgemm(a, b, out, trans_a, trans_b, alpha, beta, ep);
  }, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"),
     py::arg("beta"), py::arg("bias"), py::arg("activation"),
     "out = act(alpha * op(a) @ op(b) + beta * out + bias) on float32 views (2-D, or 3-D batched).");

  m.def("_sgemm_count_epilogue", [](const py::array& a, const py::array& b, const py::array& out, bool trans_a,
                                    bool trans_b, py::array_t<int32_t, py::array::c_style> counts) {
    FORGEML_CHECK_ARG(counts.ndim() == 2 && counts.shape(0) == out.shape(0) && counts.shape(1) == out.shape(1),
                      "counts: expected out's shape");
    CountCtx ctx{counts.mutable_data(), counts.shape(1)};
    fg::Epilogue ep{nullptr, fg::Activation::none, count_epilogue, &ctx};
    run_sgemm(a, b, out, trans_a, trans_b, 1.f, 0.f, ep);
  }, "Test hook: a custom epilogue (out = 2 * out + 0.5) that counts visits per element.");


  py::class_<fg::PackedB>(m, "PackedB", "op(b) packed once for repeated sgemm_packed calls.")
      .def(py::init([](const py::array& b, bool trans_b) {
             Mat B = mat_of(b, "b");
             FORGEML_CHECK_ARG(b.ndim() == 2, "b: expected a 2-D array");
             py::gil_scoped_release nogil;
             return new fg::PackedB(trans_b, trans_b ? B.cols : B.rows, trans_b ? B.rows : B.cols, B.p, B.ld);
           }), py::arg("b"), py::arg("trans_b") = false)
      .def_property_readonly("K", &fg::PackedB::K)
      .def_property_readonly("N", &fg::PackedB::N);

  m.def("sgemm_packed", [](const py::array& a, const fg::PackedB& pb, const py::array& out, bool trans_a,
                           float alpha, float beta, const py::object& bias, int activation) {
    Mat A = mat_of(a, "a"), C = mat_of(out, "out", true);
    FORGEML_CHECK_ARG(a.ndim() == 2 && out.ndim() == 2, "a, out: expected 2-D arrays");
    const int64_t M = trans_a ? A.cols : A.rows, K = trans_a ? A.rows : A.cols;
    FORGEML_CHECK_ARG(K == pb.K(), "a: inner dimension ", K, " differs from the packed b's ", pb.K());
    FORGEML_CHECK_ARG(C.rows == M && C.cols == pb.N(), "out: expected (", M, ", ", pb.N(), "), got (", C.rows,
                      ", ", C.cols, ")");
    fg::Epilogue ep{bias_of(bias, pb.N()), act_of(activation)};
    py::gil_scoped_release nogil;
    fg::sgemm_packed(trans_a, M, alpha, A.p, A.ld, pb, beta, C.p, C.ld, ep);
  }, py::arg("a"), py::arg("packed"), py::arg("out"), py::arg("trans_a"), py::arg("alpha"), py::arg("beta"),
     py::arg("bias"), py::arg("activation"));

  m.def("apply_activation", [](py::array_t<float, py::array::c_style> x, int activation) {
    auto act = act_of(activation);
    float* p = x.mutable_data();
    const int64_t n = x.size();
    py::gil_scoped_release nogil;
    fg::apply_activation(act, p, n);
  }, py::arg("x"), py::arg("activation"), "In place on a C-contiguous float32 array.");
}};
