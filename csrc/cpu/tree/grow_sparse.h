// Split search and partition of one node on sparse X (tree.h's SparseCodes), for grow.cpp's
// Grower: the cost follows the stored entries in the node, never n * d.
//
// A feature's histogram is built from its entries in the node alone; its zero bin (the code of
// zero, held by every row without an entry) is the node's total minus the entries' bins, as
// LightGBM does. Packed integer counts make that exact, so classification with integer weights
// (bootstrap counts) grows the very trees of the dense codes; double sums differ from the
// dense ones in the last bits only.
//
// The node's entries of a feature come one of two ways, whichever reads fewer entries:
//   by rows, for small nodes: features are drawn ahead in batches (more than needed, sized from
//   the share of drawn features found varying so far), one pass over the node's rows picks the
//   entries of the batch's features (a byte per feature marks them), a counting sort groups
//   them by draw; the random streams are then set back to stop right after the max_features-th
//   varying feature, as if drawn one at a time;
//   by column: the feature's column, its rows kept when the row -> position map puts them in
//   the node's range of rows.
// Features are drawn one at a time as the dense search draws them (same random streams, same
// ranks), until max_features non-constant ones were evaluated; a feature without an entry in
// the node is constant there, found so without a histogram.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/tree/criterion.h"
#include "cpu/tree/rng.h"
#include "cpu/tree/split.h"
#include "cpu/tree/tree.h"

namespace forgeml::tree {

template <class G>  // G: grow.cpp's Grower<C>
class SparseSearch {
 public:
  explicit SparseSearch(G& g) : g_(g), X_(*g.D_.sparse), n_(g.D_.n), d_(g.D_.d) {
    pos_.assign(n_, -1);
    slot_.assign(d_, -1);
    mark_.assign(d_, 0);
    cand_.resize(d_ + 8);
    side_.resize(n_);
    const int H = g_.H_;
    hw_.assign(static_cast<size_t>(256) * H, 0.0);
    cnt_.assign(256, 0);
    pk_.assign(static_cast<size_t>(256) * g_.K_, 0);
    node_pk_.resize(g_.K_);
    node_cc_.resize(H);
    ent_cc_.resize(H);
    tmp_.resize(4 * g_.S_);
    mean_col_ = static_cast<double>(X_.col_ptr[d_]) / std::max(1, d_);
  }

  // pos_ for the rows of [begin, end) of g's rows (after the root is made and after each partition).
  void index_rows(int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) pos_[g_.rows_[i].row] = static_cast<int32_t>(i);
  }

  template <class Entry>
  void find_split(Entry& e, const double* total) {
    const int64_t nn = e.end - e.begin;
    int* cand = cand_.data();  // the free features, ascending (as the dense search lists them)
    const size_t n_cand = list_free(e.consts.data(), cand);
    int64_t node_entries = 0;
    for (int64_t i = e.begin; i < e.end; ++i) {
      const int64_t r = g_.rows_[i].row;
      node_entries += X_.row_ptr[r + 1] - X_.row_ptr[r];
    }
    // by rows: about one pass over the node's entries; by column: a column per drawn feature
    const bool by_rows = static_cast<double>(node_entries) <= kRowsPerColumn * g_.P_.max_features * mean_col_;
    if constexpr (G::Crit::kClassify) {  // rows per class slot (double sums: exact zeros in evaluate)
      if (!g_.packed_) {
        std::fill(node_cc_.begin(), node_cc_.end(), 0.0);
        for (int64_t i = e.begin; i < e.end; ++i) count_row(node_cc_.data(), g_.rows_[i]);
      }
    }
    if constexpr (class_layout<typename G::Crit>()) {
      if (g_.packed_) {
        std::fill(node_pk_.begin(), node_pk_.end(), 0);
        for (int64_t i = e.begin; i < e.end; ++i) {
          const auto& r = g_.rows_[i];
          node_pk_[r.cls] += (uint64_t{1} << 32) | static_cast<uint64_t>(r.w);
        }
      }
    }
    std::vector<double> bl(g_.S_), br(g_.S_);
    Best best;
    best.left = bl.data();
    best.right = br.data();
    if (by_rows) {
      search_rows(e, n_cand, node_entries, total, best);
    } else {
      const bool random = g_.P_.random_split;
      int seen = 0;
      for (size_t drawn = 0; seen < g_.P_.max_features && drawn < n_cand; ++drawn) {
        std::swap(cand[drawn], cand[drawn + g_.rng_.below(n_cand - drawn)]);  // Fisher-Yates, as dense
        const int f = cand[drawn];
        const uint64_t draw = random ? g_.split_rng_.next() : 0;
        const int64_t m = gather_column(f, e.begin, e.end);
        const bool varies =
            m > 0 && evaluate(e, f, buf_.data(), m, nn, total, static_cast<int>(drawn), random ? &draw : nullptr, best);
        if (varies) ++seen;
        else e.consts[f >> 6] |= uint64_t{1} << (f & 63);
      }
    }
    g_.finish_split(e, total, best, bl, br);
  }

