// The libsvm SMO solver, on compacted active sets.
//
// Layout: the solver works on "positions" 0..m, a sorted subset of the samples (all of them at
// first) that the kernel rows in the cache are laid out on too, so every pass is contiguous:
// Fp (the signed gradient y G), flags (I_up / I_low bits, 0 once shrunk) and QDp per position.
// Shrinking clears a position's flags (its gradient keeps being updated, so it stays exact);
// once the unshrunk positions are clearly fewer than m, the set is compacted to them and the
// dropped samples keep the gradient they had then. Growing back recomputes only what changed
// since: sum_k y_k (a_k - a_k(then)) K_tk over the few alphas that moved, by blocks of GEMM.
#include "cpu/svm/smo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cpu/svm/kernels.h"
#include "forgeml/parallel.h"
#include "forgeml/smo_step.h"

namespace forgeml::svm {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class Smo {
 public:
  Smo(RowCache& cache, KernelRows& rows, const std::vector<double>& y, const std::vector<double>& C,
      const SmoOptions& opt)
      : cache_(cache), rows_(rows), y_(y), C_(C), opt_(opt), l_(int64_t(y.size())),
        k_(active_kernels()) {
    if (opt_.nu) opt_.shrinking = false;
    alpha_.assign(l_, 0.0);
    F_.resize(l_);
    QD_.resize(l_);
    for (int64_t t = 0; t < l_; ++t)  // F = y G, G = p + Q a (= -e at a = 0 for C-SVC)
      F_[t] = y_[t] * (opt_.p ? (*opt_.p)[t] : -1.0), QD_[t] = rows.diag(t);
    use_all();
    if (opt_.alpha0) {
      alpha_ = *opt_.alpha0;
      for (int64_t k = 0; k < l_; ++k) {  // F_t += y_t Q_tk a_k = K_tk y_k a_k
        if (alpha_[k] == 0) continue;
        const float* Kk = cache_.get(k);
        const double w = y_[k] * alpha_[k];
        for (int64_t t = 0; t < l_; ++t) F_[t] += w * double(Kk[t]);
      }
      use_all();
    }
  }

  SmoResult run() {
    SmoResult res;
    const int64_t max_iter = opt_.max_iter > 0 ? opt_.max_iter : std::max<int64_t>(10000000, 100 * l_);
    int64_t counter = std::min<int64_t>(l_, 1000) + 1, iter = 0;
    if (opt_.nu) return run_nu(max_iter);
    PickI pi = pick_i();
    while (iter < max_iter) {
      if (--counter == 0) {
        counter = std::min<int64_t>(l_, 1000);
        if (opt_.shrinking) {
          shrink();
          pi = pick_i();
        }
        if (opt_.interruptible) check_interrupt();
      }
      PickJ pj = pick_j(pi);
      if (pi.gmax + pj.gmax2 < opt_.tol || pj.j < 0) {
        grow_active();  // check optimality on the whole set
        pi = pick_i();
        pj = pick_j(pi);
        if (pi.gmax + pj.gmax2 < opt_.tol || pj.j < 0) break;
        counter = 1;  // shrink at the next iteration
      }
      ++iter;
      active_acc_ += m_;
      pi = update(pi.i, pj.j);
    }
    if (iter >= max_iter) res.converged = false;
    grow_active();
#ifdef FORGEML_PROFILE
    // In a FORGEML_PROFILE build, FORGEML_SVM_DEBUG=1 prints where a solve spent its time
    // (cache, active set, kernel rows).
    if (std::getenv("FORGEML_SVM_DEBUG")) {
      std::fprintf(stderr, "l=%ld iters=%ld misses=%ld hits=%ld positions/iter=%.0f compactions=%ld\n", long(l_),
                   long(iter), long(cache_.misses()), long(cache_.hits()),
                   double(active_acc_) / double(std::max<int64_t>(iter, 1)), long(ncompact_));
      std::fprintf(stderr, "row %ld %.3fs  active %ld %.3fs  wsum %ld %.3fs (%ld x %ld)  helper share %.2f\n",
                   long(rows_.n_row), rows_.t_row, long(rows_.n_active), rows_.t_active, long(rows_.n_wsum),
                   rows_.t_wsum, long(wsum_targets_), long(wsum_sources_), rows_.helper_share());
    }
#endif
    for (int64_t s = 0; s < m_; ++s) F_[P_[s]] = Fp_[s];
    res.rho = compute_rho();
    return finish(res, iter);
  }

