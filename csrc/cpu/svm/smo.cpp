// The libsvm SMO solver, rewritten on whole cached kernel rows.
#include "cpu/svm/smo.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstdlib>

#include "forgeml/parallel.h"

namespace forgeml::svm {

namespace {

constexpr double kTau = 1e-12;
constexpr double kInf = std::numeric_limits<double>::infinity();

class Smo {
 public:
  Smo(RowCache& cache, KernelRows& rows, const std::vector<double>& y, const std::vector<double>& C,
      const SmoOptions& opt)
      : cache_(cache), rows_(rows), y_(y), C_(C), opt_(opt), l_(int64_t(y.size())) {
    alpha_.assign(l_, 0.0);
    G_.assign(l_, -1.0);  // G = Q a + p with a = 0, p = -e
    QD_.resize(l_);
    for (int64_t i = 0; i < l_; ++i) QD_[i] = rows.diag(i);
    active_.resize(l_);
    for (int64_t i = 0; i < l_; ++i) active_[i] = i;
    active_size_ = l_;
    in_up_.resize(l_);
    in_low_.resize(l_);
    for (int64_t t = 0; t < l_; ++t) set_status(t);
  }

  SmoResult run() {
    SmoResult res;
    const int64_t max_iter = opt_.max_iter > 0 ? opt_.max_iter : std::max<int64_t>(10000000, 100 * l_);
    int64_t counter = std::min<int64_t>(l_, 1000) + 1, iter = 0;
    while (iter < max_iter) {
      if (--counter == 0) {
        counter = std::min<int64_t>(l_, 1000);
        if (opt_.shrinking) shrink();
        if (opt_.interruptible) check_interrupt();
      }
      int64_t i, j;
      if (select(i, j)) {
        grow_active();  // check optimality on the whole set
        if (select(i, j)) break;
        counter = 1;  // shrink at the next iteration
      }
      ++iter;
      active_acc_ += active_size_;
      update(i, j);
    }
    if (iter >= max_iter) res.converged = false;
    grow_active();
    // FORGEML_SVM_DEBUG=1 prints where a solve spent its time (cache, active set, kernel rows)
    if (std::getenv("FORGEML_SVM_DEBUG"))
      std::fprintf(stderr, "l=%ld iters=%ld misses=%ld hits=%ld active_sum/iter=%.0f shrinks=%ld\n", long(l_), long(iter),
                   long(cache_.misses()), long(cache_.hits()), double(active_acc_) / std::max<int64_t>(iter, 1), long(nshr_));
    if (std::getenv("FORGEML_SVM_DEBUG"))
      std::fprintf(stderr, "row %ld %.3fs  active %ld %.3fs  wsum %ld %.3fs\n", long(rows_.n_row), rows_.t_row,
                   long(rows_.n_active), rows_.t_active, long(rows_.n_wsum), rows_.t_wsum);
    res.rho = compute_rho();
    double obj = 0;
    for (int64_t i = 0; i < l_; ++i) obj += alpha_[i] * (G_[i] - 1.0);
    res.obj = obj / 2;
    res.alpha = std::move(alpha_);
    res.iterations = iter;
    return res;
  }

 private:
  bool upper(int64_t i) const { return alpha_[i] >= C_[i]; }
  bool lower(int64_t i) const { return alpha_[i] <= 0; }

