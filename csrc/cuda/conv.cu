// CUDA implicit-GEMM convolution and pooling, channels last (contracts in conv.cuh):
//   x (N, H, W, C), w (KH, KW, C, O), y (N, OH, OW, O).
// One tiled kernel serves the three convolution GEMMs; its Mode decides how the operands are
// gathered (the patch matrix is never built):
//   forward:         y (pixels, O)      = patches (pixels, K) @ w (K, O),        K = KH*KW*C
//   backward-data:   dx (in-pixels, C)  = dy-patches (in-pixels, KH*KW*O) @ w^T  (zero where the
//                    stride skips a position: the transposed convolution)
//   backward-weight: dw (K, O)          = patches^T (K, pixels) @ dy (pixels, O), pixels split
//                    over gridDim.z and summed with atomics.
// Tiles: BM x BN outputs per 256-thread block, BK deep, each thread a TM x TN register block.
// Problems big enough to fill the GPU whose channels allow float4 moves run the large-tile kernel
// of conv_tile.cuh instead (same GEMMs, 128-row tiles, double-buffered).
#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "cuda/conv.cuh"
#include "cuda/conv_tile.cuh"
#include "cuda/launch.cuh"

namespace forgeml::cuda::conv {

namespace {

constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4, THREADS = 256;
enum Mode { kForward = 0, kData = 1, kWeight = 2 };

// A gathered operand index splits into a part fixed per GEMM row (computed once per block) and a
// part per reduction step (once per BK step): n is an image's first row (n*H or n*OH), h and w a
// spatial offset, ch a channel. The element read is at the sum of the two parts.
struct Part {
  int64_t n;
  int64_t h, w, ch;
};

// Output pixel m = (n, oh, ow): its window's top-left corner in x.
__device__ __forceinline__ Part pixel_part(const Shape& s, int64_t m) {
  int64_t ow = m % s.OW, t = m / s.OW, oh = t % s.OH, n = t / s.OH;
  return {n * s.H, oh * s.sh - s.pt, ow * s.sw - s.pl, 0};
}
// Patch position k = (kh, kw, c).
__device__ __forceinline__ Part tap_part(const Shape& s, int64_t k) {
  int64_t c = k % s.C, kk = k / s.C, kw = kk % s.KW, kh = kk / s.KW;
  return {0, kh * s.dh, kw * s.dw, c};
}

template <int MODE>
__device__ __forceinline__ Part row_part(const Shape& s, int64_t m) {
  if (MODE == kForward) return pixel_part(s, m);
  if (MODE == kWeight) return tap_part(s, m);  // rows of dw are patch positions
  int64_t iw = m % s.W, t = m / s.W, ih = t % s.H, n = t / s.H;  // kData: input pixel
  return {n * s.OH, ih + s.pt, iw + s.pl, 0};
}

template <int MODE>
__device__ __forceinline__ Part col_part(const Shape& s, int64_t k) {
  if (MODE == kForward) return tap_part(s, k);
  if (MODE == kWeight) return pixel_part(s, k);  // the reduction runs over pixels
  int64_t o = k % s.O, kk = k / s.O, kw = kk % s.KW, kh = kk / s.KW;  // kData: (kh, kw, o)
  return {0, -kh * s.dh, -kw * s.dw, o};
}

// A at (row part, column part): x in the patch (0 in the padding), or for kData the dy element
// whose window covers the input pixel at this tap (0 where the stride skips it).
template <int MODE>
__device__ __forceinline__ float load_a(const Shape& s, const float* a, const Part& r, const Part& c) {
  int64_t h = r.h + c.h, w = r.w + c.w;
  if (MODE != kData) {
    if (h < 0 || h >= s.H || w < 0 || w >= s.W) return 0.f;
    return a[((r.n + c.n + h) * s.W + w) * s.C + r.ch + c.ch];
  }
  if (h < 0 || w < 0 || h % s.sh || w % s.sw) return 0.f;
  h /= s.sh, w /= s.sw;
  if (h >= s.OH || w >= s.OW) return 0.f;
  return a[((r.n + h) * s.OW + w) * s.O + c.ch];
}

// B(k, j) for reduction index k and output column j, per mode.
template <int MODE>
__device__ __forceinline__ float load_b(const Shape& s, const float* b, int64_t k, int64_t j) {
  if (MODE == kForward) return b[k * s.O + j];  // w as (K, O)
  if (MODE == kData) {                          // k = (kh, kw, o), j = c: w[kh, kw, c, o]
    int64_t o = k % s.O, khw = k / s.O;
    return b[(khw * s.C + j) * s.O + o];
  }
  return b[k * s.O + j];  // kWeight: dy as (pixels, O)
}

// ---------------------------------------------------------------- kernels

// out (M, Nc) = epilogue(A (M, K) @ B (K, Nc)); kWeight adds its slice of K (pixels) atomically.
template <int MODE>
__global__ void __launch_bounds__(THREADS)
conv_gemm_kernel(Shape s, const float* a, const float* b, const float* bias, int act, float* out, int64_t M,
                 int64_t Nc, int64_t K, int64_t k_per_z) {
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int64_t kb = int64_t(blockIdx.z) * k_per_z, ke = min(K, kb + k_per_z);
  float acc[TM][TN] = {};
  // This thread loads A rows ty + 16 i at column tx of every step (consecutive k: contiguous
  // channels); the row halves of their indices are fixed for the block.
  Part rows[BM / 16];
  bool row_ok[BM / 16];
#pragma unroll
  for (int i = 0; i < BM / 16; ++i) {
    int64_t m = m0 + ty + 16 * i;
    row_ok[i] = m < M;
    rows[i] = row_part<MODE>(s, row_ok[i] ? m : 0);
  }
  for (int64_t k0 = kb; k0 < ke; k0 += BK) {
    const int64_t k = k0 + tx;
    const bool k_ok = k < ke;
    const Part col = col_part<MODE>(s, k_ok ? k : kb);
#pragma unroll
    for (int i = 0; i < BM / 16; ++i) As[tx][ty + 16 * i] = (row_ok[i] && k_ok) ? load_a<MODE>(s, a, rows[i], col) : 0.f;
    // B tile: rows tid / 64 + 4 i, column tid % 64 (coalesced along the output columns).
#pragma unroll
    for (int i = 0; i < BK / 4; ++i) {
      int64_t kr = k0 + tid / 64 + 4 * i, j = n0 + tid % 64;
      Bs[tid / 64 + 4 * i][tid % 64] = (kr < ke && j < Nc) ? load_b<MODE>(s, b, kr, j) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float ar[TM], br[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) ar[i] = As[k][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) br[j] = Bs[k][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    int64_t m = m0 + ty * TM + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      int64_t n = n0 + tx * TN + j;
      if (n >= Nc) continue;
      if (MODE == kWeight) {
        atomicAdd(out + m * Nc + n, acc[i][j]);
      } else {
        float v = acc[i][j] + (bias ? bias[n] : 0.f);
        out[m * Nc + n] = activate(act, v);
      }
    }
  }
}

// Backward-data for C <= 4 channels (the GEMM would fill 1-4 of its 64 columns): one thread per
// input pixel and all its channels, summing dy over the taps whose window covers it; w (at most
// kSmallCW floats) staged in shared memory, read as broadcasts.
constexpr int kSmallCW = 8192;
template <int CC>
__global__ void data_small_c_kernel(Shape s, const float* __restrict__ w, const float* __restrict__ dy,
                                    float* __restrict__ dx, int64_t M) {
  FORGEML_DYNAMIC_SHARED(float, ws);
  const int64_t nw = s.KH * s.KW * CC * s.O;
  for (int64_t i = threadIdx.x; i < nw; i += blockDim.x) ws[i] = w[i];
  __syncthreads();
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m >= M) return;
  const int64_t iw = m % s.W, t = m / s.W, ih = t % s.H, n = t / s.H;
  float acc[CC] = {};
  for (int64_t kh = 0; kh < s.KH; ++kh) {
    int64_t h = ih + s.pt - kh * s.dh;  // oh * sh for the output row whose window puts kh on ih
    if (h < 0) continue;
    if (s.sh != 1) {  // no int64 division in the common stride-1 case
      if (h % s.sh) continue;
      h /= s.sh;
    }
    if (h >= s.OH) continue;
    for (int64_t kw = 0; kw < s.KW; ++kw) {
      int64_t v = iw + s.pl - kw * s.dw;
      if (v < 0) continue;
      if (s.sw != 1) {
        if (v % s.sw) continue;
        v /= s.sw;
      }
      if (v >= s.OW) continue;
      const float* d = dy + ((n * s.OH + h) * s.OW + v) * s.O;
      const float* wt = ws + (kh * s.KW + kw) * CC * s.O;
      for (int64_t o = 0; o < s.O; ++o) {
        const float g = d[o];
#pragma unroll
        for (int c = 0; c < CC; ++c) acc[c] = fmaf(g, wt[c * s.O + o], acc[c]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < CC; ++c) dx[m * CC + c] = acc[c];
}

// db[o] += sum of dy[p, o] over this block's pixels; threads run along o (coalesced).
__global__ void bias_grad_kernel(const float* dy, int64_t P, int64_t O, int64_t p_per_block, float* db) {
  int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= O) return;
  int64_t pb = int64_t(blockIdx.y) * p_per_block, pe = min(P, pb + p_per_block);
  float acc = 0.f;
  for (int64_t p = pb; p < pe; ++p) acc += dy[p * O + o];
  atomicAdd(db + o, acc);
}

// One thread per output element (n, oh, ow, c).
__global__ void pool_forward_kernel(Shape s, int kind, const float* x, float* y, int64_t total) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  int64_t c = i % s.C, t = i / s.C, ow = t % s.OW, t2 = t / s.OW, oh = t2 % s.OH, n = t2 / s.OH;
  int64_t h0 = max(oh * s.sh - s.pt, int64_t(0)), h1 = min(oh * s.sh - s.pt + s.KH, s.H);
  int64_t w0 = max(ow * s.sw - s.pl, int64_t(0)), w1 = min(ow * s.sw - s.pl + s.KW, s.W);
  float acc = kind == 0 ? -INFINITY : 0.f;
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) {
      float v = x[((n * s.H + ih) * s.W + iw) * s.C + c];
      acc = kind == 0 ? (v > acc || v != v ? v : acc) : acc + v;  // NaN wins, as NumPy's max (fmaxf drops it)
    }
  y[i] = kind == 0 ? acc : acc / float((h1 - h0) * (w1 - w0));
}

// The same over 4 channels a thread, in 32-bit indices (C % 4 == 0, 16-byte aligned pointers,
// sizes under 2^31): a quarter of the threads and of the pixel decoding, float4 loads and stores.
template <int KIND>
__global__ void pool_forward_vec_kernel(tile::Geo g, const float* __restrict__ x, float* __restrict__ y, int total4) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total4) return;
  const int c4 = g.C / 4, c = i % c4 * 4;
  int t = i / c4;
  const int ow = t % g.OW;
  t /= g.OW;
  const int oh = t % g.OH, n = t / g.OH;
  const int hs = oh * g.sh - g.pt, ws = ow * g.sw - g.pl;
  const int h0 = max(hs, 0), h1 = min(hs + g.KH, g.H), w0 = max(ws, 0), w1 = min(ws + g.KW, g.W);
  const float init = KIND == 0 ? -INFINITY : 0.f;
  float acc[4] = {init, init, init, init};
  for (int ih = h0; ih < h1; ++ih) {
    const float* row = x + (n * g.H + ih) * g.W * g.C + c;
    for (int iw = w0; iw < w1; ++iw) {
      const float4 q = *reinterpret_cast<const float4*>(row + iw * g.C);
      const float v[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int e = 0; e < 4; ++e)  // NaN wins, as in pool_forward_kernel
        acc[e] = KIND == 0 ? (v[e] > acc[e] || v[e] != v[e] ? v[e] : acc[e]) : acc[e] + v[e];
    }
  }
  if (KIND == 1) {
    const float cnt = float((h1 - h0) * (w1 - w0));
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[e] /= cnt;
  }
  *reinterpret_cast<float4*>(y + int64_t(i) * 4) = make_float4(acc[0], acc[1], acc[2], acc[3]);
}

