// AVX2 + FMA micro-kernels of the reduced-precision GEMMs, for CPUs without avx512_bf16 / VNNI
// (contract: lowp.h). Without those instructions neither format multiplies faster than float32,
// so the aim is float32's rate with half (bf16) or a quarter (int8) of the operand bytes:
//   bf16_avx2_4x16: each bf16 widened to float32 by a shift or a mask (exact), then FMAs;
//   int8_avx2_4x16: bytes widened to int16 pairs, vpmaddwd sums two u8 x s8 products per int32
//     lane exactly (vpmaddubsw would saturate int16 at 255 * 128 * 2).
// Per depth group the even and the odd halves of the group go one after the other, so the
// accumulators, one half of B and a broadcast of A fit in the 16 ymm registers.
#include "cpu/gemm/lowp.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "cpu/store_lanes_avx2.h"

namespace forgeml::gemm::detail {
namespace {

constexpr int NR = 16;

__m256i lane_mask(int n, int v) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8 * v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// bf16_avx2_<M>x<8*NV>: a group word holds depth 2g in its low half and 2g + 1 in its high half.
template <int M, int NV>
void bf16_avx2(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc, bool accumulate,
               const LowpTile&, int, int n) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  __m256 acc[M][NV];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t g = 0; g < kg; ++g, b += NR) {
    const __m256i* bw = reinterpret_cast<const __m256i*>(b);
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(bw + v), 16));
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_set1_epi32(static_cast<int>(a[i * as + g])), 16));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(bw + v), high));
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_castsi256_ps(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(a[i * as + g])), high));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 8 * v;
      if (n >= 8 * (v + 1)) {
        _mm256_storeu_ps(p, accumulate ? _mm256_add_ps(acc[i][v], _mm256_loadu_ps(p)) : acc[i][v]);
      } else {
        const __m256i mk = lane_mask(n, v);
        const __m256 r = accumulate ? _mm256_add_ps(acc[i][v], _mm256_maskload_ps(p, mk)) : acc[i][v];
        store_lanes(p, r, n - 8 * v);
      }
    }
}

// acc (M x 8*NV int32) = the sums over kg groups of a's rows times b's panel. A group word holds
// depth 4g .. 4g + 3 in its bytes, A's unsigned and B's signed: the even bytes (0, 2) and then the
// odd ones (1, 3) as int16 pairs per int32 lane.
template <int M, int NV>
inline __attribute__((always_inline)) void int8_sums(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b,
                                                     __m256i (&acc)[M][NV]) {
  const __m256i even = _mm256_set1_epi32(0x00ff00ff);
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_si256();
#pragma GCC unroll 2
  for (int64_t g = 0; g < kg; ++g, b += NR) {
    const __m256i* bw = reinterpret_cast<const __m256i*>(b);
    __m256i bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_srai_epi16(_mm256_slli_epi16(_mm256_loadu_si256(bw + v), 8), 8);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256i ai = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(a[i * as + g])), even);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_add_epi32(acc[i][v], _mm256_madd_epi16(ai, bv[v]));
    }
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_srai_epi16(_mm256_loadu_si256(bw + v), 8);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256i ai = _mm256_srli_epi16(_mm256_set1_epi32(static_cast<int>(a[i * as + g])), 8);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_add_epi32(acc[i][v], _mm256_madd_epi16(ai, bv[v]));
    }
  }
}

// int8_avx2_<M>x<8*NV>
template <int M, int NV>
void int8_avx2(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc, bool accumulate,
               const LowpTile& t, int, int n) {
  __m256i acc[M][NV];
  int8_sums<M, NV>(kg, a, as, b, acc);
  // The portable tile's epilogue: (acc - corr) * (row scale * column scale), then bias_act's
  // x + bias and relu when the driver fuses them (LowpTile).
  __m256 cs[NV], bias[NV];
  __m256i corr[NV], mk[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mk[v] = lane_mask(n, v);
    cs[v] = _mm256_maskload_ps(t.col_scale + 8 * v, mk[v]);
    corr[v] = _mm256_maskload_epi32(t.corr + 8 * v, mk[v]);
    bias[v] = t.bias ? _mm256_maskload_ps(t.bias + 8 * v, mk[v]) : _mm256_setzero_ps();
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    const __m256 rs = _mm256_set1_ps(t.row_scale[i]);
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      float* p = c + i * ldc + 8 * v;
      __m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][v], corr[v])), _mm256_mul_ps(rs, cs[v]));
      const bool whole = n >= 8 * (v + 1);
      if (accumulate) r = _mm256_add_ps(whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mk[v]), r);
      if (t.bias) r = _mm256_add_ps(r, bias[v]);
      if (t.relu) r = _mm256_max_ps(_mm256_setzero_ps(), r);  // NaN passes, as in bias_act
      store_lanes(p, r, n - 8 * v);
    }
  }
}

