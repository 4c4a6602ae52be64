// forgeml._cpu svm_solve: one libsvm-form dual on the SMO core (epsilon-SVR, nu-SVR, nu-SVC,
// one-class), with its linear term, start point and labels given by the caller.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bind/registry.h"
#include "cpu/svm/cache.h"
#include "cpu/svm/kernel.h"
#include "cpu/svm/smo.h"
#include "forgeml/check.h"

namespace py = pybind11;
using namespace forgeml::svm;

namespace {

using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

// X (n, d) float32 (precomputed: the (n, n) Gram matrix). The dual has l = len(y) variables:
// l == n, or l == 2n for the regression forms, whose variable t stands for sample t mod n.
// X dense (n, d) float32, or CSR when csr is (indptr int64, indices int32 sorted per row, data
// float32) (X is then None).
py::tuple solve_py(py::object Xobj, py::object csr, int64_t n, int64_t d, F64 y, F64 p, F64 C, F64 alpha0,
                   const std::string& kernel, double gamma, double coef0, int degree, double tol, bool shrinking,
                   double cache_mb, int64_t max_iter, bool nu) {
  F32 X;
  I64 indptr;
  I32 indices;
  if (csr.is_none()) {
    X = Xobj.cast<F32>();
    FORGEML_CHECK_ARG(X.ndim() == 2 && X.shape(0) == n && X.shape(1) == d, "X: expected shape (", n, ", ", d, ")");
  } else {
    auto t = csr.cast<py::tuple>();
    indptr = t[0].cast<I64>();
    indices = t[1].cast<I32>();
    X = t[2].cast<F32>();
    FORGEML_CHECK_ARG(n >= 1 && indptr.size() == n + 1 && indices.size() == X.size() && indptr.data()[0] == 0 &&
                          indptr.data()[n] == X.size(),
                      "csr: indptr, indices and data do not describe a CSR matrix of ", n, " rows");
    for (int64_t k = 0; k < indices.size(); ++k)
      FORGEML_CHECK_ARG(indices.data()[k] >= 0 && indices.data()[k] < d, "csr: column index out of range");
  }
  const int64_t l = y.size();
  FORGEML_CHECK_ARG(l == n || l == 2 * n, "y: expected ", n, " or ", 2 * n, " entries, got ", l);
  FORGEML_CHECK_ARG(p.size() == l && C.size() == l && alpha0.size() == l, "p, C, alpha0: expected ", l,
                    " entries each");
  KernelParams kp;
  kp.type = kernel_from_name(kernel);
  kp.gamma = gamma;
  kp.coef0 = coef0;
  kp.degree = degree;
  FORGEML_CHECK_ARG(kp.type != KernelType::precomputed || (d == n && csr.is_none()), "X: a precomputed kernel must be square, got (",
                    n, ", ", d, ")");
  const std::vector<double> yv(y.data(), y.data() + l), pv(p.data(), p.data() + l), Cv(C.data(), C.data() + l),
      a0(alpha0.data(), alpha0.data() + l);
  for (int64_t t = 0; t < l; ++t) {
    FORGEML_CHECK_ARG(yv[t] == 1.0 || yv[t] == -1.0, "y: labels must be +1 or -1");
    FORGEML_CHECK_ARG(Cv[t] > 0, "C: every bound must be positive");
    FORGEML_CHECK_ARG(a0[t] >= 0 && a0[t] <= Cv[t], "alpha0: must lie in [0, C]");
  }
  SmoResult r;
  {
    py::gil_scoped_release nogil;
    std::vector<float> Xs;
    std::unique_ptr<KernelRows> rows;
    if (kp.type == KernelType::precomputed) {
      std::vector<int64_t> idx(l);
      for (int64_t t = 0; t < l; ++t) idx[t] = t % n;
      rows = std::make_unique<KernelRows>(X.data(), n, std::move(idx));
    } else if (!csr.is_none()) {  // l == 2n: variable t stands for row t mod n
      std::vector<int64_t> all(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) all[i] = i;
      const CsrView view{indptr.data(), indices.data(), X.data()};
      rows = std::make_unique<KernelRows>(kp, gather_csr(view, d, all.data(), n), l, 0);
      if (l == 2 * n) rows->set_repeated_half(n);
    } else if (l == n) {
      rows = std::make_unique<KernelRows>(kp, X.data(), n, d, 0);
    } else {  // the regression forms: the rows twice (one kernel row serves both variables)
      Xs.resize(size_t(l * d));
      std::copy_n(X.data(), n * d, Xs.data());
      std::copy_n(X.data(), n * d, Xs.data() + n * d);
      rows = std::make_unique<KernelRows>(kp, Xs.data(), l, d, 0);
      rows->set_repeated_half(n);
    }
    RowCache cache(*rows, cache_mb * 1024.0 * 1024.0);
    SmoOptions opt;
    opt.tol = tol;
    opt.shrinking = shrinking;
    opt.max_iter = max_iter;
    opt.interruptible = true;
    opt.nu = nu;
    opt.p = &pv;
    opt.alpha0 = &a0;
    r = smo_solve(cache, *rows, yv, Cv, opt);
  }
  F64 alpha(l);
  std::copy(r.alpha.begin(), r.alpha.end(), alpha.mutable_data());
  return py::make_tuple(alpha, r.rho, r.r, r.obj, r.iterations, r.converged);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("svm_solve", &solve_py, py::arg("X"), py::arg("csr"), py::arg("n"), py::arg("d"), py::arg("y"), py::arg("p"), py::arg("C"), py::arg("alpha0"),
        py::arg("kernel"), py::arg("gamma"), py::arg("coef0"), py::arg("degree"), py::arg("tol"), py::arg("shrinking"),
        py::arg("cache_mb"), py::arg("max_iter"), py::arg("nu"),
        "One libsvm dual by SMO: (alpha, rho, r, objective, iterations, converged).");
}};

}  // namespace
