// Portable micro-kernels of the reduced-precision GEMMs (any CPU; the compiler vectorises the
// NR loop), 4 x 16 tiles. Same arithmetic as the SIMD ones: bf16 pairs multiplied exactly and
// summed in float32; u8 x s8 quads summed in int32. Contract: lowp.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "cpu/gemm/lowp.h"

namespace forgeml::gemm::detail {
namespace {

constexpr int MR = 4, NR = 16;

template <int M>
void bf16_portable(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc,
                   bool accumulate, const LowpTile&, int, int n) {
  float acc[M][NR] = {};
  for (int64_t g = 0; g < kg; ++g, b += NR) {
    float b0[NR], b1[NR];
    for (int j = 0; j < NR; ++j) b0[j] = from_bf16(b[j] & 0xffffu), b1[j] = from_bf16(b[j] >> 16);
    for (int i = 0; i < M; ++i) {
      const uint32_t w = a[i * as + g];
      const float a0 = from_bf16(w & 0xffffu), a1 = from_bf16(w >> 16);
      for (int j = 0; j < NR; ++j) acc[i][j] += a0 * b0[j] + a1 * b1[j];
    }
  }
  for (int i = 0; i < M; ++i, c += ldc)
    for (int j = 0; j < n; ++j) c[j] = accumulate ? c[j] + acc[i][j] : acc[i][j];
}

template <int M>
void int8_portable(int64_t kg, const uint32_t* a, int64_t as, const uint32_t* b, float* c, int64_t ldc,
                   bool accumulate, const LowpTile& t, int, int n) {
  int32_t acc[M][NR] = {};
  for (int64_t g = 0; g < kg; ++g, b += NR) {
    for (int i = 0; i < M; ++i) {
      const uint32_t w = a[i * as + g];
      for (int q = 0; q < 4; ++q) {
        const int32_t aq = static_cast<int32_t>((w >> (8 * q)) & 0xffu);  // unsigned byte
        for (int j = 0; j < NR; ++j) acc[i][j] += aq * static_cast<int8_t>((b[j] >> (8 * q)) & 0xffu);
      }
    }
  }
  for (int i = 0; i < M; ++i, c += ldc)
    for (int j = 0; j < n; ++j) {
      const float v = static_cast<float>(acc[i][j] - t.corr[j]) * (t.row_scale[i] * t.col_scale[j]);
      c[j] = accumulate ? c[j] + v : v;
    }
}

template <int... I>
void fill_bf16(LowpKernels& k, std::integer_sequence<int, I...>) {
  for (int narrow = 0; narrow < 2; ++narrow) ((k.tile[narrow][I + 1] = bf16_portable<I + 1>), ...);
}
template <int... I>
void fill_int8(LowpKernels& k, std::integer_sequence<int, I...>) {
  for (int narrow = 0; narrow < 2; ++narrow) ((k.tile[narrow][I + 1] = int8_portable<I + 1>), ...);
}

}  // namespace

void pair_bf16_scalar(const float* lo, const float* hi, uint32_t* dst, int64_t n, int64_t nr, int64_t panel_stride) {
  for (int64_t j0 = 0; j0 < n; j0 += nr, dst += panel_stride)
    for (int64_t j = j0; j < std::min(n, j0 + nr); ++j) dst[j - j0] = bf16_bits(lo[j]) | bf16_bits(hi[j]) << 16;
}

void row_bf16_scalar(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<uint16_t>(bf16_bits(src[j]));
}

void lowp_portable_bf16(LowpKernels& k) {
  k = LowpKernels{};
  fill_bf16(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR, k.nr = NR, k.kcg = 128, k.nc = 256;
  k.name = "bf16_portable_4x16";
  k.pair_bf16 = pair_bf16_scalar;
  k.row_bf16 = row_bf16_scalar;
}

float quantize_row_scalar(const float* x, int64_t n, int8_t* q) {
  float amax = 0.f;
  bool finite = true;
  for (int64_t j = 0; j < n; ++j) {
    const float v = std::fabs(x[j]);
    finite &= v <= std::numeric_limits<float>::max();
    amax = std::max(amax, v);
  }
  if (!finite) return std::numeric_limits<float>::quiet_NaN();
  const float s = amax > 0.f ? amax / 127.f : 1.f;
  for (int64_t j = 0; j < n; ++j) q[j] = static_cast<int8_t>(std::clamp(std::nearbyint(x[j] / s), -127.f, 127.f));
  return s;
}

void lowp_portable_int8(LowpKernels& k) {
  k = LowpKernels{};
  fill_int8(k, std::make_integer_sequence<int, MR>{});
  k.mr = MR, k.nr = NR, k.kcg = 512, k.nc = 256;
  k.name = "int8_portable_4x16";
  k.quantize_row = quantize_row_scalar;
}

}  // namespace forgeml::gemm::detail