  // Second-order working set selection (WSS 2 of Fan et al.). Returns true when optimal.
  // With v_t = y_t G_t, I_up = {t: y_t a_t can grow} and I_low = {t: it can shrink}:
  //   i = argmax over I_up of -v_t; j = argmin over I_low, v_t > -v_i, of -(v_i + v_t)^2 / quad_it.
  // The ratio test is done by cross-multiplying (no division per candidate).
  bool select(int64_t& out_i, int64_t& out_j) {
    double Gmax = -kInf, Gmax2 = -kInf;
    int64_t imax = -1, jmin = -1;
    for (int64_t s = 0; s < active_size_; ++s) {
      const int64_t t = active_[s];
      const double v = -y_[t] * G_[t];
      if (in_up_[t] && v >= Gmax) Gmax = v, imax = t;
    }
    const float* Ki = imax >= 0 ? cache_.get(imax) : nullptr;
    const double QDi = imax >= 0 ? QD_[imax] : 0.0;
    double best_num = -1.0, best_den = 1.0;  // the best -(num / den) so far
    for (int64_t s = 0; s < active_size_; ++s) {
      const int64_t t = active_[s];
      if (!in_low_[t]) continue;
      const double v = y_[t] * G_[t];
      Gmax2 = std::max(Gmax2, v);
      const double grad_diff = Gmax + v;
      if (grad_diff > 0) {
        // y_i y_t Q_it = K_it, so the curvature is |phi(x_i) - phi(x_t)|^2 whatever the labels.
        double quad = QDi + QD_[t] - 2.0 * double(Ki[t]);
        if (quad <= 0) quad = kTau;
        const double num = grad_diff * grad_diff;
        if (num * best_den >= best_num * quad) best_num = num, best_den = quad, jmin = t;
      }
    }
    if (Gmax + Gmax2 < opt_.tol || jmin == -1) return true;
    out_i = imax;
    out_j = jmin;
    return false;
  }

  void set_status(int64_t t) {
    const bool up = alpha_[t] < C_[t], low = alpha_[t] > 0;  // room to grow / to shrink
    in_up_[t] = y_[t] > 0 ? up : low;
    in_low_[t] = y_[t] > 0 ? low : up;
  }

  void update(int64_t i, int64_t j) {
    const float* Ki = cache_.get(i);
    const float* Kj = cache_.get(j);  // the cache keeps at least two rows, so Ki stays valid
    const double Ci = C_[i], Cj = C_[j];
    const double old_ai = alpha_[i], old_aj = alpha_[j];
    double& ai = alpha_[i];
    double& aj = alpha_[j];
    double quad = QD_[i] + QD_[j] - 2.0 * double(Ki[j]);
    if (quad <= 0) quad = kTau;
    if (y_[i] != y_[j]) {
      const double delta = (-G_[i] - G_[j]) / quad, diff = ai - aj;
      ai += delta;
      aj += delta;
      if (diff > 0) {
        if (aj < 0) aj = 0, ai = diff;
      } else {
        if (ai < 0) ai = 0, aj = -diff;
      }
      if (diff > Ci - Cj) {
        if (ai > Ci) ai = Ci, aj = Ci - diff;
      } else {
        if (aj > Cj) aj = Cj, ai = Cj + diff;
      }
    } else {
      const double delta = (G_[i] - G_[j]) / quad, sum = ai + aj;
      ai -= delta;
      aj += delta;
      if (sum > Ci) {
        if (ai > Ci) ai = Ci, aj = sum - Ci;
      } else {
        if (aj < 0) aj = 0, ai = sum;
      }
      if (sum > Cj) {
        if (aj > Cj) aj = Cj, ai = sum - Cj;
      } else {
        if (ai < 0) ai = 0, aj = sum;
      }
    }
    set_status(i);
    set_status(j);
    // G_t += Q_ti dai + Q_tj daj = y_t (K_ti y_i dai + K_tj y_j daj)
    const double di = (ai - old_ai) * y_[i], dj = (aj - old_aj) * y_[j];
    for (int64_t s = 0; s < active_size_; ++s) {
      const int64_t t = active_[s];
      G_[t] += y_[t] * (double(Ki[t]) * di + double(Kj[t]) * dj);
    }
  }

  bool be_shrunk(int64_t i, double Gmax1, double Gmax2) const {
    if (upper(i)) return y_[i] > 0 ? -G_[i] > Gmax1 : -G_[i] > Gmax2;
    if (lower(i)) return y_[i] > 0 ? G_[i] > Gmax2 : G_[i] > Gmax1;
    return false;
  }

