// Tree growth on binned data: one whole tree per call.
//
// A node owns a range of `rows` (the rows with weight > 0, partitioned in place as the tree
// grows). Its split is searched over features drawn at random without replacement until
// max_features non-constant ones have been seen (scikit-learn's rule; features found constant
// are remembered and never drawn again below). Histograms are built for a batch of drawn
// features in one pass over the node's rows (row-major codes: one cache line per row), with a
// 256-bit occupancy mask per feature so a small node scans and clears only the bins it touched.
// When every feature is evaluated at every node (max_features >= d: single trees, regression
// forests by default), a node keeps its full histogram and its children get theirs LightGBM's
// way: build the smaller child from its rows, derive the larger as parent minus smaller.
// Classification with integer weights (bootstrap counts, unit weights) packs each bin's class
// statistics into one uint64 per class (rows << 32 | weight): one integer add per row and feature
// instead of a double add plus a row count, same sums exactly.
// The random splitter (extremely randomized trees) needs no histogram: per batch of drawn features
// one pass over the node's rows finds each one's range of codes, a threshold bin is drawn in it,
// and a second pass sums the statistics left of it (split_random.h).
// Depth-first growth by default; best-first (largest impurity decrease first) with
// max_leaf_nodes. Everything depends only on the seed, never on the thread count.
// Sparse X given as entries (Data::sparse) searches and partitions nodes in grow_sparse.h.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/parallel.h"
#include "cpu/tree/criterion.h"
#include "cpu/tree/grow_sparse.h"
#include "cpu/tree/hist_words.h"
#include "cpu/tree/kernels.h"
#include "cpu/tree/random_rows.h"
#include "cpu/tree/rng.h"
#include "cpu/tree/small_vec.h"
#include "cpu/tree/split.h"
#include "cpu/tree/split_mae.h"
#include "cpu/tree/split_random.h"
#include "cpu/tree/tree.h"
#include "cpu/tree/tree_out_pool.h"

namespace forgeml::tree {

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr size_t kScratchBytes = size_t{4} << 20;  // histogram scratch per thread
constexpr int64_t kMinHistRows = 512;  // nodes this large keep a full histogram for subtraction
constexpr size_t kMaxHistBytes = size_t{8} << 20;  // larger full histograms: no subtraction
constexpr int kMaxLiveHists = 64;
constexpr int kRandomBatch = 64;  // drawn features per pair of row passes (random splitter)
constexpr double kExactWeight = 67108864.0;  // 2^26: squares of smaller integer sums stay exact
// Entries between two features' packed histograms (256 bins x K): 64 bytes more than a multiple
// of 4 KiB, so the same bin of the features drawn together is not one L1 set (4K aliasing).
constexpr size_t packed_stride(int K) { return size_t{256} * K + 8; }

// All d features' histograms of one node (split.h layout), zero where occ says empty.
struct Hist {
  std::vector<double> hw;     // (d, 256, H)
  std::vector<uint32_t> cnt;  // (d, 256)
  std::vector<uint64_t> occ;  // (d, 4)
};

// A node's statistics (S values) and constant-feature mask (one bit per feature), inline for the
// common sizes: made and dropped per node, heap blocks for them cost more than the rest of a node.
using NodeStats = SmallVec<double, 8>;
using FeatureMask = SmallVec<uint64_t, 2>;

struct Entry {
  // User-provided: a value-initialized Entry (the depth-first stack's resize) is not zero-filled
  // first (~300 bytes per child); the members' initializers below give every value.
  Entry() {}
  int node = -1;
  int64_t begin = 0, end = 0;
  int64_t mid = -1;  // >= 0: rows already partitioned at the split, left ones in [begin, mid)
  int depth = 0;
  FeatureMask consts;  // features known constant in this node
  bool split = false;
  int feature = -1, bin = 0;
  bool nan_left = false;
  double improvement = 0;
  double lower = -std::numeric_limits<double>::infinity();  // monotonic bounds on the node value
  double upper = std::numeric_limits<double>::infinity();
  NodeStats left, right;  // child statistics
  std::unique_ptr<Hist> hist;       // full mode: this node's histogram, kept for its children
  // packed rows: the slot of this node's code ranges (taken by its parent's partition), and the
  // slots its own partition filled for its children (-1: none)
  int32_t slot = -1, child_slot[2] = {-1, -1};
  // the node's cost (crit.cost of its statistics, from new_node) and, once split, its children's
  // (from finish_split): the packed path reuses them instead of dividing again (NaN: not known)
  double cost = std::numeric_limits<double>::quiet_NaN();
  double child_cost[2] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
};

// A row of the node's range with what the histograms need next to it, so building one touches
// a single random cache line (the row's codes) per row: ClassRow (hist_words.h) or this.
struct RegressionRow {
  int32_t row;
  double w;
  double y;
};
template <bool kClassify>
using RowRec = std::conditional_t<kClassify, ClassRow, RegressionRow>;

struct Scratch {
  std::vector<double> hw;     // (batch, 256, H) per-bin sums (split.h), all zero between uses
  std::vector<uint64_t> pk;   // (batch, 256, K) packed integer counts (split.h), zero between uses
  std::vector<uint32_t> cnt;  // (batch, 256)
  std::vector<uint64_t> occ;  // (batch, 4)
  std::vector<double> tmp, left, right;
  std::vector<int> constant;
  std::vector<double> prefix;  // scan_packed_gini: (K + 3, 256) prefix sums and proxies
  std::vector<int> bins;       // scan_packed_gini: (256) occupied value bins
  std::vector<uint64_t> raw;   // word histograms: (256) the occupied bins' words
  // word histograms of large nodes: the drawn features' codes per row (build_words' keep), for
  // the rows [kept_begin, kept_begin + kept_m) and features kept_f; kept_m < 0: none
  std::vector<uint64_t> kept;
  std::vector<int> kept_f;
  int64_t kept_begin = -1, kept_m = -1;
  MaeSplitter mae;  // absolute error: row-based split search
};

// The packed rows of the random splitter (random_rows.h): two buffers per thread, kept between
// the trees that thread grows (first touches of fresh pages cost more than the passes over
// them); more than kKeepPackedBytes is released when a tree is done.
struct PackedRows {
  std::vector<uint8_t> even, odd;  // the rows of nodes at even / odd depths (2 and up for even)
  // The root's rows (packed from the codes) and their ranges (3 W bytes), kept for the next tree of
  // the same rows (Data::same_rows == root_key; 0: none): its root neither packs nor takes a range.
  std::vector<uint8_t> root, root_ranges;
  uint64_t root_key = 0;
  // The root's statistics and row count, kept with them (for the key total_key): Grower::same_root.
  std::vector<double> root_total;
  int64_t root_m = 0;
  uint64_t total_key = 0;
  // The ranges (lo, top, hi1: 3 W bytes) of nodes not yet searched, taken by their parent's
  // partition: slots in pool, their numbers carried by the nodes' entries (Entry::slot).
  std::vector<uint8_t> pool;
  std::vector<int32_t> free;
};
constexpr size_t kKeepPackedBytes = size_t{64} << 20;
template <int W>
struct ByteVec {  // W bytes as one GCC vector (pack_rows_w)
  typedef uint8_t type __attribute__((vector_size(W)));
};
PackedRows& packed_rows_of_thread() {
  static thread_local PackedRows rows;
  return rows;
}

// The node rows and the partition's buffer, kept per thread between the trees it grows (fresh
// pages for two arrays of n rows per tree cost more than the rows' passes); released above
// kKeepPackedBytes when a tree is done, as the packed rows are.
template <class Rec>
struct RowBuffers {
  std::vector<Rec> rows, tmp;
};
template <class Rec>
RowBuffers<Rec>& row_buffers_of_thread() {
  static thread_local RowBuffers<Rec> buffers;
  return buffers;
}

template <class C>
class Grower {
 public:
  Grower(const Data& data, const Params& p, const double* w, uint64_t seed, int threads)
      : D_(data), P_(p), w_(w), rng_(seed), split_rng_(seed ^ 0xd1b54a32d192ed03ULL),
        threads_(std::max(1, threads)), class_proxies_(split_kernels().class_proxies),
        split_kernels_(&split_kernels()) {
    K_ = C::kClassify ? p.n_classes : 1;
    crit_.K = K_;
    if constexpr (is_multi<C>()) {  // k outputs: statistics per criterion.h's multi-output layout
      crit_.k = data.n_outputs;
      if constexpr (C::kClassify) crit_.y = data.y_class; else crit_.y = data.y;
      S_ = crit_.width();
      H_ = S_ - 1;
    } else {
      S_ = stat_width(C::kClassify, p.n_classes);
      H_ = C::kClassify ? K_ : 3;
    }
    words_ = (D_.d + 63) / 64;
    batch_cap_ = std::max<int>(1, static_cast<int>(kScratchBytes / (256 * (H_ * sizeof(double) + 4))));
    batch_cap_ = std::min({batch_cap_, D_.d, std::max(1, p.max_features)});
    // the random splitter on rows: single-output histogram criteria (absolute error splits on rows
    // already, multi-output keeps the histograms; sparse entries search in grow_sparse.h).
    // hist_subtraction = false: the histogram path, the reference the tests compare with.
    random_rows_ = p.random_split && p.hist_subtraction && !data.sparse && !median_leaves<C>() && !is_multi<C>() &&
                   (!C::kClassify || p.n_classes <= 256);  // classes as bytes
    full_ = !random_rows_ && !median_leaves<C>() && !data.sparse && p.hist_subtraction && p.max_features >= D_.d && static_cast<size_t>(D_.d) * 256 * (H_ * sizeof(double) + 4) <= kMaxHistBytes;
  }

  ~Grower() {
    if (prow_w_ && prow_.even.capacity() + prow_.odd.capacity() + prow_.root.capacity() > kKeepPackedBytes)
      prow_ = PackedRows{};
    if ((rows_.capacity() + tmp_.capacity()) * sizeof(Rec) > kKeepPackedBytes) rows_buf_ = RowBuffers<Rec>{};
  }

  TreeOut run() {
    // A later tree of the same rows on this thread: the root's packed rows, ranges and statistics
    // are kept (PackedRows), so the row records are neither rebuilt nor summed again.
    const bool again = same_root();
    if (!again) fill_rows();
    const int64_t m = again ? prow_.root_m : static_cast<int64_t>(rows_.size());
    if (D_.sparse) {  // sparse X: split search and partition from its entries (grow_sparse.h)
      sparse_ = std::make_unique<SparseSearch<Grower>>(*this);
      sparse_->index_rows(0, static_cast<int64_t>(rows_.size()));
    }
    mono_ = !P_.monotonic.empty();
    packed_ = !mono_ && !P_.random_split && packable();  // those two run the generic scan
    random_unit_ = random_rows_ && (again || std::all_of(rows_.begin(), rows_.end(),
                                                         [](const Rec& r) { return r.w == 1.0; }));
    pack_rows(m);
    if (!prow_w_) tmp_.resize(rows_.size());  // partition's buffer (packed rows partition themselves)
    rs_.left.resize(S_);
    rs_.nans.resize(S_);
    std::vector<double> total(S_, 0.0);
    if (again) {
      total = prow_.root_total;
    } else if (!root_counts(total.data())) {
      for (const Rec& r : rows_) add_row(total.data(), r);
    }
    if (prow_w_ && D_.same_rows && !again) {  // for the next tree of these rows (same_root)
      prow_.root_total = total;
      prow_.root_m = m;
      prow_.total_key = D_.same_rows;
    }
    w_root_ = total[1];
    word_hist_ = packed_ && K_ == 2 && w_root_ < kWordLimit;
    if (!C::kClassify && S_ > 3) root_sq_ = std::abs(total[3]);
    lim_ = {static_cast<double>(P_.min_samples_leaf), P_.min_weight_fraction_leaf * w_root_};
    const double inf = std::numeric_limits<double>::infinity();
    Entry root = make_entry(0, m, 0, total.data(), FeatureMask(words_, 0), nullptr, -inf, inf);
    if (P_.max_leaf_nodes > 0) best_first(std::move(root)); else depth_first(std::move(root));
    return std::move(out_);
  }

 private:
  using Rec = RowRec<C::kClassify>;
  using Crit = C;
  friend class ::forgeml::tree::SparseSearch<Grower>;

