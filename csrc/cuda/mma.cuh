// Warp-wide tensor-core products on 16 x 8 tiles of D: the PTX mma.sync instructions on sm_80 and
// later, and the same sums through warp shuffles elsewhere (the SIMT emulator; kernels that call
// these are launched on sm_80+ devices only). Fragments, per the PTX ISA (lane = 4 g + t, g = lane
// / 4, t = lane % 4; packed elements in order from the low bits):
//   bf16, m16n8k16 (each uint32 two bf16):
//     a[0]: A[g][2t, 2t+1]     a[1]: A[g+8][2t, 2t+1]   a[2]: A[g][2t+8, 2t+9]  a[3]: A[g+8][2t+8, 2t+9]
//     b[0]: B[2t, 2t+1][g]     b[1]: B[2t+8, 2t+9][g]
//   int8, m16n8k32: the bf16 m16n8k16 layout counted in 32-bit words (word w = depths 4w .. 4w+3):
//     a[0]: A[g][word t]  a[1]: A[g+8][word t]  a[2]: A[g][word t+4]  a[3]: A[g+8][word t+4]
//     b[0]: B[word t][g]  b[1]: B[word t+4][g]
//   both: d[0], d[1]: D[g][2t, 2t+1]   d[2], d[3]: D[g+8][2t, 2t+1]
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

// sum of the four signed byte products of a and b, plus c (the dp4a instruction).
__device__ __forceinline__ int dot4_i8(int a, int b, int c) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
  return __dp4a(a, b, c);
#else
#pragma unroll
  for (int q = 0; q < 4; ++q)
    c += static_cast<int>(static_cast<int8_t>(a >> (8 * q))) * static_cast<int>(static_cast<int8_t>(b >> (8 * q)));
  return c;
#endif
}

// The bf16 m16n8k16 shape's word layout on int8: 32 depths per product.
__device__ __forceinline__ void mma_s8_m16n8k32(int (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  for (int q = 0; q < 4; ++q) {  // words q and q + 4: held by lanes 4 g + q (A) and 4 n + q (B)
    uint32_t ra[4];
    for (int r = 0; r < 4; ++r) ra[r] = __shfl_sync(0xffffffffu, a[r], 4 * g + q);
    for (int j = 0; j < 2; ++j) {
      const uint32_t b0 = __shfl_sync(0xffffffffu, b[0], 4 * (2 * t + j) + q);
      const uint32_t b1 = __shfl_sync(0xffffffffu, b[1], 4 * (2 * t + j) + q);
      for (int h = 0; h < 2; ++h) {
        int s = dot4_i8(static_cast<int>(ra[h]), static_cast<int>(b0), d[2 * h + j]);
        d[2 * h + j] = dot4_i8(static_cast<int>(ra[h + 2]), static_cast<int>(b1), s);
      }
    }
  }
#endif
}

// Four 8 x 8 matrices of 16-bit elements (8 rows of 4 words each) from shared memory into the
// fragment layout: lane l passes the address of row l % 8 of matrix l / 8 (16 aligned bytes), and
// r[i] of lane 4 g + t receives word t of row g of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const uint32_t* row) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#else
  const int lane = static_cast<int>(threadIdx.x % 32);
  const auto mine = reinterpret_cast<unsigned long long>(row);  // NOLINT: the shuffle takes integers
  for (int i = 0; i < 4; ++i)
    r[i] = reinterpret_cast<const uint32_t*>(__shfl_sync(0xffffffffu, mine, 8 * i + lane / 4))[lane % 4];
#endif
}

// 16 bytes global -> shared without passing through registers (cp.async, sm_80+); both addresses
// 16-byte aligned. Complete only after cp_async_wait; elsewhere a plain copy.
__device__ __forceinline__ void cp_async16(uint32_t* smem, const uint32_t* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(gmem) : "memory");
#else
  for (int i = 0; i < 4; ++i) smem[i] = gmem[i];
#endif
}

// Closes the group of cp_async16 issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

}  // namespace forgeml::cuda
