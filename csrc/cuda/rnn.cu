// CUDA recurrent sequences: contract in rnn.cuh. One SGEMM for every step's input projection;
// per step the recurrent SGEMM (cuda/gemm.cuh; SimpleRNN's activation fused in its epilogue, LSTM
// accumulating onto the projection) and one fused gate kernel over (N, H); backward mirrors it and
// ends with one SGEMM per weight gradient and a column-sum kernel for the bias.
#include <algorithm>

#include "cuda/gemm_tile.cuh"
#include "cuda/launch.cuh"
#include "cuda/rnn.cuh"
#include "forgeml/check.h"

namespace forgeml::cuda::rnn {

namespace {

__device__ __forceinline__ float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

struct Identity {
  __device__ __forceinline__ float operator()(int64_t, int64_t, float v) const { return v; }
};

// ---------------------------------------------------------------- kernels
// One thread per (n, j) of an (N, H) step; row strides in elements.

__global__ void lstm_gates_fwd(int64_t N, int64_t H, float* __restrict__ z, int64_t ldz,
                               const float* __restrict__ cprev, int64_t ldcp, float* __restrict__ c,
                               float* __restrict__ h, int64_t ldo) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= N * H) return;
  const int64_t n = q / H, j = q % H;
  float* zr = z + n * ldz;
  const float i = sigm(zr[j]), f = sigm(zr[H + j]), g = tanhf(zr[2 * H + j]), o = sigm(zr[3 * H + j]);
  const float ct = f * cprev[n * ldcp + j] + i * g;
  zr[j] = i, zr[H + j] = f, zr[2 * H + j] = g, zr[3 * H + j] = o;
  c[n * ldo + j] = ct;
  h[n * ldo + j] = o * tanhf(ct);
}

__global__ void gru_gates_fwd(int64_t N, int64_t H, float* __restrict__ a, int64_t lda, const float* __restrict__ b,
                              const float* __restrict__ hprev, int64_t ldh, float* __restrict__ bh,
                              float* __restrict__ h, int64_t ldo) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= N * H) return;
  const int64_t n = q / H, j = q % H;
  float* ar = a + n * lda;
  const float* br = b + n * 3 * H;
  const float z = sigm(ar[j] + br[j]), r = sigm(ar[H + j] + br[H + j]);
  const float bhj = br[2 * H + j], ht = tanhf(ar[2 * H + j] + r * bhj);
  ar[j] = z, ar[H + j] = r, ar[2 * H + j] = ht;
  bh[n * ldo + j] = bhj;
  h[n * ldo + j] = z * hprev[n * ldh + j] + (1.0f - z) * ht;
}

// dh = dhn + dy; SimpleRNN: dz = dh * act'(h) from the output h.
__global__ void simple_gates_bwd(int64_t N, int64_t H, int act, const float* __restrict__ h,
                                 const float* __restrict__ dy, int64_t ldo, const float* __restrict__ dhn,
                                 float* __restrict__ dz) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= N * H) return;
  const int64_t n = q / H, j = q % H, o = n * ldo + j;
  const float dh = dhn[q] + (dy ? dy[o] : 0.0f), hv = h[o];
  const float d = act == 0 ? 1.0f - hv * hv : act == 1 ? hv * (1.0f - hv) : act == 2 ? (hv > 0.0f ? 1.0f : 0.0f) : 1.0f;
  dz[o] = dh * d;
}

__global__ void lstm_gates_bwd(int64_t N, int64_t H, const float* __restrict__ gates, int64_t ldg,
                               const float* __restrict__ c, const float* __restrict__ cprev, int64_t ldcp,
                               const float* __restrict__ dy, int64_t ldo, const float* __restrict__ dhn,
                               float* __restrict__ dcn, float* __restrict__ dz) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= N * H) return;
  const int64_t n = q / H, j = q % H, o = n * ldo + j;
  const float* g4 = gates + n * ldg;
  float* d4 = dz + n * ldg;
  const float dh = dhn[q] + (dy ? dy[o] : 0.0f);
  const float i = g4[j], f = g4[H + j], g = g4[2 * H + j], og = g4[3 * H + j];
  const float tc = tanhf(c[o]);
  const float dc = dcn[q] + dh * og * (1.0f - tc * tc);
  d4[j] = dc * g * i * (1.0f - i);
  d4[H + j] = dc * cprev[n * ldcp + j] * f * (1.0f - f);
  d4[2 * H + j] = dc * i * (1.0f - g * g);
  d4[3 * H + j] = dh * tc * og * (1.0f - og);
  dcn[q] = dc * f;
}