  // The rows with weight > 0 into rows_, in order. Branch-free fill (a bootstrap's zero weights are
  // random, a branch per row mispredicts): every row is written at the next slot, which advances
  // for the used ones; the one slot past them takes the rest. The buffer is kept between trees:
  // resize zeroes only slots past the last tree's.
  void fill_rows() {
    int64_t used = 0;
    for (int64_t r = 0; r < D_.n; ++r) used += w_[r] > 0;
    if (static_cast<int64_t>(rows_.size()) < used + 1) rows_.resize(used + 1);
    Rec* out = rows_.data();
    int64_t k = 0;
    for (int64_t r = 0; r < D_.n; ++r) {
      if constexpr (is_multi<C>() && C::kClassify) out[k] = {static_cast<int32_t>(r), 0, w_[r]};
      else if constexpr (is_multi<C>()) out[k] = {static_cast<int32_t>(r), w_[r], 0.0};  // y read by row
      else if constexpr (C::kClassify) out[k] = {static_cast<int32_t>(r), D_.y_class[r], w_[r]};
      else out[k] = {static_cast<int32_t>(r), w_[r], D_.y[r]};
      k += w_[r] > 0;
    }
    rows_.resize(used);
  }

  // This thread's last packed tree had the same rows (Data::same_rows: same call, no bootstrap) and
  // kept its root's rows, ranges and statistics: a tree that would pack the same root again. Its
  // nodes never read rows_ (the packed rows partition themselves), so rows_ is not filled.
  bool same_root() const {
    if constexpr (C::kClassify && !is_multi<C>()) {
      return random_rows_ && D_.same_rows && prow_.root_key == D_.same_rows && prow_.total_key == D_.same_rows &&
             prow_.root_total.size() == static_cast<size_t>(S_);
    }
    return false;
  }

  // Packed counts need integer weights whose total fits the 32-bit weight field.
  bool packable() const {
    if constexpr (!class_layout<C>()) {
      return false;
    } else {
      if (!P_.int_counts || K_ > kMaxPackedClasses) return false;
      double sum = 0;
      for (const Rec& r : rows_) {
        if (r.w != std::floor(r.w)) return false;
        sum += r.w;
      }
      return sum < 4294967296.0;
    }
  }
  // The root's statistics with unit weights (random_unit_): the sums are the rows' counts, exact in
  // a double, counted in integers (the double sums make a chain of dependent adds through memory).
  bool root_counts(double* s) const {
    if constexpr (C::kClassify && !is_multi<C>()) {
      if (!random_unit_ || K_ > kMaxRowClasses) return false;
      int64_t cnt[4][kMaxRowClasses] = {};  // four rows at a time into separate counters
      const size_t m = rows_.size();
      for (size_t i = 0; i < m; ++i) ++cnt[i & 3][rows_[i].cls];
      s[0] = s[1] = static_cast<double>(m);
      for (int k = 0; k < K_; ++k) s[2 + k] = static_cast<double>(cnt[0][k] + cnt[1][k] + cnt[2][k] + cnt[3][k]);
      return true;
    }
    return false;
  }

  void add_row(double* s, const Rec& r) const {
    s[0] += 1;
    if constexpr (is_multi<C>()) {
      crit_.add(s + 1, r.w, r.row);
      return;
    }
    s[1] += r.w;
    if constexpr (C::kClassify) {
      s[2 + r.cls] += r.w;
    } else {
      double wy = r.w * r.y;
      s[2] += wy;
      if constexpr (log_stat<C>()) s[3] += r.w * C::xlogy(r.y);
      else s[3] += wy * r.y;
    }
  }

  // flatten: the push_backs inline (out of line they were ~3% of an ExtraTrees fit, 9 calls a node)
  [[gnu::flatten]] int new_node(const double* s, int depth, double lower, double upper) {
    int id = static_cast<int>(out_.feature.size());
    out_.feature.push_back(-1);
    out_.left.push_back(-1);
    out_.right.push_back(-1);
    out_.thr_bin.push_back(0);
    out_.nan_left.push_back(0);
    out_.n_samples.push_back(static_cast<int64_t>(s[0]));
    out_.weighted_n.push_back(s[1]);
    last_cost_ = std::isnan(pending_cost_) ? crit_.cost(s) : pending_cost_;  // the same value either way
    pending_cost_ = std::numeric_limits<double>::quiet_NaN();
    out_.impurity.push_back(last_cost_ / s[1]);
    const size_t at = out_.value.size();
    if constexpr (is_multi<C>()) {
      crit_.value(s, out_.value);
    } else if constexpr (C::kClassify) {
      for (int k = 0; k < K_; ++k) out_.value.push_back(s[2 + k] / s[1]);
    } else if constexpr (median_leaves<C>()) {
      out_.value.push_back(s[3]);
    } else {
      out_.value.push_back(s[2] / s[1]);
    }
    if (mono_) {  // the value within the bounds its ancestors' constrained splits set
      out_.value[at] = std::clamp(out_.value[at], lower, upper);
      if (C::kClassify && K_ == 2) out_.value[at + 1] = 1.0 - out_.value[at];
    }
    out_.depth = std::max(out_.depth, depth);
    return id;
  }

  // A child's class sums come from parent - sibling: a class absent from the child is left with
  // a residue of a few ulps of the parent's weight (non-integer weights), even negative. Zero it,
  // so that leaf values are exact and purity is seen.
  void snap_class_residues(NodeStats& s) const {
    if constexpr (C::kClassify && !is_multi<C>()) {
      const double tol = 16 * kEps * w_root_;
      for (int k = 0; k < K_; ++k) {
        if (std::abs(s[2 + k]) <= tol) s[2 + k] = 0;
      }
    }
  }

  // make_entry's rule: a node of depth, n rows, weight W and impurity imp is a leaf.
  bool stops(int depth, double n, double W, double imp, double pure_tol) const {
    return depth >= P_.max_depth || n < static_cast<double>(P_.min_samples_split) ||
           n < 2.0 * static_cast<double>(P_.min_samples_leaf) || W < 2.0 * lim_.min_weight_leaf || imp <= pure_tol;
  }

  // Whether make_entry will make the child with statistics s (unit-weight classification: counts,
  // which snap_class_residues leaves as they are) at depth a leaf: its impurity as new_node
  // computes it, zero when one class holds all rows.
  bool child_stops(const double* s, int depth, double cost) const {  // cost: crit_.cost(s)
    if constexpr (C::kClassify && !is_multi<C>() && !median_leaves<C>()) {
      int present = 0;
      for (int k = 0; k < K_; ++k) present += s[2 + k] > 0;
      const double imp = present <= 1 ? 0.0 : cost / s[1];
      return stops(depth, s[0], s[1], imp, kEps);
    }
    return false;
  }

  // make_entry_into on a new Entry (the depth-first stack builds its children in place instead).
  Entry make_entry(int64_t begin, int64_t end, int depth, const double* s, FeatureMask consts,
                   std::unique_ptr<Hist> hist, double lower, double upper) {
    Entry e;
    make_entry_into(e, begin, end, depth, s, std::move(consts), std::move(hist), lower, upper);
    return e;
  }

  // The node of rows [begin, end) with statistics s into e (a default Entry): its output node,
  // and its split found unless it is a leaf.
  void make_entry_into(Entry& e, int64_t begin, int64_t end, int depth, const double* s, FeatureMask consts,
                       std::unique_ptr<Hist> hist, double lower, double upper) {
    double own[4];
    if constexpr (median_leaves<C>()) {  // the node's median and deviation from its rows, exactly
      mae_stats(begin, end, own);
      s = own;
    }
    e.slot = pending_slot_;  // set by expand for this child
    pending_slot_ = -1;
    e.node = new_node(s, depth, lower, upper);
    e.cost = last_cost_;
    e.lower = lower;
    e.upper = upper;
    e.begin = begin;
    e.end = end;
    e.depth = depth;
    e.consts = std::move(consts);
    double n = s[0], W = s[1];
    if constexpr (C::kClassify && !is_multi<C>()) {
      // One class holds all the weight: pure (impurity exactly 0), whatever rounding is left in
      // W - sum(w_k^2)/W with non-integer weights, which would otherwise be split on.
      int present = 0;
      for (int k = 0; k < K_; ++k) present += s[2 + k] > 0;
      if (present <= 1) out_.impurity[e.node] = 0;
    }
    double imp = out_.impurity[e.node];
    double pure_tol = kEps;
    if constexpr (is_multi<C>()) pure_tol = crit_.pure_tol(s);
    else if constexpr (!C::kClassify && !median_leaves<C>()) {
      // sums reach a child through prefix sums over bins and parent - sibling at each level: their
      // rounding is a few hundred ulps of the root's sum of squares, spread over the child's weight
      pure_tol = kEps * (16 * (1.0 + (s[2] / W) * (s[2] / W)) + 256 * root_sq_ / W);
      if (imp <= pure_tol || n <= 1.0) out_.impurity[e.node] = 0;  // constant targets: rounding, even negative
    }
    if (stops(depth, n, W, imp, pure_tol)) {
      release(std::move(hist));
      if (prow_w_) take_row_ranges(e.slot, nullptr);  // a leaf: its ranges are not needed
      return;
    }
    if (random_rows_) {
      find_split_random(e, s);
      return;
    }
    if (full_ && (hist || (end - begin >= kMinHistRows && live_ < kMaxLiveHists))) {
      if (!hist) {
        hist = take_hist();
        build_full(begin, end, *hist);
      }
      find_split_full(e, s, *hist);
      if (e.split && end - begin >= kMinHistRows) e.hist = std::move(hist);
      else release(std::move(hist));
      return;
    }
    release(std::move(hist));
    find_split(e, s);
    return;
  }

  // The split scan of one feature; with monotonic constraints the generic scan checks each split.
  // draw: the random splitter's draw for this feature (null: best split).
  bool scan(const Entry& e, const double* hw, const uint32_t* n, const uint64_t* o, const double* total, int f,
            int rank, double* tmp, Best& best, const uint64_t* draw) const {
    if (mono_ || draw) {
      const Monotonic m{mono_ ? P_.monotonic[f] : 0, e.lower, e.upper};
      return scan_feature(crit_, hw, n, o, total, S_, lim_, f, rank, tmp, best, mono_ ? &m : nullptr, draw);
    }
    return scan_any(crit_, hw, n, o, total, S_, lim_, f, rank, tmp, best);
  }

  // Children's bounds after e's split (scikit-learn's rule): a constrained split divides the
  // range at the mid value of the two children, a free one passes the node's bounds down.
  std::pair<std::pair<double, double>, std::pair<double, double>> child_bounds(const Entry& e) const {
    const int cst = mono_ ? P_.monotonic[e.feature] : 0;
    if (cst == 0) return {{e.lower, e.upper}, {e.lower, e.upper}};
    double mid = (e.left[2] / e.left[1] + e.right[2] / e.right[1]) / 2;
    if constexpr (median_leaves<C>()) mid = (e.left[3] + e.right[3]) / 2;  // the children's medians
    if (cst > 0) return {{e.lower, mid}, {mid, e.upper}};
    return {{mid, e.upper}, {e.lower, mid}};
  }

  void mae_stats(int64_t begin, int64_t end, double* s) {
    std::vector<double> y(end - begin), w(end - begin);
    for (int64_t i = begin; i < end; ++i) {
      y[i - begin] = rows_[i].y;
      w[i - begin] = rows_[i].w;
    }
    mae_node_stats(y.data(), w.data(), end - begin, s);
  }

  // ---- full histograms (subtraction mode)
  std::unique_ptr<Hist> take_hist() {
    ++live_;
    if (!pool_.empty()) {
      auto h = std::move(pool_.back());
      pool_.pop_back();
      return h;
    }
    auto h = std::make_unique<Hist>();
    h->hw.assign(static_cast<size_t>(D_.d) * 256 * H_, 0.0);
    h->cnt.assign(static_cast<size_t>(D_.d) * 256, 0);
    h->occ.assign(static_cast<size_t>(D_.d) * 4, 0);
    return h;
  }

  void release(std::unique_ptr<Hist> h) {  // back to the pool, cleared through its masks
    if (!h) return;
    --live_;
    for (int f = 0; f < D_.d; ++f) clear_feature(h->hw.data() + static_cast<size_t>(f) * 256 * H_,
                                                 h->cnt.data() + static_cast<size_t>(f) * 256, h->occ.data() + f * 4);
    pool_.push_back(std::move(h));
  }

