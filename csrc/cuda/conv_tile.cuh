// The large-tile implicit-GEMM convolution kernel of conv.cu, for channel-aligned problems
// (C % 8 == 0, O % 8 == 0, 16-byte aligned pointers, every index under 2^30: conv.cu's tile_fits):
//   - BM x BN block tiles (128 x 64 or 128 x 32), BK = 8, TM x TN outputs per thread, float4
//     fragments strided across the tile as in gemm_tile.cuh's SGEMM;
//   - every operand moves as float4 along its contiguous dimension (channels or outputs);
//   - shared memory double-buffered: the next BK step is loaded into registers while this one is
//     computed, then stored to the other buffer (one barrier a step);
//   - index math in 32 bits and incremental: since C and O are multiples of BK, one BK step of the
//     forward and backward-data reductions lies in one tap (kh, kw), which advances by a carry
//     instead of a division; backward-weight pixel positions advance the same way;
//   - backward-weight sums the bias gradient in extra blocks of the same launch.
// The GEMM shapes and modes are conv.cu's (kForward, kData, kWeight).
#pragma once
#include <cmath>

#include "cuda/conv.cuh"
#include "cuda/launch.cuh"

namespace forgeml::cuda::conv {

__device__ __forceinline__ float activate(int act, float v) {
  switch (act) {
    case 1:
      return v < 0.f ? 0.f : v;  // NaN stays NaN (Keras/NumPy)
    case 2:
      return 1.f / (1.f + expf(-v));
    case 3:
      return tanhf(v);
    case 4:
      return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    default:
      return v;
  }
}

namespace tile {

template <int BM_, int BN_, int TM_, int TN_>
struct Cfg {
  static constexpr int BM = BM_, BN = BN_, BK = 8, TM = TM_, TN = TN_, kPad = 4;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  static_assert(TM % 4 == 0 && TN % 4 == 0 && BM % TM == 0 && BN % TN == 0);
};
using Wide = Cfg<128, 64, 8, 8>;    // 128 threads, 64 outputs each
using Narrow = Cfg<128, 32, 8, 4>;  // 128 threads, 32 outputs each: for 32 or fewer GEMM columns

// Shape in 32 bits (the launcher checks that every index fits).
struct Geo {
  int N, H, W, C, KH, KW, O, sh, sw, dh, dw, pt, pl, OH, OW;
};

enum { kFwd = 0, kDat = 1, kWgt = 2 };

// (TapStep and PixelPos step by 8 = Cfg::BK.)
// The (kh, kw, ch0) position of a BK step in a (kh, kw, channel) reduction of `per_tap` channels
// a tap; next() moves it one step on.
struct TapStep {
  int kh, kw, c0;
  __device__ __forceinline__ void next(int per_tap, int KW) {
    c0 += 8;
    if (c0 == per_tap) {
      c0 = 0;
      if (++kw == KW) kw = 0, ++kh;
    }
  }
};

// A pixel (n, oh, ow) of the output grid that advances by BK pixels a step.
struct PixelPos {
  int n, oh, ow;
  __device__ __forceinline__ void set(const Geo& g, int p) { ow = p % g.OW, p /= g.OW, oh = p % g.OH, n = p / g.OH; }
  __device__ __forceinline__ void next(const Geo& g) {
    ow += 8;
    while (ow >= g.OW) {
      ow -= g.OW;
      if (++oh == g.OH) oh = 0, ++n;
    }
  }
};

__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 zero4() { return make_float4(0.f, 0.f, 0.f, 0.f); }

// Loads one BK step of both operands into registers (load) and then into shared memory (store),
// per mode. The A tile lands k-major in As[k][m], the B tile in Bs[k][n].
template <int MODE, class T>
struct Loader {
  static constexpr int BM = T::BM, BN = T::BN, BK = T::BK, kPad = T::kPad, kThreads = T::kThreads;
  // Forward / backward-data: A rows are pixels, one per thread (row tid), all BK = 8 of its k
  // (contiguous channels: one bounds check, two float4). Backward-weight: each thread holds one
  // m-quad amq of A at kA pixels (k offsets tid / (BM / 4), + 4).
  static constexpr int kA = BM * BK / 4 / kThreads;
  static constexpr int kB = (BK * BN / 4 + kThreads - 1) / kThreads;
  static_assert(BM * BK / 4 % kThreads == 0 && (MODE == kWgt || (BM == kThreads && kA == 2)));
  float4 va[kA], vb[kB];
  int row_h, row_w, row_n;  // fwd: window corner and n*H; data: ih + pt, iw + pl, n*OH
  bool row_ok;
  TapStep tap;               // fwd / data: the step being loaded
  int amq, a_th, a_tw, a_c;  // weight: this thread's m-quad and its tap and channel
  bool a_mok;
  PixelPos pix[kA];  // weight: this thread's A pixels, at k offsets
  int k0;            // weight: the step being loaded (pixel index)

