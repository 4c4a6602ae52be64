// The GPU tree grower's host side (python/forgeml/ops/_tree_gpu.py calls it through
// tree_grow_cuda.cpp): the kernels of csrc/cuda/tree.cu driven from C++, replaying the CPU
// grower's decisions (csrc/cpu/tree/grow.cpp) in its depth-first order with its generator
// (rng.h) and costs (criterion.h), so the trees are the CPU's trees.
//
// Per node pair (a split node's partition and its two children's search): a parent of at most
// kPairMaxRows rows goes to the batcher (tree_gpu_batcher.h), which serves the pending small pairs
// of all workers' trees together: one upload of their arguments, one launch (split_pair_batch),
// one download of their per-feature scan results, one sync (without batching: one split_pair
// launch, parameters as kernel arguments, one download, one sync per pair); for larger parents one upload of a small
// parameter block, a memset, three or four launches (partition: count + scatter over up to 64
// blocks; histograms; split scan), the download and the sync. Buffers are allocated once per
// fit. A split whose children are both leaves needs no device work (nobody reads their rows).
// Trees are independent: each worker (a host thread with its own stream and workspace) grows
// whole trees taken from a shared counter into their own slots, so the output does not depend
// on scheduling nor on which pairs share a batch.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bind/tree_gpu_batcher.h"
#include "cpu/tree/criterion.h"
#include "cpu/tree/rng.h"
#include "cuda/launch.cuh"
#include "cuda/tree.cuh"

namespace forgeml::cuda::tree_gpu {

namespace ft = forgeml::tree;
namespace ct = forgeml::cuda::tree;

struct Params {
  int criterion = 0;  // 0 gini, 1 entropy, 2 squared_error
  int K = 1;          // classes (1: regression)
  int d = 0;
  int max_depth = 1 << 30;
  int min_samples_split = 2, min_samples_leaf = 1;
  double min_weight_fraction_leaf = 0, min_impurity_decrease = 0;
  int max_features = 1;
  bool bootstrap = false;
  int64_t n_draws = 0;
  bool fused = true;       // tests turn the one-launch path for small parents (split_pair) off
  bool batch = false;      // small pairs of all trees batched (opt-in until run on a GPU), else one launch each
  int fail_tree = -1;      // test hook: this tree's worker throws at the tree's second small pair
  int64_t fail_batch = 0;  // test hook: the fail_batch-th batch (from 1) fails
  bool classify() const { return criterion != 2; }
  int H() const { return classify() ? K : 3; }
  int S() const { return classify() ? K + 2 : 4; }
};

// Device inputs: codes (n, d) uint8; cls (n) int32 or y (n) float64; w (n) float64.
struct Input {
  const uint8_t* codes;
  int64_t n;
  const int32_t* cls;
  const double* y;
  const double* w;
};

struct Tree {  // the arrays of one tree in the CPU's node order
  std::vector<int32_t> feature, left, right, thr_bin;
  std::vector<uint8_t> nan_left;
  std::vector<int64_t> n_samples;
  std::vector<double> weighted_n, impurity, value;
  int depth = 0;
};

// What the fit asked of the device (tests and the bench report them per node pair), and where
// the workers' host time went (seconds summed over workers, steady_clock, a few reads per pair):
// issue (enqueueing copies and launches), wait (in stream syncs), prepare (a tree's rows and
// bootstrap draws), host (everything else in grow: the decisions). batches: the batcher's
// round trips, batched: the pairs they served, batch_sync_s: the seconds their syncs took (about
// the device time of a batch: kernel and copies). A worker's time blocked in the batcher is wait,
// except the enqueueing of the batches it dispatched (issue).
struct Counts {
  int64_t pairs = 0, leaf_pairs = 0, launches = 0, memsets = 0, h2d = 0, d2h = 0, syncs = 0;
  int64_t batches = 0, batched = 0;
  double issue_s = 0, wait_s = 0, prepare_s = 0, grow_s = 0, batch_sync_s = 0;
  void add(const Counts& o) {
    pairs += o.pairs, leaf_pairs += o.leaf_pairs, launches += o.launches, memsets += o.memsets, h2d += o.h2d,
        d2h += o.d2h, syncs += o.syncs, batches += o.batches, batched += o.batched;
    issue_s += o.issue_s, wait_s += o.wait_s, prepare_s += o.prepare_s, grow_s += o.grow_s;
    batch_sync_s += o.batch_sync_s;
  }
  double host_s() const { return grow_s - issue_s - wait_s - prepare_s; }
};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr uint64_t kTreeSeed = 0x5851f42d4c957f2dULL;       // grow.cpp grow_forest: per-tree seed offset
constexpr uint64_t kBootstrapSeed = 0x2545f4914f6cdd1dULL;  // grow.cpp bootstrap_counts
constexpr size_t kScratchBytes = size_t{4} << 20;           // grow.cpp: sets the CPU's draw batch size
constexpr int kBins = 256;

// One worker's device workspace, carved into 256-byte aligned pieces. in/out are the blocks one
// copy moves each way per node pair (mirrored in pinned host memory).
struct Layout {
  int64_t rows, tmp, wt, hw, cnt, blk, in, out, bytes;
  // in: part (begin, end), sel (feature, bin, nan_left, pad), child ranges (2, 2), totals (2, S)
  int64_t in_bytes, in_sel, in_child, in_total;
  // out: n_left, proxy (2, d), left (2, d, S), bin (2, d), nan_left (2, d), varies (2, d)
  int64_t out_bytes, out_proxy, out_left, out_bin, out_nan, out_varies;

  Layout(int64_t n, const Params& p) {
    const int64_t d = p.d, S = p.S(), H = p.H();
    in_sel = 16, in_child = 32, in_total = 64, in_bytes = in_total + 2 * S * 8;
    out_proxy = 8, out_left = out_proxy + 2 * d * 8, out_bin = out_left + 2 * d * S * 8;
    out_nan = out_bin + 2 * d * 4, out_varies = out_nan + 2 * d * 4, out_bytes = out_varies + 2 * d * 4;
    int64_t off = 0;
    auto piece = [&](int64_t b) {
      const int64_t at = off;
      off += (b + 255) / 256 * 256;
      return at;
    };
    rows = piece(n * 4), tmp = piece(n * 4), wt = piece(p.bootstrap ? n * 8 : 0);
    hw = piece(2 * d * kBins * H * 8 + 2 * d * kBins * 4);  // cnt right behind: one memset zeroes both
    cnt = hw + 2 * d * kBins * H * 8;
    blk = piece(ct::kMaxPartBlocks * 8);
    in = piece(in_bytes), out = piece(out_bytes);
    bytes = off;
  }
};

// Owns a non-blocking stream and a pinned host block, released on every exit path. given: a
// piece of the caller's pinned memory (that outlives this) instead of a block of its own: pinned
// allocations are slow, so the workers share one.
class StreamAndHost {
 public:
  explicit StreamAndHost(size_t host_bytes, void* given = nullptr) : owns_(given == nullptr) {
    FORGEML_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    host = given;
    if (owns_ && cudaMallocHost(&host, host_bytes) != cudaSuccess) {
      cudaGetLastError();
      cudaStreamDestroy(stream);
      throw std::runtime_error("CUDA error: cannot allocate pinned host memory for the tree grower");
    }
  }
  ~StreamAndHost() {
    cudaStreamSynchronize(stream);  // no copy may still target host when it is freed
    if (owns_) cudaFreeHost(host);
    cudaStreamDestroy(stream);
  }
  StreamAndHost(const StreamAndHost&) = delete;
  StreamAndHost& operator=(const StreamAndHost&) = delete;
  cudaStream_t stream = nullptr;
  void* host = nullptr;

 private:
  bool owns_;
};

// Device memory from cudaMalloc, freed on every exit path.
class DeviceBlock {
 public:
  explicit DeviceBlock(size_t bytes) {
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("CUDA error: cannot allocate the tree grower's batch buffers");
    }
  }
  ~DeviceBlock() { cudaFree(p); }
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  void* p = nullptr;
};

