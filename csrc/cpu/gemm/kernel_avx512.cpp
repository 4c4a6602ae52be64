// AVX-512 micro-kernel: up to 12 x 32 (two zmm of B per k, one broadcast per row of A, 24
// accumulators, leaving registers for B and the broadcasts). Instantiated for every row count
// 1..12, at full and half width, so M and N edges waste few FMAs; N edges use masked loads
// and stores. Contract: kernels.h.
#include "cpu/gemm/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <utility>

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 12, NR = 32;
// Cache blocking. This machine reports 32-48 KiB L1d and 1 MiB L2 per core, 32 MiB L3.
constexpr int kKC = 384;   // one packed A panel (12 x 384 floats, 18 KiB) stays in L1 across a row of tiles
constexpr int kNC = 320;   // one packed B block (384 x 320 floats, 480 KiB) stays in L2 across the panels
constexpr int kMC = 4032;  // one packed A block (6 MiB, in L3) streams once per NC columns; B is
                           // packed once per MC rows, so a large MC packs it fewer times

// sgemm_avx512_<M>x<16*NV>; RowA: op(A)(i, k) = a[i * as + k], else a[k * as + i].
template <int M, int NV, bool RowA>
void sgemm_avx512(int64_t kc, const float* a, int64_t as, const float* b, int64_t bs, float* c, int64_t ldc,
                  float alpha, float beta, int m, int n) {
  (void)m;
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    int rem = n - 16 * v;
    mask[v] = rem >= 16 ? 0xffff : rem <= 0 ? 0 : static_cast<__mmask16>((1u << rem) - 1);
  }
  __m512 acc[M][NV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  if (beta != 0.f)  // C is read at the end: start fetching it now
    for (int i = 0; i < M; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      if (NV > 1) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * NV - 1), _MM_HINT_T0);
    }
  const float* arow[RowA ? M : 1];
  if constexpr (RowA)
    for (int i = 0; i < M; ++i) arow[i] = a + i * as;
  // The k loop, with plain loads of B for full-width tiles and masked ones at the N edge.
  auto run = [&](auto full) __attribute__((always_inline)) {
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k, b += bs) {
      __m512 bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        bv[v] = decltype(full)::value ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i) {
        __m512 ai = _mm512_set1_ps(RowA ? arow[i][k] : a[k * as + i]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
  };
  if (n == 16 * NV) run(std::true_type{});
  else run(std::false_type{});
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 16 * v;
      __m512 r = alpha == 1.f ? acc[i][v] : _mm512_mul_ps(va, acc[i][v]);
      if (beta != 0.f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], p), r);
      _mm512_mask_storeu_ps(p, mask[v], r);
    }
  }
}

template <int... I>
void fill(Kernel& k, std::integer_sequence<int, I...>) {
  ((k.tile[0][0][I + 1] = sgemm_avx512<I + 1, 2, false>), ...);
  ((k.tile[0][1][I + 1] = sgemm_avx512<I + 1, 2, true>), ...);
  ((k.tile[1][0][I + 1] = sgemm_avx512<I + 1, 1, false>), ...);
  ((k.tile[1][1][I + 1] = sgemm_avx512<I + 1, 1, true>), ...);
}

// ---------------------------------------------------------------- packing

__mmask16 first(int64_t n) { return n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1); }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive inside unpack intrinsics
// Transposes a rows x kcount block (rows, kcount <= 16; row i at src + i * ld) into kcount
// vectors out[k] = (src[0][k], ..., src[15][k]) (rows past `rows` read as 0), each stored at
// dst + k * dst_stride under store_mask.
void transpose16(const float* src, int64_t ld, int rows, int kcount, float* dst, int64_t dst_stride,
                 __mmask16 store_mask) {
  const __mmask16 km = first(kcount);
  __m512 r[16], t[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * ld) : _mm512_setzero_ps();
  for (int i = 0; i < 8; ++i) {  // pairs of rows, within 128-bit lanes
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // u[4g + e], lane L: element 4L + e of rows 4g..4g+3
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int e = 0; e < 4; ++e) {  // 4 x 4 transpose of 128-bit lanes
    __m512 v0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x44), v1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xEE);
    __m512 v2 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x44), v3 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xEE);
    const __m512 out[4] = {_mm512_shuffle_f32x4(v0, v2, 0x88), _mm512_shuffle_f32x4(v0, v2, 0xDD),
                           _mm512_shuffle_f32x4(v1, v3, 0x88), _mm512_shuffle_f32x4(v1, v3, 0xDD)};
    for (int l = 0; l < 4; ++l)
      if (4 * l + e < kcount) _mm512_mask_storeu_ps(dst + (4 * l + e) * dst_stride, store_mask, out[l]);
  }
}

#pragma GCC diagnostic pop

// op(A) rows [i0, i0 + m) x depth [p0, p0 + kc) into MR-row panels (k-major).
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < m; ip += MR, dst += kc * MR) {
    const int mm = static_cast<int>(std::min<int64_t>(MR, m - ip));
    if (trans) {
      const __mmask16 mask = first(mm);
      const float* src = A + p0 * lda + i0 + ip;
      for (int64_t k = 0; k < kc; ++k) _mm512_mask_storeu_ps(dst + k * MR, mask, _mm512_maskz_loadu_ps(mask, src + k * lda));
    } else {
      const float* src = A + (i0 + ip) * lda + p0;
      for (int64_t k = 0; k < kc; k += 16)
        transpose16(src + k, lda, mm, static_cast<int>(std::min<int64_t>(16, kc - k)), dst + k * MR, MR, first(MR));
    }
  }
}

// op(B) columns [j0, j0 + n) x depth [p0, p0 + kc) into NR-column panels (k-major). Columns
// past n in the last panel are zero or unset: the kernels load them masked off.
void pack_b(bool trans, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t p0, int64_t kc, float* dst) {
  if (!trans) {  // row by row across all panels, so the reads stay sequential
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (p0 + k) * ldb + j0;
      float* d = dst + k * NR;
      int64_t j = 0;
      for (; j + NR <= n; j += NR, d += kc * NR) {
        _mm512_storeu_ps(d, _mm512_loadu_ps(src + j));
        _mm512_storeu_ps(d + 16, _mm512_loadu_ps(src + j + 16));
      }
      if (j < n) {
        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(first(n - j), src + j));
        _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(first(n - j > 16 ? n - j - 16 : 0), src + j + 16));
      }
    }
    return;
  }
  for (int64_t jp = 0; jp < n; jp += NR, dst += kc * NR) {
    for (int h = 0; h < 2; ++h) {
      const int rows = static_cast<int>(std::min<int64_t>(16, n - jp - 16 * h));
      if (rows <= 0) break;
      const float* src = B + (j0 + jp + 16 * h) * ldb + p0;
      for (int64_t k = 0; k < kc; k += 16)
        transpose16(src + k, ldb, rows, static_cast<int>(std::min<int64_t>(16, kc - k)), dst + k * NR + 16 * h, NR,
                    0xffff);
    }
  }
}

}  // namespace

bool kernel_avx512(Kernel& k) {
  k = Kernel{};
  fill(k, std::make_integer_sequence<int, MR>{});
  k.pack_a = pack_a;
  k.pack_b = pack_b;
  k.mr = MR;
  k.nr = NR;
  k.mc = kMC;
  k.kc = kKC;
  k.nc = kNC;
  k.act = activation_avx512;
  k.bias_act = bias_act_avx512;
  k.name = "sgemm_avx512_12x32";
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool kernel_avx512(Kernel&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