 private:
  SmoResult& finish(SmoResult& res, int64_t iter) {
    double obj = 0;  // 0.5 a^T Q a + p^T a = sum a_t (G_t + p_t) / 2
    for (int64_t t = 0; t < l_; ++t) obj += alpha_[t] * (y_[t] * F_[t] + (opt_.p ? (*opt_.p)[t] : -1.0));
    res.obj = obj / 2;
    res.alpha = std::move(alpha_);
    res.iterations = iter;
    return res;
  }

  // libsvm's Solver_NU on all positions (no shrinking): in F = y G, each label's pair is the
  // C-SVC rule restricted to that label; the pair with the larger second-order gain is taken.
  SmoResult run_nu(int64_t max_iter) {
    SmoResult res;
    int64_t iter = 0;
    while (iter < max_iter) {
      if (opt_.interruptible && iter % 1000 == 0) check_interrupt();
      int64_t i = -1, j = -1;
      if (!select_nu(i, j)) break;
      ++iter;
      update(i, j);
    }
    if (iter >= max_iter) res.converged = false;
    for (int64_t s = 0; s < m_; ++s) F_[P_[s]] = Fp_[s];
    double r1 = 0, r2 = 0;
    nu_rhos(r1, r2);
    res.rho = (r1 - r2) / 2;
    res.r = (r1 + r2) / 2;
    return finish(res, iter);
  }

  // The working pair (positions; m_ == l_ here); false once both labels meet the tolerance.
  bool select_nu(int64_t& out_i, int64_t& out_j) {
    double gmax[2] = {-kInf, -kInf}, gmax2[2] = {-kInf, -kInf};
    int64_t arg[2] = {-1, -1};
    for (int64_t t = 0; t < m_; ++t) {
      const int c = y_[P_[t]] > 0 ? 0 : 1;
      if ((flags_[t] & kUp) && -Fp_[t] >= gmax[c]) gmax[c] = -Fp_[t], arg[c] = t;
    }
    const float* Kc[2] = {arg[0] >= 0 ? cache_.get(P_[arg[0]]) : nullptr, nullptr};
    Kc[1] = arg[1] >= 0 ? cache_.get(P_[arg[1]]) : nullptr;  // the cache keeps two rows
    double best = -kInf;
    int64_t bj = -1;
    for (int64_t t = 0; t < m_; ++t) {
      if (!(flags_[t] & kLow)) continue;
      const int c = y_[P_[t]] > 0 ? 0 : 1;
      const double f = Fp_[t];
      if (f > gmax2[c]) gmax2[c] = f;
      const double gd = gmax[c] + f;
      if (gd > 0 && arg[c] >= 0) {
        double quad = double(QDp_[arg[c]]) + double(QDp_[t]) - 2.0 * double(Kc[c][t]);
        if (quad <= 0) quad = kTau;
        const double ratio = gd * gd / quad;
        if (ratio >= best) best = ratio, bj = t;
      }
    }
    if (std::max(gmax[0] + gmax2[0], gmax[1] + gmax2[1]) < opt_.tol || bj < 0) return false;
    out_i = arg[y_[P_[bj]] > 0 ? 0 : 1];
    out_j = bj;
    return true;
  }

  // libsvm's Solver_NU::calculate_rho: r1, r2 from the free gradients of each label.
  void nu_rhos(double& r1, double& r2) const {
    double ub[2] = {kInf, kInf}, lb[2] = {-kInf, -kInf}, sum[2] = {0, 0};
    int64_t nfree[2] = {0, 0};
    for (int64_t t = 0; t < l_; ++t) {
      const int c = y_[t] > 0 ? 0 : 1;
      const double G = y_[t] * F_[t];
      if (alpha_[t] >= C_[t]) lb[c] = std::max(lb[c], G);
      else if (alpha_[t] <= 0) ub[c] = std::min(ub[c], G);
      else ++nfree[c], sum[c] += G;
    }
    r1 = nfree[0] > 0 ? sum[0] / double(nfree[0]) : (ub[0] + lb[0]) / 2;
    r2 = nfree[1] > 0 ? sum[1] / double(nfree[1]) : (ub[1] + lb[1]) / 2;
  }