// The batcher's device side: per lane a stream, the jobs and results of up to `cap` pairs on the
// device and in pinned host memory. serve() is the batcher's dispatch callback: each request's
// item is a PairJob without outputs (rows, out, weights, limits, the pair's arguments); its
// results (the Layout's out block) are copied to request.result.
class PairBatches {
 public:
  PairBatches(const Input& in, const Params& p, int lanes, int cap)
      : in_(in), p_(p), cap_(cap), out_bytes_(Layout(0, p).out_bytes) {
    stride_ = (out_bytes_ + 255) / 256 * 256;
    jobs_bytes_ = (static_cast<int64_t>(sizeof(ct::PairJob)) * cap + 255) / 256 * 256;
    for (int i = 0; i < lanes; ++i) {
      lanes_.push_back(std::make_unique<Lane>(jobs_bytes_ + stride_ * cap));
    }
  }

  double serve(int lane, const std::vector<Batcher::Request*>& batch) {
    const Clock::time_point t0 = Clock::now();
    Lane& l = *lanes_[lane];
    const int n = static_cast<int>(batch.size());
    if (n > cap_) throw std::logic_error("tree: more pending pairs than workers");
    if (p_.fail_batch > 0 && ++dispatched_ == p_.fail_batch)
      throw std::runtime_error("tree: injected batch failure (test hook)");
    const Layout L(0, p_);
    auto* jobs = static_cast<ct::PairJob*>(l.sh.host);
    char* dev_results = static_cast<char*>(l.dev.p) + jobs_bytes_;
    for (int i = 0; i < n; ++i) {
      ct::PairJob j = *static_cast<const ct::PairJob*>(batch[i]->item);
      char* r = dev_results + i * stride_;
      j.n_left = reinterpret_cast<int64_t*>(r), j.proxy = reinterpret_cast<double*>(r + L.out_proxy);
      j.bin = reinterpret_cast<int32_t*>(r + L.out_bin), j.nan_left = reinterpret_cast<int32_t*>(r + L.out_nan);
      j.left = reinterpret_cast<double*>(r + L.out_left), j.varies = reinterpret_cast<int32_t*>(r + L.out_varies);
      jobs[i] = j;
    }
    cudaStream_t s = l.sh.stream;
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(l.dev.p, jobs, n * sizeof(ct::PairJob), cudaMemcpyHostToDevice, s));
    ct::split_pair_batch(in_.codes, p_.d, static_cast<const ct::PairJob*>(l.dev.p), n, in_.cls, in_.y, p_.H(),
                         p_.criterion, s);
    char* host_results = static_cast<char*>(l.sh.host) + jobs_bytes_;
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(host_results, dev_results, n * stride_, cudaMemcpyDeviceToHost, s));
    const Clock::time_point t_sync = Clock::now();
    const double issue_s = std::chrono::duration<double>(t_sync - t0).count();
    FORGEML_CUDA_CHECK(cudaStreamSynchronize(s));
    l.counts.batch_sync_s += seconds_since(t_sync);
    for (int i = 0; i < n; ++i) std::memcpy(batch[i]->result, host_results + i * stride_, out_bytes_);
    ++l.counts.h2d, ++l.counts.launches, ++l.counts.d2h, ++l.counts.syncs;
    return issue_s;
  }

  // the lanes' device work (call when no batch runs)
  Counts counts() const {
    Counts c;
    for (auto& l : lanes_) c.add(l->counts);
    return c;
  }

 private:
  struct Lane {
    explicit Lane(int64_t bytes) : sh(bytes), dev(bytes) {}
    StreamAndHost sh;
    DeviceBlock dev;
    Counts counts;  // written by one dispatch at a time (the batcher owns the lane meanwhile)
  };
  const Input in_;
  const Params p_;
  const int cap_;
  const int64_t out_bytes_;
  int64_t stride_ = 0, jobs_bytes_ = 0;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<int64_t> dispatched_{0};
};

class Worker {
 public:
  Worker(const Input& in, const Params& p, const std::vector<double>& w_host, const std::vector<int32_t>& base_rows,
         char* dev, char* host, Batcher* batcher = nullptr)
      : in_(in),
        p_(p),
        L_(in.n, p),
        w_host_(w_host),
        base_rows_(base_rows),
        dev_(dev),
        sh_(L_.in_bytes + L_.out_bytes, host),
        batcher_(batcher),
        host_work_(batcher) {
    hin_ = static_cast<char*>(sh_.host);
    hout_ = hin_ + L_.in_bytes;
    const int H = p.H();
    batch_cap_ = std::max<int>(1, static_cast<int>(kScratchBytes / (kBins * (H * sizeof(double) + 4))));
    batch_cap_ = std::min({batch_cap_, p.d, std::max(1, p.max_features)});
    fused_ = p.fused && ct::split_pair_fits(H, p.criterion);
  }