  void shrink() {
    double Gmax1 = -kInf, Gmax2 = -kInf;  // max -yG over I_up, max yG over I_low
    for (int64_t s = 0; s < active_size_; ++s) {
      const int64_t t = active_[s];
      if (y_[t] > 0) {
        if (!upper(t)) Gmax1 = std::max(Gmax1, -G_[t]);
        if (!lower(t)) Gmax2 = std::max(Gmax2, G_[t]);
      } else {
        if (!upper(t)) Gmax2 = std::max(Gmax2, -G_[t]);
        if (!lower(t)) Gmax1 = std::max(Gmax1, G_[t]);
      }
    }
    if (!unshrunk_ && Gmax1 + Gmax2 <= opt_.tol * 10) {
      unshrunk_ = true;
      grow_active();
    }
    for (int64_t s = 0; s < active_size_; ++s) {
      if (!be_shrunk(active_[s], Gmax1, Gmax2)) continue;
      // swap with the last active element that stays
      --active_size_;
      while (active_size_ > s && be_shrunk(active_[active_size_], Gmax1, Gmax2)) --active_size_;
      std::swap(active_[s], active_[active_size_]);
    }
    // kernel rows only for the active set from now on, once it is clearly smaller
    std::sort(active_.begin(), active_.begin() + active_size_);  // memory order for the loops
    if (active_size_ < rows_.active_count() * 4 / 5) {
      rows_.set_active(active_.data(), active_size_);
      ++nshr_;
    }
  }

  // All samples active again: gradients rebuilt, kernel rows over everything, partial rows stale.
  void grow_active() {
    if (active_size_ == l_) return;
    reconstruct_gradient();
    active_size_ = l_;
    rows_.set_active(nullptr, l_);
    cache_.new_epoch();
  }

  // G for the inactive samples from scratch, G_t = y_t sum_k y_k a_k K_tk - 1 over every k with
  // a_k > 0, as blocks of GEMM (libsvm keeps G_bar up to date with a full kernel row at every
  // bound change instead; recomputing here is cheaper and only happens a few times per solve).
  void reconstruct_gradient() {
    if (active_size_ == l_) return;
    std::vector<int64_t> src;
    std::vector<double> w;
    for (int64_t k = 0; k < l_; ++k)
      if (alpha_[k] > 0) src.push_back(k), w.push_back(alpha_[k] * y_[k]);
    const int64_t nt = l_ - active_size_;
    std::vector<double> out(nt);
    rows_.weighted_sum(active_.data() + active_size_, nt, src.data(), w.data(), int64_t(src.size()), out.data());
    for (int64_t s = 0; s < nt; ++s) {
      const int64_t t = active_[active_size_ + s];
      G_[t] = y_[t] * out[s] - 1.0;
    }
  }

  double compute_rho() const {
    double ub = kInf, lb = -kInf, sum_free = 0;
    int64_t nr_free = 0;
    for (int64_t i = 0; i < l_; ++i) {
      const double yG = y_[i] * G_[i];
      if (upper(i)) {
        if (y_[i] < 0) ub = std::min(ub, yG); else lb = std::max(lb, yG);
      } else if (lower(i)) {
        if (y_[i] > 0) ub = std::min(ub, yG); else lb = std::max(lb, yG);
      } else {
        ++nr_free;
        sum_free += yG;
      }
    }
    return nr_free > 0 ? sum_free / double(nr_free) : (ub + lb) / 2;
  }

  RowCache& cache_;
  KernelRows& rows_;
  const std::vector<double>& y_;
  const std::vector<double>& C_;
  SmoOptions opt_;
  int64_t l_;
  std::vector<double> alpha_, G_, QD_;
  std::vector<int64_t> active_;
  std::vector<uint8_t> in_up_, in_low_;
  int64_t active_size_;
  bool unshrunk_ = false;
  int64_t active_acc_ = 0, nshr_ = 0;
};

}  // namespace

SmoResult smo_solve(RowCache& cache, KernelRows& rows, const std::vector<double>& y,
                    const std::vector<double>& C, const SmoOptions& opt) {
  Smo smo(cache, rows, y, C, opt);
  return smo.run();
}

}  // namespace forgeml::svm