  // The features whose bit of consts is clear, ascending, into cand (room for d_ + 8); returns how
  // many. A byte of the mask at a time: its set bits' offsets from a table, 8 written, popcount kept.
  size_t list_free(const uint64_t* consts, int* cand) const {
    static const auto kOffsets = [] {
      std::array<std::array<uint8_t, 8>, 256> t{};
      for (int b = 0; b < 256; ++b)
        for (int i = 0, k = 0; i < 8; ++i)
          if ((b >> i) & 1) t[b][k++] = static_cast<uint8_t>(i);
      return t;
    }();
    size_t n = 0;
    for (int w = 0; w < g_.words_; ++w) {
      uint64_t free = ~consts[w];
      if (w == g_.words_ - 1 && d_ % 64) free &= (uint64_t{1} << (d_ % 64)) - 1;
      for (int byte = 0; byte < 8; ++byte, free >>= 8) {
        const unsigned bits = static_cast<unsigned>(free & 0xff);
        const uint8_t* o = kOffsets[bits].data();
        const int base = w * 64 + byte * 8;
        for (int i = 0; i < 8; ++i) cand[n + i] = base + o[i];
        n += __builtin_popcount(bits);
      }
    }
    return n;
  }

  // Stable partition of e's rows on its split (rows going left first, their order kept, through
  // tmp); updates the row positions. Returns the rows going left.
  template <class Entry, class Rec>
  int64_t partition(const Entry& e, std::vector<Rec>& rows, std::vector<Rec>& tmp) {
    const int f = e.feature, bin = e.bin;
    const int64_t b = e.begin, nn = e.end - e.begin;
    auto left_of = [&](int c) { return c == kNanBin ? e.nan_left : c <= bin; };
    std::fill(side_.begin() + b, side_.begin() + e.end, static_cast<uint8_t>(left_of(X_.zero_code[f])));
    const int64_t col = X_.col_ptr[f + 1] - X_.col_ptr[f];
    if (static_cast<double>(nn) * 8 < static_cast<double>(col)) {  // small node: look f up in each row
      for (int64_t i = b; i < e.end; ++i) {
        const int64_t r = rows[i].row;
        const int32_t* lo = X_.row_feature + X_.row_ptr[r];
        const int32_t* hi = X_.row_feature + X_.row_ptr[r + 1];
        const int32_t* at = std::lower_bound(lo, hi, f);
        if (at != hi && *at == f) side_[i] = left_of(X_.row_code[at - X_.row_feature]);
      }
    } else {
      for (int64_t k = X_.col_ptr[f]; k < X_.col_ptr[f + 1]; ++k) {
        const int64_t p = pos_[X_.col_row[k]];
        if (static_cast<uint64_t>(p - b) < static_cast<uint64_t>(nn)) side_[p] = left_of(X_.col_code[k]);
      }
    }
    int64_t nl = 0, nr = 0;
    for (int64_t i = b; i < e.end; ++i) {
      if (side_[i]) rows[b + nl++] = rows[i];
      else tmp[nr++] = rows[i];
    }
    std::copy(tmp.begin(), tmp.begin() + nr, rows.begin() + b + nl);
    index_rows(b, e.end);
    return nl;
  }

