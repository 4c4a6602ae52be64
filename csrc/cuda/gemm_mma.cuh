// The tensor-core main loop behind gemm_bf16 / gemm_int8 (sm_80+), and the pre-pass that feeds it.
//
// pack_rows_kernel / pack_cols_kernel rewrite op(A) (M x K) and op(B)^T (N x K) as rows of
// 32-bit words along K (two bf16 rounded to nearest even, or four int8), zero-padded to whole
// tiles: rows to a multiple of 128, words to a multiple of 16. The main loop then needs no bounds
// checks and no conversions: every load is a 16-byte cp.async of a full tile row piece.
//
// gemm_mma_kernel: one 128 x 128 tile of C per block of 128 threads (4 warps, 2 x 2, each a
// 64 x 64 corner = 4 x 8 mma products of 16 x 8). A depth step is 16 words (32 bf16 / 64 int8);
// kTcStages steps are in flight in shared memory (cp.async groups), rows padded to 20 words so
// that ldmatrix's eight 16-byte row reads and cp.async's row writes fall in distinct banks.
// Per step and warp: 2 x (4 + 4) ldmatrix.x4 and 2 x 32 mma, i.e. 128 bytes of shared reads per
// mma (a 64 x 32 corner needs 192, more than Hopper's 128 bytes per clock of shared bandwidth
// feeds at the mma.sync rate); per step and block 16 KiB of loads, 8 cp.async per thread.
#pragma once
#include <cstdint>

#include "cuda/launch.cuh"
#include "cuda/mma.cuh"

namespace forgeml::cuda {

constexpr int kTcBM = 128, kTcBN = 128, kTcThreads = 128, kTcStages = 4;
constexpr int kTcNT = 8;                                     // n-tiles of 8 per warp: a warp's corner is 64 x 64
constexpr int kTcStepWords = 16, kTcLdw = kTcStepWords + 4;  // words per depth step; padded row
constexpr int kTcStageWords = (kTcBM + kTcBN) * kTcLdw;
constexpr int kTcSmemBytes = kTcStages * kTcStageWords * 4;  // 80 KiB: two blocks fit an SM

// The two products on the same word layout (mma.cuh): 16 bf16 or 32 int8 depths per mma.
struct MmaBf16 {
  using Acc = float;
  __device__ __forceinline__ static void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_bf16_m16n8k16(d, a, b);
  }
};
struct MmaS8 {
  using Acc = int;
  __device__ __forceinline__ static void run(int (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_s8_m16n8k32(d, a, b);
  }
};

// 16 bytes of packed words from E consecutive depths: bf16 pairs (E = 8) or int8 quads (E = 16).
__device__ __forceinline__ uint4 pack_chunk(const float (&v)[8]) {
  return make_uint4(bf16_pair(v[0], v[1]), bf16_pair(v[2], v[3]), bf16_pair(v[4], v[5]), bf16_pair(v[6], v[7]));
}
__device__ __forceinline__ uint4 pack_chunk(const int8_t (&v)[16]) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    w[i] = uint32_t(uint8_t(v[4 * i])) | uint32_t(uint8_t(v[4 * i + 1])) << 8 | uint32_t(uint8_t(v[4 * i + 2])) << 16 |
           uint32_t(uint8_t(v[4 * i + 3])) << 24;
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// dst (Rp x Kw words, row-major) from the R x K operand X[r][k] = src[r ld + k], zero outside
// R x K. One thread per 16-byte chunk, consecutive threads along a row: reads and writes both
// contiguous; vec (src 16-byte aligned, ld a multiple of 16 bytes) reads whole chunks at once.
template <class T>
__global__ void __launch_bounds__(256) pack_rows_kernel(const T* __restrict__ src, int64_t ld, int64_t R, int64_t K,
                                                        uint32_t* __restrict__ dst, int64_t Rp, int64_t Kw, bool vec) {
  constexpr int E = 16 / (sizeof(T) == 4 ? 2 : 1);  // depths per chunk
  const int64_t chunks = Kw / 4, total = Rp * chunks;
  for (int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; q < total; q += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = q / chunks, c = q % chunks, k0 = c * E;
    uint4* to = reinterpret_cast<uint4*>(dst + r * Kw + 4 * c);
    T v[E];
    if (vec && r < R && k0 + E <= K) {
      const uint4* from = reinterpret_cast<const uint4*>(src + r * ld + k0);
      if constexpr (sizeof(T) == 1) {  // already four int8 per word, in depth order
        *to = *from;
        continue;
      } else {
        const uint4 lo = from[0], hi = from[1];
        const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int e = 0; e < E; ++e) v[e] = __uint_as_float(w[e]);
      }
    } else {
#pragma unroll
      for (int e = 0; e < E; ++e) v[e] = r < R && k0 + e < K ? src[r * ld + k0 + e] : T(0);
    }
    *to = pack_chunk(v);
  }
}

