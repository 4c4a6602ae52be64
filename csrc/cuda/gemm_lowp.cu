// The bf16 and int8 GEMMs (contract in gemm_lowp.cuh): the kernels, then their launchers.
#include "cuda/gemm_lowp.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/mma.cuh"

namespace forgeml::cuda {

constexpr int kLowpBM = 64, kLowpBN = 64, kLowpBK = 32, kLowpThreads = 256;

// float32 rounded to the nearest bf16 (ties to even), returned as a float32; NaN stays NaN.
__device__ __forceinline__ float round_bf16(float x) { return bf16_lo(bf16_bits(x)); }

// ---------------------------------------------------------------- kernels

// grid (ceil(N / 64), ceil(M / 64)), block 256.
template <bool kTransA, bool kTransB>
__global__ void __launch_bounds__(kLowpThreads)
    gemm_bf16_kernel(int64_t M, int64_t N, int64_t K, const float* __restrict__ A, int64_t lda,
                     const float* __restrict__ B, int64_t ldb, float* __restrict__ C, int64_t ldc,
                     BiasActivation epilogue) {
  constexpr int BM = kLowpBM, BN = kLowpBN, BK = kLowpBK;
  __shared__ float As[BK][BM + 1];  // op(A) tile, k-major, already rounded to bf16
  __shared__ float Bs[BK][BN + 1];
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int q = threadIdx.x; q < BM * BK; q += kLowpThreads) {
      // consecutive threads walk the contiguous dimension of the global matrix
      const int kk = kTransA ? q / BM : q % BK, mm = kTransA ? q % BM : q / BK;
      const int64_t gi = m0 + mm, gk = k0 + kk;
      As[kk][mm] = gi < M && gk < K ? round_bf16(kTransA ? A[gk * lda + gi] : A[gi * lda + gk]) : 0.0f;
      const int kb = kTransB ? q % BK : q / BN, nb = kTransB ? q / BK : q % BN;
      const int64_t gj = n0 + nb, gkb = k0 + kb;
      Bs[kb][nb] = gj < N && gkb < K ? round_bf16(kTransB ? B[gj * ldb + gkb] : B[gkb * ldb + gj]) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < BK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[k][tr + 16 * i], b[i] = Bs[k][tc + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + tr + 16 * i;
    if (row >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tc + 16 * j;
      if (col < N) C[row * ldc + col] = epilogue(row, col, acc[i][j]);
    }
  }
}

// The same contract on tensor cores (sm_80+). grid (ceil(N / 64), ceil(M / 64)), block 128: four
// warps, each a 32 x 32 corner of the tile as 2 x 4 mma products of 16 x 8 per 16 depths. The tiles
// are staged as bf16 pairs along k (A by row, B by column), rows padded to 20 words so a warp's
// fragment reads (rows g, words t) fall in distinct banks.
constexpr int kMmaThreads = 128;

template <bool kTransA, bool kTransB>
__global__ void __launch_bounds__(kMmaThreads)
    gemm_bf16_mma_kernel(int64_t M, int64_t N, int64_t K, const float* __restrict__ A, int64_t lda,
                         const float* __restrict__ B, int64_t ldb, float* __restrict__ C, int64_t ldc,
                         BiasActivation epilogue) {
  constexpr int BM = kLowpBM, BN = kLowpBN, BK = kLowpBK, P = BK / 2, LD = P + 4;
  __shared__ uint32_t As[BM][LD];  // As[i][p] = op(A)[i][2p, 2p + 1] of this depth step
  __shared__ uint32_t Bs[BN][LD];  // Bs[j][p] = op(B)[2p, 2p + 1][j]
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  float acc[2][4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int q = threadIdx.x; q < BM * P; q += kMmaThreads) {
      // consecutive threads walk the contiguous dimension of the global matrix
      const int p = kTransA ? q / BM : q % P, i = kTransA ? q % BM : q / P;
      const int64_t gi = m0 + i, gk = k0 + 2 * p;
      float lo = 0.0f, hi = 0.0f;
      if (gi < M && gk < K) lo = kTransA ? A[gk * lda + gi] : A[gi * lda + gk];
      if (gi < M && gk + 1 < K) hi = kTransA ? A[(gk + 1) * lda + gi] : A[gi * lda + gk + 1];
      As[i][p] = bf16_pair(lo, hi);
      const int pb = kTransB ? q % P : q / BN, j = kTransB ? q / P : q % BN;
      const int64_t gj = n0 + j, gkb = k0 + 2 * pb;
      float blo = 0.0f, bhi = 0.0f;
      if (gj < N && gkb < K) blo = kTransB ? B[gj * ldb + gkb] : B[gkb * ldb + gj];
      if (gj < N && gkb + 1 < K) bhi = kTransB ? B[gj * ldb + gkb + 1] : B[(gkb + 1) * ldb + gj];
      Bs[j][pb] = bf16_pair(blo, bhi);
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < P; ks += 8) {  // 16 depths = 8 pairs per product
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int r = wm + 16 * mt + g;
        a[mt][0] = As[r][ks + t], a[mt][1] = As[r + 8][ks + t];
        a[mt][2] = As[r][ks + t + 4], a[mt][3] = As[r + 8][ks + t + 4];
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int c = wn + 8 * nt + g;
        b[nt][0] = Bs[c][ks + t], b[nt][1] = Bs[c][ks + t + 4];
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_bf16_m16n8k16(acc[mt][nt], a[mt], b[nt]);
    }
    __syncthreads();
  }
  for_each_warp_output(acc, m0 + wm, n0 + wn, M, N,
                       [&](int64_t row, int64_t col, float v) { C[row * ldc + col] = epilogue(row, col, v); });
}