  uint8_t status(int64_t t) const {
    const bool up = alpha_[t] < C_[t], low = alpha_[t] > 0;  // room to grow / to shrink
    return y_[t] > 0 ? uint8_t((up ? kUp : 0) | (low ? kLow : 0)) : uint8_t((low ? kUp : 0) | (up ? kLow : 0));
  }

  PickI pick_i() const {
    return k_.pick_i(Fp_.data(), flags_.data(), m_);
  }

  // The j of the working set for i (WSS 2), and max over I_low of F for the stopping test.
  PickJ pick_j(const PickI& pi) {
    const float* Ki = pi.i >= 0 ? cache_.get(P_[pi.i]) : nullptr;
    const double QDi = pi.i >= 0 ? double(QDp_[pi.i]) : 0.0;
    return k_.pick_j(Fp_.data(), Ki, QDp_.data(), QDi, pi.gmax, flags_.data(), m_);
  }

  // The two-variable subproblem on positions (ip, jp), then the gradient update fused with the
  // next i's selection.
  PickI update(int64_t ip, int64_t jp) {
    const int64_t i = P_[ip], j = P_[jp];
    const float* Ki = cache_.get(i);
    const float* Kj = cache_.get(j);  // the cache keeps at least two rows, so Ki stays valid
    const double Ci = C_[i], Cj = C_[j];
    const double Gi = y_[i] * Fp_[ip], Gj = y_[j] * Fp_[jp];
    const double old_ai = alpha_[i], old_aj = alpha_[j];
    double& ai = alpha_[i];
    double& aj = alpha_[j];
    double quad = double(QD_[i]) + double(QD_[j]) - 2.0 * double(Ki[jp]);
    if (quad <= 0) quad = kTau;
    smo_pair_step(y_[i] == y_[j], Gi, Gj, quad, Ci, Cj, ai, aj);
    flags_[ip] = status(i);
    flags_[jp] = status(j);
    // F_t += y_t (Q_ti dai + Q_tj daj) = K_ti y_i dai + K_tj y_j daj
    const double di = (ai - old_ai) * y_[i], dj = (aj - old_aj) * y_[j];
    return k_.update_pick_i(Fp_.data(), Ki, Kj, di, dj, flags_.data(), m_);
  }

  // libsvm's test, in F = y G: a variable at a bound leaves the active set when its gradient says
  // it will stay there.
  bool be_shrunk(int64_t s, double Gmax1, double Gmax2) const {
    const uint8_t f = flags_[s];
    if (f == 0) return false;  // already shrunk
    if (!(f & kUp) && -Fp_[s] > Gmax1) return true;
    if (!(f & kLow) && Fp_[s] > Gmax2) return true;
    return false;
  }

  void shrink() {
    double Gmax1 = -kInf, Gmax2 = -kInf;  // max over I_up of -F, over I_low of F
    for (int64_t s = 0; s < m_; ++s) {
      if (flags_[s] & kUp) Gmax1 = std::max(Gmax1, -Fp_[s]);
      if (flags_[s] & kLow) Gmax2 = std::max(Gmax2, Fp_[s]);
    }
    if (!unshrunk_ && Gmax1 + Gmax2 <= opt_.tol * 10) {
      unshrunk_ = true;
      grow_active();
    }
    int64_t active = 0;
    for (int64_t s = 0; s < m_; ++s) {
      if (be_shrunk(s, Gmax1, Gmax2)) flags_[s] = 0;
      active += flags_[s] != 0;
    }
    if (active < m_ * 4 / 5) compact();
  }

  // Drop the shrunk positions: their samples keep F as of now (recorded with the alphas).
  void compact() {
    Event ev;
    ev.alpha = alpha_;
    int64_t k = 0;
    for (int64_t s = 0; s < m_; ++s) {
      if (flags_[s] == 0) {
        F_[P_[s]] = Fp_[s];
        ev.dropped.push_back(P_[s]);
        continue;
      }
      P_[k] = P_[s], Fp_[k] = Fp_[s], flags_[k] = flags_[s], QDp_[k] = QDp_[s];
      ++k;
    }
    m_ = k;
    events_.push_back(std::move(ev));
    cache_.set_space(P_.data(), m_);
    ++ncompact_;
  }