// Max: one thread per output element routes dy to the window's first maximum (atomics: windows
// may overlap). dx is zeroed by the launcher.
__global__ void max_pool_backward_kernel(Shape s, const float* x, const float* dy, float* dx, int64_t total) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  int64_t c = i % s.C, t = i / s.C, ow = t % s.OW, t2 = t / s.OW, oh = t2 % s.OH, n = t2 / s.OH;
  int64_t h0 = max(oh * s.sh - s.pt, int64_t(0)), h1 = min(oh * s.sh - s.pt + s.KH, s.H);
  int64_t w0 = max(ow * s.sw - s.pl, int64_t(0)), w1 = min(ow * s.sw - s.pl + s.KW, s.W);
  float best = -INFINITY;
  int64_t arg = ((n * s.H + h0) * s.W + w0) * s.C + c;
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t iw = w0; iw < w1; ++iw) {
      int64_t off = ((n * s.H + ih) * s.W + iw) * s.C + c;
      if (x[off] > best || (x[off] != x[off] && best == best)) best = x[off], arg = off;  // first NaN wins
    }
  atomicAdd(dx + arg, dy[i]);
}

// Average: one thread per input element gathers from every window that holds it (no atomics).
__global__ void avg_pool_backward_kernel(Shape s, const float* dy, float* dx, int64_t total) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  int64_t c = i % s.C, t = i / s.C, iw = t % s.W, t2 = t / s.W, ih = t2 % s.H, n = t2 / s.H;
  // Windows oh with oh*sh - pt <= ih < oh*sh - pt + KH.
  int64_t oh0 = max(int64_t(0), (ih + s.pt - s.KH + s.sh) / s.sh), oh1 = min(s.OH - 1, (ih + s.pt) / s.sh);
  int64_t ow0 = max(int64_t(0), (iw + s.pl - s.KW + s.sw) / s.sw), ow1 = min(s.OW - 1, (iw + s.pl) / s.sw);
  float acc = 0.f;
  for (int64_t oh = oh0; oh <= oh1; ++oh) {
    int64_t h0 = max(oh * s.sh - s.pt, int64_t(0)), h1 = min(oh * s.sh - s.pt + s.KH, s.H);
    if (ih < h0 || ih >= h1) continue;
    for (int64_t ow = ow0; ow <= ow1; ++ow) {
      int64_t w0 = max(ow * s.sw - s.pl, int64_t(0)), w1 = min(ow * s.sw - s.pl + s.KW, s.W);
      if (iw < w0 || iw >= w1) continue;
      acc += dy[((n * s.OH + oh) * s.OW + ow) * s.C + c] / float((h1 - h0) * (w1 - w0));
    }
  }
  dx[i] = acc;
}

}  // namespace

// ---------------------------------------------------------------- launchers

namespace {

int g_tile = 0;  // set_tile's choice

template <int MODE>
void launch_gemm(const Shape& s, const float* a, const float* b, const float* bias, int act, float* out, int64_t M,
                 int64_t Nc, int64_t K, int64_t splits, cudaStream_t stream) {
  if (M == 0 || Nc == 0) return;
  int64_t per = ceil_div(ceil_div(K, splits), BK) * BK;
  dim3 grid(static_cast<unsigned>(ceil_div(Nc, BN)), static_cast<unsigned>(ceil_div(M, BM)),
            static_cast<unsigned>(K == 0 ? 1 : ceil_div(K, per)));
  FORGEML_LAUNCH(conv_gemm_kernel<MODE>, grid, THREADS, 0, stream, s, a, b, bias, act, out, M, Nc, K,
                 per == 0 ? BK : per);
  FORGEML_CUDA_CHECK_LAUNCH();
}

// Whether the large-tile kernel applies: channels in whole float4s and BK steps, 16-byte aligned
// pointers, and every index it forms fits in 32 bits.
bool tile_fits(const Shape& s, std::initializer_list<const void*> ptrs) {
  if (s.C % 8 || s.O % 8 || s.C == 0 || s.O == 0) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16) return false;
  constexpr int64_t kMax = INT32_MAX / 2;
  for (int64_t v : {s.N, s.H, s.W, s.C, s.KH, s.KW, s.O, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, s.OH, s.OW})
    if (v > kMax) return false;
  const int64_t hp = s.H + s.pt + (s.KH - 1) * s.dh + s.sh, wp = s.W + s.pl + (s.KW - 1) * s.dw + s.sw;
  auto small = [](std::initializer_list<int64_t> f) {  // the product under kMax, without overflow
    int64_t p = 1;
    for (int64_t v : f)
      if (v > 0 && p > kMax / v) return false;
      else p *= v;
    return true;
  };
  return small({s.N, hp, wp, s.C}) && small({s.N, s.OH + 1, s.OW + 1, s.O}) && small({s.KH, s.KW, s.C, s.O});
}

