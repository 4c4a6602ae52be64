// Tree kernels: node histograms with shared-memory atomics, and the split scan (one block per
// feature, one thread per bin, a shared-memory prefix scan and an argmax reduction).
// Contracts in tree.cuh.
#include <algorithm>
#include <cmath>

#include "cuda/launch.cuh"
#include "cuda/tree.cuh"

namespace forgeml::cuda::tree {

constexpr int kBins = 256;
constexpr int kNan = 255;
constexpr int kAllLeft = 254;
constexpr int kMaxS = 18;  // classification: 16 classes + count + weight

// ---------------------------------------------------------------- kernels

// grid (row chunks, d): block (., f) counts its rows' bins of feature f in shared memory, then
// adds them to the global histogram.
__global__ void histogram_kernel(const uint8_t* codes, int d, const int32_t* rows, int64_t m, const int32_t* cls,
                                 const double* w, const double* y, int H, double* hw, uint32_t* cnt) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  double* sh = smem;                                              // (256, H)
  uint32_t* sc = reinterpret_cast<uint32_t*>(smem + kBins * H);   // (256)
  const int f = blockIdx.y;
  for (int i = threadIdx.x; i < kBins * H; i += blockDim.x) sh[i] = 0.0;
  for (int i = threadIdx.x; i < kBins; i += blockDim.x) sc[i] = 0u;
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m; i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t r = rows[i];
    const int b = codes[int64_t(r) * d + f];
    const double wr = w[r];
    if (cls) {
      atomicAdd(&sh[b * H + cls[r]], wr);
    } else {
      const double wy = wr * y[r];
      atomicAdd(&sh[b * H], wr);
      atomicAdd(&sh[b * H + 1], wy);
      atomicAdd(&sh[b * H + 2], wy * y[r]);
    }
    atomicAdd(&sc[b], 1u);
  }
  __syncthreads();
  double* gh = hw + int64_t(f) * kBins * H;
  uint32_t* gc = cnt + int64_t(f) * kBins;
  for (int i = threadIdx.x; i < kBins * H; i += blockDim.x)
    if (sh[i] != 0.0) atomicAdd(&gh[i], sh[i]);
  for (int i = threadIdx.x; i < kBins; i += blockDim.x)
    if (sc[i]) atomicAdd(&gc[i], sc[i]);
}

__device__ double xlogx(double x) { return x > 0 ? x * log(x) : 0.0; }

// proxy of one side (criterion.h): what a split maximises, summed over both children.
__device__ double side_proxy(const double* s, int S, int criterion) {
  if (criterion == 2) return s[2] * s[2] / s[1];
  double acc = 0;
  if (criterion == 0) {
    for (int k = 2; k < S; ++k) acc += s[k] * s[k];
    return acc / s[1];
  }
  for (int k = 2; k < S; ++k) acc += xlogx(s[k]);
  return acc - xlogx(s[1]);
}

// Candidate "left = l": returns its proxy or -inf when it breaks a leaf limit.
__device__ double candidate(const double* l, const double* total, int S, int criterion, double min_leaf,
                            double min_weight_leaf, bool* left_larger) {
  double r[kMaxS];
  for (int s = 0; s < S; ++s) r[s] = total[s] - l[s];
  *left_larger = l[0] >= r[0];
  if (l[0] < min_leaf || r[0] < min_leaf) return -INFINITY;
  if (l[1] < min_weight_leaf || r[1] < min_weight_leaf || l[1] <= 0 || r[1] <= 0) return -INFINITY;
  return side_proxy(l, S, criterion) + side_proxy(r, S, criterion);
}