  void clear_feature(double* h, uint32_t* n, uint64_t* o) const {
    const int H = H_;
    for_each_bit(o, 4, [&](int b) {  // the common widths unrolled: no memset call per bin
      double* x = h + b * H;
      if (H == 2) { x[0] = 0; x[1] = 0; }
      else if (H == 3) { x[0] = 0; x[1] = 0; x[2] = 0; }
      else std::fill(x, x + H, 0.0);
      n[b] = 0;
    });
    std::fill(o, o + 4, 0);
  }

  // Every feature's histogram over rows [begin, end), split over threads by features when large.
  void build_full(int64_t begin, int64_t end, Hist& h) {
    if (all_features_.empty()) {
      all_features_.resize(D_.d);
      std::iota(all_features_.begin(), all_features_.end(), 0);
    }
    int T = threads_;
    if (T > 1 && (end - begin) * D_.d >= (int64_t{1} << 16)) {
      T = std::min(T, D_.d);
      ExceptionSlot slot;
      parallel_run(T, [&](int t, int) {
        slot.run([&] {
          int a = D_.d * t / T, b = D_.d * (t + 1) / T;
          build(begin, end, all_features_.data() + a, b - a, h.hw.data() + static_cast<size_t>(a) * 256 * H_,
                h.cnt.data() + static_cast<size_t>(a) * 256, h.occ.data() + a * 4);
        });
      });
      slot.rethrow();
    } else {
      build(begin, end, all_features_.data(), D_.d, h.hw.data(), h.cnt.data(), h.occ.data());
    }
  }

  // parent -= child, bin by bin over the parent's occupied bins (counts stay exact integers).
  void subtract(Hist& parent, const Hist& child) const {
    const int H = H_;
    for (int f = 0; f < D_.d; ++f) {
      double* ph = parent.hw.data() + static_cast<size_t>(f) * 256 * H;
      const double* ch = child.hw.data() + static_cast<size_t>(f) * 256 * H;
      uint32_t* pn = parent.cnt.data() + static_cast<size_t>(f) * 256;
      const uint32_t* cn = child.cnt.data() + static_cast<size_t>(f) * 256;
      uint64_t* po = parent.occ.data() + f * 4;
      for_each_bit(po, 4, [&](int b) {
        pn[b] -= cn[b];
        if (pn[b] == 0) {  // empty: exact zeros, not rounding residue
          std::fill(ph + b * H, ph + (b + 1) * H, 0.0);
          po[b >> 6] &= ~(uint64_t{1} << (b & 63));
        } else {
          for (int k = 0; k < H; ++k) ph[b * H + k] -= ch[b * H + k];
        }
      });
    }
  }

  void find_split_full(Entry& e, const double* total, const Hist& h) {
    std::vector<int> cand;
    cand.reserve(D_.d);
    for (int f = 0; f < D_.d; ++f)
      if (!((e.consts[f >> 6] >> (f & 63)) & 1)) cand.push_back(f);
    for (size_t i = 0; i < cand.size(); ++i)  // random order (same draws as find_split): ties go to the first
      std::swap(cand[i], cand[i + rng_.below(cand.size() - i)]);
    NodeStats bl(S_), br(S_);
    Best best;
    best.left = bl.data();
    best.right = br.data();
    Scratch& sc = scratch(0);
    for (size_t i = 0; i < cand.size(); ++i) {
      const int f = cand[i];
      const double* hw = h.hw.data() + static_cast<size_t>(f) * 256 * H_;
      const uint32_t* n = h.cnt.data() + static_cast<size_t>(f) * 256;
      const uint64_t* o = h.occ.data() + f * 4;
      const uint64_t draw = P_.random_split ? split_rng_.next() : 0;  // in rank order: thread-independent
      bool varies = scan(e, hw, n, o, total, f, static_cast<int>(i), sc.tmp.data(), best,
                         P_.random_split ? &draw : nullptr);
      if (!varies) e.consts[f >> 6] |= uint64_t{1} << (f & 63);
    }
    finish_split(e, total, best, bl, br);
  }

  // Draws features until max_features non-constant ones were evaluated (or none are left).
  void find_split(Entry& e, const double* total) {
    if (sparse_) return sparse_->find_split(e, total);
    std::vector<int> cand(D_.d);
    size_t nc = 0;
    for (int f = 0; f < D_.d; ++f) {  // branch-free: the constant bits are random, so a branch mispredicts
      cand[nc] = f;
      nc += !((e.consts[f >> 6] >> (f & 63)) & 1);
    }
    cand.resize(nc);
    NodeStats bl(S_), br(S_);
    Best best;
    best.left = bl.data();
    best.right = br.data();
    // Small node of a sparse X: the features with a stored entry in its rows; every other one
    // holds only the zero code here, so it is constant without building its histogram.
    std::vector<uint64_t> active;
    if (D_.entry_ptr && static_cast<double>(e.end - e.begin) * static_cast<double>(D_.entry_ptr[D_.n]) <=
                           static_cast<double>(D_.d) * static_cast<double>(D_.n)) {
      active.assign(words_, 0);
      for (int64_t i = e.begin; i < e.end; ++i) {
        const int64_t r = rows_[i].row;
        for (int64_t k = D_.entry_ptr[r]; k < D_.entry_ptr[r + 1]; ++k)
          active[D_.entry_feature[k] >> 6] |= uint64_t{1} << (D_.entry_feature[k] & 63);
      }
    }
    std::vector<int> live;
    std::vector<uint64_t> live_draws;
    int seen = 0;
    size_t drawn = 0;
    scratch(0).kept_m = -1;
    while (seen < P_.max_features && drawn < cand.size()) {
      size_t need = std::min<size_t>({static_cast<size_t>(P_.max_features - seen), cand.size() - drawn,
                                      static_cast<size_t>(batch_cap_)});
      for (size_t i = drawn; i < drawn + need; ++i)  // Fisher-Yates, one draw at a time
        std::swap(cand[i], cand[i + rng_.below(cand.size() - i)]);
      std::vector<int> constant;
      std::vector<uint64_t> draws;
      if (P_.random_split)  // drawn here, in rank order, so threads do not change them
        for (size_t i = 0; i < need; ++i) draws.push_back(split_rng_.next());
      if (active.empty()) {
        eval_batch(e, cand.data() + drawn, static_cast<int>(drawn), static_cast<int>(need), total, best, constant,
                   draws.empty() ? nullptr : draws.data());
      } else {  // evaluate the active ones (draw order kept, so ties and draws are as without the set)
        live.clear();
        live_draws.clear();
        for (size_t i = 0; i < need; ++i) {
          const int f = cand[drawn + i];
          if ((active[f >> 6] >> (f & 63)) & 1) {
            live.push_back(f);
            if (!draws.empty()) live_draws.push_back(draws[i]);
          } else {
            constant.push_back(f);
          }
        }
        if (!live.empty()) {
          std::vector<int> found;
          eval_batch(e, live.data(), static_cast<int>(drawn), static_cast<int>(live.size()), total, best, found,
                     live_draws.empty() ? nullptr : live_draws.data());
          constant.insert(constant.end(), found.begin(), found.end());
        }
      }
      for (int f : constant) e.consts[f >> 6] |= uint64_t{1} << (f & 63);
      seen += static_cast<int>(need - constant.size());
      drawn += need;
    }
    finish_split(e, total, best, bl, br);
    if (e.split) partition_kept(e);
  }

  // The winner's partition now if its codes were kept by the last word-histogram build of e's
  // rows (thread 0's scratch): read in row order, not gathered at random by expand.
  void partition_kept(Entry& e) {
    const Scratch& sc = scratch_[0];
    if (sc.kept_m != e.end - e.begin || sc.kept_begin != e.begin) return;
    for (size_t j = 0; j < sc.kept_f.size(); ++j)
      if (sc.kept_f[j] == e.feature) {
        const uint8_t* kept = reinterpret_cast<const uint8_t*>(sc.kept.data()) + j;
        e.mid = partition(e.begin, e.end, e.bin, e.nan_left, [&](int64_t i) { return kept[(i - e.begin) * 8]; },
                          [](int64_t) { return nullptr; });
        return;
      }
  }

  // ---- the random splitter on rows (split_random.h)
  // Draws features as find_split does (the same draws in the same order, one split_rng_ draw per
  // drawn feature) until max_features non-constant ones were tried. Per batch, the drawn
  // features' codes over the node's rows are gathered into contiguous columns (one read of each
  // row's codes); ranges and the sums left of each threshold are then plain loops over them.
  void find_split_random(Entry& e, const double* total) {
    if (prow_w_) return find_split_packed(e, total);
    RandomScratch& rs = rs_;
    const int d = D_.d;
    rs.cand.resize(d);
    int* cand = rs.cand.data();
    size_t nc = 0;
    const uint64_t* consts = e.consts.data();
    if (std::all_of(consts, consts + words_, [](uint64_t w) { return w == 0; })) {
      std::iota(cand, cand + d, 0);
      nc = d;
    } else {
      for (int f = 0; f < d; ++f) {  // written unconditionally: no branch per feature
        cand[nc] = f;
        nc += !((consts[f >> 6] >> (f & 63)) & 1);
      }
    }
    rs.cand.resize(nc);
    NodeStats bl(S_), br(S_);
    Best best;
    best.left = bl.data();
    best.right = br.data();
    rs.ln.resize(S_);
    rs.r.resize(S_);
    rs.rows_ready = rs.cls_ready = false;
    const int64_t m = e.end - e.begin;
    sparse_active(e);
    const bool sparse = !rs.active.empty();
    int seen = 0;
    size_t drawn = 0, last = 0;  // last: the first feature of the last batch
    while (seen < P_.max_features && drawn < rs.cand.size()) {
      const size_t need = std::min<size_t>(
          {static_cast<size_t>(P_.max_features - seen), rs.cand.size() - drawn, static_cast<size_t>(kRandomBatch)});
      for (size_t i = drawn; i < drawn + need; ++i)  // Fisher-Yates, one draw at a time
        std::swap(rs.cand[i], rs.cand[i + rng_.below(rs.cand.size() - i)]);
      const int* f = rs.cand.data() + drawn;
      const int* g = f;  // the features gathered: column[j] is f[j]'s column, -1 for none
      rs.column.resize(need);
      int ng = static_cast<int>(need);
      if (sparse) {
        rs.gathered.clear();
        for (size_t j = 0; j < need; ++j) {
          const bool on = (rs.active[f[j] >> 6] >> (f[j] & 63)) & 1;
          rs.column[j] = on ? static_cast<int>(rs.gathered.size()) : -1;
          if (on) rs.gathered.push_back(f[j]);
        }
        g = rs.gathered.data();
        ng = static_cast<int>(rs.gathered.size());
      } else {
        std::iota(rs.column.begin(), rs.column.end(), 0);
      }
      gather_codes(e.begin, e.end, g, ng);
      rs.live.clear();
      rs.rank.clear();
      rs.bin.clear();
      rs.nan.clear();
      int constant = 0;
      for (size_t j = 0; j < need; ++j) {
        const uint64_t draw = split_rng_.next();  // drawn for constant features too, as find_split
        const int c = rs.column[j];
        if (c < 0 || column_range(rs.codes.data() + c * m, m).constant()) {  // not gathered: zeros only
          e.consts[f[j] >> 6] |= uint64_t{1} << (f[j] & 63);
          ++constant;
          continue;
        }
        const CodeRange r = column_range(rs.codes.data() + c * m, m);
        rs.live.push_back(static_cast<int>(j));
        rs.rank.push_back(static_cast<int>(drawn + j));
        rs.bin.push_back(r.threshold(draw));
        rs.nan.push_back(r.has_nan());
      }
      if (!rs.live.empty() && !rs.rows_ready) {
        node_rows(e.begin, e.end);
        rs.rows_ready = true;
      }
      double* l = rs.left.data();
      double* n = rs.nans.data();
      for (size_t k = 0; k < rs.live.size(); ++k) {
        const int fk = f[rs.live[k]], bin = rs.bin[k];
        const bool has_nan = rs.nan[k];
        left_stats(rs.codes.data() + rs.column[rs.live[k]] * m, m, bin, has_nan, l, n);
        const Monotonic mc{mono_ ? P_.monotonic[fk] : 0, e.lower, e.upper};
        const Monotonic* mp = mono_ ? &mc : nullptr;
        offer_split(crit_, l, total, S_, lim_, mp, fk, rs.rank[k], bin, false, has_nan, rs.r.data(), best);
        if (has_nan && bin != kAllLeft) {
          for (int t = 0; t < S_; ++t) rs.ln[t] = l[t] + n[t];
          offer_split(crit_, rs.ln.data(), total, S_, lim_, mp, fk, rs.rank[k], bin, true, true, rs.r.data(),
                          best);
        }
      }
      seen += static_cast<int>(need) - constant;
      last = drawn;
      drawn += need;
    }
    finish_split(e, total, best, bl, br);
    if (!e.split) return;
    for (size_t j = last; j < drawn; ++j)  // the winner's codes still gathered: partition from them now
      if (rs.cand[j] == e.feature && rs.column[j - last] >= 0) {
        const uint8_t* col = rs.codes.data() + rs.column[j - last] * m;
        e.mid = partition(e.begin, e.end, e.bin, e.nan_left, [&](int64_t i) { return col[i - e.begin]; },
                          [](int64_t) { return nullptr; });
        break;
      }
  }