tile::Geo geo(const Shape& s) {
  auto i = [](int64_t v) { return static_cast<int>(v); };
  return {i(s.N),  i(s.H),  i(s.W),  i(s.C),  i(s.KH), i(s.KW), i(s.O),  i(s.sh),
          i(s.sw), i(s.dh), i(s.dw), i(s.pt), i(s.pl), i(s.OH), i(s.OW)};
}

template <int MODE, class T>
void launch_tile_cfg(const Shape& s, const float* a, const float* b, const float* bias, int act, float* out, float* db,
                     int64_t M, int64_t Nc, int64_t K, int64_t splits, cudaStream_t stream) {
  const int64_t per = ceil_div(ceil_div(K, splits), T::BK) * T::BK;
  dim3 grid(static_cast<unsigned>(ceil_div(M, T::BM) + (db ? 1 : 0)), static_cast<unsigned>(ceil_div(Nc, T::BN)),
            static_cast<unsigned>(ceil_div(K, per)));
  FORGEML_LAUNCH((tile::conv_tile_kernel<MODE, T>), grid, T::kThreads, 0, stream, geo(s), a, b, bias, act, out, db,
                 static_cast<int>(M), static_cast<int>(Nc), static_cast<int>(K), static_cast<int>(per));
  FORGEML_CUDA_CHECK_LAUNCH();
}

// The large-tile kernel when it applies and pays (enough 128-row tiles, times reduction slices,
// to give each of an H100/H200's 132 SMs a block; set_tile overrides); false: not launched.
// db: backward-weight's bias gradient, summed on the way (null: not wanted).
template <int MODE>
bool launch_tile(const Shape& s, std::initializer_list<const void*> ptrs, const float* a, const float* b,
                 const float* bias, int act, float* out, float* db, int64_t M, int64_t Nc, int64_t K, int64_t splits,
                 cudaStream_t stream) {
  if (g_tile == 64 || M == 0 || Nc == 0 || K == 0 || !tile_fits(s, ptrs)) return false;
  const bool narrow = Nc <= 32;
  if (g_tile == 0 && ceil_div(M, 128) * ceil_div(Nc, narrow ? 32 : 64) * splits < 132) return false;
  if (narrow)
    launch_tile_cfg<MODE, tile::Narrow>(s, a, b, bias, act, out, db, M, Nc, K, splits, stream);
  else
    launch_tile_cfg<MODE, tile::Wide>(s, a, b, bias, act, out, db, M, Nc, K, splits, stream);
  return true;
}

}  // namespace

void set_tile(int tile) {
  if (tile != 0 && tile != 64 && tile != 128) throw std::invalid_argument("tile: expected 0, 64 or 128");
  g_tile = tile;
}

void forward(const Shape& s, const float* x, const float* w, const float* bias, int act, float* y,
             cudaStream_t stream) {
  const int64_t M = s.N * s.OH * s.OW, K = s.KH * s.KW * s.C;
  if (launch_tile<tile::kFwd>(s, {x, w, y}, x, w, bias, act, y, nullptr, M, s.O, K, 1, stream)) return;
  launch_gemm<kForward>(s, x, w, bias, act, y, M, s.O, K, 1, stream);
}

void backward_data(const Shape& s, const float* w, const float* dy, float* dx, cudaStream_t stream) {
  int64_t M = s.N * s.H * s.W;
  if (s.O == 0) {
    if (M * s.C != 0) FORGEML_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * M * s.C, stream));
    return;
  }
  if (s.C <= 4 && s.KH * s.KW * s.C * s.O <= kSmallCW) {
    if (M == 0 || s.C == 0) return;
    const unsigned blocks = static_cast<unsigned>(ceil_div(M, 128));
    const size_t smem = sizeof(float) * s.KH * s.KW * s.C * s.O;
    if (s.C == 1) FORGEML_LAUNCH(data_small_c_kernel<1>, blocks, 128, smem, stream, s, w, dy, dx, M);
    if (s.C == 2) FORGEML_LAUNCH(data_small_c_kernel<2>, blocks, 128, smem, stream, s, w, dy, dx, M);
    if (s.C == 3) FORGEML_LAUNCH(data_small_c_kernel<3>, blocks, 128, smem, stream, s, w, dy, dx, M);
    if (s.C == 4) FORGEML_LAUNCH(data_small_c_kernel<4>, blocks, 128, smem, stream, s, w, dy, dx, M);
    FORGEML_CUDA_CHECK_LAUNCH();
    return;
  }
  if (launch_tile<tile::kDat>(s, {w, dy, dx}, dy, w, nullptr, 0, dx, nullptr, M, s.C, s.KH * s.KW * s.O, 1,
                                stream))
    return;
  launch_gemm<kData>(s, dy, w, nullptr, 0, dx, M, s.C, s.KH * s.KW * s.O, 1, stream);
}