  // All samples active again, with their gradients brought up to date.
  void grow_active() {
    if (m_ == l_) {
      for (int64_t s = 0; s < m_; ++s) flags_[s] = status(P_[s]);
      return;
    }
    for (int64_t s = 0; s < m_; ++s) F_[P_[s]] = Fp_[s];
    reconstruct_gradient();
    use_all();
  }

  void use_all() {
    m_ = l_;
    P_.resize(l_);
    Fp_.resize(l_);
    QDp_.resize(l_);
    flags_.resize(l_);
    for (int64_t t = 0; t < l_; ++t) P_[t] = t, Fp_[t] = F_[t], QDp_[t] = QD_[t], flags_[t] = status(t);
    events_.clear();
    cache_.set_space(nullptr, l_);
  }

  // For the samples dropped at each compaction: F_t += sum_k y_k (a_k - a_k(then)) K_tk over the
  // k whose alpha moved since (libsvm keeps G_bar up to date with a full kernel row at every bound
  // change instead; this costs a few GEMM blocks per grow).
  void reconstruct_gradient() {
    std::vector<int64_t> src;
    std::vector<double> w, out;
    for (const Event& ev : events_) {
      if (ev.dropped.empty()) continue;
      src.clear();
      w.clear();
      for (int64_t k = 0; k < l_; ++k)
        if (alpha_[k] != ev.alpha[k]) src.push_back(k), w.push_back((alpha_[k] - ev.alpha[k]) * y_[k]);
      if (src.empty()) continue;
      const int64_t nt = int64_t(ev.dropped.size());
      out.resize(nt);
      rows_.weighted_sum(ev.dropped.data(), nt, src.data(), w.data(), int64_t(src.size()), out.data());
      for (int64_t s = 0; s < nt; ++s) F_[ev.dropped[s]] += out[s];
      wsum_targets_ += nt;
      wsum_sources_ += int64_t(src.size());
    }
  }

  double compute_rho() const {
    double ub = kInf, lb = -kInf, sum_free = 0;
    int64_t nr_free = 0;
    for (int64_t i = 0; i < l_; ++i) {
      const double yG = F_[i];
      if (alpha_[i] >= C_[i]) {
        if (y_[i] < 0) ub = std::min(ub, yG); else lb = std::max(lb, yG);
      } else if (alpha_[i] <= 0) {
        if (y_[i] > 0) ub = std::min(ub, yG); else lb = std::max(lb, yG);
      } else {
        ++nr_free;
        sum_free += yG;
      }
    }
    return nr_free > 0 ? sum_free / double(nr_free) : (ub + lb) / 2;
  }

  struct Event {
    std::vector<int64_t> dropped;  // samples dropped at a compaction
    std::vector<double> alpha;     // the alphas then
  };

  RowCache& cache_;
  KernelRows& rows_;
  const std::vector<double>& y_;
  const std::vector<double>& C_;
  SmoOptions opt_;
  int64_t l_;
  const Kernels& k_;  // the active ISA's passes, chosen once per solve
  std::vector<double> alpha_, F_;  // per sample; F_ is exact for samples outside the positions
  std::vector<float> QD_;
  // per position
  int64_t m_ = 0;
  std::vector<int64_t> P_;
  std::vector<double> Fp_;
  std::vector<float> QDp_;
  std::vector<uint8_t> flags_;
  std::vector<Event> events_;
  bool unshrunk_ = false;
  int64_t active_acc_ = 0, ncompact_ = 0, wsum_targets_ = 0, wsum_sources_ = 0;
};

}  // namespace

SmoResult smo_solve(RowCache& cache, KernelRows& rows, const std::vector<double>& y,
                    const std::vector<double>& C, const SmoOptions& opt) {
  Smo smo(cache, rows, y, C, opt);
  return smo.run();
}

}  // namespace forgeml::svm