  // Classification with unit weights on row-major codes of d < 128 features: the rows packed
  // for the random splitter (random_rows.h), class byte after the codes. Large inputs keep the
  // gather path (the packed rows and their partition buffer cost 2 * W bytes a row per tree).
  void pack_rows(int64_t rows) {
    if constexpr (C::kClassify && !is_multi<C>()) {
      const int d = D_.d, W = packed_row_width(d);
      const size_t m = static_cast<size_t>(rows);
      if (!random_unit_ || D_.column_major || D_.entry_ptr || W == 0 || K_ > kMaxRowClasses ||
          m * W > (size_t{256} << 20))
        return;
      prow_w_ = W;
      rk_ = &row_kernels();
      // The tree's arrays at their largest size up front (2 m / min_samples_leaf nodes): the
      // untouched part costs address space only, and growth never copies them to grow them.
      const size_t cap = 2 * m / std::max<size_t>(1, P_.min_samples_leaf) + 1;
      out_.feature.reserve(cap); out_.left.reserve(cap); out_.right.reserve(cap); out_.thr_bin.reserve(cap);
      out_.nan_left.reserve(cap); out_.n_samples.reserve(cap); out_.weighted_n.reserve(cap);
      out_.impurity.reserve(cap); out_.value.reserve(cap * K_);
      if (prow_.even.size() < m * W + 64) prow_.even.resize(m * W + 64);  // + 64: row 0 at a cache line
      if (prow_.odd.size() < m * W + 64) prow_.odd.resize(m * W + 64);
      prow_.pool.clear();
      prow_.free.clear();
      if (D_.same_rows && prow_.root_key == D_.same_rows) return;  // this thread's last tree packed them
      prow_.root_key = 0;
      prow_.root_ranges.clear();
      if (prow_.root.size() < m * W + 64) prow_.root.resize(m * W + 64);
      switch (W) {  // a fixed-width copy per row (a copy of d bytes is a library call per row)
        case 16: return pack_rows_w<16>();
        case 32: return pack_rows_w<32>();
        case 64: return pack_rows_w<64>();
        default: return pack_rows_w<128>();
      }
    }
  }

  // The rows in prow_.root, grouped by class (class 0's first, each class's rows in order: the
  // count kernel's runs): the W bytes from the row's codes (the next row's codes after the d-th
  // masked off; the last rows, whose W bytes would pass the end of the codes, copy d), the class
  // in byte d, zeros after it.
  template <int W>
  void pack_rows_w() {
    using V = typename ByteVec<W>::type;
    const int d = D_.d;
    const int64_t nd = D_.n * d;
    V keep{}, at_d{};
    for (int j = 0; j < W; ++j) {
      keep[j] = j < d ? 255 : 0;
      at_d[j] = j == d;
    }
    uint8_t* out = line_aligned(prow_.root);
    int64_t slot[kMaxRowClasses] = {};  // the next row of each class
    for (const Rec& r : rows_) ++slot[r.cls];
    for (int64_t k = 0, at = 0; k < K_; ++k) {
      const int64_t n = slot[k];
      slot[k] = at;
      at += n;
    }
    for (size_t i = 0; i < rows_.size(); ++i) {
      const int64_t at = static_cast<int64_t>(rows_[i].row) * d;
      V v{};
      if (at + W <= nd) std::memcpy(&v, D_.codes + at, W);
      else std::memcpy(&v, D_.codes + at, d);
      v = (v & keep) | (at_d * static_cast<uint8_t>(rows_[i].cls));
      std::memcpy(out + slot[rows_[i].cls]++ * W, &v, W);
    }
    prow_nan_ = true;  // until the root's ranges say otherwise
  }

  // The first cache line boundary in a packed-row buffer: rows of 64 bytes (and 16 / 32 / 128)
  // then never straddle two lines (a large vector's data sits 16 bytes past a page).
  static uint8_t* line_aligned(std::vector<uint8_t>& v) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
    return v.data() + ((64 - (p & 63)) & 63);
  }

  template <class V>
  static void at_least(V& v, size_t n) {
    if (v.size() < n) v.resize(n);
  }

  // find_split_random on packed rows: the same draws in the same order, the same thresholds and
  // the same (integer) counts, so the same trees. The ranges of all features come from the
  // parent's partition (the root: one pass), one pass counts the rows left of every drawn
  // feature's threshold (another one when NaN is present: the NaN rows of each class are its total
  // less those with code <= 254), and the winner's partition moves the packed rows (rows_ is not
  // partitioned on this path) and takes the children's ranges.
  void find_split_packed(Entry& e, const double* total) {
    if (K_ == 2) find_split_packed_k<2>(e, total);  // two classes: the per-class loops unrolled
    else find_split_packed_k<0>(e, total);
  }
  template <int KN>  // K at compile time (0: K_)
  void find_split_packed_k(Entry& e, const double* total) {
    const int d = D_.d, W = prow_w_, K = KN ? KN : K_;
    const int64_t m = e.end - e.begin;
    uint8_t* rows = line_aligned(e.depth == 0 ? prow_.root : e.depth % 2 ? prow_.odd : prow_.even) + e.begin * W;
    alignas(64) uint8_t lmh[3 * kMaxRowBytes], thr[kMaxRowBytes];
    const uint8_t* ranges = lmh;  // lo, top, hi1: W bytes each
    if (e.depth == 0) {  // the root: its ranges from one pass, or kept from the last tree of the same rows
      if (prow_.root_ranges.empty()) {
        rk_->range(rows, m, W, lmh, lmh + W, lmh + 2 * W);
        prow_.root_ranges.assign(lmh, lmh + 3 * W);
        prow_.root_key = D_.same_rows;
      }
      ranges = prow_.root_ranges.data();
      prow_nan_ = std::any_of(ranges + W, ranges + W + d, [](uint8_t t) { return t == kNanBin; });
    } else if (e.slot >= 0) {
      // read in place: the slot is freed now, but only this node's children reuse it (put_row_ranges,
      // after the last read below)
      ranges = prow_.pool.data() + static_cast<size_t>(e.slot) * 3 * W;
      take_row_ranges(e.slot, nullptr);
    } else {
      rk_->range(rows, m, W, lmh, lmh + W, lmh + 2 * W);
    }
    const uint8_t *lo = ranges, *top = ranges + W, *hi1 = ranges + 2 * W;
    std::vector<int>& cand = rs_.cand;
    cand.resize(d);
    size_t nc = 0;
    if (std::all_of(e.consts.begin(), e.consts.end(), [](uint64_t w) { return w == 0; })) {
      std::iota(cand.begin(), cand.end(), 0);
      nc = d;
    } else {
      for (int f = 0; f < d; ++f) {  // written unconditionally: no branch per feature
        cand[nc] = f;
        nc += !((e.consts[f >> 6] >> (f & 63)) & 1);
      }
    }
    cand.resize(nc);
    int live[kMaxRowBytes], rank[kMaxRowBytes], bin[kMaxRowBytes], n_live = 0;
    bool any_nan = false;
    int seen = 0;
    size_t drawn = 0;
    while (seen < P_.max_features && drawn < nc) {  // find_split_random's draws
      const size_t need = std::min<size_t>(
          {static_cast<size_t>(P_.max_features - seen), nc - drawn, static_cast<size_t>(kRandomBatch)});
      int constant = 0;
      for (size_t j = 0; j < need; ++j) {  // the two streams' draws in one loop: their chains overlap
        const size_t i = drawn + j;  // a partial shuffle: later swaps leave cand[i] as it is
        std::swap(cand[i], cand[i + rng_.below(nc - i)]);
        const uint64_t draw = split_rng_.next();
        const int f = cand[i];
        CodeRange r;
        r.lo = lo[f];
        r.hi1 = hi1[f];
        r.top = top[f];
        if (r.constant()) {
          e.consts[f >> 6] |= uint64_t{1} << (f & 63);
          ++constant;
          continue;
        }
        live[n_live] = f;
        rank[n_live] = static_cast<int>(drawn + j);
        bin[n_live++] = r.threshold(draw);
        any_nan |= r.has_nan();
      }
      seen += static_cast<int>(need) - constant;
      drawn += need;
    }
    if (n_live == 0) return;
    std::memset(thr, 0, kMaxRowBytes);  // a constant size: inline stores, no call
    for (int k = 0; k < n_live; ++k) thr[live[k]] = static_cast<uint8_t>(bin[k]);
    int64_t class_rows[kMaxRowClasses];  // the node's rows are runs of classes (random_rows.h)
    for (int k = 0; k < K; ++k) class_rows[k] = static_cast<int64_t>(total[2 + k]);
    NodeStats bl(S_), br(S_);
    Best best;
    best.left = bl.data();
    best.right = br.data();
    if (!mono_ && !any_nan) {  // offer_counts' case; a small node's counts in bytes
      if (m <= kMaxCount8Rows) {
        uint8_t cnt8[kMaxRowClasses * kMaxRowBytes];
        rk_->count8(rows, m, W, K, class_rows, thr, cnt8);
        offer_counts<KN>(cnt8, W, K, total, live, rank, bin, n_live, best);
      } else {
        uint32_t cnt[kMaxRowClasses * kMaxRowBytes];
        rk_->count(rows, m, W, K, class_rows, thr, cnt);
        offer_counts<KN>(cnt, W, K, total, live, rank, bin, n_live, best);
      }
    } else {
      uint32_t cnt[kMaxRowClasses * kMaxRowBytes], values[kMaxRowClasses * kMaxRowBytes];
      rk_->count(rows, m, W, K, class_rows, thr, cnt);
      if (any_nan) {
        std::memset(thr, kAllLeft, W);
        rk_->count(rows, m, W, K, class_rows, thr, values);
      }
      double* l = rs_.left.data();
      double* n = rs_.nans.data();
      at_least(rs_.ln, S_);  // (a resize call per node showed in profiles)
      at_least(rs_.r, S_);
      // lk = feature f's statistics left of its threshold; n = those of its NaN rows (when it has any)
      auto left_of = [&](int f, bool has_nan, double* lk) {
        uint32_t all = 0, nan_all = 0;
        for (int c = 0; c < K; ++c) {
          lk[2 + c] = cnt[c * W + f];
          all += cnt[c * W + f];
          if (has_nan) {
            n[2 + c] = total[2 + c] - values[c * W + f];
            nan_all += static_cast<uint32_t>(n[2 + c]);
          }
        }
        lk[0] = lk[1] = all;
        n[0] = n[1] = nan_all;
      };
      if (!mono_) {  // every candidate's statistics, then offer_splits (same winner as offer_split one by one)
        at_least(rs_.cl, static_cast<size_t>(2 * n_live) * S_);
        at_least(rs_.cr, static_cast<size_t>(2 * n_live) * S_);
        SplitCandidate sc[2 * kMaxRowBytes];
        double pr[2 * kMaxRowBytes];
        int nc = 0;
        for (int k = 0; k < n_live; ++k) {
          const int f = live[k];
          const bool has_nan = top[f] == kNanBin;
          double* lk = rs_.cl.data() + static_cast<size_t>(nc) * S_;
          left_of(f, has_nan, lk);
          sc[nc++] = {lk, f, rank[k], bin[k], false, has_nan};
          if (has_nan && bin[k] != kAllLeft) {
            double* ln = lk + S_;
            for (int t = 0; t < S_; ++t) ln[t] = lk[t] + n[t];
            sc[nc++] = {ln, f, rank[k], bin[k], true, true};
          }
        }
        offer_splits(crit_, sc, nc, total, S_, lim_, rs_.cr.data(), pr, best);
      }
      for (int k = 0; k < n_live && mono_; ++k) {
        const int f = live[k];
        const bool has_nan = top[f] == kNanBin;
        left_of(f, has_nan, l);
        const Monotonic mc{mono_ ? P_.monotonic[f] : 0, e.lower, e.upper};
        const Monotonic* mp = mono_ ? &mc : nullptr;
        offer_split(crit_, l, total, S_, lim_, mp, f, rank[k], bin[k], false, has_nan, rs_.r.data(), best);
        if (has_nan && bin[k] != kAllLeft) {
          for (int t = 0; t < S_; ++t) rs_.ln[t] = l[t] + n[t];
          offer_split(crit_, rs_.ln.data(), total, S_, lim_, mp, f, rank[k], bin[k], true, true, rs_.r.data(), best);
        }
      }
    }
    finish_split(e, total, best, bl, br);
    if (!e.split) return;
    const bool leaf_l = child_stops(e.left.data(), e.depth + 1, e.child_cost[0]),
               leaf_r = child_stops(e.right.data(), e.depth + 1, e.child_cost[1]);
    if (leaf_l && leaf_r) {  // two leaves: their rows are never read, the partition is not needed
      e.mid = e.begin + static_cast<int64_t>(e.left[0]);
      return;
    }
    alignas(64) uint8_t sides[6 * kMaxRowBytes];  // the children's ranges
    e.mid = e.begin + (prow_nan_ ? rk_->partition_ranges : rk_->partition_ranges_no_nan)(
                          rows, m, W, e.feature, e.bin, e.nan_left, static_cast<int64_t>(e.left[0]),
                          line_aligned(e.depth % 2 ? prow_.even : prow_.odd) + e.begin * W, sides);
    if (!leaf_l) e.child_slot[0] = put_row_ranges(sides);  // a leaf's ranges are not needed
    if (!leaf_r) e.child_slot[1] = put_row_ranges(sides + 3 * W);
  }