// The same from X[r][k] = src[k ld + r] (depth is the strided dimension): 64 rows x 16 words per
// block step, through shared memory so that the reads run along r (coalesced) and each thread
// writes one 16-byte chunk, four threads per 64-byte row piece.
template <class T>
__global__ void __launch_bounds__(256) pack_cols_kernel(const T* __restrict__ src, int64_t ld, int64_t R, int64_t K,
                                                        uint32_t* __restrict__ dst, int64_t Rp, int64_t Kw) {
  constexpr int E = 16 / (sizeof(T) == 4 ? 2 : 1), TR = 64, TK = 4 * E;  // TK depths = 16 words
  __shared__ T tile[TR][TK + 4 / sizeof(T)];  // one word of padding: the column reads spread over banks
  const int64_t row_tiles = Rp / TR, tiles = row_tiles * (Kw / 16);
  const int tid = static_cast<int>(threadIdx.x);
  for (int64_t b = blockIdx.x; b < tiles; b += gridDim.x) {
    const int64_t r0 = b % row_tiles * TR, k0 = b / row_tiles * TK;
    const int r = tid % TR;
#pragma unroll
    for (int k = tid / TR; k < TK; k += 256 / TR) {
      const int64_t gr = r0 + r, gk = k0 + k;
      tile[r][k] = gr < R && gk < K ? src[gk * ld + gr] : T(0);
    }
    __syncthreads();
    const int wr = tid / 4, c = tid % 4;
    T v[E];
#pragma unroll
    for (int e = 0; e < E; ++e) v[e] = tile[wr][E * c + e];
    *reinterpret_cast<uint4*>(dst + (r0 + wr) * Kw + k0 * 4 / E + 4 * c) = pack_chunk(v);
    __syncthreads();  // the tile is refilled next step
  }
}

// C tile at (blockIdx.y, blockIdx.x) from packed A (Mp x Kw) and B (Np x Kw); out(row, col, both,
// acc0, acc1) for the outputs (row, col) and, when both, (row, col + 1); row < M, col < N. Dynamic shared memory:
// kTcSmemBytes.
template <class Mma, class Out>
__global__ void __launch_bounds__(kTcThreads)
    gemm_mma_kernel(int64_t M, int64_t N, int64_t Kw, const uint32_t* __restrict__ A, const uint32_t* __restrict__ B,
                    Out out) {
  using Acc = typename Mma::Acc;
  FORGEML_DYNAMIC_SHARED(uint4, smem4);
  uint32_t* smem = reinterpret_cast<uint32_t*>(smem4);
  const int64_t m0 = int64_t(blockIdx.y) * kTcBM, n0 = int64_t(blockIdx.x) * kTcBN;
  const uint32_t* Ag = A + m0 * Kw;
  const uint32_t* Bg = B + n0 * Kw;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int wm = (warp >> 1) * 64, wn = (warp & 1) * 64;
  const int steps = static_cast<int>(Kw / kTcStepWords);

  // Each thread copies 2 + 2 of the 512 + 512 16-byte pieces of a step: 4 per row.
  auto load = [&](int stage, int step) {
    uint32_t* As = smem + stage * kTcStageWords;
    uint32_t* Bs = As + kTcBM * kTcLdw;
    const int64_t k = int64_t(step) * kTcStepWords;
#pragma unroll
    for (int p = 0; p < kTcBM * 4 / kTcThreads; ++p) {
      const int q = tid + p * kTcThreads, r = q >> 2, c = (q & 3) * 4;
      cp_async16(As + r * kTcLdw + c, Ag + r * Kw + k + c);
      cp_async16(Bs + r * kTcLdw + c, Bg + r * Kw + k + c);
    }
  };

  Acc acc[4][kTcNT][4];
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < kTcNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = Acc(0);

#pragma unroll
  for (int s = 0; s < kTcStages - 1; ++s) {
    if (s < steps) load(s, s);
    cp_async_commit();  // empty groups too, so the wait count below stays exact
  }
  // ldmatrix row addresses (words, within a stage): A matrices i = rows +8 (i & 1), words +4 (i >> 1);
  // B matrices i = columns +8 (i >> 1), words +4 (i & 1), so regs 0, 1 / 2, 3 are two n-tiles' b.
  const int mi = lane >> 3, mr = lane & 7;
  const int a_off = (wm + (mi & 1) * 8 + mr) * kTcLdw + (mi >> 1) * 4;
  const int b_off = kTcBM * kTcLdw + (wn + (mi >> 1) * 8 + mr) * kTcLdw + (mi & 1) * 4;
  for (int step = 0; step < steps; ++step) {
    cp_async_wait<kTcStages - 2>();  // this thread's pieces of `step` have landed
    __syncthreads();                 // everyone's have, and everyone is done with step - 1's stage
    if (step + kTcStages - 1 < steps) load((step + kTcStages - 1) % kTcStages, step + kTcStages - 1);
    cp_async_commit();
    const uint32_t* S = smem + (step % kTcStages) * kTcStageWords;
#pragma unroll
    for (int ks = 0; ks < kTcStepWords; ks += 8) {  // 8 words per mma depth
      uint32_t a[4][4], b[kTcNT][2];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) ldmatrix_x4(a[mt], S + a_off + 16 * mt * kTcLdw + ks);
#pragma unroll
      for (int np = 0; np < kTcNT / 2; ++np) {
        uint32_t r[4];
        ldmatrix_x4(r, S + b_off + 16 * np * kTcLdw + ks);
        b[2 * np][0] = r[0], b[2 * np][1] = r[1], b[2 * np + 1][0] = r[2], b[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < kTcNT; ++nt) Mma::run(acc[mt][nt], a[mt], b[nt]);
    }
  }
  cp_async_wait<0>();  // no copy outlives the block (the groups left are empty)

  // Each lane holds column pairs (2t, 2t + 1): out stores both at once where both are inside.
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < kTcNT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + wm + 16 * mt + g + 8 * h, col = n0 + wn + 8 * nt + 2 * t;
        if (row < M && col < N) out(row, col, col + 1 < N, acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
}

}  // namespace forgeml::cuda