  __device__ __forceinline__ void init(const Geo& g, int m0, int M, int kb) {
    const int tid = threadIdx.x;
    k0 = kb;
    if (MODE == kWgt) {
      amq = tid % (BM / 4) * 4;
      const int m = m0 + amq;
      a_mok = m < M;
      const int mm = a_mok ? m : 0, c = mm % g.C, t = mm / g.C;
      a_c = c, a_th = t / g.KW * g.dh, a_tw = t % g.KW * g.dw;
#pragma unroll
      for (int p = 0; p < kA; ++p) pix[p].set(g, kb + (tid + p * kThreads) / (BM / 4));
      return;
    }
    tap = {0, 0, 0};
    const int m = m0 + tid;
    row_ok = m < M;
    int q = row_ok ? m : 0;
    if (MODE == kFwd) {
      const int ow = q % g.OW;
      q /= g.OW;
      const int oh = q % g.OH;
      row_n = q / g.OH * g.H, row_h = oh * g.sh - g.pt, row_w = ow * g.sw - g.pl;
    } else {
      const int iw = q % g.W;
      q /= g.W;
      const int ih = q % g.H;
      row_n = q / g.H * g.OH, row_h = ih + g.pt, row_w = iw + g.pl;
    }
  }

  // a: x (fwd, weight) or dy (data); b: w (fwd, data) or dy (weight). n0: first GEMM column.
  __device__ __forceinline__ void load(const Geo& g, const float* __restrict__ a, const float* __restrict__ b, int n0,
                                       int Nc, int ke) {
    const int tid = threadIdx.x;
    if (MODE == kWgt) {
#pragma unroll
      for (int p = 0; p < kA; ++p) {
        const int kp = k0 + (tid + p * kThreads) / (BM / 4);
        const int h = pix[p].oh * g.sh - g.pt + a_th, w = pix[p].ow * g.sw - g.pl + a_tw;
        const bool ok = a_mok && kp < ke && unsigned(h) < unsigned(g.H) && unsigned(w) < unsigned(g.W);
        va[p] = ok ? ld4(a + ((pix[p].n * g.H + h) * g.W + w) * g.C + a_c) : zero4();
        pix[p].next(g);
      }
#pragma unroll
      for (int p = 0; p < kB; ++p) {  // dy rows k0 + r, columns n0 + c..c+3
        const int q = tid + p * kThreads, r = q / (BN / 4), c = q % (BN / 4) * 4;
        const bool ok = q < BK * BN / 4 && k0 + r < ke && n0 + c < Nc;
        vb[p] = ok ? ld4(b + (k0 + r) * g.O + n0 + c) : zero4();
      }
      k0 += BK;
      return;
    }
    const int th = tap.kh * g.dh, tw = tap.kw * g.dw;
    int h = row_h, w = row_w;
    bool ok = row_ok;
    const float* src;
    if (MODE == kFwd) {
      h += th, w += tw;
      ok = ok && unsigned(h) < unsigned(g.H) && unsigned(w) < unsigned(g.W);
      src = a + ((row_n + h) * g.W + w) * g.C + tap.c0;
    } else {  // the dy pixel whose window puts this tap on the input pixel (none between strides)
      h -= th, w -= tw;
      if (g.sh != 1 || g.sw != 1) {
        ok = ok && h >= 0 && w >= 0 && h % g.sh == 0 && w % g.sw == 0;
        h /= g.sh, w /= g.sw;
      }
      ok = ok && unsigned(h) < unsigned(g.OH) && unsigned(w) < unsigned(g.OW);
      src = a + ((row_n + h) * g.OW + w) * g.O + tap.c0;
    }
    va[0] = ok ? ld4(src) : zero4();
    va[1] = ok ? ld4(src + 4) : zero4();
    const int t = tap.kh * g.KW + tap.kw;
#pragma unroll
    for (int p = 0; p < kB; ++p) {
      const int q = tid + p * kThreads;
      if (MODE == kFwd) {  // w as (K, O): rows k, float4 along o
        const int r = q / (BN / 4), c = q % (BN / 4) * 4;
        const bool ok = q < BK * BN / 4 && n0 + c < Nc;
        vb[p] = ok ? ld4(b + (t * g.C + tap.c0 + r) * g.O + n0 + c) : zero4();
      } else {  // w[t, c, o0 + kq..+3] for GEMM column c: float4 along the reduction
        const int j = q / (BK / 4), kq = q % (BK / 4) * 4;
        const bool ok = q < BK * BN / 4 && n0 + j < Nc;
        vb[p] = ok ? ld4(b + (t * g.C + n0 + j) * g.O + tap.c0 + kq) : zero4();
      }
    }
    tap.next(MODE == kFwd ? g.C : g.O, g.KW);
  }

