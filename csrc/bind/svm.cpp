// forgeml._cpu SVM entry points: one-vs-one kernel SVC training, kernel blocks, linear solvers.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bind/registry.h"
#include "cpu/svm/kernel.h"
#include "cpu/svm/linear/linear.h"
#include "cpu/svm/ovo.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"

namespace py = pybind11;
using namespace forgeml::svm;

namespace {

using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

KernelParams params(const std::string& kernel, double gamma, double coef0, int degree) {
  KernelParams p;
  p.type = kernel_from_name(kernel);
  p.gamma = gamma;
  p.coef0 = coef0;
  p.degree = degree;
  return p;
}

F32 kernel_py(F32 X1, F32 X2, const std::string& kernel, double gamma, double coef0, int degree) {
  FORGEML_CHECK_ARG(X1.ndim() == 2 && X2.ndim() == 2 && X1.shape(1) == X2.shape(1),
                    "X1, X2: expected 2-D arrays with the same number of columns");
  const int64_t m = X1.shape(0), n = X2.shape(0), d = X1.shape(1);
  KernelParams p = params(kernel, gamma, coef0, degree);
  F32 K({m, n});
  {
    py::gil_scoped_release nogil;
    std::vector<float> n1, n2;
    if (p.type == KernelType::rbf) {
      n1 = row_norms(X1.data(), m, d);
      n2 = row_norms(X2.data(), n, d);
    }
    kernel_block(p, X1.data(), n1.data(), m, X2.data(), n2.data(), n, d, K.mutable_data(), n);
  }
  return K;
}

// X as the linear solvers see it: dense (n, d) float32, or CSR when csr is (indptr, indices, data).
struct LinearInput {
  F32 dense, values;
  I64 indptr;
  I32 indices;
  LinearData data;
};

LinearInput linear_input(py::object X, py::object csr, int64_t n, int64_t d, double bias) {
  LinearInput in;
  LinearData& data = in.data;
  data.n = n;
  data.d = d;
  data.bias = bias;
  if (!csr.is_none()) {
    auto t = csr.cast<py::tuple>();
    in.indptr = t[0].cast<I64>();
    in.indices = t[1].cast<I32>();
    in.values = t[2].cast<F32>();
    FORGEML_CHECK_ARG(in.indptr.size() == n + 1, "indptr: expected length ", n + 1);
    FORGEML_CHECK_ARG(in.indices.size() == in.values.size(), "indices/data: lengths differ");
    for (int64_t i = 0; i < in.indices.size(); ++i)
      FORGEML_CHECK_ARG(in.indices.data()[i] >= 0 && in.indices.data()[i] < d, "indices: column out of range");
    data.indptr = in.indptr.data();
    data.indices = in.indices.data();
    data.data = in.values.data();
  } else {
    in.dense = X.cast<F32>();
    FORGEML_CHECK_ARG(in.dense.ndim() == 2 && in.dense.shape(0) == n && in.dense.shape(1) == d, "X: expected shape (",
                      n, ", ", d, ")");
    data.dense = in.dense.data();
  }
  return in;
}

// X dense (n, d) float32, or CSR when csr is (indptr, indices, data) (X is then None).
py::list fit_ovo_py(py::object X, py::object csr, int64_t n, int64_t d, const std::vector<I64>& members, F64 C,
                    const std::string& kernel, double gamma, double coef0, int degree, double tol, bool shrinking,
                    double cache_mb, int64_t max_iter) {
  LinearInput in = linear_input(X, csr, n, d, 0.0);
  FORGEML_CHECK_ARG(C.ndim() == 1 && C.shape(0) == n, "C: expected shape (", n, ",)");
  KernelParams p = params(kernel, gamma, coef0, degree);
  FORGEML_CHECK_ARG(p.type != KernelType::precomputed || (d == n && csr.is_none()), "X: a precomputed kernel must be square, got (",
                    n, ", ", d, ")");
  FORGEML_CHECK_ARG(members.size() >= 2, "members: need at least two classes");
  std::vector<std::vector<int64_t>> mem;
  for (const auto& m : members) {
    std::vector<int64_t> v(m.data(), m.data() + m.size());
    for (int64_t i : v) FORGEML_CHECK_ARG(i >= 0 && i < n, "members: index ", i, " out of range [0, ", n, ")");
    mem.push_back(std::move(v));
  }
  SmoOptions opt;
  opt.tol = tol;
  opt.shrinking = shrinking;
  opt.max_iter = max_iter;
  std::vector<PairResult> res;
  {
    py::gil_scoped_release nogil;
    const CsrView view{in.data.indptr, in.data.indices, in.data.data};
    res = fit_ovo(p, in.data.dense, n, d, mem, C.data(), opt, cache_mb * 1024.0 * 1024.0,
                  csr.is_none() ? nullptr : &view);
  }
  py::list out;
  for (auto& r : res) {
    F64 coef(int64_t(r.coef.size()));
    std::copy(r.coef.begin(), r.coef.end(), coef.mutable_data());
    out.append(py::make_tuple(coef, r.rho, r.iterations, r.converged));
  }
  return out;
}

// Y and C are (P, n): P binary problems on the same rows, solved in parallel when P > 1.
py::tuple linear_fit_py(py::object X, py::object csr, int64_t n, int64_t d, F64 Y, F64 C, int solver,
                        double tol, int64_t max_iter, double bias, uint64_t seed) {
  LinearInput in = linear_input(X, csr, n, d, bias);
  const LinearData& data = in.data;
  FORGEML_CHECK_ARG(Y.ndim() == 2 && Y.shape(1) == n && C.ndim() == 2 && C.shape(0) == Y.shape(0) &&
                    C.shape(1) == n, "Y, C: expected shape (P, ", n, ")");
  FORGEML_CHECK_ARG(solver >= 0 && solver <= 3, "solver: expected 0, 1, 2 or 3");
  const int64_t P = Y.shape(0), dim = d + (bias > 0 ? 1 : 0);
  F64 W({P, dim});
  I64 iters(P);
  py::array_t<bool> conv(P);
  {
    py::gil_scoped_release nogil;
    std::vector<LinearResult> res(P);
    const bool l1 = LinearSolver(solver) == LinearSolver::l1_primal_squared_hinge;
    LinearColumns cols;
    if (l1) cols = linear_columns(data);  // one column copy shared by the P problems
    auto one = [&](int64_t q, int threads) {
      std::vector<double> y(Y.data() + q * n, Y.data() + (q + 1) * n), c(C.data() + q * n, C.data() + (q + 1) * n);
      res[q] = l1 ? linear_l1_fit(cols, y, c, tol, max_iter, seed + uint64_t(q))
                  : linear_fit(data, y, c, LinearSolver(solver), tol, max_iter, seed + uint64_t(q), threads);
    };
    if (P == 1 || forgeml::num_threads() == 1) {
      for (int64_t q = 0; q < P; ++q) one(q, 0);
    } else {
      std::atomic<int64_t> next{0};  // one problem at a time to whichever thread is free
      forgeml::parallel_run(int(std::min<int64_t>(P, forgeml::num_threads())), [&](int, int) {
        for (int64_t q; (q = next.fetch_add(1)) < P;) one(q, 1);
      });
    }
    for (int64_t q = 0; q < P; ++q) {
      std::copy(res[q].w.begin(), res[q].w.end(), W.mutable_data() + q * dim);
      iters.mutable_data()[q] = res[q].iterations;
      conv.mutable_data()[q] = res[q].converged;
    }
  }
  return py::make_tuple(W, iters, conv);
}

// Crammer-Singer: one joint problem over k classes; y (n,) in [0, k), C (n,).
py::tuple linear_cs_fit_py(py::object X, py::object csr, int64_t n, int64_t d, I32 y, F64 C, int k, double tol,
                           int64_t max_iter, double bias, uint64_t seed) {
  LinearInput in = linear_input(X, csr, n, d, bias);
  FORGEML_CHECK_ARG(y.ndim() == 1 && y.shape(0) == n && C.ndim() == 1 && C.shape(0) == n, "y, C: expected shape (",
                    n, ",)");
  FORGEML_CHECK_ARG(k >= 2, "k: expected at least 2 classes, got ", k);
  for (int64_t i = 0; i < n; ++i)
    FORGEML_CHECK_ARG(y.data()[i] >= 0 && y.data()[i] < k, "y: label ", y.data()[i], " out of range [0, ", k, ")");
  const int64_t dim = d + (bias > 0 ? 1 : 0);
  F64 W({int64_t(k), dim});
  LinearResult res;
  {
    py::gil_scoped_release nogil;
    const std::vector<int32_t> labels(y.data(), y.data() + n);
    const std::vector<double> cost(C.data(), C.data() + n);
    res = linear_cs_fit(in.data, labels, cost, k, tol, max_iter, seed);
    std::copy(res.w.begin(), res.w.end(), W.mutable_data());
  }
  return py::make_tuple(W, res.iterations, res.converged);
}

// Linear SVR: y (n,) real targets, C (n,) costs.
py::tuple linear_svr_fit_py(py::object X, py::object csr, int64_t n, int64_t d, F64 y, F64 C, double epsilon,
                            bool squared, double tol, int64_t max_iter, double bias, uint64_t seed) {
  LinearInput in = linear_input(X, csr, n, d, bias);
  FORGEML_CHECK_ARG(y.ndim() == 1 && y.shape(0) == n && C.ndim() == 1 && C.shape(0) == n, "y, C: expected shape (",
                    n, ",)");
  const int64_t dim = d + (bias > 0 ? 1 : 0);
  F64 W(dim);
  LinearResult res;
  {
    py::gil_scoped_release nogil;
    const std::vector<double> target(y.data(), y.data() + n), cost(C.data(), C.data() + n);
    res = linear_svr_fit(in.data, target, cost, epsilon, squared, tol, max_iter, seed);
    std::copy(res.w.begin(), res.w.end(), W.mutable_data());
  }
  return py::make_tuple(W, res.iterations, res.converged);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("svm_linear_svr_fit", &linear_svr_fit_py, py::arg("X"), py::arg("csr"), py::arg("n"), py::arg("d"),
        py::arg("y"), py::arg("C"), py::arg("epsilon"), py::arg("squared"), py::arg("tol"), py::arg("max_iter"),
        py::arg("bias"), py::arg("seed"), "Linear SVR by dual coordinate descent: (w (d[+1]), iterations, converged).");
  m.def("svm_fit_ovo", &fit_ovo_py, py::arg("X"), py::arg("csr"), py::arg("n"), py::arg("d"), py::arg("members"), py::arg("C"), py::arg("kernel"),
        py::arg("gamma"), py::arg("coef0"), py::arg("degree"), py::arg("tol"), py::arg("shrinking"),
        py::arg("cache_mb"), py::arg("max_iter"),
        "One-vs-one SMO: a list of (signed dual coef, rho, iterations, converged) per class pair.");
  m.def("svm_kernel", &kernel_py, py::arg("X1"), py::arg("X2"), py::arg("kernel"), py::arg("gamma"),
        py::arg("coef0"), py::arg("degree"), "Kernel matrix K(X1, X2), float32 (m, n).");
  m.def("svm_linear_fit", &linear_fit_py, py::arg("X"), py::arg("csr"), py::arg("n"), py::arg("d"), py::arg("Y"),
        py::arg("C"), py::arg("solver"), py::arg("tol"), py::arg("max_iter"), py::arg("bias"), py::arg("seed"),
        "Linear SVM on P binary problems: (W (P, d[+1]), iterations (P,), converged (P,)).");
  m.def("svm_linear_cs_fit", &linear_cs_fit_py, py::arg("X"), py::arg("csr"), py::arg("n"), py::arg("d"),
        py::arg("y"), py::arg("C"), py::arg("k"), py::arg("tol"), py::arg("max_iter"), py::arg("bias"),
        py::arg("seed"), "Crammer-Singer linear SVM: (W (k, d[+1]), iterations, converged).");
}};

}  // namespace