  Counts counts;
  int fail_after = -1;  // test hook (Params::fail_tree): throw after this many more small pairs

  Tree grow(uint64_t seed) {
    const Clock::time_point t_grow = Clock::now();
    const int64_t m = prepare_rows(seed);
    counts.prepare_s += seconds_since(t_grow);
    if (m == 0) throw std::invalid_argument("weight: the total weight is zero");
    rng_ = ft::Rng(seed + kTreeSeed);
    tree_ = Tree{};
    const Params& p = p_;
    const int S = p.S(), H = p.H(), d = p.d;
    // the root's statistics from its histogram (feature 0 holds every row once)
    auto* child = reinterpret_cast<int64_t*>(hin_ + L_.in_child);
    child[0] = 0, child[1] = m;
    const Clock::time_point t_issue = Clock::now();
    upload();
    zero_histograms();
    histograms(1, m, 0);
    std::vector<double> h0(kBins * H);
    std::vector<uint32_t> c0(kBins);
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(h0.data(), dev(L_.hw), h0.size() * 8, cudaMemcpyDeviceToHost, s()));
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(c0.data(), dev(L_.cnt), c0.size() * 4, cudaMemcpyDeviceToHost, s()));
    counts.d2h += 2;
    counts.issue_s += seconds_since(t_issue);
    sync();
    Entry root;
    root.total.assign(S, 0.0);
    int64_t n0 = 0;
    for (uint32_t c : c0) n0 += c;
    std::vector<double> sums(H, 0.0);  // per column over the bins, then W over the columns
    for (int b = 0; b < kBins; ++b)
      for (int k = 0; k < H; ++k) sums[k] += h0[b * H + k];
    root.total[0] = static_cast<double>(n0);
    if (p.classify()) {
      double W = 0;
      for (int k = 0; k < H; ++k) W += sums[k];
      root.total[1] = W;
      for (int k = 0; k < H; ++k) root.total[2 + k] = sums[k];
    } else {
      for (int k = 0; k < 3; ++k) root.total[1 + k] = sums[k];
    }
    w_root_ = root.total[1];
    lim_leaf_ = static_cast<double>(p.min_samples_leaf);
    lim_w_ = p.min_weight_fraction_leaf * w_root_;
    root.begin = 0, root.end = m, root.depth = 0;
    root.consts.assign(d, 0);
    const bool ok = make_node(root);
    if (ok) {
      Entry* kids[1] = {&root};
      step(nullptr, kids, 1, false);
    }
    std::vector<Entry> stack;
    stack.push_back(std::move(root));
    while (!stack.empty()) {
      Entry e = std::move(stack.back());
      stack.pop_back();
      if (!e.split) continue;
      const int64_t mid = e.begin + static_cast<int64_t>(e.left[0]);
      Entry le, re;
      le.begin = e.begin, le.end = mid, le.depth = e.depth + 1, le.total = e.left, le.consts = e.consts;
      re.begin = mid, re.end = e.end, re.depth = e.depth + 1, re.total = e.right, re.consts = std::move(e.consts);
      tree_.feature[e.node] = e.feature, tree_.thr_bin[e.node] = e.bin, tree_.nan_left[e.node] = e.nan_left;
      const bool lok = make_node(le), rok = make_node(re);
      tree_.left[e.node] = le.node, tree_.right[e.node] = re.node;
      Entry* kids[2];
      int z = 0;
      if (lok) kids[z++] = &le;
      if (rok) kids[z++] = &re;
      step(&e, kids, z, true);
      stack.push_back(std::move(re));
      stack.push_back(std::move(le));
    }
    host_work_.set(false);  // this worker brings no pair until its next tree's root is searched
    counts.grow_s += seconds_since(t_grow);
    return std::move(tree_);
  }

 private:
  struct Entry {
    int node = -1;
    int64_t begin = 0, end = 0;
    int depth = 0;
    std::vector<double> total, left, right;
    std::vector<char> consts;
    bool split = false;
    int feature = -1, bin = 0, nan_left = 0;
  };

  cudaStream_t s() const { return sh_.stream; }
  template <class T = char>
  T* dev(int64_t off) const {
    return reinterpret_cast<T*>(dev_ + off);
  }

  void upload() {
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(dev(L_.in), hin_, L_.in_bytes, cudaMemcpyHostToDevice, s()));
    ++counts.h2d;
  }
  void sync() {
    const Clock::time_point t0 = Clock::now();
    FORGEML_CUDA_CHECK(cudaStreamSynchronize(s()));
    counts.wait_s += seconds_since(t0);
    ++counts.syncs;
  }
  void zero_histograms() {
    FORGEML_CUDA_CHECK(cudaMemsetAsync(dev(L_.hw), 0, L_.blk - L_.hw, s()));
    ++counts.memsets;
  }
  const double* weights() const { return p_.bootstrap ? dev<const double>(L_.wt) : in_.w; }
  // The rows of the nodes at `depth`: partitions alternate between the two row buffers (each
  // writes its children's rows into the other one; the range there belonged to an ancestor).
  int32_t* rows_at(int depth) const { return dev<int32_t>(depth % 2 ? L_.tmp : L_.rows); }
  void histograms(int z, int64_t max_rows, int depth) {
    ct::histogram_nodes(in_.codes, p_.d, rows_at(depth), dev<int64_t>(L_.in + L_.in_child), z, max_rows, in_.cls,
                        weights(), in_.y, p_.H(), dev<double>(L_.hw), dev<uint32_t>(L_.cnt), s());
    ++counts.launches;
  }

  // This tree's rows (weight > 0, ascending) and, with bootstrap, its weights, on the device.
  int64_t prepare_rows(uint64_t seed) {
    const int64_t n = in_.n;
    const std::vector<int32_t>* rows = &base_rows_;
    if (p_.bootstrap) {
      std::vector<int32_t> draws(n, 0);
      if (n > 0) {
        ft::Rng rng(seed ^ kBootstrapSeed);
        for (int64_t i = 0; i < p_.n_draws; ++i) ++draws[rng.below(static_cast<uint64_t>(n))];
      }
      wt_.resize(n);
      own_rows_.clear();
      for (int64_t i = 0; i < n; ++i) {
        wt_[i] = w_host_[i] * draws[i];
        if (wt_[i] > 0) own_rows_.push_back(static_cast<int32_t>(i));
      }
      FORGEML_CUDA_CHECK(cudaMemcpyAsync(dev(L_.wt), wt_.data(), n * 8, cudaMemcpyHostToDevice, s()));
      ++counts.h2d;
      rows = &own_rows_;
    }
    const int64_t m = static_cast<int64_t>(rows->size());
    if (m) {
      FORGEML_CUDA_CHECK(cudaMemcpyAsync(dev(L_.rows), rows->data(), m * 4, cudaMemcpyHostToDevice, s()));
      ++counts.h2d;
    }
    return m;
  }

  double cost(const double* s) const {
    switch (p_.criterion) {
      case 0:
        return ft::Gini{p_.K}.cost(s);
      case 1:
        return ft::Entropy{p_.K}.cost(s);
      default:
        return ft::SquaredError{1}.cost(s);
    }
  }

  // A new node with e's statistics; whether it is searched (the CPU grower's stopping rules).
  bool make_node(Entry& e) {
    const double* s = e.total.data();
    Tree& t = tree_;
    e.node = static_cast<int>(t.feature.size());
    t.feature.push_back(-1), t.left.push_back(-1), t.right.push_back(-1), t.thr_bin.push_back(0);
    t.nan_left.push_back(0);
    t.n_samples.push_back(static_cast<int64_t>(s[0]));
    t.weighted_n.push_back(s[1]);
    const double impurity = cost(s) / s[1];
    t.impurity.push_back(impurity);
    if (p_.classify())
      for (int k = 0; k < p_.K; ++k) t.value.push_back(s[2 + k] / s[1]);
    else t.value.push_back(s[2] / s[1]);
    t.depth = std::max(t.depth, e.depth);
    const double n = s[0], W = s[1], eps = std::numeric_limits<double>::epsilon();
    const double pure_tol = p_.classify() ? eps : eps * (1.0 + (s[2] / W) * (s[2] / W));
    return !(e.depth >= p_.max_depth || n < p_.min_samples_split || n < 2.0 * p_.min_samples_leaf || W < 2.0 * lim_w_ ||
             impurity <= pure_tol);
  }

  // The device work of one step: parent's partition (when given), the z kids' histograms (unless
  // has_hist: the root's are built) and split scans; then each kid's split on the host.
  void step(const Entry* parent, Entry* const* kids, int z, bool build_hist) {
    if (parent && z == 0) {  // two leaves: their rows are never read again, no device work at all
      ++counts.pairs, ++counts.leaf_pairs;
      return;
    }
    const int d = p_.d, S = p_.S();
    if (parent && fused_ && parent->end - parent->begin <= ct::kPairMaxRows) {
      fused_step(*parent, kids, z);
      return;
    }
    host_work_.set(false);  // device work of its own: batches need not wait for this worker
    auto* part = reinterpret_cast<int64_t*>(hin_);
    auto* sel = reinterpret_cast<int32_t*>(hin_ + L_.in_sel);
    auto* child = reinterpret_cast<int64_t*>(hin_ + L_.in_child);
    auto* total = reinterpret_cast<double*>(hin_ + L_.in_total);
    int64_t max_rows = 0;
    if (parent)
      part[0] = parent->begin, part[1] = parent->end, sel[0] = parent->feature, sel[1] = parent->bin,
      sel[2] = parent->nan_left;
    for (int i = 0; i < z; ++i) {
      child[2 * i] = kids[i]->begin, child[2 * i + 1] = kids[i]->end;
      max_rows = std::max(max_rows, kids[i]->end - kids[i]->begin);
      std::copy(kids[i]->total.begin(), kids[i]->total.end(), total + i * S);
    }
    const Clock::time_point t_issue = Clock::now();
    upload();
    if (parent) {
      ++counts.pairs;
      const auto* sel_dev = dev<const int32_t>(L_.in + L_.in_sel);
      counts.launches += ct::partition_into(in_.codes, d, rows_at(parent->depth), rows_at(parent->depth + 1),
                                            dev<const int64_t>(L_.in), 1, parent->end - parent->begin, sel_dev,
                                            sel_dev + 1, sel_dev + 2, dev<int64_t>(L_.blk), dev<int64_t>(L_.out), s());
    }
    if (z > 0) {
      if (build_hist) {
        zero_histograms();
        histograms(z, max_rows, kids[0]->depth);
      }
      ct::split_scan_nodes(dev<const double>(L_.hw), dev<const uint32_t>(L_.cnt), d, z, p_.H(), p_.criterion,
                           dev<const double>(L_.in + L_.in_total), lim_leaf_, lim_w_,
                           dev<double>(L_.out + L_.out_proxy), dev<int32_t>(L_.out + L_.out_bin),
                           dev<int32_t>(L_.out + L_.out_nan), dev<double>(L_.out + L_.out_left),
                           dev<int32_t>(L_.out + L_.out_varies), s());
      ++counts.launches;
    }
    finish(parent, kids, z, t_issue);
    host_work_.set(true);
  }

  // step for a parent of few rows: the partition and both kids' histograms and scans in one
  // launch with its parameters as kernel arguments (no upload, no memset), one download, one sync.
  void fused_step(const Entry& parent, Entry* const* kids, int z) {
    const Clock::time_point t_issue = Clock::now();
    ct::PairArgs a{};
    a.begin = parent.begin, a.end = parent.end, a.feature = parent.feature, a.bin = parent.bin;
    a.nan_left = parent.nan_left, a.nodes = z;
    for (int i = 0; i < z; ++i) {
      a.side[i] = kids[i]->node == tree_.left[parent.node] ? 0 : 1;
      std::copy(kids[i]->total.begin(), kids[i]->total.end(), a.total[i]);
    }
    ++counts.pairs;
    if (fail_after >= 0 && --fail_after < 0) throw std::runtime_error("tree: injected worker failure (test hook)");
    if (batcher_) {
      ct::PairJob job{};
      job.a = a, job.rows = rows_at(parent.depth), job.out = rows_at(parent.depth + 1), job.w = weights();
      job.min_leaf = lim_leaf_, job.min_weight_leaf = lim_w_;
      request_.item = &job, request_.result = hout_;
      const double issue_s = batcher_->submit(request_);
      counts.issue_s += issue_s;
      counts.wait_s += seconds_since(t_issue) - issue_s;
      decide(&parent, kids, z);
      return;
    }
    ct::split_pair(in_.codes, p_.d, rows_at(parent.depth), rows_at(parent.depth + 1), a, in_.cls, weights(), in_.y,
                   p_.H(), p_.criterion, lim_leaf_, lim_w_, dev<int64_t>(L_.out), dev<double>(L_.out + L_.out_proxy),
                   dev<int32_t>(L_.out + L_.out_bin), dev<int32_t>(L_.out + L_.out_nan),
                   dev<double>(L_.out + L_.out_left), dev<int32_t>(L_.out + L_.out_varies), s());
    ++counts.launches;
    finish(&parent, kids, z, t_issue);
  }

  // a step's end: the scan results down, one sync, the kids' splits chosen; the partition's left
  // count (first word of the results) must be the one the parent's histogram promised.
  void finish(const Entry* parent, Entry* const* kids, int z, Clock::time_point t_issue) {
    FORGEML_CUDA_CHECK(cudaMemcpyAsync(hout_, dev(L_.out), L_.out_bytes, cudaMemcpyDeviceToHost, s()));
    ++counts.d2h;
    counts.issue_s += seconds_since(t_issue);
    sync();
    decide(parent, kids, z);
  }

  void decide(const Entry* parent, Entry* const* kids, int z) {
    for (int i = 0; i < z; ++i) choose(*kids[i], i);
    if (parent && *reinterpret_cast<const int64_t*>(hout_) != static_cast<int64_t>(parent->left[0]))
      throw std::runtime_error("tree: the GPU partition disagrees with the histogram");
  }

  // The CPU's feature draws (Fisher-Yates over the non-constant features, in batches, until
  // max_features non-constant ones were seen) on kid i's scan results; ties to the earlier draw.
  void choose(Entry& e, int i) {
    const int d = p_.d, S = p_.S();
    const auto* proxy = reinterpret_cast<const double*>(hout_ + L_.out_proxy) + int64_t(i) * d;
    const auto* left = reinterpret_cast<const double*>(hout_ + L_.out_left) + int64_t(i) * d * S;
    const auto* bins = reinterpret_cast<const int32_t*>(hout_ + L_.out_bin) + int64_t(i) * d;
    const auto* nan_left = reinterpret_cast<const int32_t*>(hout_ + L_.out_nan) + int64_t(i) * d;
    const auto* varies = reinterpret_cast<const int32_t*>(hout_ + L_.out_varies) + int64_t(i) * d;
    cand_.clear();
    for (int f = 0; f < d; ++f)
      if (!e.consts[f]) cand_.push_back(f);
    const int nc = static_cast<int>(cand_.size());
    int seen = 0, drawn = 0, best = -1;
    double best_p = -std::numeric_limits<double>::infinity();
    while (seen < p_.max_features && drawn < nc) {
      const int need = std::min({p_.max_features - seen, nc - drawn, batch_cap_});
      for (int j = drawn; j < drawn + need; ++j)
        std::swap(cand_[j], cand_[j + rng_.below(static_cast<uint64_t>(nc - j))]);
      int n_const = 0;
      for (int j = drawn; j < drawn + need; ++j) {  // rank order: the first of equal proxies wins
        const int f = cand_[j];
        if (!varies[f]) {
          e.consts[f] = 1;
          ++n_const;
        } else if (proxy[f] > best_p) {
          best = f, best_p = proxy[f];
        }
      }
      seen += need - n_const;
      drawn += need;
    }
    if (best < 0) return;
    std::vector<double> bl(left + int64_t(best) * S, left + int64_t(best + 1) * S), br(S);
    for (int k = 0; k < S; ++k) br[k] = e.total[k] - bl[k];
    const double improvement = (cost(e.total.data()) - cost(bl.data()) - cost(br.data())) / w_root_;
    if (improvement + std::numeric_limits<double>::epsilon() < p_.min_impurity_decrease) return;
    e.split = true, e.feature = best, e.bin = bins[best], e.nan_left = nan_left[best];
    e.left = std::move(bl), e.right = std::move(br);
  }

  const Input in_;
  const Params p_;
  const Layout L_;
  const std::vector<double>& w_host_;
  const std::vector<int32_t>& base_rows_;
  char* dev_;
  StreamAndHost sh_;
  Batcher* batcher_;
  HostWork host_work_;  // declared after batcher_
  Batcher::Request request_;
  char *hin_, *hout_;
  int batch_cap_ = 1;
  bool fused_ = true;  // small parents go through split_pair (when its shared memory fits)
  ft::Rng rng_{0};
  Tree tree_;
  double w_root_ = 0, lim_leaf_ = 0, lim_w_ = 0;
  std::vector<int> cand_;
  std::vector<double> wt_;
  std::vector<int32_t> own_rows_;
};

inline int64_t workspace_bytes(int64_t n, const Params& p) { return Layout(n, p).bytes; }
// a worker's pinned host memory: its in and out blocks
inline int64_t host_bytes(const Params& p) {
  const Layout L(0, p);
  return (L.in_bytes + L.out_bytes + 255) / 256 * 256;
}

// Grows one tree per seed with `workers` host threads (each with workspace_bytes of workspace at
// workspace + k * workspace_bytes). stream: the caller's, on which the inputs were written.
inline std::vector<Tree> grow_forest(const Input& in, const Params& p, const uint64_t* seeds, int n_trees,
                                     char* workspace, int workers, cudaStream_t stream, Counts* counts) {
  if (p.d < 1) throw std::invalid_argument("codes: expected at least one feature");
  FORGEML_CUDA_CHECK(cudaStreamSynchronize(stream));  // the inputs are ready, whatever stream wrote them
  std::vector<double> w_host(in.n);
  if (in.n) FORGEML_CUDA_CHECK(cudaMemcpy(w_host.data(), in.w, in.n * 8, cudaMemcpyDeviceToHost));
  std::vector<int32_t> base_rows;
  if (!p.bootstrap)
    for (int64_t i = 0; i < in.n; ++i)
      if (w_host[i] > 0) base_rows.push_back(static_cast<int32_t>(i));
  const int64_t bytes = workspace_bytes(in.n, p);
  workers = std::max(1, std::min(workers, n_trees));
  // the batcher (when small pairs take split_pair at all): two lanes, so one group of workers
  // decides while the other's batch runs; a pair waits at most 50 us for slow workers
  std::unique_ptr<PairBatches> lanes;
  std::unique_ptr<Batcher> batcher;
  if (p.batch && p.fused && ct::split_pair_fits(p.H(), p.criterion)) {
    lanes = std::make_unique<PairBatches>(in, p, 2, workers);
    batcher = std::make_unique<Batcher>(
        2, std::chrono::microseconds(50),
        [&lanes](int lane, const std::vector<Batcher::Request*>& batch) { return lanes->serve(lane, batch); });
  }
  std::vector<Tree> out(n_trees);
  std::vector<Counts> per(workers);
  const int64_t hb = host_bytes(p);
  StreamAndHost pinned(workers * hb);  // every worker's piece; freed after the workers
  std::vector<std::exception_ptr> errors(workers);
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  int device = 0;  // worker threads start on device 0: put them on the caller's
  FORGEML_CUDA_CHECK(cudaGetDevice(&device));
  auto run = [&](int k) {
    try {
      FORGEML_CUDA_CHECK(cudaSetDevice(device));
      Worker w(in, p, w_host, base_rows, workspace + k * bytes, static_cast<char*>(pinned.host) + k * hb,
               batcher.get());
      for (int t; !failed.load() && (t = next.fetch_add(1)) < n_trees;) {
        w.fail_after = t == p.fail_tree ? 1 : -1;
        out[t] = w.grow(seeds[t]);
      }
      per[k] = w.counts;
    } catch (...) {
      errors[k] = std::current_exception();
      failed = true;
    }
  };
  if (workers == 1) {
    run(0);
  } else {
    std::vector<std::thread> threads;
    try {
      for (int k = 0; k < workers; ++k) threads.emplace_back(run, k);
    } catch (...) {  // no thread to be had: stop the started ones (a joinable thread must not be destroyed)
      failed = true;
      for (auto& t : threads) t.join();
      throw;
    }
    for (auto& t : threads) t.join();
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  if (counts) {
    for (auto& c : per) counts->add(c);
    if (batcher) {
      counts->add(lanes->counts());
      counts->batches += batcher->batches(), counts->batched += batcher->served();
    }
  }
  return out;
}

}  // namespace forgeml::cuda::tree_gpu