// grid (ceil(N / 64), ceil(M / 64)), block 256. Shared tiles hold 4 consecutive k per int.
// Epilogue: as in gemm.cuh, applied to the dequantized value.
template <class Epilogue>
__global__ void __launch_bounds__(kLowpThreads)
    gemm_int8_kernel(int64_t M, int64_t N, int64_t K, const int8_t* __restrict__ A, int64_t lda,
                     const float* __restrict__ a_scale, const int8_t* __restrict__ B, int64_t ldb,
                     const float* __restrict__ b_scale, float* __restrict__ C, int64_t ldc, Epilogue epilogue) {
  constexpr int BM = kLowpBM, BN = kLowpBN, BK = kLowpBK, G = BK / 4;
  __shared__ int As[G][BM + 1];
  __shared__ int Bs[G][BN + 1];
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
  int acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int q = threadIdx.x; q < BM * G; q += kLowpThreads) {
      const int g = q % G, mm = q / G;  // A: 4 consecutive bytes of one row
      const int64_t gi = m0 + mm;
      uint32_t w = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t gk = k0 + 4 * g + b;
        const uint32_t v = gi < M && gk < K ? static_cast<uint8_t>(A[gi * lda + gk]) : 0u;
        w |= v << (8 * b);
      }
      As[g][mm] = static_cast<int>(w);
      const int nb = q % BN, gb = q / BN;  // B: one column, 4 rows
      const int64_t gj = n0 + nb;
      uint32_t wb = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t gk = k0 + 4 * gb + b;
        const uint32_t v = gj < N && gk < K ? static_cast<uint8_t>(B[gk * ldb + gj]) : 0u;
        wb |= v << (8 * b);
      }
      Bs[gb][nb] = static_cast<int>(wb);
    }
    __syncthreads();
#pragma unroll
    for (int g = 0; g < G; ++g) {
      int a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[g][tr + 16 * i], b[i] = Bs[g][tc + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = dot4_i8(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = m0 + tr + 16 * i;
    if (row >= M) continue;
    const float rs = a_scale[row];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = n0 + tc + 16 * j;
      if (col < N) C[row * ldc + col] = epilogue(row, col, static_cast<float>(acc[i][j]) * (rs * b_scale[col]));
    }
  }
}

// The int8 contract on tensor cores (sm_80+): the bf16 kernel's warp layout, depth groups of 4
// bytes per word, 2 x 4 mma products of 16 x 8 per 16 depths. Integer sums are exact, so the result
// equals the dp4a kernel's bit for bit.
template <class Epilogue>
__global__ void __launch_bounds__(kMmaThreads)
    gemm_int8_mma_kernel(int64_t M, int64_t N, int64_t K, const int8_t* __restrict__ A, int64_t lda,
                         const float* __restrict__ a_scale, const int8_t* __restrict__ B, int64_t ldb,
                         const float* __restrict__ b_scale, float* __restrict__ C, int64_t ldc, Epilogue epilogue) {
  constexpr int BM = kLowpBM, BN = kLowpBN, BK = kLowpBK, G = BK / 4, LD = G + 4;
  __shared__ uint32_t As[BM][LD];  // As[i][p] = A[i][4p .. 4p + 3] of this depth step
  __shared__ uint32_t Bs[BN][LD];  // Bs[j][p] = B[4p .. 4p + 3][j]
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  int acc[2][4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int q = threadIdx.x; q < BM * G; q += kMmaThreads) {
      const int p = q % G, i = q / G;  // A: 4 consecutive bytes of one row
      uint32_t w = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t gk = k0 + 4 * p + b;
        w |= (m0 + i < M && gk < K ? static_cast<uint8_t>(A[(m0 + i) * lda + gk]) : 0u) << (8 * b);
      }
      As[i][p] = w;
      const int j = q % BN, pb = q / BN;  // B: 4 rows of one column, consecutive threads along the row
      uint32_t wb = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t gk = k0 + 4 * pb + b;
        wb |= (n0 + j < N && gk < K ? static_cast<uint8_t>(B[gk * ldb + n0 + j]) : 0u) << (8 * b);
      }
      Bs[j][pb] = wb;
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < G; ks += 4) {  // 16 depths = 4 words per product
      uint32_t a[2][2], b[4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int r = wm + 16 * mt + g;
        a[mt][0] = As[r][ks + t], a[mt][1] = As[r + 8][ks + t];
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) b[nt] = Bs[wn + 8 * nt + g][ks + t];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_s8_m16n8k16(acc[mt][nt], a[mt], b[nt]);
    }
    __syncthreads();
  }
  for_each_warp_output(acc, m0 + wm, n0 + wn, M, N, [&](int64_t row, int64_t col, int v) {
    C[row * ldc + col] = epilogue(row, col, static_cast<float>(v) * (a_scale[row] * b_scale[col]));
  });
}

}  // namespace forgeml::cuda

