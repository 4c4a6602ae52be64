// CUDA kernel SVC: the libsvm dual of csrc/cpu/svm/smo.h solved on device memory,
//   min_a 0.5 a^T Q a + p^T a   s.t.  0 <= a_i <= C_i,  y^T a = y^T a0,   Q_ij = y_i y_j K_ij,
// with p = -e and a0 = 0 for the binary C-SVC, other p and start points a0 for epsilon-SVR
// (2n variables over the rows twice) and the one-class SVM,
// by working-set decomposition (ThunderSVM's scheme, Wen et al. 2018): every outer step takes q
// violating samples, computes their kernel rows K[ws, :] with one SGEMM (the kernel function in
// its epilogue), solves the q-variable sub-problem in one thread block (libsvm's second-order
// SMO), and updates the gradient of all n samples with the changed alphas. The stopping rule and
// rho are the CPU solver's, so the answers agree within tol.
// Plain C++ (the binding files include only this).
#pragma once
#include <cstdint>
#include <vector>

struct CUstream_st;

namespace forgeml::cuda::svm {

// type: 0 linear x.y, 1 poly (gamma x.y + coef0)^degree, 2 rbf exp(-gamma |x - y|^2),
// 3 sigmoid tanh(gamma x.y + coef0), 4 precomputed (X is the (n, n) Gram matrix).
struct Kernel {
  int type = 2;
  float gamma = 1.0f, coef0 = 0.0f;
  int degree = 3;
};

// K(A, B) (m, nb) row-major for A (m, d), B (nb, d) on the device (types 0..3). norms_a (m) and
// norms_b (nb) are scratch the rbf kernel fills with squared row norms (null for other types).
void kernel_block(const Kernel& k, const float* A, int64_t m, const float* B, int64_t nb, int64_t d, float* norms_a,
                  float* norms_b, float* out, CUstream_st* stream);

struct Options {
  double tol = 1e-3;       // stop when max violation m(a) - M(a) < tol (as the CPU solver)
  int64_t max_iter = -1;   // SMO steps over all local solves; -1: libsvm's max(1e7, 100 n)
  int ws_size = 512;       // q, the working set (even, 2..1024; capped by n)
  int local_threads = 0;   // threads of the local solver's block; 0: q rounded up to a warp
  int64_t local_iter = 0;  // SMO steps per local solve; 0: max(1000, 10 q)
  const double* p = nullptr;       // host (n): the linear term; null: -1 everywhere (C-SVC)
  const double* alpha0 = nullptr;  // host (n): a feasible start in [0, C]; null: 0
  bool nu = false;  // libsvm's nu solver: pairs within one label, rho and r from each label's gradients
};

struct Result {
  std::vector<double> alpha;  // a_i (unsigned), host
  double rho = 0, obj = 0;
  double r = 0;               // nu mode's scale (0 otherwise), as the CPU solver's
  int64_t iterations = 0;     // SMO steps (sum over the local solves)
  int64_t outer = 0;          // working sets solved
  bool converged = true;
};

// Device bytes solve() needs as its workspace for n samples of d features and working set q.
int64_t workspace_bytes(const Kernel& k, int64_t n, int64_t d, int q);

// X (n, d) row-major float32 on the device; y (+1/-1) and C (per-sample bound) on the host;
// workspace: workspace_bytes(k, n, d, min(ws_size, n)) device bytes, 256-byte aligned.
Result solve(const Kernel& k, const float* X, int64_t n, int64_t d, const double* y, const double* C,
             const Options& opt, void* workspace, CUstream_st* stream);

// The kernels solve() launches, one by one (tests drive them through the emulator).
// Kernel rows K[rows[r], :] for r < m into out (m, n): gathers the rows, then one SGEMM with the
// kernel epilogue. norms (n): squared row norms of X (rbf). xrows: (m, d) scratch.
void kernel_rows(const Kernel& k, const float* X, int64_t n, int64_t d, const float* norms, const int32_t* rows,
                 int64_t m, float* xrows, float* out, CUstream_st* stream);
// The q-variable sub-problem on ws (q distinct sample indices) with kww = K[ws, ws] (q, q); y
// (n, float +1/-1), C (n), alpha (n, updated at ws), G (n, read). delta (q) gets y_r * (new -
// old alpha) per ws slot; out (q + 2): the new alphas, then the SMO steps taken and the first
// violation m(a) - M(a) of the sub-problem. Stops at violation < max(tol, 0.1 * first) or after
// max_iter steps. threads: block size (a multiple of 32, <= 1024). nu: pairs within one label.
void local_solve(int q, const int32_t* ws, const float* kww, const float* y, const double* C, double* alpha,
                 const double* G, double tol, int64_t max_iter, double* delta, double* out, int threads,
                 CUstream_st* stream, bool nu = false);
// G[t] += y[t] * sum_r krows[r, t] * delta[r] for t < n, krows (q, n), float64 accumulation.
void gradient_update(int q, int64_t n, const float* krows, const double* delta, const float* y, double* G,
                     CUstream_st* stream);

}  // namespace forgeml::cuda::svm