  // offer_splits for the packed path's candidates without NaN rows, from their counts (unit
  // weights: a side's weight is its rows): the same checks and proxies, so the same winner bit for
  // bit, without each candidate's statistics stored first. The candidates come in rank order, where
  // offer_splits' tie rule keeps the first largest proxy; taken without a branch (a mispredicted
  // comparison would discard the next candidates' divisions in flight).
  template <int KN, class Count>
  void offer_counts(const Count* cnt, int W, int K, const double* total, const int* live, const int* rank,
                    const int* bin, int n, Best& best) const {
    constexpr int SN = KN ? KN + 2 : 0;
    const int S = SN ? SN : S_;
    double L[kMaxRowClasses + 2], R[kMaxRowClasses + 2];
    auto sides = [&](int f) {
      uint32_t all = 0;  // (the counts of byte or 32-bit counters: count8 / count)
      for (int c = 0; c < K; ++c) {
        L[2 + c] = cnt[c * W + f];
        all += cnt[c * W + f];
      }
      L[0] = L[1] = all;
      for (int s = 0; s < S; ++s) R[s] = total[s] - L[s];
    };
    double top = best.proxy;
    int win = -1;
    for (int k = 0; k < n; ++k) {
      sides(live[k]);
      if (L[0] < lim_.min_leaf || R[0] < lim_.min_leaf || L[1] < lim_.min_weight_leaf || R[1] < lim_.min_weight_leaf ||
          L[1] <= 0 || R[1] <= 0)
        continue;
      const double p = split_proxy<SN>(crit_, L, R);
      const bool better = p > top;
      top = better ? p : top;
      win = better ? k : win;
    }
    if (win < 0) return;
    sides(live[win]);
    best.proxy = top;
    best.feature = live[win];
    best.rank = rank[win];
    best.bin = bin[win];
    best.nan_left = L[0] > R[0];
    std::copy(L, L + S, best.left);
    std::copy(R, R + S, best.right);
  }

  // The ranges (3 W bytes) in slot (kept by put_row_ranges; -1: none) into out (null: dropped), the
  // slot freed; false when none were kept.
  bool take_row_ranges(int32_t& slot, uint8_t* out) {
    if (slot < 0) return false;
    const size_t bytes = 3 * static_cast<size_t>(prow_w_);
    if (out) copy_ranges(out, prow_.pool.data() + slot * bytes);
    prow_.free.push_back(slot);
    slot = -1;
    return true;
  }

  // Keeps the ranges r (3 W bytes) in a free slot; returns it.
  int32_t put_row_ranges(const uint8_t* r) {
    const size_t bytes = 3 * static_cast<size_t>(prow_w_);
    int32_t s;
    if (!prow_.free.empty()) {
      s = prow_.free.back();
      prow_.free.pop_back();
    } else {
      s = static_cast<int32_t>(prow_.pool.size() / bytes);
      prow_.pool.resize(prow_.pool.size() + bytes);
    }
    copy_ranges(prow_.pool.data() + s * bytes, r);
    return s;
  }

  // A node's ranges (3 W bytes) copied with the size known at compile time: inline vector moves,
  // not a library call (three per internal node).
  void copy_ranges(uint8_t* to, const uint8_t* from) const {
    switch (prow_w_) {
      case 16: std::memcpy(to, from, 3 * 16); break;
      case 32: std::memcpy(to, from, 3 * 32); break;
      case 64: std::memcpy(to, from, 3 * 64); break;
      default: std::memcpy(to, from, 3 * 128); break;
    }
  }

  // Sparse X (stored entries known), small node: rs_.active marks the features with a stored entry
  // in its rows; every other one holds only the code of zero here, so it is constant without
  // reading its codes (find_split's rule, same trees). Empty: no such knowledge, all are read.
  void sparse_active(const Entry& e) {
    std::vector<uint64_t>& active = rs_.active;
    active.clear();
    if (!D_.entry_ptr || static_cast<double>(e.end - e.begin) * static_cast<double>(D_.entry_ptr[D_.n]) >
                             static_cast<double>(D_.d) * static_cast<double>(D_.n))
      return;
    active.assign(words_, 0);
    for (int64_t i = e.begin; i < e.end; ++i) {
      const int64_t r = rows_[i].row;
      for (int64_t k = D_.entry_ptr[r]; k < D_.entry_ptr[r + 1]; ++k)
        active[D_.entry_feature[k] >> 6] |= uint64_t{1} << (D_.entry_feature[k] & 63);
    }
  }

  // rs_.codes (nf, m): the codes of features f[0..nf) over rows [begin, end), feature j's at j * m.
  void gather_codes(int64_t begin, int64_t end, const int* f, int nf) {
    const int64_t m = end - begin;
    RandomScratch& rs = rs_;
    if (rs.codes.size() < static_cast<size_t>(nf * m)) rs.codes.resize(static_cast<size_t>(nf * m));
    uint8_t* out = rs.codes.data();
    if (D_.column_major) {
      for (int j = 0; j < nf; ++j) {
        const uint8_t* col = D_.codes + static_cast<int64_t>(f[j]) * D_.n;
        for (int64_t i = 0; i < m; ++i) out[j * m + i] = col[rows_[begin + i].row];
      }
      return;
    }
    // classification: the rows' classes come along on the first batch (node_rows skips them)
    const bool cls = C::kClassify && !rs.cls_ready;
    if (cls) rs.cls.resize(m);
    rs.cls_ready = rs.cls_ready || cls;
    switch (nf * 2 + cls) {
#define FORGEML_GATHER(k)                                                           \
  case 2 * k: return gather_rows<k, false>(begin, m, f, nf, out);                   \
  case 2 * k + 1: return gather_rows<k, true>(begin, m, f, nf, out);
      FORGEML_GATHER(1) FORGEML_GATHER(2) FORGEML_GATHER(3) FORGEML_GATHER(4)
      FORGEML_GATHER(5) FORGEML_GATHER(6) FORGEML_GATHER(7) FORGEML_GATHER(8)
#undef FORGEML_GATHER
      default: return cls ? gather_rows<0, true>(begin, m, f, nf, out) : gather_rows<0, false>(begin, m, f, nf, out);
    }
  }

  // gather_codes on row-major codes; NF > 0: nf known at compile time (the loop over it unrolls).
  // Offsets and sizes are copied to locals: the byte stores could alias them otherwise.
  template <int NF, bool kCls>
  void gather_rows(int64_t begin, int64_t m, const int* f, int nf_rt, uint8_t* out) {
    const int nf = NF > 0 ? NF : nf_rt;
    int fo[NF > 0 ? NF : kRandomBatch];
    for (int j = 0; j < nf; ++j) fo[j] = f[j];
    const Rec* rows = rows_.data() + begin;
    const uint8_t* codes = D_.codes;
    const int64_t d = D_.d;
    uint8_t* cls = rs_.cls.data();
    constexpr int64_t kAhead = 32;
    for (int64_t i = 0; i < m; ++i) {
      if (i + kAhead < m) {  // both cache lines a row's codes may straddle
        const uint8_t* ahead = codes + rows[i + kAhead].row * d;
        __builtin_prefetch(ahead);
        __builtin_prefetch(ahead + d - 1);
      }
      const uint8_t* c = codes + rows[i].row * d;
      for (int j = 0; j < nf; ++j) out[j * m + i] = c[fo[j]];
      if constexpr (kCls && C::kClassify) cls[i] = static_cast<uint8_t>(rows[i].cls);
    }
  }

  static CodeRange column_range(const uint8_t* col, int64_t m) {
    uint8_t lo = 255, hi1 = 0, top = 0;  // separate reductions: the loop vectorizes
    for (int64_t i = 0; i < m; ++i) {
      lo = std::min(lo, col[i]);
      top = std::max(top, col[i]);
      hi1 = std::max(hi1, static_cast<uint8_t>(col[i] + 1));
    }
    CodeRange r;
    r.lo = lo;
    r.hi1 = hi1;
    r.top = top;
    return r;
  }

  // What left_stats needs of the node's rows, contiguous: classes (classification), weights and
  // targets (regression), packed increments (integer weights).
  void node_rows(int64_t begin, int64_t end) {
    RandomScratch& rs = rs_;
    const int64_t m = end - begin;
    if constexpr (C::kClassify) {
      if (!rs.cls_ready) {
        rs.cls.resize(m);
        for (int64_t i = 0; i < m; ++i) rs.cls[i] = static_cast<uint8_t>(rows_[begin + i].cls);
        rs.cls_ready = true;
      }
      if (!random_unit_) {
        rs.w.resize(m);
        for (int64_t i = 0; i < m; ++i) rs.w[i] = rows_[begin + i].w;
      }
    } else {
      rs.w.resize(m);
      rs.wy.resize(m);
      rs.wyy.resize(m);
      for (int64_t i = 0; i < m; ++i) {
        const Rec& rr = rows_[begin + i];
        rs.w[i] = rr.w;
        rs.wy[i] = rr.w * rr.y;
        if constexpr (log_stat<C>()) rs.wyy[i] = rr.w * C::xlogy(rr.y);
        else rs.wyy[i] = rs.wy[i] * rr.y;
      }
    }
  }

  // l / n (S each): statistics of the node's rows with code <= bin / NaN code in column col (m
  // codes, node_rows' order). n only when nan. Comparisons mask the sums (no branches).
  void left_stats(const uint8_t* col, int64_t m, int bin, bool nan, double* l, double* n) const {
    const RandomScratch& rs = rs_;
    std::fill(l, l + S_, 0.0);
    std::fill(n, n + S_, 0.0);
    const uint8_t t = static_cast<uint8_t>(bin);
    if constexpr (C::kClassify) {
      const uint8_t* cls = rs.cls.data();
      const int K = K_;
      if (random_unit_) {  // unit weights: counts only, summed over bytes
        auto counts = [&](uint8_t key, bool equal, double* s) {
          uint32_t all = 0;
          if (K == 2 && !equal) {  // the common case in one loop: rows left, and those of class 1
            uint32_t one = 0;
            for (int64_t i = 0; i < m; ++i) {
              const uint32_t in = col[i] <= key;
              all += in;
              one += in & cls[i];
            }
            s[0] = s[1] = all;
            s[2] = all - one;
            s[3] = one;
            return;
          }
          for (int64_t i = 0; i < m; ++i) all += equal ? col[i] == key : col[i] <= key;
          double rest = all;
          for (int k = 1; k < K; ++k) {
            uint32_t c = 0;
            const uint8_t kk = static_cast<uint8_t>(k);
            if (equal)
              for (int64_t i = 0; i < m; ++i) c += (col[i] == key) & (cls[i] == kk);
            else
              for (int64_t i = 0; i < m; ++i) c += (col[i] <= key) & (cls[i] == kk);
            s[2 + k] = c;
            rest -= c;
          }
          s[0] = all;
          s[1] = all;
          s[2] = rest;
        };
        counts(t, false, l);
        if (nan) counts(kNanBin, true, n);
        return;
      }
      const double* w = rs.w.data();
      auto sums = [&](uint8_t key, bool equal, double* s) {
        for (int64_t i = 0; i < m; ++i) {
          const double in = equal ? col[i] == key : col[i] <= key;
          s[0] += in;
          s[2 + cls[i]] += in * w[i];
        }
        for (int k = 0; k < K; ++k) s[1] += s[2 + k];
      };
      sums(t, false, l);
      if (nan) sums(kNanBin, true, n);
    } else {
      const double *w = rs.w.data(), *wy = rs.wy.data(), *wyy = rs.wyy.data();
      // four interleaved partial sums per statistic: the adds do not wait on each other; the
      // 0/1 factor multiplies (a select compiles to a branch that mispredicts half the time)
      const bool unit = random_unit_;
      auto sums = [&](uint8_t key, bool equal, double* s) {
        double a1[4] = {0, 0, 0, 0}, a2[4] = {0, 0, 0, 0}, a3[4] = {0, 0, 0, 0};
        uint32_t cnt = 0;
        auto row = [&](int64_t i, int u) __attribute__((always_inline)) {
          const uint32_t hit = equal ? col[i] == key : col[i] <= key;
          const double in = static_cast<double>(hit);
          cnt += hit;
          if (!unit) a1[u] += in * w[i];
          a2[u] += in * wy[i];
          a3[u] += in * wyy[i];
        };
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
          row(i, 0);
          row(i + 1, 1);
          row(i + 2, 2);
          row(i + 3, 3);
        }
        for (int u = 0; i < m; ++i, ++u) row(i, u);
        s[0] = cnt;
        s[1] = unit ? static_cast<double>(cnt) : (a1[0] + a1[1]) + (a1[2] + a1[3]);
        s[2] = (a2[0] + a2[1]) + (a2[2] + a2[3]);
        s[3] = (a3[0] + a3[1]) + (a3[2] + a3[3]);
      };
      sums(t, false, l);
      if (nan) sums(kNanBin, true, n);
    }
  }

  // bl / br: where best.left / best.right point (any vector of S_ doubles).
  template <class V>
  void finish_split(Entry& e, const double* total, const Best& best, V& bl, V& br) {
    if (!best.found()) return;
    // the node's own cost is new_node's on the packed path (total is the s it was made with)
    const double ct = prow_w_ && !std::isnan(e.cost) ? e.cost : crit_.cost(total);
    const double cl = crit_.cost(bl.data()), cr = crit_.cost(br.data());
    double improvement = (ct - cl - cr) / w_root_;
    if (improvement + kEps < P_.min_impurity_decrease) return;
    e.child_cost[0] = cl;
    e.child_cost[1] = cr;
    e.split = true;
    e.feature = best.feature;
    e.bin = best.bin;
    e.nan_left = best.nan_left;
    e.improvement = improvement;
    e.left.assign(bl.data(), S_);
    e.right.assign(br.data(), S_);
  }

  struct RandomScratch {  // find_split_random's buffers, kept between nodes
    std::vector<int> cand, live, rank, bin, column, gathered;
    std::vector<uint64_t> active;  // sparse_active
    std::vector<uint8_t> nan, codes, cls;
    std::vector<double> w, wy, wyy;          // node_rows
    std::vector<double> left, nans, ln, r;  // S statistics left of the threshold / NaN
    std::vector<double> cl, cr;              // find_split_packed: each candidate's left / right statistics
    bool rows_ready = false, cls_ready = false;  // node_rows / the classes done for this node
  };

  Scratch& scratch(int t) {
    if (static_cast<int>(scratch_.size()) <= t) scratch_.resize(t + 1);
    Scratch& sc = scratch_[t];
    if (sc.hw.empty()) {
      sc.hw.assign(static_cast<size_t>(batch_cap_) * 256 * H_, 0.0);
      sc.cnt.assign(static_cast<size_t>(batch_cap_) * 256, 0);
      if (packed_) {
        sc.pk.assign(static_cast<size_t>(batch_cap_) * packed_stride(K_), 0);
        sc.prefix.resize(static_cast<size_t>(K_ + 3) * 256);
        sc.bins.resize(256 + 8);  // + 8: compact_words stores whole registers
        sc.raw.resize(256 + 8);
      }
      sc.occ.assign(static_cast<size_t>(batch_cap_) * 4, 0);
      sc.tmp.resize(4 * S_);
      sc.left.resize(S_);
      sc.right.resize(S_);
    }
    return sc;
  }

  // Histograms of features f[0..nf) over the node's rows, then the scan of each.
  // Histograms of features f[0..nf) over rows [begin, end) into hw/cnt/occ (feature j at j's
  // offsets), which must be zero.
  void build(int64_t begin, int64_t end, const int* f, int nf, double* hw, uint32_t* cnt, uint64_t* occ) const {
    // Large nodes touch nearly every bin: their masks come from the counts afterwards, which is
    // cheaper than setting a bit per row and feature.
    if (end - begin >= 4096) {
      build_rows<false>(begin, end, f, nf, hw, cnt, occ);
      for (int j = 0; j < nf; ++j) {
        const uint32_t* n = cnt + static_cast<size_t>(j) * 256;
        uint64_t* o = occ + j * 4;
        for (int b = 0; b < 256; ++b)
          if (n[b]) o[b >> 6] |= uint64_t{1} << (b & 63);
      }
    } else {
      build_rows<true>(begin, end, f, nf, hw, cnt, occ);
    }
  }

  template <bool kMask>
  void build_rows(int64_t begin, int64_t end, const int* f, int nf, double* hw, uint32_t* cnt, uint64_t* occ) const {
    const int d = D_.d, H = H_;
    auto add = [&](int j, int b, const Rec& rr) {
      const size_t at = static_cast<size_t>(j) * 256 + b;
      double* h = hw + at * H;
      if constexpr (is_multi<C>()) {
        crit_.add(h, rr.w, rr.row);
      } else if constexpr (C::kClassify) {
        h[rr.cls] += rr.w;
      } else {
        const double wy = rr.w * rr.y;
        h[0] += rr.w;
        h[1] += wy;
        if constexpr (log_stat<C>()) h[2] += rr.w * C::xlogy(rr.y);
        else h[2] += wy * rr.y;
      }
      ++cnt[at];
      if constexpr (kMask) occ[j * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
    };
    if (D_.column_major) {  // feature by feature: the node's rows ascend, so each column is read forwards
      for (int j = 0; j < nf; ++j) {
        const uint8_t* col = D_.codes + static_cast<int64_t>(f[j]) * D_.n;
        for (int64_t i = begin; i < end; ++i) add(j, col[rows_[i].row], rows_[i]);
      }
      return;
    }
    constexpr int64_t kAhead = 16;  // prefetch distance in rows: hides the codes' cache misses
    for (int64_t i = begin; i < end; ++i) {
      if (i + kAhead < end) __builtin_prefetch(D_.codes + static_cast<int64_t>(rows_[i + kAhead].row) * d);
      const Rec& rr = rows_[i];
      const uint8_t* c = D_.codes + static_cast<int64_t>(rr.row) * d;
      for (int j = 0; j < nf; ++j) add(j, c[f[j]], rr);
    }
  }

  void build_and_scan(const Entry& e, const int* f, int rank0, int nf, const double* total, Scratch& sc,
                      Best& best, const uint64_t* draws) {
    double* hw = sc.hw.data();
    uint32_t* cnt = sc.cnt.data();
    uint64_t* occ = sc.occ.data();
    const int H = H_;
    if constexpr (median_leaves<C>()) {
      sc.mae.reset(rows_.data() + e.begin, e.end - e.begin);
      for (int j = 0; j < nf; ++j) {
        const Monotonic m{mono_ ? P_.monotonic[f[j]] : 0, e.lower, e.upper};
        // codes of feature f[j]: a column (column-major codes, from sparse X) or a stride over rows
        const uint8_t* col = D_.codes + (D_.column_major ? static_cast<int64_t>(f[j]) * D_.n : f[j]);
        const int64_t stride = D_.column_major ? 1 : D_.d;
        if (!sc.mae.scan(col, stride, f[j], rank0 + j, lim_, best, mono_ ? &m : nullptr, draws ? draws + j : nullptr))
          sc.constant.push_back(f[j]);
      }
      return;
    }
    if constexpr (class_layout<C>()) {
      if (packed_) {
        build_packed_and_scan(e, f, rank0, nf, total, sc, best);
        return;
      }
    }
    build(e.begin, e.end, f, nf, hw, cnt, occ);
    for (int j = 0; j < nf; ++j) {
      double* h = hw + static_cast<size_t>(j) * 256 * H;
      uint32_t* n = cnt + static_cast<size_t>(j) * 256;
      uint64_t* o = occ + j * 4;
      bool varies = scan(e, h, n, o, total, f[j], rank0 + j, sc.tmp.data(), best, draws ? draws + j : nullptr);
      if (!varies) sc.constant.push_back(f[j]);
      clear_feature(h, n, o);
    }
  }

  // Packed histograms of features f[0..nf) over rows [begin, end) into pk/occ (zero on entry).
  // K is a compile-time constant so the per-bin loops unroll (a runtime-length fill per bin
  // became a memset call per occupied bin).
  template <int K, bool kMask>
  void build_packed_rows(int64_t begin, int64_t end, const int* f, int nf, uint64_t* pk, uint64_t* occ) const {
    const int d = D_.d;
    if (D_.column_major) {
      for (int j = 0; j < nf; ++j) {
        const uint8_t* col = D_.codes + static_cast<int64_t>(f[j]) * D_.n;
        for (int64_t i = begin; i < end; ++i) {
          const Rec& rr = rows_[i];
          const int b = col[rr.row];
          pk[j * packed_stride(K) + b * K + rr.cls] += (uint64_t{1} << 32) | static_cast<uint64_t>(rr.w);
          if constexpr (kMask) occ[j * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
        }
      }
      return;
    }
    constexpr int64_t kAhead = 24;
    for (int64_t i = begin; i < end; ++i) {
      if (i + kAhead < end) {  // both cache lines a row's codes may straddle
        const uint8_t* ahead = D_.codes + static_cast<int64_t>(rows_[i + kAhead].row) * d;
        __builtin_prefetch(ahead);
        __builtin_prefetch(ahead + d - 1);
      }
      const Rec& rr = rows_[i];
      const uint8_t* c = D_.codes + static_cast<int64_t>(rr.row) * d;
      const uint64_t inc = (uint64_t{1} << 32) | static_cast<uint64_t>(rr.w);
      uint64_t* base = pk + rr.cls;
      for (int j = 0; j < nf; ++j) {
        const int b = c[f[j]];
        base[j * packed_stride(K) + b * K] += inc;
        if constexpr (kMask) occ[j * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
      }
    }
  }

  template <int K>
  void build_packed_and_scan_k(const Entry& e, const int* f, int rank0, int nf, const double* total, Scratch& sc,
                               Best& best) {
    uint64_t* pk = sc.pk.data();
    uint64_t* occ = sc.occ.data();
    if constexpr (K == 2) {
      if (word_hist_) return build_words_and_scan(e, f, rank0, nf, total, sc, best);
    }
    constexpr size_t stride = packed_stride(K);
    if (e.end - e.begin >= 4096) {  // masks from the histograms afterwards, as in build()
      build_packed_rows<K, false>(e.begin, e.end, f, nf, pk, occ);
      for (int j = 0; j < nf; ++j) {
        const uint64_t* h = pk + j * stride;
        uint64_t* o = occ + j * 4;
        for (int b = 0; b < 256; ++b) {
          uint64_t any = 0;
          for (int k = 0; k < K; ++k) any |= h[b * K + k];
          o[b >> 6] |= static_cast<uint64_t>(any != 0) << (b & 63);
        }
      }
    } else {
      build_packed_rows<K, true>(e.begin, e.end, f, nf, pk, occ);
    }
    // Gini with a node weight below 2^26: every sum of squares in the scan is an exact integer,
    // so the split proxies can be evaluated in any order and width with the same bits.
    const bool fast = std::is_same_v<C, Gini> && total[1] < kExactWeight;
    for (int j = 0; j < nf; ++j) {
      uint64_t* h = pk + j * stride;
      uint64_t* o = occ + j * 4;
      if (fast && !(o[3] >> 63)) {  // no NaN rows in this feature
        if (!scan_packed_gini<K>(h, o, total, f[j], rank0 + j, sc, best)) sc.constant.push_back(f[j]);
        continue;
      }
      if (!scan_packed_n<C, K + 2>(crit_, h, o, total, lim_, f[j], rank0 + j, best)) sc.constant.push_back(f[j]);
      for_each_bit(o, 4, [&](int b) {
        for (int k = 0; k < K; ++k) h[b * K + k] = 0;
      });
      o[0] = o[1] = o[2] = o[3] = 0;
    }
  }

  // scan_packed_n for Gini on a feature without NaN rows, clearing the histogram as it reads it:
  // one pass over the occupied bins gathers the prefix sums (exact integers), the proxies of all
  // boundaries are then computed in one vectorizable loop (split_kernels().class_proxies), and the
  // first maximum is offered to best, which is the winner the running scan finds.
  template <int K>
  bool scan_packed_gini(uint64_t* h, uint64_t* o, const double* total, int f, int rank, Scratch& sc, Best& best) {
    double* cl = sc.prefix.data();        // (K, 256) class weights left of each boundary
    double* wl = cl + K * 256;            // (256) weight left
    double* nl = wl + 256;                // (256) rows left
    int* bins = sc.bins.data();
    uint64_t run[K] = {};
    int u = 0;
    for (int w = 0; w < 4; ++w) {
      for (uint64_t m = o[w]; m; m &= m - 1) {
        const int b = w * 64 + __builtin_ctzll(m);
        uint64_t* e = h + b * K;
        uint64_t rows = 0, wsum = 0;
        for (int k = 0; k < K; ++k) {
          run[k] += e[k];
          e[k] = 0;
          rows += run[k] >> 32;
          const uint64_t wk = static_cast<uint32_t>(run[k]);
          wsum += wk;
          cl[k * 256 + u] = static_cast<double>(wk);
        }
        nl[u] = static_cast<double>(rows);
        wl[u] = static_cast<double>(wsum);
        bins[u++] = b;
      }
      o[w] = 0;
    }
    return offer_gini(u, K, total, f, rank, sc, best);
  }

  // The tail of the packed Gini scans: sc.prefix holds the prefix sums of u occupied bins
  // (scan_packed_gini's layout), sc.bins the bins; the first maximum of the proxies goes to best.
  bool offer_gini(int u, int K, const double* total, int f, int rank, Scratch& sc, Best& best) {
    double* cl = sc.prefix.data();
    double* wl = cl + K * 256;
    double* nl = wl + 256;
    double* pr = nl + 256;
    const int* bins = sc.bins.data();
    if (u <= 1) return false;
    class_proxies_(cl, 256, wl, nl, u - 1, K, total, lim_.min_leaf, lim_.min_weight_leaf, pr);
    int at = 0;
    for (int j = 1; j < u - 1; ++j) at = pr[j] > pr[at] ? j : at;
    const double p = pr[at];
    if (p == -std::numeric_limits<double>::infinity()) return true;
    if (p > best.proxy || (p == best.proxy && best.found() && rank < best.rank && f != best.feature)) {
      best.proxy = p;
      best.feature = f;
      best.rank = rank;
      best.bin = (bins[at] + bins[at + 1] - 1) / 2;
      double* l = best.left;
      double* r = best.right;
      l[0] = nl[at];
      l[1] = wl[at];
      for (int k = 0; k < K; ++k) l[2 + k] = cl[k * 256 + at];
      for (int s = 0; s < K + 2; ++s) r[s] = total[s] - l[s];
      best.nan_left = l[0] > r[0];
    }
    return true;
  }

  // Binary classification with a root weight below 2^21: word histograms (hist_words.h), the
  // same sums as the two-word layout, so the same splits. Nodes of kWordMaskRows rows or more
  // build without occupancy masks: their Gini scan compacts the 256 bins in vector steps
  // (compact_words), cheaper than a mask bit per row and feature once most bins are touched.
  void build_words_and_scan(const Entry& e, const int* f, int rank0, int nf, const double* total, Scratch& sc,
                            Best& best) {
    constexpr int64_t kWordMaskRows = 32;
    uint64_t* pk = sc.pk.data();
    uint64_t* occ = sc.occ.data();
    const Rec* rows = rows_.data() + e.begin;
    const int64_t m = e.end - e.begin;
    const bool masked = D_.column_major || m < kWordMaskRows;
    sc.kept_m = -1;
    if (D_.column_major) {
      build_words_columns(rows, m, D_.codes, D_.n, f, nf, pk, occ);
    } else if (masked) {
      build_words_rows<true>(rows, m, f, nf, pk, occ);
    } else {
      uint64_t* keep = nullptr;
      if (nf <= 8) {  // keep the codes for the partition (find_split)
        if (static_cast<int64_t>(sc.kept.size()) < m) sc.kept.resize(m);
        keep = sc.kept.data();
        sc.kept_f.assign(f, f + nf);
        sc.kept_begin = e.begin;
        sc.kept_m = m;
      }
      build_words_rows<false>(rows, m, f, nf, pk, occ, keep);
    }
    constexpr bool gini = std::is_same_v<C, Gini>;  // every weight < 2^21 < 2^26: exact proxies
    for (int j = 0; j < nf; ++j) {
      uint64_t* h = pk + j * kWordStride;
      uint64_t* o = occ + j * 4;
      if (gini && !masked && h[kNanBin] == 0) {
        const int u = split_kernels_->compact_words(h, sc.raw.data(), sc.bins.data());
        if (!offer_words(u, total, f[j], rank0 + j, sc, best)) sc.constant.push_back(f[j]);
        continue;
      }
      if (!masked) word_occupancy(h, o);
      if (gini && !(o[3] >> 63)) {  // no NaN rows
        const int u = gather_words(h, o, sc.raw.data(), sc.bins.data());
        if (!offer_words(u, total, f[j], rank0 + j, sc, best)) sc.constant.push_back(f[j]);
        continue;
      }
      auto add = [h](double* s, int b) __attribute__((always_inline)) { add_word(s, h, b); };
      if (!scan_bins_n<C, 4>(crit_, add, o, total, lim_, f[j], rank0 + j, best)) sc.constant.push_back(f[j]);
      for_each_bit(o, 4, [h](int b) { h[b] = 0; });
      o[0] = o[1] = o[2] = o[3] = 0;
    }
  }

  // The Gini split of one feature from its u occupied bins' words (sc.raw, sc.bins): the first
  // best boundary is offered to best as scan_packed_gini offers it. False: constant (u <= 1).
  bool offer_words(int u, const double* total, int f, int rank, Scratch& sc, Best& best) const {
    if (u <= 1) return false;
    int at = 0;
    uint64_t run = 0;
    const double p = split_kernels_->word_gini(sc.raw.data(), u, total, lim_.min_leaf, lim_.min_weight_leaf, &at,
                                               &run);
    if (p == -std::numeric_limits<double>::infinity()) return true;
    if (p > best.proxy || (p == best.proxy && best.found() && rank < best.rank && f != best.feature)) {
      best.proxy = p;
      best.feature = f;
      best.rank = rank;
      best.bin = (sc.bins[at] + sc.bins[at + 1] - 1) / 2;
      double* l = best.left;
      double* r = best.right;
      const uint64_t w0 = run & kWordMask, w1 = (run >> kWordBits) & kWordMask;
      l[0] = static_cast<double>(run >> (2 * kWordBits));
      l[1] = static_cast<double>(w0 + w1);
      l[2] = static_cast<double>(w0);
      l[3] = static_cast<double>(w1);
      for (int s = 0; s < 4; ++s) r[s] = total[s] - l[s];
      best.nan_left = l[0] > r[0];
    }
    return true;
  }

  template <bool kMask>
  void build_words_rows(const Rec* rows, int64_t m, const int* f, int nf, uint64_t* pk, uint64_t* occ,
                        uint64_t* keep = nullptr) const {
    const uint8_t* codes = D_.codes;
    const int64_t d = D_.d;
    if constexpr (std::is_same_v<Rec, ClassRow>)
      if (keep) return split_kernels_->build_words_kept(rows, m, codes, d, f, nf, pk, keep);
    switch (nf) {
#define FORGEML_WORDS_NF(k) \
  case k: return build_words<kMask, k, Rec>(rows, m, codes, d, f, nf, pk, occ);
      FORGEML_WORDS_NF(1) FORGEML_WORDS_NF(2) FORGEML_WORDS_NF(3) FORGEML_WORDS_NF(4)
      FORGEML_WORDS_NF(5) FORGEML_WORDS_NF(6) FORGEML_WORDS_NF(7) FORGEML_WORDS_NF(8)
#undef FORGEML_WORDS_NF
      default: return build_words<kMask, 0>(rows, m, codes, d, f, nf, pk, occ);
    }
  }

  void build_packed_and_scan(const Entry& e, const int* f, int rank0, int nf, const double* total, Scratch& sc,
                             Best& best) {
    switch (K_) {
#define FORGEML_PACKED_K(k) \
  case k: return build_packed_and_scan_k<k>(e, f, rank0, nf, total, sc, best);
      FORGEML_PACKED_K(1) FORGEML_PACKED_K(2) FORGEML_PACKED_K(3) FORGEML_PACKED_K(4)
      FORGEML_PACKED_K(5) FORGEML_PACKED_K(6) FORGEML_PACKED_K(7) FORGEML_PACKED_K(8)
#undef FORGEML_PACKED_K
    }
    throw std::logic_error("tree: packed histograms for more than 8 classes");
  }

  void eval_batch(const Entry& e, const int* f, int rank0, int nf, const double* total, Best& best,
                  std::vector<int>& constant, const uint64_t* draws) {
    int T = threads_;
    if (T > 1 && nf >= 2 && (e.end - e.begin) * nf >= (int64_t{1} << 16)) {
      T = std::min(T, nf);
      for (int t = 0; t < T; ++t) scratch(t).constant.clear();
      std::vector<Best> bests(T);
      ExceptionSlot slot;
      parallel_run(T, [&](int t, int) {
        slot.run([&] {
          Scratch& sc = scratch_[t];
          bests[t].left = sc.left.data();
          bests[t].right = sc.right.data();
          int a = nf * t / T, b = nf * (t + 1) / T;
          build_and_scan(e, f + a, rank0 + a, b - a, total, sc, bests[t], draws ? draws + a : nullptr);
        });
      });
      slot.rethrow();
      for (int t = 0; t < T; ++t) {  // merge in rank order: same winner as one thread
        const Best& b = bests[t];
        if (b.found() && (b.proxy > best.proxy || (b.proxy == best.proxy && b.rank < best.rank))) {
          best.proxy = b.proxy; best.feature = b.feature; best.rank = b.rank;
          best.bin = b.bin; best.nan_left = b.nan_left;
          std::copy(b.left, b.left + S_, best.left);
          std::copy(b.right, b.right + S_, best.right);
        }
        constant.insert(constant.end(), scratch_[t].constant.begin(), scratch_[t].constant.end());
      }
    } else {
      Scratch& sc = scratch(0);
      sc.constant.clear();
      build_and_scan(e, f, rank0, nf, total, sc, best, draws);
      constant = sc.constant;
    }
  }

  // Stable partition of rows [begin, end) by "code <= bin" (NaN: nan_left); code(i) is row i's
  // code, at(i) its address (prefetched ahead; null: none). Branch-free: each row is written to
  // both sides and the side it belongs to advances. Returns the first right row.
  template <class Code, class At>
  int64_t partition(int64_t begin, int64_t end, int bin, bool nan_left, Code&& code, At&& at) {
    int64_t nl = 0, nr = 0;
    constexpr int64_t kAhead = 16;
    Rec* rows = rows_.data();
    Rec* tmp = tmp_.data();
    for (int64_t i = begin; i < end; ++i) {
      if constexpr (!std::is_same_v<decltype(at(i)), std::nullptr_t>)
        if (i + kAhead < end) __builtin_prefetch(at(i + kAhead));
      const Rec r = rows[i];
      const int c = code(i);
      const bool go_left = c == kNanBin ? nan_left : c <= bin;
      rows[begin + nl] = r;
      tmp[nr] = r;
      nl += go_left;
      nr += !go_left;
    }
    std::copy(tmp, tmp + nr, rows + begin + nl);
    return begin + nl;
  }

  // Splits e's rows (stable) and creates both children; returns them left, right.
  std::pair<Entry, Entry> expand(Entry& e) {
    std::pair<Entry, Entry> lr;
    expand_into(e, lr.first, lr.second);
    return lr;
  }

  // Splits e's rows and makes its children into l and r (default Entries), the left one first.
  void expand_into(Entry& e, Entry& l, Entry& r) {
    const int d = D_.d, f = e.feature, bin = e.bin;
    if (e.mid < 0 && sparse_) {
      e.mid = e.begin + sparse_->partition(e, rows_, tmp_);
    } else if (e.mid < 0) {
      const int64_t rs = D_.column_major ? 1 : d;  // code of (row, f) at row * rs
      const uint8_t* col = D_.codes + (D_.column_major ? static_cast<int64_t>(f) * D_.n : f);
      e.mid = partition(e.begin, e.end, bin, e.nan_left, [&](int64_t i) { return col[static_cast<int64_t>(rows_[i].row) * rs]; },
                        [&](int64_t i) { return col + static_cast<int64_t>(rows_[i].row) * rs; });
    }
    const int64_t mid = e.mid, nl = mid - e.begin, nr = e.end - mid;
    FORGEML_CHECK_RT(static_cast<double>(nl) == e.left[0], "tree: partition disagrees with the histogram");
    out_.feature[e.node] = f;
    out_.thr_bin[e.node] = bin;
    out_.nan_left[e.node] = e.nan_left;
    std::unique_ptr<Hist> lh, rh;
    if (e.hist) {  // smaller child from its rows, larger = parent - smaller
      const bool left_small = nl <= nr;
      const int64_t n_small = left_small ? nl : nr, n_large = left_small ? nr : nl;
      std::unique_ptr<Hist> small;
      if (n_large >= kMinHistRows) {
        small = take_hist();
        if (left_small) build_full(e.begin, mid, *small); else build_full(mid, e.end, *small);
        subtract(*e.hist, *small);
        if (n_small < kMinHistRows) release(std::move(small));
        (left_small ? rh : lh) = std::move(e.hist);
        (left_small ? lh : rh) = std::move(small);
      } else {
        release(std::move(e.hist));
      }
    }
    const auto [lb, rb] = child_bounds(e);
    snap_class_residues(e.left);
    snap_class_residues(e.right);
    // packed rows (unit weights): the children's statistics are counts, which snap_class_residues
    // leaves as they are, so finish_split's costs of them are new_node's
    if (prow_w_) pending_cost_ = e.child_cost[0];
    pending_slot_ = e.child_slot[0];
    make_entry_into(l, e.begin, mid, e.depth + 1, e.left.data(), e.consts, std::move(lh), lb.first, lb.second);
    if (prow_w_) pending_cost_ = e.child_cost[1];
    pending_slot_ = e.child_slot[1];
    make_entry_into(r, mid, e.end, e.depth + 1, e.right.data(), std::move(e.consts), std::move(rh), rb.first,
                    rb.second);
    out_.left[e.node] = l.node;
    out_.right[e.node] = r.node;
  }

  void depth_first(Entry root) {
    std::vector<Entry> stack;
    stack.push_back(std::move(root));
    while (!stack.empty()) {
      Entry e = std::move(stack.back());
      stack.pop_back();
      if (!e.split) continue;
      // The children are made in their stack slots (right below left): no Entry moves, except
      // a left child moved down over a leaf right one. A leaf would only be popped again.
      const size_t at = stack.size();
      stack.resize(at + 2);
      expand_into(e, stack[at + 1], stack[at]);
      if (!stack[at + 1].split) stack.pop_back();
      if (!stack[at].split) {
        if (stack.size() == at + 2) stack[at] = std::move(stack[at + 1]);
        stack.pop_back();
      }
    }
  }

  void best_first(Entry root) {
    auto worse = [](const Entry& a, const Entry& b) {
      return a.improvement < b.improvement || (a.improvement == b.improvement && a.node > b.node);
    };
    std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
    if (root.split) heap.push(std::move(root));
    int64_t leaves = 1;
    while (!heap.empty() && leaves < P_.max_leaf_nodes) {
      Entry e = std::move(const_cast<Entry&>(heap.top()));
      heap.pop();
      auto [l, r] = expand(e);
      ++leaves;
      if (l.split) heap.push(std::move(l));
      if (r.split) heap.push(std::move(r));
    }
  }

  const Data& D_;
  const Params& P_;
  const double* w_;
  Rng rng_;
  Rng split_rng_;  // the random splitter's draws, one per evaluated feature in rank order (a stream of
                   // their own: the full-histogram and batched paths consume the same draws)
  int threads_;
  decltype(SplitKernels::class_proxies) class_proxies_;  // the active ISA's (kernels.h)
  const SplitKernels* split_kernels_;
  C crit_;
  bool full_ = false;
  bool packed_ = false;  // classification with integer weights: packed integer histograms
  bool word_hist_ = false;  // ... binary, root weight below 2^21: one word per bin (hist_words.h)
  bool random_rows_ = false;  // the random splitter on rows, without histograms
  bool random_unit_ = false;  // ... with unit weights: the weight sums are the counts
  RandomScratch rs_;
  int prow_w_ = 0;  // > 0: packed rows of this width (random_rows.h) serve the random splitter
  int32_t pending_slot_ = -1;  // the slot of the child make_entry makes next (Entry::slot)
  double pending_cost_ = std::numeric_limits<double>::quiet_NaN();  // its cost when known (new_node)
  double last_cost_ = 0;  // the cost new_node last computed or took
  bool prow_nan_ = true;  // ... some row holds a NaN code (else partitions take no NaN ranges)
  const RowKernels* rk_ = nullptr;
  PackedRows& prow_ = packed_rows_of_thread();  // (rows, W) each, in node order
  bool mono_ = false;    // monotonic constraints given
  int live_ = 0;
  std::vector<std::unique_ptr<Hist>> pool_;
  int K_ = 1, S_ = 4, H_ = 3, words_ = 1, batch_cap_ = 1;
  double w_root_ = 0;
  double root_sq_ = 0;  // the root's sum of w*y^2: the scale of rounding left in a child's sums
  Limits lim_{1, 0};
  RowBuffers<Rec>& rows_buf_ = row_buffers_of_thread<Rec>();
  std::vector<Rec>& rows_ = rows_buf_.rows;  // the rows with weight > 0, partitioned as nodes split
  std::vector<Rec>& tmp_ = rows_buf_.tmp;
  std::vector<Scratch> scratch_;
  std::vector<int> all_features_;
  std::unique_ptr<SparseSearch<Grower>> sparse_;  // sparse X's split search (null: codes)
  TreeOut out_ = take_tree_out();  // arrays of an earlier tree when pooled: their pages already mapped
};

}  // namespace

TreeOut grow_tree(const Data& data, const Params& p, const double* weight, uint64_t seed, int threads) {
  FORGEML_CHECK_ARG(data.n < (int64_t{1} << 31), "X: at most 2^31 - 1 rows, got ", data.n);
  FORGEML_CHECK_ARG(p.max_features >= 1, "max_features: expected >= 1, got ", p.max_features);
  FORGEML_CHECK_ARG(p.monotonic.empty() || static_cast<int>(p.monotonic.size()) == data.d,
                    "monotonic_cst: expected one constraint per feature (", data.d, "), got ", p.monotonic.size());
  FORGEML_CHECK_ARG(p.monotonic.empty() || !is_classification(p.criterion) || p.n_classes <= 2,
                    "monotonic_cst: only regression and binary classification are supported");
  FORGEML_CHECK_ARG(data.n_outputs >= 1, "y: expected at least one output");
  FORGEML_CHECK_ARG(!data.sparse || p.criterion != Criterion::absolute_error,
                    "criterion: absolute_error needs the codes of sparse X, not its entries");
  FORGEML_CHECK_ARG(data.n_outputs == 1 || p.monotonic.empty(),
                    "monotonic_cst: not supported with multiple outputs");
  if (data.n_outputs > 1) {
    switch (p.criterion) {
      case Criterion::gini: return Grower<MultiClass<false>>(data, p, weight, seed, threads).run();
      case Criterion::entropy: return Grower<MultiClass<true>>(data, p, weight, seed, threads).run();
      case Criterion::squared_error: return Grower<MultiRegression<false>>(data, p, weight, seed, threads).run();
      case Criterion::poisson: return Grower<MultiRegression<true>>(data, p, weight, seed, threads).run();
      case Criterion::absolute_error:
        throw std::invalid_argument("criterion: absolute_error supports one output only");
    }
  }
  switch (p.criterion) {
    case Criterion::gini: return Grower<Gini>(data, p, weight, seed, threads).run();
    case Criterion::entropy: return Grower<Entropy>(data, p, weight, seed, threads).run();
    case Criterion::squared_error: return Grower<SquaredError>(data, p, weight, seed, threads).run();
    case Criterion::poisson: return Grower<Poisson>(data, p, weight, seed, threads).run();
    case Criterion::absolute_error: return Grower<AbsoluteError>(data, p, weight, seed, threads).run();
  }
  throw std::invalid_argument("criterion: unknown");
}

void bootstrap_counts(int64_t n, int64_t n_draws, uint64_t seed, int32_t* counts) {
  std::fill(counts, counts + n, 0);
  if (n == 0) return;
  Rng rng(seed ^ 0x2545f4914f6cdd1dULL);
  for (int64_t i = 0; i < n_draws; ++i) ++counts[rng.below(static_cast<uint64_t>(n))];
}

std::vector<TreeOut> grow_forest(const Data& forest_data, const Params& p, const ForestParams& fp,
                                 const double* base_weight, const uint64_t* seeds, int n_trees, int threads) {
  std::vector<TreeOut> trees(n_trees);
  Data data = forest_data;
  if (!fp.bootstrap) {  // every tree sees base_weight: a key of this call's own for their shared root rows
    static std::atomic<uint64_t> keys{0};
    data.same_rows = ++keys;
  }
  auto one = [&](int t, int inner_threads) {
    if (!fp.bootstrap) {  // every tree on base_weight as given
      trees[t] = grow_tree(data, p, base_weight, seeds[t] + 0x5851f42d4c957f2dULL, inner_threads);
      return;
    }
    std::vector<double> w(base_weight, base_weight + data.n);
    std::vector<int32_t> counts(data.n);
    bootstrap_counts(data.n, fp.n_draws, seeds[t], counts.data());
    for (int64_t i = 0; i < data.n; ++i) w[i] *= counts[i];
    if (fp.balanced_subsample) {  // class weights from the classes' frequencies in this draw
      const int k = data.n_outputs;  // several outputs: the product of each output's weights
      for (int o = 0; o < k; ++o) {
        std::vector<double> freq(p.n_classes, 0.0);
        for (int64_t i = 0; i < data.n; ++i) freq[data.y_class[i * k + o]] += counts[i];
        double present = 0;
        for (double c : freq) present += c > 0;
        for (int64_t i = 0; i < data.n; ++i) {
          double c = freq[data.y_class[i * k + o]];
          if (c > 0) w[i] *= static_cast<double>(fp.n_draws) / (present * c);
        }
      }
    }
    trees[t] = grow_tree(data, p, w.data(), seeds[t] + 0x5851f42d4c957f2dULL, inner_threads);
  };
  threads = std::max(1, threads);
  if (n_trees == 1 || threads == 1) {
    for (int t = 0; t < n_trees; ++t) {
      one(t, threads);
      check_interrupt();
    }
    return trees;
  }
  // Trees per parallel region: Ctrl-C is checked between regions, and each region ends waiting for
  // its last tree (threads idle up to one tree's time). The first region holds 4 trees per thread;
  // later ones as many as take about half a second, so fast trees pay that wait a few times only.
  int chunk = 4 * threads;
  for (int t0 = 0, t1; t0 < n_trees; t0 = t1) {
    t1 = std::min(n_trees, t0 + chunk);
    const auto start = std::chrono::steady_clock::now();
    ExceptionSlot slot;
    std::atomic<int> next{t0};  // one tree at a time to whichever thread is free
    parallel_run(std::min(threads, t1 - t0), [&](int, int) {
      for (int t; (t = next.fetch_add(1)) < t1;) slot.run([&] { one(t, 1); });
    });
    slot.rethrow();
    check_interrupt();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double per_tree = secs * threads / (t1 - t0);  // one thread's time per tree
    if (per_tree > 0) chunk = std::clamp(static_cast<int>(0.5 / per_tree) * threads, 4 * threads, 64 * threads);
  }
  return trees;
}

}  // namespace forgeml::tree