namespace forgeml::cuda {

namespace {

dim3 lowp_grid(const char* fn, int64_t M, int64_t N) {
  const int64_t gm = ceil_div(M, kLowpBM), gn = ceil_div(N, kLowpBN);
  FORGEML_CHECK_ARG(gm <= 65535 && gn <= 0x7fffffff, fn, ": M = ", M, ", N = ", N, " is too large");
  return dim3(static_cast<unsigned>(gn), static_cast<unsigned>(gm));
}

void check_sizes(const char* fn, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, bool ta,
                 bool tb, int activation) {
  FORGEML_CHECK_ARG(M >= 0 && N >= 0 && K >= 0, fn, ": sizes must be >= 0, got M = ", M, ", N = ", N, ", K = ", K);
  FORGEML_CHECK_ARG(activation >= 0 && activation <= 4, fn, ": activation must be 0..4, got ", activation);
  if (M == 0 || N == 0) return;
  FORGEML_CHECK_ARG(lda >= (ta ? M : K), fn, ": lda = ", lda, " is too small");
  FORGEML_CHECK_ARG(ldb >= (tb ? K : N), fn, ": ldb = ", ldb, " is too small");
  FORGEML_CHECK_ARG(ldc >= N, fn, ": ldc = ", ldc, " is below N = ", N);
}

}  // namespace

bool tensor_cores() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major >= 8;
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
               int64_t ldb, float* C, int64_t ldc, const float* bias, int activation, CUstream_st* stream,
               LowpKernel which) {
  check_sizes("gemm_bf16", M, N, K, lda, ldb, ldc, ta, tb, activation);
  if (M == 0 || N == 0) return;
  const dim3 grid = lowp_grid("gemm_bf16", M, N);
  const BiasActivation ep{bias, activation};
  if (which == LowpKernel::tensor_cores || (which == LowpKernel::automatic && tensor_cores())) {
    auto kernel = ta ? (tb ? gemm_bf16_mma_kernel<true, true> : gemm_bf16_mma_kernel<true, false>)
                     : (tb ? gemm_bf16_mma_kernel<false, true> : gemm_bf16_mma_kernel<false, false>);
    FORGEML_LAUNCH(kernel, grid, kMmaThreads, 0, stream, M, N, K, A, lda, B, ldb, C, ldc, ep);
  } else {
    auto kernel = ta ? (tb ? gemm_bf16_kernel<true, true> : gemm_bf16_kernel<true, false>)
                     : (tb ? gemm_bf16_kernel<false, true> : gemm_bf16_kernel<false, false>);
    FORGEML_LAUNCH(kernel, grid, kLowpThreads, 0, stream, M, N, K, A, lda, B, ldb, C, ldc, ep);
  }
  FORGEML_CUDA_CHECK_LAUNCH();
}

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream, LowpKernel which) {
  check_sizes("gemm_int8", M, N, K, lda, ldb, ldc, false, false, activation);
  if (M == 0 || N == 0) return;
  const dim3 grid = lowp_grid("gemm_int8", M, N);
  const BiasActivation ep{bias, activation};
  if (which == LowpKernel::tensor_cores || (which == LowpKernel::automatic && tensor_cores()))
    FORGEML_LAUNCH(gemm_int8_mma_kernel<BiasActivation>, grid, kMmaThreads, 0, stream, M, N, K, A, lda, a_scale, B,
                   ldb, b_scale, C, ldc, ep);
  else
    FORGEML_LAUNCH(gemm_int8_kernel<BiasActivation>, grid, kLowpThreads, 0, stream, M, N, K, A, lda, a_scale, B, ldb,
                   b_scale, C, ldc, ep);
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda
