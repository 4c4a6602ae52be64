// Tree kernels: node histograms with shared-memory atomics, the split scan (one block per
// feature and node, one thread per bin, a shared-memory prefix scan and an argmax reduction) and
// the stable row partition of split nodes (one block per node). Every kernel takes a batch of
// nodes, so the GPU grower (csrc/bind/tree_gpu_grower.h) launches each once per step; for
// small parents split_pair_kernel does a whole step (partition, histograms, scans) in one launch,
// split_pair_batch_kernel the steps of many trees.
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
constexpr int kOccupied = kBins + kBins / 32;  // scan_feature's flags per bin and masks per warp
static_assert(sizeof(PairArgs::total[0]) == kMaxS * sizeof(double), "PairArgs holds kMaxS statistics a node");

// ---------------------------------------------------------------- kernels

// Row r (bin b) into a shared-memory histogram: its weight by class, or for regression its weight,
// weight * y and weight * y^2; and its count.
__device__ void add_row(double* sh, uint32_t* sc, int b, int32_t r, const int32_t* cls, const double* w,
                        const double* y, int H) {
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

// grid (row chunks, d, nodes): block (., f, z) counts the bins of feature f over node z's rows
// (rows[ranges[2z] .. ranges[2z+1]), or rows[0 .. m) without ranges) in shared memory, then adds
// them to node z's global histogram.
__global__ void histogram_kernel(const uint8_t* codes, int d, const int32_t* rows, int64_t m, const int64_t* ranges,
                                 const int32_t* cls, const double* w, const double* y, int H, double* hw,
                                 uint32_t* cnt) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  double* sh = smem;                                              // (256, H)
  uint32_t* sc = reinterpret_cast<uint32_t*>(smem + kBins * H);   // (256)
  const int f = blockIdx.y;
  if (ranges) {
    const int64_t begin = ranges[2 * blockIdx.z];
    rows += begin;
    m = ranges[2 * blockIdx.z + 1] - begin;
    hw += int64_t(blockIdx.z) * d * kBins * H;
    cnt += int64_t(blockIdx.z) * d * kBins;
  }
  for (int i = threadIdx.x; i < kBins * H; i += blockDim.x) sh[i] = 0.0;
  for (int i = threadIdx.x; i < kBins; i += blockDim.x) sc[i] = 0u;
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m; i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t r = rows[i];
    const int b = codes[int64_t(r) * d + f];
    add_row(sh, sc, b, r, cls, w, y, H);
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
  *left_larger = l[0] > r[0];  // no NaN: the larger side takes it (ties: right), as the CPU
  if (l[0] < min_leaf || r[0] < min_leaf) return -INFINITY;
  if (l[1] < min_weight_leaf || r[1] < min_weight_leaf || l[1] <= 0 || r[1] <= 0) return -INFINITY;
  return side_proxy(l, S, criterion) + side_proxy(r, S, criterion);
}