// dhn in: dL/dh_t from step t+1; out: dL/dh_{t-1} through the z-path (the GEMM adds R's part).
__global__ void gru_gates_bwd(int64_t N, int64_t H, const float* __restrict__ gates, int64_t ldg,
                              const float* __restrict__ bh, const float* __restrict__ hprev, int64_t ldh,
                              const float* __restrict__ dy, int64_t ldo, float* __restrict__ dhn,
                              float* __restrict__ da, float* __restrict__ db) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= N * H) return;
  const int64_t n = q / H, j = q % H, o = n * ldo + j;
  const float* g3 = gates + n * ldg;
  float *a3 = da + n * ldg, *b3 = db + n * ldg;
  const float dh = dhn[q] + (dy ? dy[o] : 0.0f);
  const float z = g3[j], r = g3[H + j], ht = g3[2 * H + j];
  const float dzp = dh * (hprev[n * ldh + j] - ht) * z * (1.0f - z);
  const float dah = dh * (1.0f - z) * (1.0f - ht * ht);
  const float drp = dah * bh[o] * r * (1.0f - r);
  a3[j] = dzp, a3[H + j] = drp, a3[2 * H + j] = dah;
  b3[j] = dzp, b3[H + j] = drp, b3[2 * H + j] = dah * r;
  dhn[q] = dh * z;
}

// hprev[n, t] = t ? y[n, t-1] : h0[n]  (N, T, H)
__global__ void shift_states(int64_t N, int64_t T, int64_t H, const float* __restrict__ h0,
                             const float* __restrict__ y, float* __restrict__ hprev) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= N * T * H) return;
  const int64_t j = q % H, t = (q / H) % T, n = q / (H * T);
  hprev[q] = t ? y[q - H] : h0[n * H + j];
}

// out[j] = sum over rows of a[:, j] (rows x cols), float64 accumulation.
__global__ void column_sums(int64_t rows, int64_t cols, const float* __restrict__ a, float* __restrict__ out) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  double s = 0.0;
  for (int64_t r = 0; r < rows; ++r) s += a[r * cols + j];
  out[j] = static_cast<float>(s);
}

// ---------------------------------------------------------------- launchers

constexpr int kBlock = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = ceil_div(n, kBlock);
  FORGEML_CHECK_ARG(b <= 0x7fffffff, "rnn: too many elements (", n, ")");
  return static_cast<unsigned>(b);
}

void gemm(bool ta, bool tb, int64_t M, int64_t Nc, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc, const float* bias, int act, cudaStream_t s) {
  sgemm_launch(ta, tb, M, Nc, K, 1.0f, A, lda, B, ldb, beta, C, ldc, BiasActivation{bias, act}, s);
}

int gates_of(int cell) { return cell == 1 ? 4 : cell == 2 ? 3 : 1; }

}  // namespace

void forward(const Forward& f, cudaStream_t s) {
  FORGEML_CHECK_ARG(f.cell >= 0 && f.cell <= 2, "cell: expected 0, 1 or 2, got ", f.cell);
  const int64_t N = f.N, T = f.T, F = f.F, H = f.H, GH = gates_of(f.cell) * H;
  if (N == 0 || T == 0 || H == 0) return;
  const bool simple = f.cell == 0;
  gemm(false, false, N * T, GH, F, f.x, std::max<int64_t>(F, 1), f.kernel, GH, 0.0f, simple ? f.y : f.xg, GH, f.bias, 0, s);
  // SimpleRNN activation codes -> the SGEMM epilogue's (3 tanh, 2 sigmoid, 1 relu, 0 none)
  static constexpr int kEpilogueAct[4] = {3, 2, 1, 0};
  for (int64_t t = 0; t < T; ++t) {
    const float* hprev = t ? f.y + (t - 1) * H : f.h0;
    const int64_t ldh = t ? T * H : H;
    float* y = f.y + t * H;
    switch (f.cell) {
      case 0:
        gemm(false, false, N, H, H, hprev, ldh, f.rkernel, H, 1.0f, y, T * H, nullptr, kEpilogueAct[f.act & 3], s);
        break;
      case 1: {
        float* z = f.xg + t * GH;
        sgemm_launch(false, false, N, GH, H, 1.0f, hprev, ldh, f.rkernel, GH, 1.0f, z, T * GH, Identity{}, s);
        const float* cprev = t ? f.aux + (t - 1) * H : f.c0;
        FORGEML_LAUNCH(lstm_gates_fwd, blocks_for(N * H), kBlock, 0, s, N, H, z, T * GH, cprev, t ? T * H : H,
                       f.aux + t * H, y, T * H);
        FORGEML_CUDA_CHECK_LAUNCH();
        break;
      }
      case 2: {
        gemm(false, false, N, GH, H, hprev, ldh, f.rkernel, GH, 0.0f, f.scratch, GH, f.bias + GH, 0, s);
        FORGEML_LAUNCH(gru_gates_fwd, blocks_for(N * H), kBlock, 0, s, N, H, f.xg + t * GH, T * GH, f.scratch,
                       hprev, ldh, f.aux + t * H, y, T * H);
        FORGEML_CUDA_CHECK_LAUNCH();
        break;
      }
    }
  }
}

