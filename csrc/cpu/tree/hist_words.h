// Binary classification with integer weights whose root weight is below 2^21 (bootstrap counts
// of up to ~2M rows): one uint64 per bin holds class 0's weight (bits 0-20), class 1's (21-41)
// and the rows (42-63). A feature's histogram is then 2 KiB, so the drawn features' histograms
// stay in L1 together while rows are added (the two-word layout's 4 KiB each did not), and a
// prefix sum over bins is one integer add per bin: no field of a node's sums can carry into the
// next. The sums are the two-word layout's exactly, so the scans see the same numbers.
#pragma once
#include <cstdint>
#include <limits>

#include "cpu/tree/split.h"

namespace forgeml::tree {

constexpr int kWordBits = 21;
constexpr uint64_t kWordMask = (uint64_t{1} << kWordBits) - 1;
constexpr double kWordLimit = 2097152.0;  // 2^21: a root weight below this fits every field
// Entries between two features' word histograms: 64 bytes past 2 KiB, so the same bin of the
// features drawn together does not map to one L1 set.
constexpr int64_t kWordStride = 256 + 8;

// A node's row as the classification grower keeps it (grow.cpp): its row of codes, class and weight.
struct ClassRow {
  int32_t row;
  int32_t cls;
  double w;
};

// A row's increment: one row, weight w (integer < 2^21) in its class's field. Always inlined: the
// AVX2 build (hist_words_avx2.cpp) uses it too, and no out-of-line copy of either ISA may be shared.
[[gnu::always_inline]] inline uint64_t word_inc(int cls, double w) {
  // Through int64: a double to uint64 conversion is a compare and a branch on x86-64.
  return (uint64_t{1} << (2 * kWordBits)) | (static_cast<uint64_t>(static_cast<int64_t>(w)) << (kWordBits * cls));
}

// Prefetches both cache lines that the codes of rows[i + kWordAhead] may straddle (a node's rows
// come in random order). Always inlined, as word_inc.
constexpr int64_t kWordAhead = 24;
template <class Rec>
[[gnu::always_inline]] inline void prefetch_codes_ahead(const Rec* rows, int64_t i, int64_t m, const uint8_t* codes,
                                                        int64_t d) {
  if (i + kWordAhead < m) {
    const uint8_t* ahead = codes + static_cast<int64_t>(rows[i + kWordAhead].row) * d;
    __builtin_prefetch(ahead);
    __builtin_prefetch(ahead + d - 1);
  }
}

// Word histograms of features f[0..nf) over rows[0..m) (each with .row, .cls, .w) into pk (feature
// j at j * kWordStride), zero on entry; codes row-major (n, d). kMask: set the occupancy bits
// (occ, 4 words per feature) too. NF > 0: nf known at compile time, so the feature loop unrolls
// and each histogram's offset is an immediate. keep (only with NF > 0): row i's codes of the nf
// features as the bytes of keep[i] (feature j at byte offset j), so the winner's partition reads them in
// row order instead of once more at random.
template <bool kMask, int NF, class Rec, bool kKeep = false>
void build_words(const Rec* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f_rt, int nf_rt, uint64_t* pk,
                 uint64_t* occ, uint64_t* keep = nullptr) {
  static_assert(!kKeep || (NF > 0 && NF <= 8), "a row's kept codes are one uint64");
  const int nf = NF > 0 ? NF : nf_rt;
  int fo[NF > 0 ? NF : 1];
  if constexpr (NF > 0)
    for (int j = 0; j < NF; ++j) fo[j] = f_rt[j];
  const int* f = NF > 0 ? fo : f_rt;
  for (int64_t i = 0; i < m; ++i) {
    prefetch_codes_ahead(rows, i, m, codes, d);
    const Rec& rr = rows[i];
    const uint8_t* c = codes + static_cast<int64_t>(rr.row) * d;
    const uint64_t inc = word_inc(rr.cls, rr.w);
    uint64_t word = 0;  // the kept codes: one store a row, not one a feature (stores bound this loop)
    for (int j = 0; j < nf; ++j) {
      const uint64_t b = c[f[j]];
      pk[j * kWordStride + b] += inc;
      if constexpr (kMask) occ[j * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
      if constexpr (kKeep) word |= b << (8 * j);
    }
    if constexpr (kKeep) keep[i] = word;
  }
}

// The same from column-major codes (n rows per feature).
template <class Rec>
void build_words_columns(const Rec* rows, int64_t m, const uint8_t* codes, int64_t n, const int* f, int nf,
                         uint64_t* pk, uint64_t* occ) {
  for (int j = 0; j < nf; ++j) {
    const uint8_t* col = codes + static_cast<int64_t>(f[j]) * n;
    for (int64_t i = 0; i < m; ++i) {
      const int b = col[rows[i].row];
      pk[j * kWordStride + b] += word_inc(rows[i].cls, rows[i].w);
      occ[j * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
    }
  }
}

// occ (4 words) from a word histogram's nonzero bins: large nodes, built without masks.
inline void word_occupancy(const uint64_t* h, uint64_t* occ) {
  for (int w = 0; w < 4; ++w) {
    uint64_t bits = 0;
    for (int b = 0; b < 64; ++b) bits |= static_cast<uint64_t>(h[w * 64 + b] != 0) << b;
    occ[w] = bits;
  }
}

// s (S = 4: rows, weight, class 0, class 1) += bin b's statistics, as add_bin_packed adds them.
inline void add_word(double* s, const uint64_t* h, int b) {
  const uint64_t e = h[b];
  const double w0 = static_cast<double>(e & kWordMask), w1 = static_cast<double>((e >> kWordBits) & kWordMask);
  s[2] += w0;
  s[3] += w1;
  s[0] += static_cast<double>(e >> (2 * kWordBits));
  s[1] += w0 + w1;
}

// A word histogram's occupied bins (occ), in bin order, clearing both as they are read: raw[j]
// the j-th bin's word, bins[j] its bin. Returns their number u.
inline int gather_words(uint64_t* h, uint64_t* occ, uint64_t* raw, int* bins) {
  int u = 0;
  for (int w = 0; w < 4; ++w) {
    for (uint64_t m = occ[w]; m; m &= m - 1) {
      const int b = w * 64 + __builtin_ctzll(m);
      raw[u] = h[b];
      h[b] = 0;
      bins[u++] = b;
    }
    occ[w] = 0;
  }
  return u;
}

// The kernels' contracts (kernels.h: compact_words, word_gini); these are the portable entries.
inline int compact_words_portable(uint64_t* h, uint64_t* raw, int* bins) {
  int u = 0;
  for (int b = 0; b < 256; ++b) {
    raw[u] = h[b];
    bins[u] = b;
    u += h[b] != 0;  // written unconditionally: no branch per bin
    h[b] = 0;
  }
  return u;
}

inline double word_gini_portable(const uint64_t* raw, int m, const double* total, double min_leaf, double min_weight,
                                 int* at, uint64_t* left) {
  const double n = total[0], w = total[1], t0 = total[2], t1 = total[3];
  double best = -std::numeric_limits<double>::infinity();
  int best_at = 0;
  uint64_t run = 0, best_left = raw[0];
  for (int j = 0; j + 1 < m; ++j) {
    run += raw[j];
    const uint64_t i0 = run & kWordMask, i1 = (run >> kWordBits) & kWordMask;
    const double a0 = static_cast<double>(i0), a1 = static_cast<double>(i1);
    const double wl = static_cast<double>(i0 + i1), nl = static_cast<double>(run >> (2 * kWordBits));
    const double b0 = t0 - a0, b1 = t1 - a1, wr = w - wl, nr = n - nl;
    const bool ok = nl >= min_leaf && nr >= min_leaf && wl >= min_weight && wr >= min_weight && wl > 0 && wr > 0;
    const double p = (a0 * a0 + a1 * a1) / wl + (b0 * b0 + b1 * b1) / wr;  // integers < 2^43: exact squares
    if (ok && p > best) {
      best = p;
      best_at = j;
      best_left = run;
    }
  }
  *at = best_at;
  *left = best_left;
  return best;
}

}  // namespace forgeml::tree