// One feature's best split, block of 256 threads (thread b owns bin b): hf (256, H) and cf (256)
// are the feature's histogram (global or shared memory); total the node's statistics; outputs
// at index f (out_left, out_varies may be null); smem: 256 * (S + 1) doubles + 256 ints;
// occupied: kOccupied ints of shared memory (per bin, then one bit mask of value bins per warp). Candidates are ordered (bin, NaN right before NaN left)
// and the first best wins, as in the CPU scan.
__device__ void scan_feature(const double* hf, const uint32_t* cf, int H, int criterion, const double* total,
                             double min_leaf, double min_weight_leaf, int f, double* out_proxy, int32_t* out_bin,
                             int32_t* out_nan_left, double* out_left, int32_t* out_varies, double* smem,
                             int* occupied) {
  const int S = criterion == 2 ? 4 : H + 2;
  double* pre = smem;                    // (256, S) inclusive prefix over value bins
  double* best_p = smem + kBins * S;     // (256)
  int* best_key = reinterpret_cast<int*>(best_p + kBins);  // (256) candidate order, 2 * bin + nan_left
  const int b = threadIdx.x;
  const double* h = hf + b * H;
  const uint32_t c = cf[b];
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
  unsigned* occ_mask = reinterpret_cast<unsigned*>(occupied + kBins);
  const unsigned ballot = __ballot_sync(0xffffffffu, c > 0 && b != kNan);  // value bins: NaN left out
  if ((b & 31) == 0) occ_mask[b >> 5] = ballot;
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
    int next = -1;  // the next occupied value bin: from this warp's higher bits, then later warps' masks
    unsigned mask = (b & 31) == 31 ? 0u : occ_mask[b >> 5] & (~0u << ((b & 31) + 1));
    for (int wi = b >> 5;;) {
      if (mask) { next = 32 * wi + __ffs(static_cast<int>(mask)) - 1; break; }
      if (++wi == kBins / 32) break;
      mask = occ_mask[wi];
    }
    double l[kMaxS];
    for (int s = 0; s < S; ++s) l[s] = pre[b * S + s];
    bool left_larger;
    if (next >= 0) {
      double q = candidate(l, total, S, criterion, min_leaf, min_weight_leaf, &left_larger);
      if (q > p) { p = q; key = 2 * b + (has_nan ? 0 : (left_larger ? 1 : 0)); }
      if (has_nan) {
        const double* nanh = hf + kNan * H;
        double nanS[kMaxS];
        nanS[0] = cf[kNan];
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
  if (out_varies && b == 0) {  // more than one occupied bin (NaN counts): the CPU's "not constant"
    int u = occupied[kNan];
    for (int wi = 0; wi < kBins / 32; ++wi) u += __popc(occ_mask[wi]);
    out_varies[f] = u > 1;
  }
  if (b == 0) {
    out_proxy[f] = best_p[0];
    if (best_p[0] == -INFINITY) {
      out_bin[f] = -1;
      out_nan_left[f] = 0;
      if (out_left)
        for (int s = 0; s < S; ++s) out_left[int64_t(f) * S + s] = 0.0;
    } else {
      const int k = best_key[0] / 256, next = best_key[0] % 256, bin = k / 2;
      out_bin[f] = next == 255 ? kAllLeft : (bin + next - 1) / 2;
      out_nan_left[f] = k & 1;
      if (out_left) {  // the prefix up to the candidate's bin, plus the NaN bin when it goes left
        const bool nan_in = (k & 1) && occupied[kNan];
        const double* nanh = hf + kNan * H;
        double* o = out_left + int64_t(f) * S;
        for (int s = 0; s < S; ++s) o[s] = pre[bin * S + s];
        if (nan_in) {
          o[0] += cf[kNan];
          if (criterion == 2) {
            o[1] += nanh[0]; o[2] += nanh[1]; o[3] += nanh[2];
          } else {
            double W = 0;
            for (int c = 0; c < H; ++c) { o[2 + c] += nanh[c]; W += nanh[c]; }
            o[1] += W;
          }
        }
      }
    }
  }
}

// grid (d, nodes), block 256: scan_feature for feature blockIdx.x of node blockIdx.y. Node z's
// inputs and outputs sit at z's offsets; out_left and out_varies may be null.
__global__ void split_scan_kernel(const double* hw, const uint32_t* cnt, int H, int criterion, const double* total,
                                  double min_leaf, double min_weight_leaf, double* out_proxy, int32_t* out_bin,
                                  int32_t* out_nan_left, double* out_left, int32_t* out_varies) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  __shared__ int occupied[kOccupied];
  const int S = criterion == 2 ? 4 : H + 2;
  const int64_t z = blockIdx.y, d = gridDim.x, f = blockIdx.x;
  scan_feature(hw + (z * d + f) * kBins * H, cnt + (z * d + f) * kBins, H, criterion, total + z * S, min_leaf,
               min_weight_leaf, static_cast<int>(f), out_proxy + z * d, out_bin + z * d, out_nan_left + z * d,
               out_left ? out_left + z * d * S : nullptr, out_varies ? out_varies + z * d : nullptr, smem, occupied);
}

__device__ bool goes_left(const uint8_t* codes, int d, int32_t r, int f, int bin, int nan_left) {
  const int c = codes[int64_t(r) * d + f];
  return c == kNan ? nan_left != 0 : c <= bin;
}

// The number of rows[cb .. ce) that go left, summed over the block (every thread gets it).
__device__ int64_t count_left(const uint8_t* codes, int d, const int32_t* rows, int64_t cb, int64_t ce, int f,
                              int b, int nl, int64_t* part_sum) {
  const int t = threadIdx.x, T = blockDim.x;
  int64_t mine = 0;
  for (int64_t i = cb + t; i < ce; i += T) mine += goes_left(codes, d, rows[i], f, b, nl);
  part_sum[t] = mine;
  __syncthreads();
  for (int half = T / 2; half > 0; half >>= 1) {
    if (t < half) part_sum[t] += part_sum[t + half];
    __syncthreads();
  }
  const int64_t total = part_sum[0];
  __syncthreads();
  return total;
}

// grid nodes, block kPartThreads: block z splits rows[ranges[2z] .. ranges[2z+1]) stably by
// node z's split (left rows first, each side in its old order) through tmp, and writes the left
// count to n_left[z]. Tiles of blockDim rows: a block-wide prefix sum of the "goes left" flags
// gives every row its place.
constexpr int kPartThreads = 256;
__global__ void partition_kernel(const uint8_t* codes, int d, int32_t* rows, int32_t* tmp, const int64_t* ranges,
                                 const int32_t* feature, const int32_t* bin, const int32_t* nan_left,
                                 int64_t* n_left) {
  __shared__ int64_t part_sum[kPartThreads];
  __shared__ int flags[kPartThreads];
  const int z = blockIdx.x, t = threadIdx.x, T = blockDim.x;
  const int64_t begin = ranges[2 * z], end = ranges[2 * z + 1];
  const int f = feature[z], b = bin[z], nl = nan_left[z];
  // pass 1: the left count, so the right side's start is known
  const int64_t total_left = count_left(codes, d, rows, begin, end, f, b, nl, part_sum);
  int64_t left_done = 0, right_done = 0;
  for (int64_t t0 = begin; t0 < end; t0 += T) {  // pass 2: scatter, one tile at a time
    const int64_t i = t0 + t;
    const bool valid = i < end;
    const int32_t r = valid ? rows[i] : 0;
    const int g = valid && goes_left(codes, d, r, f, b, nl);
    flags[t] = g;
    __syncthreads();
    for (int off = 1; off < T; off <<= 1) {  // inclusive Hillis-Steele scan of the flags
      const int add = t >= off ? flags[t - off] : 0;
      __syncthreads();
      flags[t] += add;
      __syncthreads();
    }
    const int64_t before = flags[t] - g;  // left rows before this one in the tile
    const int64_t tile_left = flags[T - 1];
    const int64_t tile_rows = end - t0 < T ? end - t0 : T;
    if (valid) {
      if (g) tmp[begin + left_done + before] = r;
      else tmp[begin + total_left + right_done + (t - before)] = r;
    }
    left_done += tile_left;
    right_done += tile_rows - tile_left;
    __syncthreads();  // flags are rewritten by the next tile
  }
  __syncthreads();
  for (int64_t i = begin + t; i < end; i += T) rows[i] = tmp[i];  // pass 3: back in place
  if (t == 0) n_left[z] = total_left;
}

// The same partition over several blocks per node, out of place (rows is not written): block b
// of node z (grid (blocks, nodes)) takes whole tiles [cb, ce) of the range; partition_count_kernel
// writes each block's left count to block_left[z * blocks + b], then partition_scatter_kernel
// places the rows of each block after the left (right) rows of the blocks before it. With one
// block per node the scatter kernel counts for itself (block_left null): one launch.
__device__ void part_chunk(int64_t begin, int64_t end, int64_t* cb, int64_t* ce) {
  const int64_t B = gridDim.x, tiles = (end - begin + kPartThreads - 1) / kPartThreads;
  const int64_t chunk = (tiles + B - 1) / B * kPartThreads;
  *cb = begin + chunk * blockIdx.x < end ? begin + chunk * blockIdx.x : end;
  *ce = *cb + chunk < end ? *cb + chunk : end;
}

// Rows [cb, ce) of the node starting at begin to their places in out, as partition_kernel's pass
// 2: left_done (right_done) rows of the node before cb went left (right), total_left in all.
// flags: blockDim ints of shared memory.
__device__ void scatter_tiles(const uint8_t* codes, int d, const int32_t* rows, int32_t* out, int64_t begin,
                              int64_t cb, int64_t ce, int64_t left_done, int64_t right_done, int64_t total_left,
                              int f, int b, int nl, int* flags) {
  const int t = threadIdx.x, T = blockDim.x;
  for (int64_t t0 = cb; t0 < ce; t0 += T) {
    const int64_t i = t0 + t;
    const bool valid = i < ce;
    const int32_t r = valid ? rows[i] : 0;
    const int g = valid && goes_left(codes, d, r, f, b, nl);
    flags[t] = g;
    __syncthreads();
    for (int off = 1; off < T; off <<= 1) {
      const int add = t >= off ? flags[t - off] : 0;
      __syncthreads();
      flags[t] += add;
      __syncthreads();
    }
    const int64_t mine_before = flags[t] - g;
    const int64_t tile_left = flags[T - 1];
    const int64_t tile_rows = ce - t0 < T ? ce - t0 : T;
    if (valid) {
      if (g) out[begin + left_done + mine_before] = r;
      else out[begin + total_left + right_done + (t - mine_before)] = r;
    }
    left_done += tile_left;
    right_done += tile_rows - tile_left;
    __syncthreads();  // flags are rewritten by the next tile
  }
}

__global__ void partition_count_kernel(const uint8_t* codes, int d, const int32_t* rows, const int64_t* ranges,
                                       const int32_t* feature, const int32_t* bin, const int32_t* nan_left,
                                       int64_t* block_left) {
  __shared__ int64_t part_sum[kPartThreads];
  const int z = blockIdx.y;
  int64_t cb, ce;
  part_chunk(ranges[2 * z], ranges[2 * z + 1], &cb, &ce);
  const int64_t c = count_left(codes, d, rows, cb, ce, feature[z], bin[z], nan_left[z], part_sum);
  if (threadIdx.x == 0) block_left[int64_t(z) * gridDim.x + blockIdx.x] = c;
}

__global__ void partition_scatter_kernel(const uint8_t* codes, int d, const int32_t* rows, int32_t* out,
                                         const int64_t* ranges, const int32_t* feature, const int32_t* bin,
                                         const int32_t* nan_left, const int64_t* block_left, int64_t* n_left) {
  __shared__ int64_t part_sum[kPartThreads];
  __shared__ int flags[kPartThreads];
  __shared__ int64_t before_total[2];
  const int z = blockIdx.y, t = threadIdx.x;
  const int64_t begin = ranges[2 * z], end = ranges[2 * z + 1];
  const int f = feature[z], b = bin[z], nl = nan_left[z];
  int64_t cb, ce;
  part_chunk(begin, end, &cb, &ce);
  int64_t before = 0, total_left;
  if (!block_left) {
    total_left = count_left(codes, d, rows, begin, end, f, b, nl, part_sum);
  } else {
    if (t == 0) {
      int64_t all = 0;
      for (unsigned j = 0; j < gridDim.x; ++j) {
        if (j == blockIdx.x) before_total[0] = all;
        all += block_left[int64_t(z) * gridDim.x + j];
      }
      before_total[1] = all;
    }
    __syncthreads();
    before = before_total[0], total_left = before_total[1];
  }
  scatter_tiles(codes, d, rows, out, begin, cb, ce, before, (cb - begin) - before, total_left, f, b, nl, flags);
  if (blockIdx.x == 0 && t == 0) n_left[z] = total_left;
}

// Block blk of one node pair (tree.cuh split_pair), 256 threads: block d * a.nodes partitions the
// parent's rows into out (one block, as partition_into); block f + d * z builds child z's
// histogram of feature f in shared memory from the parent's rows that go to its side, then scans
// it. The blocks read rows, never out, so they need no order among themselves. part_sum, flags:
// kPartThreads shared entries each; occupied: kOccupied shared ints; smem: split_pair_smem bytes.
__device__ void pair_block(unsigned blk, const uint8_t* codes, int d, const int32_t* rows, int32_t* out,
                           const PairArgs& a, const int32_t* cls, const double* w, const double* y, int H,
                           int criterion, double min_leaf, double min_weight_leaf, int64_t* n_left, double* out_proxy,
                           int32_t* out_bin, int32_t* out_nan_left, double* out_left, int32_t* out_varies,
                           double* smem, int64_t* part_sum, int* flags, int* occupied) {
  const int t = threadIdx.x, T = blockDim.x;
  if (blk == unsigned(d) * a.nodes) {
    const int64_t total_left = count_left(codes, d, rows, a.begin, a.end, a.feature, a.bin, a.nan_left, part_sum);
    scatter_tiles(codes, d, rows, out, a.begin, a.begin, a.end, 0, 0, total_left, a.feature, a.bin, a.nan_left,
                  flags);
    if (t == 0) *n_left = total_left;
    return;
  }
  const int f = blk % d, z = blk / d;
  const bool want_left = a.side[z] == 0;
  double* sh = smem;                                             // (256, H)
  uint32_t* sc = reinterpret_cast<uint32_t*>(smem + kBins * H);  // (256)
  double* scan_smem = smem + kBins * H + kBins / 2;              // behind sc
  for (int i = t; i < kBins * H; i += T) sh[i] = 0.0;
  for (int i = t; i < kBins; i += T) sc[i] = 0u;
  __syncthreads();
  for (int64_t i = a.begin + t; i < a.end; i += T) {
    const int32_t r = rows[i];
    if (goes_left(codes, d, r, a.feature, a.bin, a.nan_left) != want_left) continue;
    const int b = codes[int64_t(r) * d + f];
    add_row(sh, sc, b, r, cls, w, y, H);
  }
  __syncthreads();
  const int S = criterion == 2 ? 4 : H + 2;
  const int64_t zd = int64_t(z) * d;
  scan_feature(sh, sc, H, criterion, a.total[z], min_leaf, min_weight_leaf, f, out_proxy + zd, out_bin + zd,
               out_nan_left + zd, out_left + zd * S, out_varies + zd, scan_smem, occupied);
}

// grid d * a.nodes + 1, block 256: one pair, its parameters as kernel arguments.
__global__ void split_pair_kernel(const uint8_t* codes, int d, const int32_t* rows, int32_t* out, PairArgs a,
                                  const int32_t* cls, const double* w, const double* y, int H, int criterion,
                                  double min_leaf, double min_weight_leaf, int64_t* n_left, double* out_proxy,
                                  int32_t* out_bin, int32_t* out_nan_left, double* out_left, int32_t* out_varies) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  __shared__ int64_t part_sum[kPartThreads];
  __shared__ int flags[kPartThreads];
  __shared__ int occupied[kOccupied];
  pair_block(blockIdx.x, codes, d, rows, out, a, cls, w, y, H, criterion, min_leaf, min_weight_leaf, n_left,
             out_proxy, out_bin, out_nan_left, out_left, out_varies, smem, part_sum, flags, occupied);
}

