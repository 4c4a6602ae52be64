// forgeml._emu svm_*: the CUDA kernel-SVC kernels and driver (csrc/cuda/svm.cu) under the
// emulator, NumPy in and out (emulated device memory is host memory; tests only).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>

#include "bind/registry.h"
#include "cuda/svm.cuh"
#include "forgeml/check.h"

namespace py = pybind11;
namespace cs = forgeml::cuda::svm;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

cs::Kernel kernel(int type, double gamma, double coef0, int degree) {
  return cs::Kernel{type, float(gamma), float(coef0), degree};
}

template <class T>
Arr<T> filled(std::vector<py::ssize_t> shape, T v) {
  Arr<T> a(shape);
  std::fill_n(a.mutable_data(), a.size(), v);
  return a;
}

Arr<float> kernel_block(Arr<float> A, Arr<float> B, int type, double gamma, double coef0, int degree) {
  FORGEML_CHECK_ARG(A.ndim() == 2 && B.ndim() == 2 && A.shape(1) == B.shape(1), "A, B: expected (m, d) and (n, d)");
  const int64_t m = A.shape(0), n = B.shape(0), d = A.shape(1);
  Arr<float> out = filled<float>({m, n}, NAN), na = filled<float>({m}, NAN), nb = filled<float>({n}, NAN);
  {
    py::gil_scoped_release nogil;
    cs::kernel_block(kernel(type, gamma, coef0, degree), A.data(), m, B.data(), n, d, na.mutable_data(),
                     nb.mutable_data(), out.mutable_data(), nullptr);
  }
  return out;
}

// Rows K[rows, :] of the kernel matrix of X (for type 4, X is the Gram matrix): what one outer
// step of the solver computes. norms: X's squared row norms (rbf), computed here by the host.
Arr<float> kernel_rows(Arr<float> X, Arr<int32_t> rows, int type, double gamma, double coef0, int degree) {
  FORGEML_CHECK_ARG(X.ndim() == 2, "X: expected a 2-D array");
  const int64_t n = X.shape(0), d = X.shape(1), m = rows.size();
  for (int64_t r = 0; r < m; ++r) FORGEML_CHECK_ARG(rows.data()[r] >= 0 && rows.data()[r] < n, "rows: out of range");
  Arr<float> norms(n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += double(X.data()[i * d + k]) * X.data()[i * d + k];
    norms.mutable_data()[i] = float(s);
  }
  Arr<float> out = filled<float>({m, n}, NAN), xrows = filled<float>({m, std::max<int64_t>(d, 1)}, NAN);
  {
    py::gil_scoped_release nogil;
    cs::kernel_rows(kernel(type, gamma, coef0, degree), X.data(), n, d, norms.data(), rows.data(), m,
                    xrows.mutable_data(), out.mutable_data(), nullptr);
  }
  return out;
}

py::tuple local_solve(Arr<int32_t> ws, Arr<float> kww, Arr<float> y, Arr<double> C, Arr<double> alpha, Arr<double> G,
                      double tol, int64_t max_iter, int threads) {
  const int q = int(ws.size());
  const int64_t n = y.size();
  FORGEML_CHECK_ARG(kww.ndim() == 2 && kww.shape(0) == q && kww.shape(1) == q, "kww: expected (q, q)");
  FORGEML_CHECK_ARG(C.size() == n && alpha.size() == n && G.size() == n, "C, alpha, G: expected (n,)");
  for (int t = 0; t < q; ++t) FORGEML_CHECK_ARG(ws.data()[t] >= 0 && ws.data()[t] < n, "ws: out of range");
  Arr<double> a(n);
  std::copy_n(alpha.data(), n, a.mutable_data());
  Arr<double> delta = filled<double>({q}, NAN), out = filled<double>({q + 2}, NAN);
  {
    py::gil_scoped_release nogil;
    cs::local_solve(q, ws.data(), kww.data(), y.data(), C.data(), a.mutable_data(), G.data(), tol, max_iter,
                    delta.mutable_data(), out.mutable_data(), threads, nullptr);
  }
  return py::make_tuple(a, delta, out);
}

