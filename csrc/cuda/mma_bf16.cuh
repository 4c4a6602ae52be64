// One warp-wide tensor-core product, D (16 x 8, float32) += A (16 x 16, bf16) B (16 x 8, bf16): the
// PTX instruction mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 on sm_80 and later, and the
// same sum through warp shuffles elsewhere (the SIMT emulator; kernels that call this are launched
// on sm_80+ devices only). Fragments, per the PTX ISA (lane = 4 g + t, g = lane / 4, t = lane % 4;
// each uint32 holds two bf16, the lower index in the low half):
//   a[0]: A[g][2t, 2t+1]       a[1]: A[g+8][2t, 2t+1]
//   a[2]: A[g][2t+8, 2t+9]     a[3]: A[g+8][2t+8, 2t+9]
//   b[0]: B[2t, 2t+1][g]       b[1]: B[2t+8, 2t+9][g]
//   d[0], d[1]: D[g][2t, 2t+1] d[2], d[3]: D[g+8][2t, 2t+1]
#pragma once
#include <cstdint>

namespace forgeml::cuda {

// float32 -> bf16 bits, rounded to nearest even; a NaN stays a (quiet) NaN.
__device__ __forceinline__ uint32_t bf16_bits(float x) {
  const uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; }

__device__ __forceinline__ float bf16_lo(uint32_t p) { return __uint_as_float(p << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t p) { return __uint_as_float(p & 0xffff0000u); }

__device__ __forceinline__ void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  // Lane 4 g + q holds rows g and g + 8 of A at depths 2q, 2q + 1 (+8); lane 4 n + q holds column n
  // of B at the same depths. Every lane runs the same shuffles, so the warp stays converged.
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  for (int q = 0; q < 4; ++q) {
    uint32_t ra[4];
    for (int r = 0; r < 4; ++r) ra[r] = __shfl_sync(0xffffffffu, a[r], 4 * g + q);
    for (int j = 0; j < 2; ++j) {
      const uint32_t b0 = __shfl_sync(0xffffffffu, b[0], 4 * (2 * t + j) + q);
      const uint32_t b1 = __shfl_sync(0xffffffffu, b[1], 4 * (2 * t + j) + q);
      for (int h = 0; h < 2; ++h) {  // h = 0: row g (a[0], a[2]); h = 1: row g + 8 (a[1], a[3])
        float s = d[2 * h + j];
        s = fmaf(bf16_lo(ra[h]), bf16_lo(b0), s);
        s = fmaf(bf16_hi(ra[h]), bf16_hi(b0), s);
        s = fmaf(bf16_lo(ra[h + 2]), bf16_lo(b1), s);
        s = fmaf(bf16_hi(ra[h + 2]), bf16_hi(b1), s);
        d[2 * h + j] = s;
      }
    }
  }
#endif
}

}  // namespace forgeml::cuda