// grid (2 d + 1, pairs), block 256: pair blockIdx.y of jobs (in device memory), each with its own
// rows, weights, limits and outputs; blocks past a one-child pair's d + 1 have nothing to do.
// A batch is thousands of blocks: at most 64 registers (sm_90 ptxas: 66 without the bound, no
// spills with it) keep 4 blocks on an SM instead of 3.
__global__ void __launch_bounds__(256, 4) split_pair_batch_kernel(const uint8_t* codes, int d, const PairJob* jobs, const int32_t* cls,
                                        const double* y, int H, int criterion) {
  FORGEML_DYNAMIC_SHARED(double, smem);
  __shared__ int64_t part_sum[kPartThreads];
  __shared__ int flags[kPartThreads];
  __shared__ int occupied[kOccupied];
  const PairJob& j = jobs[blockIdx.y];
  if (blockIdx.x > unsigned(d) * j.a.nodes) return;  // the whole block leaves: no barrier is left waiting
  pair_block(blockIdx.x, codes, d, j.rows, j.out, j.a, cls, j.w, y, H, criterion, j.min_leaf, j.min_weight_leaf,
             j.n_left, j.proxy, j.bin, j.nan_left, j.left, j.varies, smem, part_sum, flags, occupied);
}

// ---------------------------------------------------------------- launchers

