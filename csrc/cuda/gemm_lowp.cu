// The bf16 and int8 GEMMs (contract in gemm_lowp.cuh): the kernels, then their launchers.
#include <algorithm>

#include "cuda/gemm_lowp.cuh"
#include "cuda/gemm_mma.cuh"
#include "cuda/gemm_tile.cuh"

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

// The tensor-core paths' epilogues (gemm_mma.cuh): C = epilogue(acc) for one output or two
// adjacent ones (one 8-byte store when vec2: C 8-byte aligned and ldc even; col is always even);
// the int8 sums dequantized first exactly as the dp4a kernel does.
__device__ __forceinline__ void store_pair(float* C, int64_t ldc, bool vec2, int64_t row, int64_t col, bool both,
                                           float y0, float y1) {
  float* p = C + row * ldc + col;
  if (both && vec2) {
    *reinterpret_cast<float2*>(p) = make_float2(y0, y1);
  } else {
    p[0] = y0;
    if (both) p[1] = y1;
  }
}
struct Bf16Out {
  float* C;
  int64_t ldc;
  bool vec2;
  BiasActivation ep;
  __device__ __forceinline__ void operator()(int64_t row, int64_t col, bool both, float v0, float v1) const {
    store_pair(C, ldc, vec2, row, col, both, ep(row, col, v0), both ? ep(row, col + 1, v1) : 0.0f);
  }
};
struct Int8Out {
  float* C;
  int64_t ldc;
  bool vec2;
  const float* a_scale;
  const float* b_scale;
  BiasActivation ep;
  __device__ __forceinline__ float value(int64_t row, int64_t col, int v) const {
    return ep(row, col, static_cast<float>(v) * (a_scale[row] * b_scale[col]));
  }
  __device__ __forceinline__ void operator()(int64_t row, int64_t col, bool both, int v0, int v1) const {
    store_pair(C, ldc, vec2, row, col, both, value(row, col, v0), both ? value(row, col + 1, v1) : 0.0f);
  }
};

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

// Whether the epilogue may store two adjacent outputs of C as one float2.
bool pair_stores(const float* C, int64_t ldc) { return reinterpret_cast<uintptr_t>(C) % 8 == 0 && ldc % 2 == 0; }

// Packs the R x K operand (gemm_mma.cuh) into dst: Rp x Kw words. k_contig: depth is the
// contiguous dimension of src.
template <class T>
void pack(const T* src, int64_t ld, bool k_contig, int64_t R, int64_t K, uint32_t* dst, int64_t Rp, int64_t Kw,
          cudaStream_t stream) {
  if (k_contig) {
    const int64_t blocks = std::min<int64_t>(ceil_div(Rp * Kw / 4, 256), 1 << 16);
    const bool vec = reinterpret_cast<uintptr_t>(src) % 16 == 0 && (ld * int64_t(sizeof(T))) % 16 == 0;
    FORGEML_LAUNCH(pack_rows_kernel<T>, static_cast<unsigned>(blocks), 256, 0, stream, src, ld, R, K, dst, Rp, Kw,
                   vec);
  } else {
    const int64_t blocks = std::min<int64_t>(Rp / 64 * (Kw / 16), 1 << 16);
    FORGEML_LAUNCH(pack_cols_kernel<T>, static_cast<unsigned>(blocks), 256, 0, stream, src, ld, R, K, dst, Rp, Kw);
  }
  FORGEML_CUDA_CHECK_LAUNCH();
}

// The tensor-core GEMM: pack op(A) and op(B)^T into scratch (per = depths per word), then the main
// loop. k_contig_a / k_contig_b: whether depth is the contiguous dimension of A / B in memory.
template <class Mma, class T, class Out>
void gemm_tc(const char* fn, int64_t M, int64_t N, int64_t K, int per, const T* A, int64_t lda, bool k_contig_a,
             const T* B, int64_t ldb, bool k_contig_b, const Out& out, cudaStream_t stream) {
  const int64_t gm = ceil_div(M, kTcBM), gn = ceil_div(N, kTcBN);
  FORGEML_CHECK_ARG(gm <= 65535 && gn <= 0x7fffffff, fn, ": M = ", M, ", N = ", N, " is too large");
  const int64_t Mp = gm * kTcBM, Np = gn * kTcBN, Kw = ceil_div(K, per * kTcStepWords) * kTcStepWords;
  Scratch scratch(static_cast<size_t>((Mp + Np) * Kw) * 4, stream);
  uint32_t* pa = static_cast<uint32_t*>(scratch.get());
  uint32_t* pb = pa ? pa + Mp * Kw : nullptr;
  if (Kw > 0) {
    pack(A, lda, k_contig_a, M, K, pa, Mp, Kw, stream);
    pack(B, ldb, k_contig_b, N, K, pb, Np, Kw, stream);
  }
  auto kernel = gemm_mma_kernel<Mma, Out>;
  FORGEML_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kTcSmemBytes));
  const dim3 grid(static_cast<unsigned>(gn), static_cast<unsigned>(gm));
  FORGEML_LAUNCH(kernel, grid, kTcThreads, kTcSmemBytes, stream, M, N, Kw, pa, pb, out);
  FORGEML_CUDA_CHECK_LAUNCH();
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
  const BiasActivation ep{bias, activation};
  if (which == LowpKernel::tensor_cores || (which == LowpKernel::automatic && tensor_cores())) {
    gemm_tc<MmaBf16>("gemm_bf16", M, N, K, 2, A, lda, !ta, B, ldb, tb, Bf16Out{C, ldc, pair_stores(C, ldc), ep}, stream);
  } else {
    const dim3 grid = lowp_grid("gemm_bf16", M, N);
    auto kernel = ta ? (tb ? gemm_bf16_kernel<true, true> : gemm_bf16_kernel<true, false>)
                     : (tb ? gemm_bf16_kernel<false, true> : gemm_bf16_kernel<false, false>);
    FORGEML_LAUNCH(kernel, grid, kLowpThreads, 0, stream, M, N, K, A, lda, B, ldb, C, ldc, ep);
    FORGEML_CUDA_CHECK_LAUNCH();
  }
}

void gemm_int8(int64_t M, int64_t N, int64_t K, const int8_t* A, int64_t lda, const float* a_scale, const int8_t* B,
               int64_t ldb, const float* b_scale, float* C, int64_t ldc, const float* bias, int activation,
               CUstream_st* stream, LowpKernel which) {
  check_sizes("gemm_int8", M, N, K, lda, ldb, ldc, false, false, activation);
  if (M == 0 || N == 0) return;
  const BiasActivation ep{bias, activation};
  if (which == LowpKernel::tensor_cores || (which == LowpKernel::automatic && tensor_cores())) {
    gemm_tc<MmaS8>("gemm_int8", M, N, K, 4, A, lda, true, B, ldb, false, Int8Out{C, ldc, pair_stores(C, ldc), a_scale, b_scale, ep},
                   stream);
    return;
  }
  const dim3 grid = lowp_grid("gemm_int8", M, N);
  FORGEML_LAUNCH(gemm_int8_kernel<BiasActivation>, grid, kLowpThreads, 0, stream, M, N, K, A, lda, a_scale, B, ldb,
                 b_scale, C, ldc, ep);
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda
