// AVX-512 micro-kernels of the reduced-precision GEMMs, 12 x 32 tiles (contract: lowp.h):
//   bf16_avx512_12x32: vdpbf16ps, two bf16 products per float32 lane per instruction;
//   int8_avx512_12x32: vpdpbusd (VNNI), four u8 x s8 products per int32 lane per instruction.
// Per depth group: two zmm of B, one 32-bit broadcast of A per row, 24 accumulators. The B panel
// is padded to full width, so only the stores are masked. Compiled for avx512_bf16 / vnni here
// and used only when cpuid reports them.
#include "cpu/gemm/lowp.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <utility>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni")

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 12, NR = 32;

__mmask16 lane_mask(int n, int v) {
  const int rem = n - 16 * v;
  return rem >= 16 ? 0xffff : rem <= 0 ? 0 : static_cast<__mmask16>((1u << rem) - 1);
}

// bf16_avx512_<M>x<16*NV>
template <int M, int NV>
void bf16_avx512(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc, bool accumulate,
                 const LowpTile&, int, int n) {
  __m512 acc[M][NV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t g = 0; g < kg; ++g, b += NR) {
    __m512bh bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i * as + g]));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mk = lane_mask(n, v);
      float* p = c + i * ldc + 16 * v;
      __m512 r = accumulate ? _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mk, p)) : acc[i][v];
      _mm512_mask_storeu_ps(p, mk, r);
    }
}

// acc += u8(a) . s8(b) per int32 lane. Inline asm because GCC 12 copies the accumulator around
// every _mm512_dpbusd_epi32 in this loop (twice the instructions, half the speed).
inline __attribute__((always_inline)) void dpbusd(__m512i& acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

// acc (M x 16*NV int32) = the sums over kg groups of a's rows times b's panel.
template <int M, int NV>
inline __attribute__((always_inline)) void int8_sums(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b,
                                                     __m512i (&acc)[M][NV]) {
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int64_t g = 0; g < kg; ++g, b += NR) {
    __m512i bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m512i ai = _mm512_set1_epi32(static_cast<int>(a[i * as + g]));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) dpbusd(acc[i][v], ai, bv[v]);
    }
  }
}

// int8_avx512_<M>x<16*NV>
template <int M, int NV>
void int8_avx512(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc, bool accumulate,
                 const LowpTile& t, int, int n) {
  __m512i acc[M][NV];
  int8_sums<M, NV>(kg, a, as, b, acc);
  __m512 cs[NV], bias[NV];
  __m512i corr[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const __mmask16 mk = lane_mask(n, v);
    cs[v] = _mm512_maskz_loadu_ps(mk, t.col_scale + 16 * v);
    corr[v] = _mm512_maskz_loadu_epi32(mk, t.corr + 16 * v);
    bias[v] = t.bias ? _mm512_maskz_loadu_ps(mk, t.bias + 16 * v) : _mm512_setzero_ps();
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    const __m512 rs = _mm512_set1_ps(t.row_scale[i]);
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mk = lane_mask(n, v);
      float* p = c + i * ldc + 16 * v;
      __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][v], corr[v])), _mm512_mul_ps(rs, cs[v]));
      if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, p));
      if (t.bias) r = _mm512_add_ps(r, bias[v]);          // bias_act's x + bias
      if (t.relu) r = _mm512_max_ps(_mm512_setzero_ps(), r);  // and its relu (NaN passes)
      _mm512_mask_storeu_ps(p, mk, r);
    }
  }
}

// int8_avx512_<M>x<16*NV> with the 2 x 2 window epilogue (lowp.h: pool4); M = 4, 8 or 12.
template <int M, int NV>
void int8_pool4_avx512(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc, bool,
                       const LowpTile& t, int, int n) {
  __m512i acc[M][NV];
  int8_sums<M, NV>(kg, a, as, b, acc);
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const __mmask16 mk = lane_mask(n, v);
    const __m512 cs = _mm512_maskz_loadu_ps(mk, t.col_scale + 16 * v);
    const __m512i corr = _mm512_maskz_loadu_epi32(mk, t.corr + 16 * v);
    const __m512 bias = t.bias ? _mm512_maskz_loadu_ps(mk, t.bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int w = 0; w < M / 4; ++w) {
      const __m512i mx = _mm512_max_epi32(_mm512_max_epi32(acc[4 * w][v], acc[4 * w + 1][v]),
                                          _mm512_max_epi32(acc[4 * w + 2][v], acc[4 * w + 3][v]));
      const __m512 rs = _mm512_set1_ps(t.row_scale[4 * w]);
      __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(mx, corr)), _mm512_mul_ps(rs, cs));
      if (t.bias) r = _mm512_add_ps(r, bias);
      if (t.relu) r = _mm512_max_ps(_mm512_setzero_ps(), r);
      _mm512_mask_storeu_ps(c + w * ldc + 16 * v, mk, r);
    }
  }
}

template <template <int, int> class F, int... I>
void fill(LowpKernels& k, std::integer_sequence<int, I...>) {
  ((k.tile[0][I + 1] = F<I + 1, 2>::fn), ...);
  ((k.tile[1][I + 1] = F<I + 1, 1>::fn), ...);
}
template <int M, int NV>
struct Bf16 {
  static constexpr LowpKernel fn = bf16_avx512<M, NV>;
};
template <int M, int NV>
struct Int8 {
  static constexpr LowpKernel fn = int8_avx512<M, NV>;
};