void histogram(const uint8_t* codes, int64_t n, int d, const int32_t* rows, int64_t m, const int32_t* cls,
               const double* w, const double* y, int H, double* hw, uint32_t* cnt, CUstream_st* stream) {
  (void)n;
  if (m == 0 || d == 0) return;
  constexpr int threads = 256;
  const int chunks = static_cast<int>(std::min<int64_t>(ceil_div(m, threads * 16), 64));
  const size_t smem = kBins * H * sizeof(double) + kBins * sizeof(uint32_t);
  FORGEML_LAUNCH(histogram_kernel, dim3(chunks, d), threads, smem, stream, codes, d, rows, m,
                 static_cast<const int64_t*>(nullptr), cls, w, y, H, hw, cnt);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void histogram_nodes(const uint8_t* codes, int d, const int32_t* rows, const int64_t* ranges, int nodes,
                     int64_t max_rows, const int32_t* cls, const double* w, const double* y, int H, double* hw,
                     uint32_t* cnt, CUstream_st* stream) {
  if (nodes == 0 || d == 0 || max_rows == 0) return;
  if (nodes > 65535) throw std::invalid_argument("histogram_nodes: at most 65535 nodes per launch");
  constexpr int threads = 256;
  const int chunks = static_cast<int>(std::min<int64_t>(ceil_div(max_rows, threads * 16), 64));
  const size_t smem = kBins * H * sizeof(double) + kBins * sizeof(uint32_t);
  FORGEML_LAUNCH(histogram_kernel, dim3(chunks, d, nodes), threads, smem, stream, codes, d, rows, max_rows, ranges,
                 cls, w, y, H, hw, cnt);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void partition(const uint8_t* codes, int d, int32_t* rows, int32_t* tmp, const int64_t* ranges, int nodes,
               const int32_t* feature, const int32_t* bin, const int32_t* nan_left, int64_t* n_left,
               CUstream_st* stream) {
  if (nodes == 0) return;
  FORGEML_LAUNCH(partition_kernel, nodes, kPartThreads, 0, stream, codes, d, rows, tmp, ranges, feature, bin,
                 nan_left, n_left);
  FORGEML_CUDA_CHECK_LAUNCH();
}

int partition_into(const uint8_t* codes, int d, const int32_t* rows, int32_t* out, const int64_t* ranges, int nodes,
                   int64_t max_rows, const int32_t* feature, const int32_t* bin, const int32_t* nan_left,
                   int64_t* block_left, int64_t* n_left, CUstream_st* stream, int blocks) {
  if (nodes == 0) return 0;
  if (nodes > 65535) throw std::invalid_argument("partition_into: at most 65535 nodes per launch");
  if (blocks <= 0) blocks = static_cast<int>(std::min<int64_t>(ceil_div(max_rows, kPartThreads * 8), kMaxPartBlocks));
  blocks = std::max(1, std::min(blocks, kMaxPartBlocks));
  if (blocks == 1) {
    FORGEML_LAUNCH(partition_scatter_kernel, dim3(1, nodes), kPartThreads, 0, stream, codes, d, rows, out, ranges,
                   feature, bin, nan_left, static_cast<const int64_t*>(nullptr), n_left);
    FORGEML_CUDA_CHECK_LAUNCH();
    return 1;
  }
  FORGEML_LAUNCH(partition_count_kernel, dim3(blocks, nodes), kPartThreads, 0, stream, codes, d, rows, ranges, feature,
                 bin, nan_left, block_left);
  FORGEML_CUDA_CHECK_LAUNCH();
  FORGEML_LAUNCH(partition_scatter_kernel, dim3(blocks, nodes), kPartThreads, 0, stream, codes, d, rows, out, ranges,
                 feature, bin, nan_left, static_cast<const int64_t*>(block_left), n_left);
  FORGEML_CUDA_CHECK_LAUNCH();
  return 2;
}

void split_scan(const double* hw, const uint32_t* cnt, int d, int H, int criterion, const double* total,
                double min_leaf, double min_weight_leaf, double* proxy, int32_t* bin, int32_t* nan_left,
                CUstream_st* stream) {
  split_scan_nodes(hw, cnt, d, 1, H, criterion, total, min_leaf, min_weight_leaf, proxy, bin, nan_left, nullptr,
                   nullptr, stream);
}

void split_scan_nodes(const double* hw, const uint32_t* cnt, int d, int nodes, int H, int criterion,
                      const double* total, double min_leaf, double min_weight_leaf, double* proxy, int32_t* bin,
                      int32_t* nan_left, double* left, int32_t* varies, CUstream_st* stream) {
  if (d == 0 || nodes == 0) return;
  if (nodes > 65535) throw std::invalid_argument("split_scan: at most 65535 nodes per launch");
  const int S = criterion == 2 ? 4 : H + 2;
  if (S > kMaxS) throw std::invalid_argument("split_scan: at most 16 classes on the GPU");
  const size_t smem = kBins * S * sizeof(double) + kBins * (sizeof(double) + sizeof(int));
  FORGEML_LAUNCH(split_scan_kernel, dim3(d, nodes), kBins, smem, stream, hw, cnt, H, criterion, total, min_leaf,
                 min_weight_leaf, proxy, bin, nan_left, left, varies);
  FORGEML_CUDA_CHECK_LAUNCH();
}

size_t split_pair_smem(int H, int criterion) {
  const int S = criterion == 2 ? 4 : H + 2;
  return kBins * H * sizeof(double) + kBins * sizeof(uint32_t) + kBins * (S + 1) * sizeof(double) +
         kBins * sizeof(int);
}

bool split_pair_fits(int H, int criterion) {
  // with split_pair_kernel's static shared memory, within the 48 KiB a launch gets by default
  constexpr size_t static_smem = kPartThreads * (sizeof(int64_t) + sizeof(int)) + kOccupied * sizeof(int);
  return (criterion == 2 || H + 2 <= kMaxS) && split_pair_smem(H, criterion) + static_smem <= 48 * 1024;
}

void split_pair(const uint8_t* codes, int d, const int32_t* rows, int32_t* out, const PairArgs& a,
                const int32_t* cls, const double* w, const double* y, int H, int criterion, double min_leaf,
                double min_weight_leaf, int64_t* n_left, double* proxy, int32_t* bin, int32_t* nan_left,
                double* left, int32_t* varies, CUstream_st* stream) {
  if (d < 1 || a.nodes < 1 || a.nodes > 2) throw std::invalid_argument("split_pair: expected d >= 1 and 1 or 2 nodes");
  if (!split_pair_fits(H, criterion)) throw std::invalid_argument("split_pair: too many classes for one block");
  const unsigned blocks = static_cast<unsigned>(d) * static_cast<unsigned>(a.nodes) + 1;
  FORGEML_LAUNCH(split_pair_kernel, blocks, kBins, split_pair_smem(H, criterion), stream, codes, d, rows, out, a,
                 cls, w, y, H, criterion, min_leaf, min_weight_leaf, n_left, proxy, bin, nan_left, left, varies);
  FORGEML_CUDA_CHECK_LAUNCH();
}

void split_pair_batch(const uint8_t* codes, int d, const PairJob* jobs, int pairs, const int32_t* cls,
                      const double* y, int H, int criterion, CUstream_st* stream) {
  if (pairs == 0) return;
  if (d < 1 || pairs < 0 || pairs > 65535)
    throw std::invalid_argument("split_pair_batch: expected d >= 1 and 0 .. 65535 pairs");
  if (!split_pair_fits(H, criterion)) throw std::invalid_argument("split_pair_batch: too many classes for one block");
  const dim3 grid(static_cast<unsigned>(d) * 2 + 1, static_cast<unsigned>(pairs));
  FORGEML_LAUNCH(split_pair_batch_kernel, grid, kBins, split_pair_smem(H, criterion), stream, codes, d, jobs, cls, y,
                 H, criterion);
  FORGEML_CUDA_CHECK_LAUNCH();
}

}  // namespace forgeml::cuda::tree