Arr<double> gradient_update(Arr<float> krows, Arr<double> delta, Arr<float> y, Arr<double> G) {
  FORGEML_CHECK_ARG(krows.ndim() == 2 && krows.shape(0) == delta.size() && krows.shape(1) == y.size() &&
                        G.size() == y.size(), "krows, delta, y, G: expected (q, n), (q,), (n,), (n,)");
  Arr<double> g(G.size());
  std::copy_n(G.data(), G.size(), g.mutable_data());
  {
    py::gil_scoped_release nogil;
    cs::gradient_update(int(delta.size()), y.size(), krows.data(), delta.data(), y.data(), g.mutable_data(), nullptr);
  }
  return g;
}

py::tuple solve(Arr<float> X, Arr<double> y, Arr<double> C, int type, double gamma, double coef0, int degree,
                double tol, int64_t max_iter, int ws_size, int local_threads, int64_t local_iter,
                std::optional<Arr<double>> p, std::optional<Arr<double>> alpha0, bool nu) {
  FORGEML_CHECK_ARG(X.ndim() == 2, "X: expected a 2-D array");
  const int64_t n = X.shape(0), d = X.shape(1);
  FORGEML_CHECK_ARG(y.size() == n && C.size() == n, "y, C: expected (", n, ",)");
  FORGEML_CHECK_ARG((!p || p->size() == n) && (!alpha0 || alpha0->size() == n), "p, alpha0: expected (", n, ",)");
  const cs::Kernel k = kernel(type, gamma, coef0, degree);
  cs::Options o;
  o.tol = tol, o.max_iter = max_iter, o.ws_size = ws_size, o.local_threads = local_threads, o.local_iter = local_iter;
  o.p = p ? p->data() : nullptr;
  o.alpha0 = alpha0 ? alpha0->data() : nullptr;
  o.nu = nu;
  FORGEML_CHECK_ARG(ws_size >= 2, "ws_size: expected >= 2, got ", ws_size);
  const int64_t bytes = cs::workspace_bytes(k, n, d, int(std::min<int64_t>(ws_size, n)));
  std::unique_ptr<void, decltype(&std::free)> work(std::aligned_alloc(256, size_t(bytes + 255) / 256 * 256 + 256),
                                                    &std::free);
  std::memset(work.get(), 0xFF, size_t(bytes));  // NaN everywhere: a read before a write shows up
  cs::Result r;
  {
    py::gil_scoped_release nogil;
    r = cs::solve(k, X.data(), n, d, y.data(), C.data(), o, work.get(), nullptr);
  }
  Arr<double> alpha(n);
  std::copy_n(r.alpha.data(), n, alpha.mutable_data());
  return py::make_tuple(alpha, r.rho, r.obj, r.iterations, r.outer, r.converged, r.r);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("svm_kernel_block", &kernel_block, py::arg("A"), py::arg("B"), py::arg("type"), py::arg("gamma"),
        py::arg("coef0"), py::arg("degree"), "K(A, B) with the CUDA kernel-block SGEMM under the emulator.");
  m.def("svm_kernel_rows", &kernel_rows, py::arg("X"), py::arg("rows"), py::arg("type"), py::arg("gamma"),
        py::arg("coef0"), py::arg("degree"), "Kernel rows K[rows, :] as the CUDA solver computes them.");
  m.def("svm_local_solve", &local_solve, py::arg("ws"), py::arg("kww"), py::arg("y"), py::arg("C"), py::arg("alpha"),
        py::arg("G"), py::arg("tol"), py::arg("max_iter"), py::arg("threads"),
        "The one-block local SMO solver: (alpha (n), delta (q), out (q + 2)).");
  m.def("svm_gradient_update", &gradient_update, py::arg("krows"), py::arg("delta"), py::arg("y"), py::arg("G"),
        "G + y * (krows^T delta) with the CUDA gradient-update kernel.");
  m.def("svm_solve", &solve, py::arg("X"), py::arg("y"), py::arg("C"), py::arg("type"), py::arg("gamma"),
        py::arg("coef0"), py::arg("degree"), py::arg("tol"), py::arg("max_iter"), py::arg("ws_size"),
        py::arg("local_threads"), py::arg("local_iter"), py::arg("p") = py::none(), py::arg("alpha0") = py::none(), py::arg("nu") = false,
        "The whole CUDA SVM dual solve: (alpha, rho, obj, iterations, outer, converged).");
}};

}  // namespace
