// The SGEMM kernel templates behind gemm.cuh's sgemm, for .cu files (and the emulator): another
// family launches the SGEMM with its own epilogue functor through sgemm_launch, e.g. recurrent
// gates fused into the matmul that feeds them (rnn.cu), or the kernel rows of the SVM (svm.cu).
#pragma once
#include "cuda/gemm.cuh"
#include "cuda/launch.cuh"
#include "forgeml/check.h"

namespace forgeml::cuda {

// Block tile BM x BN, K step BK; each of the (BM/TM)(BN/TN) threads owns TM x TN outputs, as
// float4 groups strided across the tile (so a warp's shared-memory reads do not conflict).
template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct SgemmTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  static constexpr int kPad = 4;  // shared rows stay 16-byte aligned; transposed stores spread over banks
  static_assert(TM % 4 == 0 && TN % 4 == 0 && BM % TM == 0 && BN % TN == 0 && BK % 4 == 0);
  static_assert(kThreads <= 1024);
};
using SgemmTileLarge = SgemmTile<128, 128, 8, 8, 8>;  // 256 threads, 64 outputs each
using SgemmTileSmall = SgemmTile<64, 64, 8, 4, 4>;    // 256 threads, more blocks for small C

// The epilogue forgeml.ops.matmul uses: bias (length N, or null), then the activation.
struct BiasActivation {
  const float* bias;
  int activation;
  __device__ __forceinline__ float operator()(int64_t, int64_t col, float v) const {
    if (bias) v += bias[col];
    switch (activation) {
      case 1:
        return v < 0.0f ? 0.0f : v;  // NaN stays NaN (Keras/NumPy)
      case 2:
        return 1.0f / (1.0f + expf(-v));
      case 3:
        return tanhf(v);
      case 4:
        return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
      default:
        return v;
    }
  }
};

// ---------------------------------------------------------------- kernels

// Moves the R x C tile at (r0, c0) of a row-major matrix g (leading dimension ld; zero where
// row >= rmax or col >= cmax) into shared memory in two steps, so the global loads of the next
// tile overlap the math on this one: load() into registers, later store() as s[r][c] (row stride
// C + kPad) or, when kTransposed, s[c][r] (row stride R + kPad). float4 loads when vec (g 16-byte
// aligned, ld % 4 == 0) and the four values are in bounds.
template <int R, int C, bool kTransposed, int kThreads, int kPad>
struct SgemmTileLoader {
  static constexpr int kVecs = R * C / 4, kPerThread = (kVecs + kThreads - 1) / kThreads;
  float4 v[kPerThread];

  __device__ __forceinline__ void load(const float* __restrict__ g, int64_t ld, int64_t r0, int64_t c0, int64_t rmax,
                                       int64_t cmax, bool vec) {
#pragma unroll
    for (int p = 0; p < kPerThread; ++p) {
      const int q = threadIdx.x + p * kThreads;
      if (q >= kVecs) break;
      const int64_t gr = r0 + q / (C / 4), gc = c0 + q % (C / 4) * 4;
      if (vec && gr < rmax && gc + 3 < cmax) {
        v[p] = *reinterpret_cast<const float4*>(g + gr * ld + gc);
      } else {
        const float* row = g + gr * ld;
        const bool in = gr < rmax;
        v[p] = make_float4(in && gc < cmax ? row[gc] : 0.0f, in && gc + 1 < cmax ? row[gc + 1] : 0.0f,
                           in && gc + 2 < cmax ? row[gc + 2] : 0.0f, in && gc + 3 < cmax ? row[gc + 3] : 0.0f);
      }
    }
  }

  __device__ __forceinline__ void store(float* s) const {
#pragma unroll
    for (int p = 0; p < kPerThread; ++p) {
      const int q = threadIdx.x + p * kThreads;
      if (q >= kVecs) break;
      const int r = q / (C / 4), c = q % (C / 4) * 4;
      if (kTransposed) {
        s[(c + 0) * (R + kPad) + r] = v[p].x;
        s[(c + 1) * (R + kPad) + r] = v[p].y;
        s[(c + 2) * (R + kPad) + r] = v[p].z;
        s[(c + 3) * (R + kPad) + r] = v[p].w;
      } else {
        *reinterpret_cast<float4*>(&s[r * (C + kPad) + c]) = v[p];
      }
    }
  }
};

