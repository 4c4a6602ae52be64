// The SMO solver's per-iteration passes over the active positions [0, m): plain loops here
// (portable::, also the reference), the same contract with intrinsics in smo_avx512.cpp;
// kernels.h's table holds one per ISA.
//   F (m) float64: F_t = y_t G_t, the signed gradient (so an update needs no labels)
//   Ki, Kj (m) float32: kernel rows of the working pair over the same positions
//   flags (m): bit 0 = t in I_up (y_t a_t can grow), bit 1 = t in I_low; 0 when shrunk
//   QD (m) float32: K_tt
// Ties go to the last position, as in libsvm's loops.
#pragma once
#include <cstdint>
#include <limits>

namespace forgeml::svm {

constexpr uint8_t kUp = 1, kLow = 2;
constexpr double kTau = 1e-12;  // libsvm's floor for a non-positive curvature

struct PickI {
  double gmax;  // max over I_up of -F (-inf when I_up is empty)
  int64_t i;    // its position, -1 when none
};

struct PickJ {
  double gmax2;  // max over I_low of F
  double best;   // max of (Gmax + F_t)^2 / quad_it over the candidates
  int64_t j;     // its position, -1 when none
};

namespace portable {

// F += di Ki + dj Kj, then the i of the next working set: argmax over I_up of -F.
inline PickI update_pick_i(double* F, const float* Ki, const float* Kj, double di, double dj, const uint8_t* flags,
                           int64_t m) {
  PickI r{-std::numeric_limits<double>::infinity(), -1};
  for (int64_t t = 0; t < m; ++t) {
    const double f = F[t] + (double(Ki[t]) * di + double(Kj[t]) * dj);
    F[t] = f;
    if ((flags[t] & kUp) && -f >= r.gmax) r.gmax = -f, r.i = t;
  }
  return r;
}

inline PickI pick_i(const double* F, const uint8_t* flags, int64_t m) {
  PickI r{-std::numeric_limits<double>::infinity(), -1};
  for (int64_t t = 0; t < m; ++t)
    if ((flags[t] & kUp) && -F[t] >= r.gmax) r.gmax = -F[t], r.i = t;
  return r;
}

// Second-order choice of j (WSS 2 of Fan, Chen & Lin): over I_low with Gmax + F_t > 0, the t
// that maximises (Gmax + F_t)^2 / (K_ii + K_tt - 2 K_it).
inline PickJ pick_j(const double* F, const float* Ki, const float* QD, double QDi, double gmax, const uint8_t* flags,
                    int64_t m) {
  PickJ r{-std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), -1};
  for (int64_t t = 0; t < m; ++t) {
    if (!(flags[t] & kLow)) continue;
    const double f = F[t];
    if (f > r.gmax2) r.gmax2 = f;
    const double gd = gmax + f;
    if (gd > 0) {
      double quad = QDi + double(QD[t]) - 2.0 * double(Ki[t]);
      if (quad <= 0) quad = kTau;
      const double ratio = gd * gd / quad;
      if (ratio >= r.best) r.best = ratio, r.j = t;
    }
  }
  return r;
}

}  // namespace portable

}  // namespace forgeml::svm
