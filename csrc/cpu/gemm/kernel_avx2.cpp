// AVX2 + FMA micro-kernel: up to 6 x 16 (12 ymm accumulators, 2 for B, 1 broadcast), one
// instantiation per row count; N edges use masked loads and plain partial stores. Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "cpu/store_lanes_avx2.h"

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 6, NV = 2, NR = 8 * NV;
constexpr int kMC = 768, kKC = 256, kNC = 256;  // A panel 6 KiB in L1, B block 256 KiB: half of a Zen 2 L2

// sgemm_avx2_<M>x16; RowA: op(A)(i, k) = a[i * as + k], else a[k * as + i]. Full: n == NR,
// plain loads and stores (15 of the 16 ymm registers in use); else masked ones.
template <int M, bool RowA, bool Full>
void tile(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc, float alpha,
          float beta, int n) {
  __m256i mask[NV];
  for (int v = 0; v < NV; ++v)
    mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8 * v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k, b += bs) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Full ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, mask[v]);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      __m256 ai = _mm256_broadcast_ss(RowA ? a + i * as + k : a + k * as + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 8 * v;
      __m256 r = _mm256_mul_ps(va, acc[i][v]);
      if (Full) {
        if (beta != 0.f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), r);
        _mm256_storeu_ps(p, r);
      } else {
        if (beta != 0.f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(p, mask[v]), r);
        store_lanes(p, r, n - 8 * v);
      }
    }
  }
}

template <int M, bool RowA>
void sgemm_avx2(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc,
                float alpha, float beta, int, int n) {
  if (n == NR) tile<M, RowA, true>(kc, a, as, b, bs, c, ldc, alpha, beta, n);
  else tile<M, RowA, false>(kc, a, as, b, bs, c, ldc, alpha, beta, n);
}

// ---------------------------------------------------------------- packing

// out[k] = (src[0][k], ..., src[7][k]) for a rows x kcount block (row i at src + i * ld); rows
// past `rows` and depths past kcount read as 0.
void transpose8(const float* src, int64_t ld, int rows, int kcount, __m256 (&out)[8]) {
  const __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(kcount), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i)
    r[i] = i >= rows ? _mm256_setzero_ps() : kcount == 8 ? _mm256_loadu_ps(src + i * ld) : _mm256_maskload_ps(src + i * ld, km);
  for (int i = 0; i < 4; ++i) {  // pairs of rows, within 128-bit lanes
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {  // u[4g + e]: depth e | e + 4 of rows 4g .. 4g + 3
    u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int e = 0; e < 4; ++e) {
    out[e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x20);
    out[4 + e] = _mm256_permute2f128_ps(u[e], u[4 + e], 0x31);
  }
}

// op(A) rows [i0, i0 + m) x depth [p0, p0 + kc) into MR-row panels (k-major); an edge panel's
// rows past m are left unset (its kernel never reads them).
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < m; ip += MR, dst += kc * MR) {
    const int mm = static_cast<int>(std::min<int64_t>(MR, m - ip));
    if (trans) {
      const float* src = A + p0 * lda + i0 + ip;
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, src + k * lda, mm * sizeof(float));
      continue;
    }
    const float* src = A + (i0 + ip) * lda + p0;
    for (int64_t k = 0; k < kc; k += 8) {
      const int kcount = static_cast<int>(std::min<int64_t>(8, kc - k));
      __m256 out[8];
      transpose8(src + k, lda, mm, kcount, out);
      for (int l = 0; l < kcount; ++l) {  // MR = 6 floats exactly: 4 + 2
        float* d = dst + (k + l) * MR;
        _mm_storeu_ps(d, _mm256_castps256_ps128(out[l]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(out[l], 1));
      }
    }
  }
}

// op(B) columns [j0, j0 + n) x depth [p0, p0 + kc) into NR-column panels (k-major), zeros past n.
void pack_b(bool trans, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t p0, int64_t kc, float* dst) {
  if (!trans) {  // row by row across all panels, so the reads stay sequential
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (p0 + k) * ldb + j0;
      float* d = dst + k * NR;
      int64_t j = 0;
      for (; j + NR <= n; j += NR, d += kc * NR) {
        _mm256_storeu_ps(d, _mm256_loadu_ps(src + j));
        _mm256_storeu_ps(d + 8, _mm256_loadu_ps(src + j + 8));
      }
      for (int64_t c = 0; c < NR && j < n; ++c) d[c] = j + c < n ? src[j + c] : 0.f;
    }
    return;
  }
  for (int64_t jp = 0; jp < n; jp += NR, dst += kc * NR)
    for (int h = 0; h < 2; ++h) {
      const int rows = static_cast<int>(std::clamp<int64_t>(n - jp - 8 * h, 0, 8));
      const float* src = B + (j0 + jp + 8 * h) * ldb + p0;
      for (int64_t k = 0; k < kc; k += 8) {
        const int kcount = static_cast<int>(std::min<int64_t>(8, kc - k));
        __m256 out[8];
        transpose8(src + k, ldb, rows, kcount, out);
        for (int l = 0; l < kcount; ++l) _mm256_storeu_ps(dst + (k + l) * NR + 8 * h, out[l]);
      }
    }
}

template <int... I>
void fill(Kernel& k, std::integer_sequence<int, I...>) {
  for (int narrow = 0; narrow < 2; ++narrow) {
    ((k.tile[narrow][0][I + 1] = sgemm_avx2<I + 1, false>), ...);
    ((k.tile[narrow][1][I + 1] = sgemm_avx2<I + 1, true>), ...);
  }
}

}  // namespace

bool kernel_avx2(Kernel& k) {
  k = Kernel{};
  fill(k, std::make_integer_sequence<int, MR>{});
  k.pack_a = pack_a;
  k.pack_b = pack_b;
  k.mr = MR;
  k.nr = NR;
  k.mc = kMC;
  k.kc = kKC;
  k.nc = kNC;
  // Zen 2 (bench/results/gemm_profile.md, session 28): B read in place row by row (ldb apart) cost
  // 10% at 256 x 784 x 128 against its packed panels, and A read in place beats packing it
  // whenever a single column block (NC) reuses it.
  k.in_place_b = int64_t{1} << 13;  // 32 KiB: L1
  k.in_place_a_panels = kNC / NR;
  k.act = activation_avx2;
  k.bias_act = bias_act_avx2;
  k.name = "sgemm_avx2_6x16";
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool kernel_avx2(Kernel&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