// The 2 x 2 window epilogue (lowp.h: pool4_windows) over m / 4 windows in one call: the column
// operands are loaded once, not per window (a 3 x 3 single-channel convolution has only three
// depth groups, and the per-window call and loads cost as much as its products).
template <int NV>
void int8_pool4_avx2(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc, bool,
                     const LowpTile& t, int m, int n) {
  __m256 cs[NV], bias[NV];
  __m256i corr[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const __m256i mk = lane_mask(n, v);
    cs[v] = _mm256_maskload_ps(t.col_scale + 8 * v, mk);
    corr[v] = _mm256_maskload_epi32(t.corr + 8 * v, mk);
    bias[v] = t.bias ? _mm256_maskload_ps(t.bias + 8 * v, mk) : _mm256_setzero_ps();
  }
  for (int w = 0; w < m / 4; ++w, a += 4 * as, c += ldc) {
    __m256i acc[4][NV];
    int8_sums<4, NV>(kg, a, as, b, acc);
    const __m256 rs = _mm256_set1_ps(t.row_scale[4 * w]);
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __m256i mx =
          _mm256_max_epi32(_mm256_max_epi32(acc[0][v], acc[1][v]), _mm256_max_epi32(acc[2][v], acc[3][v]));
      __m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(mx, corr[v])), _mm256_mul_ps(rs, cs[v]));
      if (t.bias) r = _mm256_add_ps(r, bias[v]);
      if (t.relu) r = _mm256_max_ps(_mm256_setzero_ps(), r);
      if (n >= 8 * (v + 1)) _mm256_storeu_ps(c + 8 * v, r);
      else store_lanes(c + 8 * v, r, n - 8 * v);
    }
  }
}

// quantize_row_scalar's arithmetic (true division, round to nearest even, clamp) 8 lanes at a
// time: the scalar loop's nearbyint calls were half of an int8 Dense chain's predict here. A row
// is one long dependency chain (its maximum, the scale, then the codes): row_scale_avx2 and
// row_codes_avx2 apart let two rows interleave (quantize_two_rows_avx2).

// The row's scale, or NaN when it holds NaN or infinity.
inline float row_scale_avx2(const float* x, int64_t n) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 finite_max = _mm256_set1_ps(3.4028235e38f);
  __m256 vmax = _mm256_setzero_ps(), ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + j), absmask);
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, finite_max, _CMP_LE_OQ));  // false for inf and NaN
    vmax = _mm256_max_ps(vmax, v);
  }
  if (_mm256_movemask_ps(ok) != 0xff) return __builtin_nanf("");
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return finish_row_scale(x, j, n, _mm_cvtss_f32(_mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1))));
}

// q = the codes of x at the finite scale s.
inline void row_codes_avx2(const float* x, int64_t n, float s, int8_t* q) {
  const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-127.f), hi = _mm256_set1_ps(127.f);
  auto codes = [&](const float* p) {
    const __m256 r =
        _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(p), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
  };
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the packs' lane interleave
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m256i ab = _mm256_packs_epi32(codes(x + j), codes(x + j + 8));
    const __m256i cd = _mm256_packs_epi32(codes(x + j + 16), codes(x + j + 24));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + j), bytes);
  }
  for (; j + 8 <= n; j += 8) {
    const __m256i w = _mm256_packs_epi32(codes(x + j), _mm256_setzero_si256());
    const __m256i b = _mm256_packs_epi16(w, w);  // bytes 0-3 of each 128-bit lane
    const uint64_t pair = static_cast<uint32_t>(_mm256_cvtsi256_si32(b)) |
                          uint64_t{static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(b, 1)))} << 32;
    std::memcpy(q + j, &pair, 8);
  }
  for (; j < n; ++j) q[j] = static_cast<int8_t>(std::clamp(std::nearbyint(x[j] / s), -127.f, 127.f));
}

