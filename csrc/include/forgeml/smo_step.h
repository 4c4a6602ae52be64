// The two-variable SMO step with libsvm's clipping, shared by the CPU solver (csrc/cpu/svm/smo.cpp)
// and the CUDA local solver (csrc/cuda/svm.cu), so both take exactly the same steps.
#pragma once

#if defined(__CUDACC__)
#define FORGEML_HOST_DEVICE __host__ __device__
#else
#define FORGEML_HOST_DEVICE
#endif

namespace forgeml::svm {

// Moves (ai, aj) along y_i a_i + y_j a_j = const to the minimum of the dual, clipped to the box
// [0, Ci] x [0, Cj]. Gi, Gj: dual gradients; quad = K_ii + K_jj - 2 K_ij (> 0); same: y_i == y_j.
FORGEML_HOST_DEVICE inline void smo_pair_step(bool same, double Gi, double Gj, double quad, double Ci, double Cj,
                                              double& ai, double& aj) {
  if (!same) {
    const double delta = (-Gi - Gj) / quad, diff = ai - aj;
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
    const double delta = (Gi - Gj) / quad, sum = ai + aj;
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
}

}  // namespace forgeml::svm