 private:
  struct Ent {
    uint8_t code;
    int32_t at;  // position in g's rows
  };

  // The features drawn by rows, in batches (see the top): each batch's entries grouped in one pass,
  // then its features walked in draw order; the random streams set back to the last one used.
  template <class Entry>
  void search_rows(Entry& e, size_t n_cand, int64_t node_entries, const double* total, Best& best) {
    int* cand = cand_.data();
    const int64_t nn = e.end - e.begin;
    const bool random = g_.P_.random_split;
    const int max_features = g_.P_.max_features;
    // the share of drawn features with an entry in the node, were the entries spread evenly
    double rate = 1.0 - std::exp(-static_cast<double>(node_entries) / static_cast<double>(std::max<size_t>(n_cand, 1)));
    int seen = 0;
    size_t drawn = 0;
    while (seen < max_features && drawn < n_cand) {
      const double want = 1.5 * (max_features - seen) / std::max(rate, 1e-3) + 32;
      const size_t batch = static_cast<size_t>(std::min(want, static_cast<double>(n_cand - drawn)));
      const Rng rng0 = g_.rng_, split0 = g_.split_rng_;
      draws_.resize(batch);
      for (size_t j = 0; j < batch; ++j) {  // Fisher-Yates, as dense
        const size_t i = drawn + j;
        std::swap(cand[i], cand[i + g_.rng_.below(n_cand - i)]);
        draws_[j] = random ? g_.split_rng_.next() : 0;
        mark_[cand[i]] = 1;
        slot_[cand[i]] = static_cast<int32_t>(j);
      }
      group_drawn(e.begin, e.end, node_entries, batch);
      size_t j = 0;
      int found = 0;
      for (; j < batch && seen < max_features; ++j) {
        const int f = cand[drawn + j];
        const Ent* ent = grouped_.data() + start_[j];
        const int64_t c = start_[j + 1] - start_[j];
        // all rows hold an entry: whether their codes differ
        const bool varies =
            c > 0 && (c < nn || std::any_of(ent + 1, ent + c, [&](const Ent& x) { return x.code != ent[0].code; }));
        if (varies) {
          evaluate(e, f, ent, c, nn, total, static_cast<int>(drawn + j), random ? &draws_[j] : nullptr, best);
          ++seen;
          ++found;
        } else {
          e.consts[f >> 6] |= uint64_t{1} << (f & 63);
        }
      }
      for (size_t t = 0; t < batch; ++t) {
        mark_[cand[drawn + t]] = 0;
        slot_[cand[drawn + t]] = -1;
      }
      if (j < batch) {  // drew past the last feature used: the streams as after feature j - 1
        g_.rng_ = rng0;
        g_.split_rng_ = split0;
        for (size_t t = 0; t < j; ++t) {
          g_.rng_.next();
          if (random) g_.split_rng_.next();
        }
      }
      drawn += j;
      rate = (found + 1.0) / (static_cast<double>(j) + 1.0);
    }
  }

  // The node's entries of the batch's features (marked in mark_, slot_ their index) into grouped_,
  // feature j's at [start_[j], start_[j + 1]) in row order. Branch-free: every entry's offset in
  // its row is written at the next slot of hits_, which advances for the marked ones.
  void group_drawn(int64_t begin, int64_t end, int64_t node_entries, size_t batch) {
    if (static_cast<int64_t>(hits_.size()) < node_entries + 1) hits_.resize(node_entries + 1);
    row_end_.resize(end - begin);
    uint32_t* hits = hits_.data();
    const uint8_t* mark = mark_.data();
    int64_t m = 0;
    for (int64_t i = begin; i < end; ++i) {
      if (i + kAhead < end) prefetch_row(g_.rows_[i + kAhead].row);
      const int64_t r = g_.rows_[i].row;
      const int32_t* feature = X_.row_feature + X_.row_ptr[r];
      const uint32_t len = static_cast<uint32_t>(X_.row_ptr[r + 1] - X_.row_ptr[r]);
      for (uint32_t o = 0; o < len; ++o) {
        hits[m] = o;
        m += mark[feature[o]];
      }
      row_end_[i - begin] = m;
    }
    start_.assign(batch + 1, 0);
    fill_.resize(batch);
    grouped_.resize(m);
    for (int pass = 0; pass < 2; ++pass) {  // counts, then the entries in place
      int64_t h = 0;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t k0 = X_.row_ptr[g_.rows_[i].row];
        for (; h < row_end_[i - begin]; ++h) {
          const int32_t s = slot_[X_.row_feature[k0 + hits[h]]];
          if (pass == 0) ++start_[s + 1];
          else grouped_[fill_[s]++] = {X_.row_code[k0 + hits[h]], static_cast<int32_t>(i)};
        }
      }
      if (pass == 0) {
        for (size_t j = 0; j < batch; ++j) start_[j + 1] += start_[j];
        std::copy(start_.begin(), start_.end() - 1, fill_.begin());
      }
    }
  }

  // The node's rows are scattered over the entries: their features fetched a few rows ahead.
  static constexpr int64_t kAhead = 4;
  void prefetch_row(int64_t r) const {
    const char* a = reinterpret_cast<const char*>(X_.row_feature + X_.row_ptr[r]);
    const char* b = reinterpret_cast<const char*>(X_.row_feature + X_.row_ptr[r + 1]);
    for (; a < b; a += 64) __builtin_prefetch(a);
  }

  // By column: feature f's entries in the node into buf_ (row order); returns how many.
  int64_t gather_column(int f, int64_t begin, int64_t end) {
    const int64_t k0 = X_.col_ptr[f], k1 = X_.col_ptr[f + 1];
    if (static_cast<int64_t>(buf_.size()) < k1 - k0) buf_.resize(k1 - k0);
    Ent* out = buf_.data();
    const uint64_t nn = static_cast<uint64_t>(end - begin);
    int64_t m = 0;
    for (int64_t k = k0; k < k1; ++k) {  // branch-free: write always, keep the node's
      const int64_t p = pos_[X_.col_row[k]];
      out[m] = {X_.col_code[k], static_cast<int32_t>(p)};
      m += static_cast<uint64_t>(p - begin) < nn;
    }
    return m;
  }

  // c += the row's count in each class slot it adds weight to (the histogram layout)
  template <class Rec>
  void count_row(double* c, const Rec& r) const {
    if constexpr (is_multi<typename G::Crit>()) g_.crit_.add(c, 1.0, r.row);
    else c[r.cls] += 1;
  }

  // Histogram of feature f from its m entries in the node plus the zero bin, then the scan;
  // returns whether f varies in the node. The scratch is left zero.
  template <class Entry>
  bool evaluate(const Entry& e, int f, const Ent* ent, int64_t m, int64_t nn, const double* total, int rank,
                const uint64_t* draw, Best& best) {
    uint64_t occ[4] = {0, 0, 0, 0};
    const int zc = X_.zero_code[f];
    auto mark = [&](int b) { occ[b >> 6] |= uint64_t{1} << (b & 63); };
    if constexpr (class_layout<typename G::Crit>()) {
      if (g_.packed_) {
        const int K = g_.K_;
        uint64_t* pk = pk_.data();
        for (int64_t j = 0; j < m; ++j) {
          const auto& r = g_.rows_[ent[j].at];
          pk[ent[j].code * K + r.cls] += (uint64_t{1} << 32) | static_cast<uint64_t>(r.w);
          mark(ent[j].code);
        }
        if (m < nn) {  // the zero bin: the node's counts minus the entries' (exact integers)
          for (int k = 0; k < K; ++k) {
            uint64_t sum = 0;
            for_each_bit(occ, 4, [&](int b) { sum += pk[b * K + k]; });
            pk[zc * K + k] = node_pk_[k] - sum;
          }
          mark(zc);
        }
        const bool varies = scan_packed(g_.crit_, pk, occ, total, g_.S_, g_.lim_, f, rank, best);
        for_each_bit(occ, 4, [&](int b) { std::fill(pk + b * K, pk + (b + 1) * K, 0); });
        return varies;
      }
    }
    const int H = g_.H_;
    double* hw = hw_.data();
    uint32_t* cnt = cnt_.data();
    for (int64_t j = 0; j < m; ++j) {  // as Grower::build_rows adds a row
      const auto& rr = g_.rows_[ent[j].at];
      const int b = ent[j].code;
      double* h = hw + b * H;
      if constexpr (is_multi<typename G::Crit>()) {
        g_.crit_.add(h, rr.w, rr.row);
      } else if constexpr (G::Crit::kClassify) {
        h[rr.cls] += rr.w;
      } else {
        const double wy = rr.w * rr.y;
        h[0] += rr.w;
        h[1] += wy;
        if constexpr (log_stat<typename G::Crit>()) h[2] += rr.w * G::Crit::xlogy(rr.y);
        else h[2] += wy * rr.y;
      }
      ++cnt[b];
      mark(b);
    }
    if (m < nn) {  // the zero bin: the node's statistics minus the entries'
      const double* node = total + (class_layout<typename G::Crit>() ? 2 : 1);  // histogram layout within S
      double* z = hw + zc * H;
      for (int k = 0; k < H; ++k) {
        double sum = 0;
        for_each_bit(occ, 4, [&](int b) { sum += hw[b * H + k]; });
        z[k] = node[k] - sum;
      }
      if constexpr (G::Crit::kClassify) {  // a class slot without rows in the zero bin: exactly 0, as dense
        std::fill(ent_cc_.begin(), ent_cc_.end(), 0.0);
        for (int64_t j = 0; j < m; ++j) count_row(ent_cc_.data(), g_.rows_[ent[j].at]);
        for (int k = 0; k < H; ++k)
          if (node_cc_[k] == ent_cc_[k]) z[k] = 0;
      }
      cnt[zc] = static_cast<uint32_t>(nn - m);
      mark(zc);
    }
    const bool varies = g_.scan(e, hw, cnt, occ, total, f, rank, tmp_.data(), best, draw);
    for_each_bit(occ, 4, [&](int b) {
      std::fill(hw + b * H, hw + (b + 1) * H, 0.0);
      cnt[b] = 0;
    });
    return varies;
  }

  G& g_;
  const SparseCodes& X_;
  int64_t n_;
  int d_;
  double mean_col_;           // kept entries per column
  std::vector<int32_t> pos_;  // row -> its position in g's rows (-1: weight 0)
  // by rows: a node's entries per drawn feature at least this share of a column per feature drawn
  static constexpr double kRowsPerColumn = 1.0;
  std::vector<int> cand_;              // the node's features not known constant, in draw order
  std::vector<int32_t> slot_;          // by rows: feature -> its index in the batch (-1 between batches)
  std::vector<uint8_t> mark_;          // by rows: 1 for the batch's features (zero between batches)
  std::vector<uint64_t> draws_;        // by rows: the batch's random-splitter draws
  std::vector<uint32_t> hits_;         // by rows: the batch's entries in row order, as offsets in their row
  std::vector<int64_t> row_end_;       // by rows: the end of each node row's hits
  std::vector<int64_t> start_, fill_;  // by rows: batch feature j's entries in grouped_
  std::vector<Ent> grouped_, buf_;     // by rows: the batch's entries; by column: one feature's
  std::vector<uint8_t> side_;          // partition: goes left, by position
  std::vector<double> hw_, tmp_;
  std::vector<double> node_cc_, ent_cc_;  // double sums, classification: rows per class slot (node, entries)
  std::vector<uint32_t> cnt_;
  std::vector<uint64_t> pk_, node_pk_;
};

}  // namespace forgeml::tree
