// Internal to csrc/cpu/svm: the kernel SVC's per-ISA loops in one table per ISA (gemm's idiom):
// the kernel function applied to a row of dot products, the panel GEMV of single kernel rows
// (kernel_fn.h), and the SMO solver's passes (smo_pass.h). registry.cpp fills each table once and
// picks active_isa()'s; the plain loops serve reference and portable, the AVX2 files
// (kernel_avx2.cpp, smo_avx2.cpp) and the AVX-512 files (kernel_avx512.cpp, smo_avx512.cpp) their entries.
#pragma once
#include <cstdint>

#include "cpu/svm/smo_pass.h"
#include "forgeml/cpu_features.h"

namespace forgeml::svm {

struct Kernels {
  // r[j] = k(dot r[j]) for the n dot products of one row (ni: that row's squared norm, nj: the
  // columns' squared norms; both only read for rbf).
  void (*kernel_fn)(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n);
  // out[j] = x . X_j for the n rows stored as 16-row panels (see make_panels).
  void (*gemv_panels)(const float* P, int64_t n, int64_t d, const float* x, float* out);
  PickI (*update_pick_i)(double* F, const float* Ki, const float* Kj, double di, double dj, const uint8_t* flags,
                         int64_t m);
  PickI (*pick_i)(const double* F, const uint8_t* flags, int64_t m);
  PickJ (*pick_j)(const double* F, const float* Ki, const float* QD, double QDi, double gmax, const uint8_t* flags,
                  int64_t m);
};

const Kernels& kernels_for(Isa isa);
const Kernels& active_kernels();

// The entries: the plain loops, and the AVX2 and AVX-512 builds (false where this build has none).
void kernels_portable(Kernels& k);
bool kernels_avx2(Kernels& k);
bool kernels_avx512(Kernels& k);

// The AVX2 loops (kernel_avx2.cpp, smo_avx2.cpp; x86-64 builds only), for kernels_avx2.
void kernel_fn_avx2(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n);
void gemv_panels_avx2(const float* P, int64_t n, int64_t d, const float* x, float* out);
PickI update_pick_i_avx2(double* F, const float* Ki, const float* Kj, double di, double dj, const uint8_t* flags,
                         int64_t m);
PickI pick_i_avx2(const double* F, const uint8_t* flags, int64_t m);
PickJ pick_j_avx2(const double* F, const float* Ki, const float* QD, double QDi, double gmax, const uint8_t* flags,
                  int64_t m);

// The AVX-512 loops (kernel_avx512.cpp, smo_avx512.cpp; x86-64 builds only), for kernels_avx512.
void kernel_fn_avx512(int type, float g, float c0, int degree, float ni, const float* nj, float* r, int64_t n);
void gemv_panels_avx512(const float* P, int64_t n, int64_t d, const float* x, float* out);
PickI update_pick_i_avx512(double* F, const float* Ki, const float* Kj, double di, double dj, const uint8_t* flags,
                           int64_t m);
PickI pick_i_avx512(const double* F, const uint8_t* flags, int64_t m);
PickJ pick_j_avx512(const double* F, const float* Ki, const float* QD, double QDi, double gmax, const uint8_t* flags,
                    int64_t m);

}  // namespace forgeml::svm