float quantize_row_avx2(const float* x, int64_t n, int8_t* q) {
  const float s = row_scale_avx2(x, n);
  if (s == s) row_codes_avx2(x, n, s, q);
  return s;
}

// Rows of 64 values: 1.5x quantize_row_avx2 twice (its chain left the core idle between rows).
void quantize_two_rows_avx2(const float* x0, const float* x1, int64_t n, int8_t* q0, int8_t* q1, float* s) {
  s[0] = row_scale_avx2(x0, n);
  s[1] = row_scale_avx2(x1, n);
  if (s[0] == s[0]) row_codes_avx2(x0, n, s[0], q0);
  if (s[1] == s[1]) row_codes_avx2(x1, n, s[1], q1);
}

// lowp.h's windows_3x3: a window's 4 x 4 pixels in one register (pixel (i, j) at byte 4i + j),
// its four 12-byte patch rows (top left, top right, bottom left, bottom right; bytes 9-11 zero)
// by three byte shuffles: 3 stores a window instead of 12 overlapping 8-byte copies.
struct WindowShuffles {
  alignas(16) int8_t m[48];
  constexpr WindowShuffles() : m{} {
    for (int o = 0; o < 48; ++o) {
      const int q = o / 12, k = o % 12;
      m[o] = k < 9 ? static_cast<int8_t>(4 * (q / 2 + k / 3) + q % 2 + k % 3) : int8_t{-128};
    }
  }
};
constexpr WindowShuffles kWindowShuffles;

void windows_3x3_avx2(const uint8_t* img, int64_t line, int64_t oh, int64_t ow, uint8_t* d) {
  const __m128i* m = reinterpret_cast<const __m128i*>(kWindowShuffles.m);
  const __m128i m0 = _mm_load_si128(m), m1 = _mm_load_si128(m + 1), m2 = _mm_load_si128(m + 2);
  auto word = [](const uint8_t* p) {
    int v;
    std::memcpy(&v, p, 4);
    return v;
  };
  for (int64_t py = 0; py < oh; ++py)
    for (int64_t px = 0; px < ow; ++px, d += 48) {
      const uint8_t* w = img + 2 * py * line + 2 * px;
      const __m128i v = _mm_setr_epi32(word(w), word(w + line), word(w + 2 * line), word(w + 3 * line));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm_shuffle_epi8(v, m0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 16), _mm_shuffle_epi8(v, m1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 32), _mm_shuffle_epi8(v, m2));
    }
}

template <int... I>
void fill_bf16(LowpKernels& k, std::integer_sequence<int, I...>) {
  ((k.tile[0][I + 1] = bf16_avx2<I + 1, 2>), ...);
  ((k.tile[1][I + 1] = bf16_avx2<I + 1, 1>), ...);
}
template <int... I>
void fill_int8(LowpKernels& k, std::integer_sequence<int, I...>) {
  ((k.tile[0][I + 1] = int8_avx2<I + 1, 2>), ...);
  ((k.tile[1][I + 1] = int8_avx2<I + 1, 1>), ...);
}

}  // namespace

bool lowp_avx2_bf16(LowpKernels& k) {
  k = LowpKernels{};
  fill_bf16(k, std::make_integer_sequence<int, 4>{});
  k.mr = 4, k.nr = NR, k.kcg = 128, k.nc = 512;  // A strip 2 KiB in L1, B block 256 KiB in L2
  k.name = "bf16_avx2_4x16";
  k.pair_bf16 = pair_bf16_scalar;
  k.row_bf16 = row_bf16_scalar;
  return true;
}

bool lowp_avx2_int8(LowpKernels& k) {
  k = LowpKernels{};
  fill_int8(k, std::make_integer_sequence<int, 4>{});
  k.mr = 4, k.nr = NR, k.kcg = 256, k.nc = 256;  // depth 1024 per block, B block 256 KiB in L2
  k.name = "int8_avx2_4x16";
  k.quantize_row = quantize_row_avx2;
  k.quantize_two_rows = quantize_two_rows_avx2;
  k.int8_bias_relu = true;
  k.pool4_windows[0] = int8_pool4_avx2<2>, k.pool4_windows[1] = int8_pool4_avx2<1>;
  k.windows_3x3 = windows_3x3_avx2;
  return true;
}

}  // namespace forgeml::gemm::detail

#else
namespace forgeml::gemm::detail {
bool lowp_avx2_bf16(LowpKernels&) { return false; }
bool lowp_avx2_int8(LowpKernels&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