void backward(const Forward& f, const Backward& b, cudaStream_t s) {
  FORGEML_CHECK_ARG(f.cell >= 0 && f.cell <= 2, "cell: expected 0, 1 or 2, got ", f.cell);
  const int64_t N = f.N, T = f.T, F = f.F, H = f.H, GH = gates_of(f.cell) * H, NT = N * T;
  const bool gru = f.cell == 2, lstm = f.cell == 1;
  // running dL/dh (and dL/dc) live in dh0 (dc0)
  if (N * H > 0) {
    if (b.dh_T) FORGEML_CUDA_CHECK(cudaMemcpyAsync(b.dh0, b.dh_T, N * H * sizeof(float), cudaMemcpyDeviceToDevice, s));
    else FORGEML_CUDA_CHECK(cudaMemsetAsync(b.dh0, 0, N * H * sizeof(float), s));
    if (lstm && b.dc_T) FORGEML_CUDA_CHECK(cudaMemcpyAsync(b.dc0, b.dc_T, N * H * sizeof(float), cudaMemcpyDeviceToDevice, s));
    else if (lstm) FORGEML_CUDA_CHECK(cudaMemsetAsync(b.dc0, 0, N * H * sizeof(float), s));
  }
  float* dr = gru ? b.db : b.da;
  if (NT > 0 && H > 0) {
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t o = t * H, og = t * GH;
      const float* dy = b.dy ? b.dy + o : nullptr;
      switch (f.cell) {
        case 0:
          FORGEML_LAUNCH(simple_gates_bwd, blocks_for(N * H), kBlock, 0, s, N, H, f.act, f.y + o, dy, T * H, b.dh0,
                         b.da + o);
          break;
        case 1:
          FORGEML_LAUNCH(lstm_gates_bwd, blocks_for(N * H), kBlock, 0, s, N, H, f.xg + og, T * GH, f.aux + o,
                         t ? f.aux + o - H : f.c0, t ? T * H : H, dy, T * H, b.dh0, b.dc0, b.da + og);
          break;
        case 2:
          FORGEML_LAUNCH(gru_gates_bwd, blocks_for(N * H), kBlock, 0, s, N, H, f.xg + og, T * GH, f.aux + o,
                         t ? f.y + o - H : f.h0, t ? T * H : H, dy, T * H, b.dh0, b.da + og, b.db + og);
          break;
      }
      FORGEML_CUDA_CHECK_LAUNCH();
      // dL/dh_{t-1} (+)= dz_t (N, GH) x R^T
      sgemm_launch(false, true, N, H, GH, 1.0f, dr + og, T * GH, f.rkernel, GH, gru ? 1.0f : 0.0f, b.dh0, H,
                   Identity{}, s);
    }
  }
  // weight gradients over all N*T rows
  const int64_t nb = gru ? 2 : 1;
  if (NT == 0) {
    if (F * GH > 0) FORGEML_CUDA_CHECK(cudaMemsetAsync(b.dkernel, 0, F * GH * sizeof(float), s));
    if (H * GH > 0) FORGEML_CUDA_CHECK(cudaMemsetAsync(b.drkernel, 0, H * GH * sizeof(float), s));
    if (GH) FORGEML_CUDA_CHECK(cudaMemsetAsync(b.dbias, 0, nb * GH * sizeof(float), s));
    return;
  }
  if (H == 0) return;
  FORGEML_LAUNCH(shift_states, blocks_for(NT * H), kBlock, 0, s, N, T, H, f.h0, f.y, b.hprev);
  FORGEML_CUDA_CHECK_LAUNCH();
  gemm(false, true, NT, F, GH, b.da, GH, f.kernel, GH, 0.0f, b.dx, F, nullptr, 0, s);
  gemm(true, false, F, GH, NT, f.x, F, b.da, GH, 0.0f, b.dkernel, GH, nullptr, 0, s);
  gemm(true, false, H, GH, NT, b.hprev, H, dr, GH, 0.0f, b.drkernel, GH, nullptr, 0, s);
  FORGEML_LAUNCH(column_sums, blocks_for(GH), kBlock, 0, s, NT, GH, b.da, b.dbias);
  FORGEML_CUDA_CHECK_LAUNCH();
  if (gru) {
    FORGEML_LAUNCH(column_sums, blocks_for(GH), kBlock, 0, s, NT, GH, b.db, b.dbias + GH);
    FORGEML_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace forgeml::cuda::rnn