// Round to nearest even in integer arithmetic (NaN stays a quiet NaN), 16 pairs per step.
__m512i bf16_round(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i r = _mm512_srli_epi32(
      _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(u, 16),
                                                                                        _mm512_set1_epi32(1)))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

// vcvtne2ps2bf16 rounds 32 values per instruction as bf16_round does (nearest even, NaN made
// quiet), except that it reads denormal inputs as zero, while the rounding may carry one up to
// the smallest normal bf16: a block holding a denormal takes bf16_round instead.
bool has_denormal(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  return _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)) &
         _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007fffff));
}

// One vcvtne2ps2bf16 rounds lo and hi into a word vector (lo in words 0-15, hi in 16-31) and one
// vpermw interleaves them into pairs; a block holding a denormal takes bf16_round (see above).
void pair_bf16_avx512(const float* lo, const float* hi, uint32_t* dst, int64_t n, int64_t nr, int64_t panel_stride) {
  alignas(64) static constexpr uint16_t kInterleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                           8,  24, 9,  25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  int64_t j = 0, col = 0;  // col: j's word within the panel at dst
  for (; j + 16 <= n; j += 16) {
    const __m512 l = _mm512_loadu_ps(lo + j), h = _mm512_loadu_ps(hi + j);
    const __m512i w = has_denormal(l) || has_denormal(h)
                          ? _mm512_or_si512(bf16_round(l), _mm512_slli_epi32(bf16_round(h), 16))
                          : _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(h, l));
    _mm512_storeu_si512(dst + col, w);
    if ((col += 16) == nr) col = 0, dst += panel_stride;
  }
  if (j < n) pair_bf16_scalar(lo + j, hi + j, dst + col, n - j, nr, panel_stride);
}

void row_bf16_avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 lo = _mm512_loadu_ps(src + j), hi = _mm512_loadu_ps(src + j + 16);
    if (has_denormal(lo) || has_denormal(hi)) break;
    _mm512_storeu_si512(dst + j, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
  for (; j + 16 <= n; j += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), _mm512_cvtepi32_epi16(bf16_round(_mm512_loadu_ps(src + j))));
  if (j < n) row_bf16_scalar(src + j, dst + j, n - j);
}

// The scalar version's arithmetic (true division, round to nearest even), 16 lanes at a time.
float quantize_row_avx512(const float* x, int64_t n, int8_t* q) {
  const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vmax = _mm512_setzero_ps();
  __mmask16 bad = 0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_and_ps(_mm512_loadu_ps(x + j), absmask);
    bad |= _mm512_cmp_ps_mask(v, _mm512_set1_ps(3.4028235e38f), _CMP_NLE_UQ);  // inf or NaN
    vmax = _mm512_max_ps(vmax, v);
  }
  if (bad) return __builtin_nanf("");
  const float s = finish_row_scale(x, j, n, _mm512_reduce_max_ps(vmax));
  if (s != s) return s;  // NaN or infinity in the row
  const __m512 vs = _mm512_set1_ps(s), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
  for (j = 0; j + 16 <= n; j += 16) {
    __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + j), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r)));
  }
  if (j < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - j)) - 1);
    __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(m, x + j), vs),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    _mm512_mask_cvtsepi32_storeu_epi8(q + j, m, _mm512_cvtps_epi32(r));
  }
  return s;
}

}  // namespace

bool lowp_avx512_bf16(LowpKernels& k) {
  if (!__builtin_cpu_supports("avx512bf16")) return false;
  k = LowpKernels{};
  fill<Bf16>(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR, k.nr = NR, k.kcg = 256, k.nc = 256;  // B block 256 x 256 groups (256 KiB) in L2
  k.name = "bf16_avx512_12x32";
  k.pair_bf16 = pair_bf16_avx512;
  k.row_bf16 = row_bf16_avx512;
  return true;
}

bool lowp_avx512_int8(LowpKernels& k) {
  if (!__builtin_cpu_supports("avx512vnni")) return false;
  k = LowpKernels{};
  fill<Int8>(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR, k.nr = NR, k.kcg = 512, k.nc = 128;  // depth 2048 per block (int32-exact), 256 KiB of B
  k.name = "int8_avx512_12x32";
  k.quantize_row = quantize_row_avx512;
  k.int8_bias_relu = true;
  k.pool4[0][1] = int8_pool4_avx512<4, 2>, k.pool4[0][2] = int8_pool4_avx512<8, 2>;
  k.pool4[0][3] = int8_pool4_avx512<12, 2>;
  k.pool4[1][1] = int8_pool4_avx512<4, 1>, k.pool4[1][2] = int8_pool4_avx512<8, 1>;
  k.pool4[1][3] = int8_pool4_avx512<12, 1>;
  return true;
}

}  // namespace forgeml::gemm::detail

#pragma GCC pop_options

#else
namespace forgeml::gemm::detail {
bool lowp_avx512_bf16(LowpKernels&) { return false; }
bool lowp_avx512_int8(LowpKernels&) { return false; }
}  // namespace forgeml::gemm::detail
#endif
