// Internal to csrc/cpu/gemm: the micro-kernel contract of the bf16 and int8 GEMMs (gemm_lowp.h).
//
// Both work on 32-bit "groups" along the depth: G = 2 bf16 values or G = 4 int8 values, the unit
// that vdpbf16ps / vpdpbusd consume per lane. With Kg = ceil(K / G) groups (the tail zero-padded):
//   a: op(A) converted row-major, group g of row i at a[i * as + g] (int8: stored as unsigned,
//      A + 128, because vpdpbusd multiplies unsigned by signed bytes)
//   b: a packed panel of NR columns, group g of column j at b[g * NR + j] (columns past n zero)
// A tile computes acc[i][j] = sum over kg groups, then
//   bf16: c[i, j] (+)= acc                                    (+= when accumulate)
//   int8: c[i, j] (+)= (acc - corr[j]) * row_scale[i] * col_scale[j],  corr[j] = 128 sum of B[k, j]
//         over the depth block's k
// for rows i < m, columns j < n; the pointers row_scale, col_scale and corr start at the tile.
#pragma once
#include <cstdint>

#include "forgeml/cpu_features.h"

namespace forgeml::gemm::detail {

struct LowpTile {
  const float* row_scale = nullptr;  // int8 only
  const float* col_scale = nullptr;
  const int32_t* corr = nullptr;
  // int8 tiles of kernels with int8_bias_relu, on the last depth block: then c = max(0, c + bias[j])
  // (relu) or c + bias[j], the same float operations as the separate bias_act pass it replaces
  const float* bias = nullptr;
  bool relu = false;
};

using LowpKernel = void (*)(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc,
                            bool accumulate, const LowpTile& t, int m, int n);
constexpr int kLowpMaxMR = 16;

struct LowpKernels {
  LowpKernel tile[2][kLowpMaxMR + 1];  // [narrow: n <= NR / 2][m]
  int mr, nr;
  int kcg, nc;  // depth block in groups, columns per block
  const char* name;
  bool int8_bias_relu = false;  // the int8 tiles apply LowpTile's bias and relu
  // int8, optional: tiles of m = 4, 8, 12 rows ([narrow][m / 4]) whose epilogue takes the int32
  // maximum of each 4 consecutive rows (a 2 x 2 pooling window; their row scales are equal) and
  // writes one row per window: c row w = epilogue(max of acc rows 4w .. 4w + 3). With positive
  // scales and relu / no activation the epilogue is monotonic, so this is exactly the maximum of
  // the 4 epilogue rows. One depth block only (no accumulate).
  LowpKernel pool4[2][4] = {};
  // int8, optional, instead of pool4: the same for any m (a multiple of 4) in one call, window w
  // from rows 4w .. 4w + 3 into c row w (ldc apart), its row scale row_scale[4w].
  LowpKernel pool4_windows[2] = {};
  // int8, optional: the pool4 operand of a 3 x 3, stride 1, undilated single-channel convolution:
  // for each 2 x 2 window (row-major, oh x ow of them; window (py, px) at img + 2 py line + 2 px in
  // the bordered byte image) its four patch rows of 12 bytes (9 pixels row-major, then 3 zeros) in
  // the order top left, top right, bottom left, bottom right, 48 bytes a window into d
  void (*windows_3x3)(const uint8_t* img, int64_t line, int64_t oh, int64_t ow, uint8_t* d) = nullptr;
  // bf16 only: for j < n, word j % nr of panel j / nr (panels panel_stride words apart) =
  // bf16(lo[j]) | bf16(hi[j]) << 16: two rows of B into their panels (nr a multiple of 16)
  void (*pair_bf16)(const float* lo, const float* hi, uint32_t* dst, int64_t n, int64_t nr,
                    int64_t panel_stride) = nullptr;
  // bf16 only: dst[j] = bf16(src[j]) for j < n (a row-major A's row is already in group order)
  void (*row_bf16)(const float* src, uint16_t* dst, int64_t n) = nullptr;
  // int8 only: q[k] = clamp(rint(x[k] / s)) for the row's s = max|x| / 127 (1 when all zero);
  // returns s, or NaN when the row holds NaN or infinity.
  float (*quantize_row)(const float* x, int64_t n, int8_t* q) = nullptr;
  // int8, optional: quantize_row of two rows (s[0], s[1]: their returns), the same codes.
  void (*quantize_two_rows)(const float* x0, const float* x1, int64_t n, int8_t* q0, int8_t* q1, float* s) = nullptr;
};

float quantize_row_scalar(const float* x, int64_t n, int8_t* q);

namespace {  // internal linkage: the ISA units compile it too (forgeml/isa_local.h)
// The scalar end of a vector quantize_row's scan: amax taken over |x[j0, n)| too, then the row's
// scale amax / 127 (1 for an all-zero row), or NaN when one of those values is NaN or infinite.
inline float finish_row_scale(const float* x, int64_t j0, int64_t n, float amax) {
  for (int64_t t = j0; t < n; ++t) {
    const float v = __builtin_fabsf(x[t]);
    if (!(v <= 3.4028235e38f)) return __builtin_nanf("");
    amax = v > amax ? v : amax;
  }
  return amax > 0.f ? amax / 127.f : 1.f;
}
}  // namespace

void pair_bf16_scalar(const float* lo, const float* hi, uint32_t* dst, int64_t n, int64_t nr, int64_t panel_stride);
void row_bf16_scalar(const float* src, uint16_t* dst, int64_t n);

// kind: 0 = bf16, 1 = int8. isa != reference; avx512 falls back to avx2 where the CPU lacks the
// instructions (avx512_bf16 / avx512_vnni).
const LowpKernels& lowp_kernels_for(Isa isa, int kind);

bool lowp_avx512_bf16(LowpKernels& k);
bool lowp_avx512_int8(LowpKernels& k);
bool lowp_avx2_bf16(LowpKernels& k);
bool lowp_avx2_int8(LowpKernels& k);
void lowp_portable_bf16(LowpKernels& k);
void lowp_portable_int8(LowpKernels& k);

// float32 -> bfloat16 bits, round to nearest even (NaN stays NaN).
inline uint16_t to_bf16(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
// The same without a branch, so packing loops vectorise.
inline uint32_t bf16_bits(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : rounded;
}
inline float from_bf16(uint32_t h) {
  uint32_t u = h << 16;
  float x;
  __builtin_memcpy(&x, &u, 4);
  return x;
}

}  // namespace forgeml::gemm::detail