void backward_weight(const Shape& s, const float* x, const float* dy, float* dw, float* db, cudaStream_t stream) {
  const int64_t K = s.KH * s.KW * s.C, P = s.N * s.OH * s.OW;
  if (db && s.O) FORGEML_CUDA_CHECK(cudaMemsetAsync(db, 0, sizeof(float) * s.O, stream));
  bool db_done = P == 0;
  if (dw && K * s.O != 0) {
    FORGEML_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(float) * K * s.O, stream));
    // Split the long pixel reduction so the small dw grid still fills the GPU: the large tiles
    // aim at 4 blocks an SM with at least 512 pixels (64 steps) a slice, and sum db on the way.
    int64_t big_tiles = ceil_div(K, 128) * ceil_div(s.O, s.O <= 32 ? 32 : 64);
    int64_t big_splits = max(int64_t(1), min(ceil_div(P, 512), ceil_div(528, big_tiles)));
    if (P > 0 && launch_tile<tile::kWgt>(s, {x, dy, dw}, x, dy, nullptr, 0, dw, db, K, s.O, P, big_splits, stream)) {
      db_done = true;
    } else {
      int64_t tiles = ceil_div(K, BM) * ceil_div(s.O, BN);
      int64_t splits = max(int64_t(1), min(ceil_div(P, 256), ceil_div(264, tiles)));
      launch_gemm<kWeight>(s, x, dy, nullptr, 0, dw, K, s.O, P, splits, stream);
    }
  }
  if (db && s.O && !db_done) {
    int64_t per = max(int64_t(64), ceil_div(P, 512));
    dim3 grid(static_cast<unsigned>(ceil_div(s.O, 128)), static_cast<unsigned>(ceil_div(P, per)));
    FORGEML_LAUNCH(bias_grad_kernel, grid, 128, 0, stream, dy, P, s.O, per, db);
    FORGEML_CUDA_CHECK_LAUNCH();
  }
}

void pool_forward(const Shape& s, int kind, const float* x, float* y, cudaStream_t stream) {
  int64_t total = s.N * s.OH * s.OW * s.C;
  if (total == 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const int64_t big = INT32_MAX / 2;
  if (s.C % 4 == 0 && aligned && s.N * s.H * s.W * s.C < big && total < big && s.pt < big && s.pl < big &&
      s.KH < big && s.KW < big && s.sh < big && s.sw < big && s.OH * s.sh < big && s.OW * s.sw < big) {
    const int total4 = static_cast<int>(total / 4);
    const unsigned blocks = static_cast<unsigned>(ceil_div(total4, 256));
    if (kind == 0)
      FORGEML_LAUNCH(pool_forward_vec_kernel<0>, blocks, 256, 0, stream, geo(s), x, y, total4);
    else
      FORGEML_LAUNCH(pool_forward_vec_kernel<1>, blocks, 256, 0, stream, geo(s), x, y, total4);
    FORGEML_CUDA_CHECK_LAUNCH();
    return;
  }
  FORGEML_LAUNCH(pool_forward_kernel, static_cast<unsigned>(ceil_div(total, 256)), 256, 0, stream, s, kind, x, y,
                 total);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void pool_backward(const Shape& s, int kind, const float* x, const float* dy, float* dx, cudaStream_t stream) {
  int64_t in_total = s.N * s.H * s.W * s.C, out_total = s.N * s.OH * s.OW * s.C;
  if (in_total == 0) return;
  if (kind == 0) {
    FORGEML_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * in_total, stream));
    if (out_total == 0) return;
    FORGEML_LAUNCH(max_pool_backward_kernel, static_cast<unsigned>(ceil_div(out_total, 256)), 256, 0, stream, s, x,
                   dy, dx, out_total);
  } else {
    FORGEML_LAUNCH(avg_pool_backward_kernel, static_cast<unsigned>(ceil_div(in_total, 256)), 256, 0, stream, s, dy,
                   dx, in_total);
  }
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda::conv