  __device__ __forceinline__ void store(float* As, float* Bs) const {
    const int tid = threadIdx.x;
#pragma unroll
    for (int p = 0; p < kA; ++p) {
      const int q = tid + p * kThreads;
      if (MODE == kWgt) {
        *reinterpret_cast<float4*>(&As[q / (BM / 4) * (BM + kPad) + amq]) = va[p];
      } else {  // transposed: the float4 runs along k (a warp writes 32 consecutive floats)
        As[(4 * p + 0) * (BM + kPad) + tid] = va[p].x;
        As[(4 * p + 1) * (BM + kPad) + tid] = va[p].y;
        As[(4 * p + 2) * (BM + kPad) + tid] = va[p].z;
        As[(4 * p + 3) * (BM + kPad) + tid] = va[p].w;
      }
    }
#pragma unroll
    for (int p = 0; p < kB; ++p) {
      const int q = tid + p * kThreads;
      if (q >= BK * BN / 4) break;
      if (MODE != kDat) {
        *reinterpret_cast<float4*>(&Bs[q / (BN / 4) * (BN + kPad) + q % (BN / 4) * 4]) = vb[p];
      } else {
        const int j = q / (BK / 4), kq = q % (BK / 4) * 4;
        Bs[(kq + 0) * (BN + kPad) + j] = vb[p].x;
        Bs[(kq + 1) * (BN + kPad) + j] = vb[p].y;
        Bs[(kq + 2) * (BN + kPad) + j] = vb[p].z;
        Bs[(kq + 3) * (BN + kPad) + j] = vb[p].w;
      }
    }
  }
};

// db[n0 + c] += sum of dy[p, n0 + c] over pixels p in [kb, ke): the block's threads as BN / 4
// float4 columns by kLanes pixel lanes, the lanes summed through shared memory (scratch).
template <class T>
__device__ __forceinline__ void bias_slice(const float* __restrict__ dy, int O, int kb, int ke, int n0, int Nc,
                                           float* scratch, float* __restrict__ db) {
  constexpr int kCols = T::BN / 4, kLanes = T::kThreads / kCols;
  const int col = threadIdx.x % kCols, lane = threadIdx.x / kCols, c = n0 + 4 * col;
  float4 s = zero4();
  if (c < Nc) {
    for (int p = kb + lane; p < ke; p += kLanes) {
      const float4 v = ld4(dy + p * O + c);
      s.x += v.x, s.y += v.y, s.z += v.z, s.w += v.w;
    }
  }
  *reinterpret_cast<float4*>(scratch + 4 * threadIdx.x) = s;
  __syncthreads();
  if (lane == 0 && c < Nc) {
    for (int l = 1; l < kLanes; ++l) {
      const float4 v = *reinterpret_cast<const float4*>(scratch + 4 * (threadIdx.x + l * kCols));
      s.x += v.x, s.y += v.y, s.z += v.z, s.w += v.w;
    }
    atomicAdd(db + c, s.x), atomicAdd(db + c + 1, s.y), atomicAdd(db + c + 2, s.z), atomicAdd(db + c + 3, s.w);
  }
}

// out (M, Nc) = epilogue(A (M, K) @ B (K, Nc)) over the reduction slice [z * k_per_z, ...) of K;
// kWgt adds its slice atomically into out (zeroed by the launcher). grid (M / BM, Nc / BN, slices);
// kWgt with db not null has one more column of blocks (blockIdx.x == M / BM) that sum their slice
// of dy into db instead: the bias gradient in the same launch, its reads spread over the grid.
// 4 blocks an SM (128 registers, no spills on sm_90): 528 resident blocks on 132 SMs.
template <int MODE, class T>
__global__ void __launch_bounds__(T::kThreads, 4)
    conv_tile_kernel(Geo g, const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ bias,
                     int act, float* __restrict__ out, float* __restrict__ db, int M, int Nc, int K, int k_per_z) {
  constexpr int BM = T::BM, BN = T::BN, BK = T::BK, TM = T::TM, TN = T::TN, kPad = T::kPad;
  constexpr int kRowStride = BM / (TM / 4), kColStride = BN / (TN / 4);
  __shared__ __align__(16) float As[2][BK * (BM + kPad)];
  __shared__ __align__(16) float Bs[2][BK * (BN + kPad)];
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;  // pixel tiles along x: no 65535 limit
  const int kb = blockIdx.z * k_per_z, ke = min(K, kb + k_per_z);
  const int tr = threadIdx.x / (BN / TN), tc = threadIdx.x % (BN / TN);
  if (MODE == kWgt && db != nullptr && m0 >= M) {  // the bias-gradient column of blocks
    bias_slice<T>(b, g.O, kb, ke, n0, Nc, As[0], db);
    return;
  }
  Loader<MODE, T> ld;
  ld.init(g, m0, M, kb);
  float acc[TM][TN] = {};

  ld.load(g, a, b, n0, Nc, ke);
  ld.store(As[0], Bs[0]);
  __syncthreads();
  for (int k0 = kb, step = 0; k0 < ke; k0 += BK, ++step) {
    const int cur = step & 1;
    const bool next = k0 + BK < ke;
    if (next) ld.load(g, a, b, n0, Nc, ke);  // in flight during the math below
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float ar[TM], br[TN];
#pragma unroll
      for (int i = 0; i < TM / 4; ++i) {
        const float4 v = *reinterpret_cast<const float4*>(&As[cur][k * (BM + kPad) + i * kRowStride + tr * 4]);
        ar[4 * i] = v.x, ar[4 * i + 1] = v.y, ar[4 * i + 2] = v.z, ar[4 * i + 3] = v.w;
      }
#pragma unroll
      for (int j = 0; j < TN / 4; ++j) {
        const float4 v = *reinterpret_cast<const float4*>(&Bs[cur][k * (BN + kPad) + j * kColStride + tc * 4]);
        br[4 * j] = v.x, br[4 * j + 1] = v.y, br[4 * j + 2] = v.z, br[4 * j + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
    }
    if (next) ld.store(As[cur ^ 1], Bs[cur ^ 1]);  // that buffer was last read before the last barrier
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + i / 4 * kRowStride + tr * 4 + i % 4;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN / 4; ++j) {
      const int n = n0 + j * kColStride + tc * 4;
      if (n >= Nc) continue;  // Nc % 4 == 0: the whole float4 is in range
      float* o = out + int64_t(m) * Nc + n;
      float v[4] = {acc[i][4 * j], acc[i][4 * j + 1], acc[i][4 * j + 2], acc[i][4 * j + 3]};
      if (MODE == kWgt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) atomicAdd(o + e, v[e]);
      } else {
        if (MODE == kFwd) {
#pragma unroll
          for (int e = 0; e < 4; ++e) v[e] = activate(act, v[e] + (bias ? bias[n + e] : 0.f));
        }
        *reinterpret_cast<float4*>(o) = make_float4(v[0], v[1], v[2], v[3]);
      }
    }
  }
}

}  // namespace tile
}  // namespace forgeml::cuda::conv