// grid d, block 256: thread b owns bin b. Candidates are ordered (bin, NaN right before NaN left)
// and the first best wins, as in the CPU scan.
__global__ void split_scan_kernel(const double* hw, const uint32_t* cnt, int H, int criterion, const double* total,
                                  double min_leaf, double min_weight_leaf, double* out_proxy, int32_t* out_bin,
                                  int32_t* out_nan_left) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  const int S = criterion == 2 ? 4 : H + 2;
  double* pre = smem;                    // (256, S) inclusive prefix over value bins
  double* best_p = smem + kBins * S;     // (256)
  int* best_key = reinterpret_cast<int*>(best_p + kBins);  // (256) candidate order, 2 * bin + nan_left
  __shared__ int occupied[kBins];
  const int f = blockIdx.x, b = threadIdx.x;
  const double* h = hw + (int64_t(f) * kBins + b) * H;
  const uint32_t c = cnt[int64_t(f) * kBins + b];
  double mine[kMaxS];
  mine[0] = c;
  if (criterion == 2) {
    mine[1] = h[0]; mine[2] = h[1]; mine[3] = h[2];
  } else {
    double W = 0;
    for (int k = 0; k < H; ++k) { mine[2 + k] = h[k]; W += h[k]; }
    mine[1] = W;
  }
  occupied[b] = c > 0;
  const bool nan_bin = b == kNan;
  for (int s = 0; s < S; ++s) pre[b * S + s] = nan_bin ? 0.0 : mine[s];
  __syncthreads();
  for (int off = 1; off < kBins; off <<= 1) {  // Hillis-Steele scan, S values per thread
    double add[kMaxS];
    for (int s = 0; s < S; ++s) add[s] = b >= off ? pre[(b - off) * S + s] : 0.0;
    __syncthreads();
    for (int s = 0; s < S; ++s) pre[b * S + s] += add[s];
    __syncthreads();
  }
  const bool has_nan = occupied[kNan];
  double p = -INFINITY;
  int key = 1 << 30;
  if (!nan_bin && occupied[b]) {
    int next = -1;
    for (int j = b + 1; j < kNan; ++j)
      if (occupied[j]) { next = j; break; }
    double l[kMaxS];
    for (int s = 0; s < S; ++s) l[s] = pre[b * S + s];
    bool left_larger;
    if (next >= 0) {
      double q = candidate(l, total, S, criterion, min_leaf, min_weight_leaf, &left_larger);
      if (q > p) { p = q; key = 2 * b + (has_nan ? 0 : (left_larger ? 1 : 0)); }
      if (has_nan) {
        const double* nanh = hw + (int64_t(f) * kBins + kNan) * H;
        double nanS[kMaxS];
        nanS[0] = cnt[int64_t(f) * kBins + kNan];
        if (criterion == 2) {
          nanS[1] = nanh[0]; nanS[2] = nanh[1]; nanS[3] = nanh[2];
        } else {
          double W = 0;
          for (int k = 0; k < H; ++k) { nanS[2 + k] = nanh[k]; W += nanh[k]; }
          nanS[1] = W;
        }
        for (int s = 0; s < S; ++s) l[s] += nanS[s];
        q = candidate(l, total, S, criterion, min_leaf, min_weight_leaf, &left_larger);
        if (q > p) { p = q; key = 2 * b + 1; }
      }
    } else if (has_nan) {
      double q = candidate(l, total, S, criterion, min_leaf, min_weight_leaf, &left_larger);
      if (q > p) { p = q; key = 2 * b; }
    }
    // the threshold bin is recovered from `next` below by the winner
    if (p > -INFINITY) key = key * 256 + (next >= 0 ? next : 255);
  }
  best_p[b] = p;
  best_key[b] = key;
  __syncthreads();
  for (int half = kBins / 2; half > 0; half >>= 1) {  // argmax, ties to the smaller key
    if (b < half) {
      double po = best_p[b + half];
      int ko = best_key[b + half];
      if (po > best_p[b] || (po == best_p[b] && ko < best_key[b])) { best_p[b] = po; best_key[b] = ko; }
    }
    __syncthreads();
  }
  if (b == 0) {
    out_proxy[f] = best_p[0];
    if (best_p[0] == -INFINITY) {
      out_bin[f] = -1;
      out_nan_left[f] = 0;
    } else {
      const int k = best_key[0] / 256, next = best_key[0] % 256, bin = k / 2;
      out_bin[f] = next == 255 ? kAllLeft : (bin + next - 1) / 2;
      out_nan_left[f] = k & 1;
    }
  }
}

// ---------------------------------------------------------------- launchers

void histogram(const uint8_t* codes, int64_t n, int d, const int32_t* rows, int64_t m, const int32_t* cls,
               const double* w, const double* y, int H, double* hw, uint32_t* cnt, CUstream_st* stream) {
  (void)n;
  if (m == 0 || d == 0) return;
  constexpr int threads = 256;
  const int chunks = static_cast<int>(std::min<int64_t>(ceil_div(m, threads * 16), 64));
  const size_t smem = kBins * H * sizeof(double) + kBins * sizeof(uint32_t);
  FORGEML_LAUNCH(histogram_kernel, dim3(chunks, d), threads, smem, stream, codes, d, rows, m, cls, w, y, H, hw, cnt);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void split_scan(const double* hw, const uint32_t* cnt, int d, int H, int criterion, const double* total,
                double min_leaf, double min_weight_leaf, double* proxy, int32_t* bin, int32_t* nan_left,
                CUstream_st* stream) {
  if (d == 0) return;
  const int S = criterion == 2 ? 4 : H + 2;
  if (S > kMaxS) throw std::invalid_argument("split_scan: at most 16 classes on the GPU");
  const size_t smem = kBins * S * sizeof(double) + kBins * (sizeof(double) + sizeof(int));
  FORGEML_LAUNCH(split_scan_kernel, d, kBins, smem, stream, hw, cnt, H, criterion, total, min_leaf, min_weight_leaf,
                 proxy, bin, nan_left);
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda::tree