// grid (ceil(N / BN), ceil(M / BM)), block Tile::kThreads. vec_ab: A and B allow float4 loads;
// vec_c: C allows float4 loads and stores. Shared memory is double-buffered: one barrier per K step.
template <class Tile, bool kTransA, bool kTransB, class Epilogue>
__global__ void __launch_bounds__(Tile::kThreads)
    sgemm_kernel(int64_t M, int64_t N, int64_t K, float alpha, const float* __restrict__ A, int64_t lda,
                 const float* __restrict__ B, int64_t ldb, float beta, float* __restrict__ C, int64_t ldc, bool vec_ab,
                 bool vec_c, Epilogue epilogue) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, TM = Tile::TM, TN = Tile::TN, kPad = Tile::kPad;
  constexpr int kThreads = Tile::kThreads;
  constexpr int kRowStride = BM / (TM / 4), kColStride = BN / (TN / 4);  // between a thread's float4 groups
  __shared__ __align__(16) float As[2][BK * (BM + kPad)];                // op(A) tile, k-major: As[k][m]
  __shared__ __align__(16) float Bs[2][BK * (BN + kPad)];                // op(B) tile: Bs[k][n]
  // op(A) tile: A's rows are m (transposed into As) or, when kTransA, k; likewise for B.
  SgemmTileLoader<kTransA ? BK : BM, kTransA ? BM : BK, !kTransA, kThreads, kPad> a_loader;
  SgemmTileLoader<kTransB ? BN : BK, kTransB ? BK : BN, kTransB, kThreads, kPad> b_loader;

  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tr = threadIdx.x / (BN / TN), tc = threadIdx.x % (BN / TN);
  auto load = [&](int64_t k0) {
    if (kTransA) a_loader.load(A, lda, k0, m0, K, M, vec_ab);
    else a_loader.load(A, lda, m0, k0, M, K, vec_ab);
    if (kTransB) b_loader.load(B, ldb, n0, k0, N, K, vec_ab);
    else b_loader.load(B, ldb, k0, n0, K, N, vec_ab);
  };
  float acc[TM][TN] = {};

  load(0);
  a_loader.store(As[0]);
  b_loader.store(Bs[0]);
  __syncthreads();
  for (int64_t k0 = 0, step = 0; k0 < K; k0 += BK, ++step) {
    const int cur = step & 1;
    const bool next = k0 + BK < K;
    if (next) load(k0 + BK);  // in flight while we compute
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 x = *reinterpret_cast<const float4*>(&As[cur][k * (BM + kPad) + g * kRowStride + tr * 4]);
        a[4 * g] = x.x, a[4 * g + 1] = x.y, a[4 * g + 2] = x.z, a[4 * g + 3] = x.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 x = *reinterpret_cast<const float4*>(&Bs[cur][k * (BN + kPad) + g * kColStride + tc * 4]);
        b[4 * g] = x.x, b[4 * g + 1] = x.y, b[4 * g + 2] = x.z, b[4 * g + 3] = x.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (next) {  // the other buffer was last read before the previous barrier
      a_loader.store(As[cur ^ 1]);
      b_loader.store(Bs[cur ^ 1]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t row = m0 + (i / 4) * kRowStride + tr * 4 + i % 4;
    if (row >= M) continue;
#pragma unroll
    for (int g = 0; g < TN / 4; ++g) {
      const int64_t col = n0 + g * kColStride + tc * 4;
      float* c = C + row * ldc + col;
      float v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = alpha * acc[i][4 * g + j];
      if (vec_c && col + 3 < N) {
        if (beta != 0.0f) {
          const float4 old = *reinterpret_cast<const float4*>(c);
          v[0] += beta * old.x, v[1] += beta * old.y, v[2] += beta * old.z, v[3] += beta * old.w;
        }
        *reinterpret_cast<float4*>(c) = make_float4(epilogue(row, col, v[0]), epilogue(row, col + 1, v[1]),
                                                    epilogue(row, col + 2, v[2]), epilogue(row, col + 3, v[3]));
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (col + j < N) c[j] = epilogue(row, col + j, beta != 0.0f ? v[j] + beta * c[j] : v[j]);
      }
    }
  }
}

// ---------------------------------------------------------------- launchers

template <class Tile, class Epilogue>
void sgemm_launch_tile(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Epilogue epilogue,
                       cudaStream_t stream) {
  const int64_t grid_m = ceil_div(M, Tile::BM), grid_n = ceil_div(N, Tile::BN);
  FORGEML_CHECK_ARG(grid_m <= 65535 && grid_n <= 0x7fffffff, "sgemm: M = ", M, ", N = ", N, " is too large");
  auto aligned = [](const void* p, int64_t ld) { return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 4 == 0; };
  const bool vec_ab = aligned(A, lda) && aligned(B, ldb), vec_c = aligned(C, ldc);
  auto kernel =
      trans_a ? (trans_b ? sgemm_kernel<Tile, true, true, Epilogue> : sgemm_kernel<Tile, true, false, Epilogue>)
              : (trans_b ? sgemm_kernel<Tile, false, true, Epilogue> : sgemm_kernel<Tile, false, false, Epilogue>);
  const dim3 grid(static_cast<unsigned>(grid_n), static_cast<unsigned>(grid_m));
  FORGEML_LAUNCH(kernel, grid, Tile::kThreads, 0, stream, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, vec_ab, vec_c,
                 epilogue);
  FORGEML_CUDA_CHECK_LAUNCH();
}

// The device-side entry point for every family: checks the sizes, picks the tile, launches on
// `stream`. Epilogue: a copyable functor with __device__ float operator()(int64_t i, int64_t j,
// float v) returning the value stored at C(i, j).
template <class Epilogue>
void sgemm_launch(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Epilogue epilogue,
                  cudaStream_t stream, int tile = 0) {
  FORGEML_CHECK_ARG(M >= 0 && N >= 0 && K >= 0, "sgemm: sizes must be >= 0, got M = ", M, ", N = ", N, ", K = ", K);
  FORGEML_CHECK_ARG(tile == 0 || tile == 64 || tile == 128, "sgemm: tile must be 0, 64 or 128, got ", tile);
  if (M == 0 || N == 0) return;  // nothing to write; leading dimensions of empty matrices may be 0
  FORGEML_CHECK_ARG(lda >= (trans_a ? M : K), "sgemm: lda = ", lda, " is below ", trans_a ? "M" : "K");
  FORGEML_CHECK_ARG(ldb >= (trans_b ? K : N), "sgemm: ldb = ", ldb, " is below ", trans_b ? "K" : "N");
  FORGEML_CHECK_ARG(ldc >= N, "sgemm: ldc = ", ldc, " is below N = ", N);
  if (tile == 0)  // large tiles only when they still give every SM of a big GPU (132 on H100) a block
    tile = ceil_div(M, 128) * ceil_div(N, 128) >= 132 ? 128 : 64;
  if (tile == 128)
    sgemm_launch_tile<SgemmTileLarge>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue, stream);
  else
    sgemm_launch_tile<SgemmTileSmall>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue, stream);
}

}  // namespace forgeml::cuda
