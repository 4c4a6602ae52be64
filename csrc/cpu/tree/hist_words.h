// Binary classification with integer weights whose root weight is below 2^21 (bootstrap counts
// of up to ~2M rows): one uint64 per bin holds class 0's weight (bits 0-20), class 1's (21-41)
// and the rows (42-63). A feature's histogram is then 2 KiB, so the drawn features' histograms
// stay in L1 together while rows are added (the two-word layout's 4 KiB each did not), and a
// prefix sum over bins is one integer add per bin: no field of a node's sums can carry into the
// next. The sums are the two-word layout's exactly, so the scans see the same numbers.
#pragma once
#include <cstdint>

#include "cpu/tree/split.h"

namespace forgeml::tree {

constexpr int kWordBits = 21;
constexpr uint64_t kWordMask = (uint64_t{1} << kWordBits) - 1;
constexpr double kWordLimit = 2097152.0;  // 2^21: a root weight below this fits every field
// Entries between two features' word histograms: 64 bytes past 2 KiB, so the same bin of the
// features drawn together does not map to one L1 set.
constexpr int64_t kWordStride = 256 + 8;

// A row's increment: one row, weight w (integer < 2^21) in its class's field.
inline uint64_t word_inc(int cls, double w) {
  return (uint64_t{1} << (2 * kWordBits)) | (static_cast<uint64_t>(w) << (kWordBits * cls));
}

// Word histograms of features f[0..nf) over rows[0..m) (each with .row, .cls, .w) into pk (feature
// j at j * kWordStride), zero on entry; codes row-major (n, d). kMask: set the occupancy bits
// (occ, 4 words per feature) too. NF > 0: nf known at compile time, so the feature loop unrolls
// and each histogram's offset is an immediate.
template <bool kMask, int NF, class Rec>
void build_words(const Rec* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f_rt, int nf_rt, uint64_t* pk,
                 uint64_t* occ) {
  const int nf = NF > 0 ? NF : nf_rt;
  int fo[NF > 0 ? NF : 1];
  if constexpr (NF > 0)
    for (int j = 0; j < NF; ++j) fo[j] = f_rt[j];
  const int* f = NF > 0 ? fo : f_rt;
  constexpr int64_t kAhead = 24;
  for (int64_t i = 0; i < m; ++i) {
    if (i + kAhead < m) {  // both cache lines a row's codes may straddle
      const uint8_t* ahead = codes + static_cast<int64_t>(rows[i + kAhead].row) * d;
      __builtin_prefetch(ahead);
      __builtin_prefetch(ahead + d - 1);
    }
    const Rec& rr = rows[i];
    const uint8_t* c = codes + static_cast<int64_t>(rr.row) * d;
    const uint64_t inc = word_inc(rr.cls, rr.w);
    for (int j = 0; j < nf; ++j) {
      const int b = c[f[j]];
      pk[j * kWordStride + b] += inc;
      if constexpr (kMask) occ[j * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
    }
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

// The prefix sums of a word histogram over its occupied bins (occ), clearing both as they are
// read: u bins, bins[j] the j-th, and left of boundary j (bins[0..j] to the left) cl[j] / cl[256 +
// j] the class weights, wl[j] the weight, nl[j] the rows. Returns u.
inline int gather_words(uint64_t* h, uint64_t* occ, double* cl, double* wl, double* nl, int* bins) {
  uint64_t run = 0;
  int u = 0;
  for (int w = 0; w < 4; ++w) {
    for (uint64_t m = occ[w]; m; m &= m - 1) {
      const int b = w * 64 + __builtin_ctzll(m);
      run += h[b];
      h[b] = 0;
      const uint64_t w0 = run & kWordMask, w1 = (run >> kWordBits) & kWordMask;
      cl[u] = static_cast<double>(w0);
      cl[256 + u] = static_cast<double>(w1);
      wl[u] = static_cast<double>(w0 + w1);
      nl[u] = static_cast<double>(run >> (2 * kWordBits));
      bins[u++] = b;
    }
    occ[w] = 0;
  }
  return u;
}

}  // namespace forgeml::tree
