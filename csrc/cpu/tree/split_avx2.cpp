// The split kernels' AVX2 entry: the portable table with class_proxies compiled for AVX2
// (split_proxies.h's loop, four boundaries per divide), compact_words and word_gini four bins or
// boundaries per step.
#include "cpu/tree/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <limits>

#include "cpu/tree/hist_words.h"

#define FORGEML_TREE_PROXIES_NS avx2
#include "cpu/tree/split_proxies.h"

namespace forgeml::tree {

namespace {

// Non-negative integers below 2^52 to double, exactly: their bits under 2^52's exponent, minus 2^52.
inline __m256d small_to_pd(__m256i v) {
  const __m256i magic = _mm256_set1_epi64x(0x4330000000000000);
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, magic)), _mm256_castsi256_pd(magic));
}

// Lane tables for compact_words: for each 4-bit mask of nonzero words, the int32 lanes that move
// its words (two lanes each) and its bins (one each) to the front, in order.
struct CompressTables {
  alignas(32) int32_t words[16][8];
  alignas(32) int32_t bins[16][8];
};
constexpr CompressTables make_compress_tables() {
  CompressTables t{};
  for (int mask = 0; mask < 16; ++mask) {
    int u = 0;
    for (int k = 0; k < 4; ++k)
      if ((mask >> k) & 1) t.words[mask][2 * u] = 2 * k, t.words[mask][2 * u + 1] = 2 * k + 1, t.bins[mask][u++] = k;
  }
  return t;
}
constexpr CompressTables kCompress = make_compress_tables();

// compact_words, four bins per step: the nonzero words and their bins moved to the front of a
// register by a table permute and stored whole (the next step overwrites the tail).
int compact_words_avx2(uint64_t* h, uint64_t* raw, int* bins) {
  const __m256i zero = _mm256_setzero_si256();
  __m128i idx = _mm_set_epi32(3, 2, 1, 0);
  const __m128i four = _mm_set1_epi32(4);
  int u = 0;
  for (int b = 0; b < 256; b += 4) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + b));
    const int nz = ~_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(v, zero))) & 0xf;
    const __m256i wl = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.words[nz]));
    const __m256i bl = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.bins[nz]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(raw + u), _mm256_permutevar8x32_epi32(v, wl));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bins + u),
                     _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castsi128_si256(idx), bl)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + b), zero);
    u += __builtin_popcount(static_cast<unsigned>(nz));
    idx = _mm_add_epi32(idx, four);
  }
  return u;
}

// word_gini four boundaries per step: the prefix sums within the register (a shift and a half
// swap) plus the carry of the steps before; per lane the first maximum and its boundary, then the
// first boundary with the largest of them. The proxies are the scalar loop's bits (exact squares).
// The min_leaf / min_weight / empty-side checks are done once: they hold on a range of boundaries.
double word_gini_avx2(const uint64_t* raw, int m, const double* total, double min_leaf, double min_weight, int* at,
                      uint64_t* left) {
  const double n = total[0], w = total[1];
  *at = 0;
  *left = raw[0];
  const int nb = m - 1;  // boundaries: j has raw[0..j] on its left
  // Left sums only grow with j and right sums only shrink, so the allowed boundaries are one
  // range [lo, hi]: lo the first whose left side is allowed, hi the last whose right side is.
  auto fields = [](uint64_t s, double* wl, double* nl) {
    *wl = static_cast<double>((s & kWordMask) + ((s >> kWordBits) & kWordMask));
    *nl = static_cast<double>(s >> (2 * kWordBits));
  };
  uint64_t before = 0;  // the sums left of boundary lo
  int lo = 0;
  for (;; ++lo) {
    if (lo >= nb) return -std::numeric_limits<double>::infinity();
    double wl, nl;
    fields(before + raw[lo], &wl, &nl);
    if (nl >= min_leaf && wl >= min_weight && wl > 0) break;
    before += raw[lo];
  }
  uint64_t all = before;
  for (int j = lo; j < m; ++j) all += raw[j];
  int hi = nb - 1;
  for (uint64_t right = raw[nb];; right += raw[hi--]) {
    if (hi < lo) return -std::numeric_limits<double>::infinity();
    double wl, nl;
    fields(all - right, &wl, &nl);
    const double wr = w - wl, nr = n - nl;
    if (nr >= min_leaf && wr >= min_weight && wr > 0) break;
  }
  const __m256d t0 = _mm256_set1_pd(total[2]), t1 = _mm256_set1_pd(total[3]), wv = _mm256_set1_pd(w);
  const __m256i mask = _mm256_set1_epi64x(static_cast<int64_t>(kWordMask)), zi = _mm256_setzero_si256();
  const __m256i four = _mm256_set1_epi64x(4), lane = _mm256_set_epi64x(3, 2, 1, 0);
  __m256d best = _mm256_set1_pd(-std::numeric_limits<double>::infinity());
  __m256i best_at = zi, best_left = zi, carry = _mm256_set1_epi64x(static_cast<int64_t>(before));
  __m256i idx = _mm256_add_epi64(lane, _mm256_set1_epi64x(lo));
  for (int j = lo; j <= hi; j += 4) {
    const __m256i live = _mm256_cmpgt_epi64(_mm256_set1_epi64x(hi + 1 - j), lane);
    __m256i s = _mm256_maskload_epi64(reinterpret_cast<const long long*>(raw + j), live);
    // prefix within the register: + the lane before (within each half), then the low half's
    // last lane onto the high half
    s = _mm256_add_epi64(s, _mm256_slli_si256(s, 8));
    s = _mm256_add_epi64(s, _mm256_shuffle_epi32(_mm256_permute2x128_si256(s, s, 0x08), _MM_SHUFFLE(3, 2, 3, 2)));
    s = _mm256_add_epi64(s, carry);
    carry = _mm256_permute4x64_epi64(s, _MM_SHUFFLE(3, 3, 3, 3));
    const __m256i i0 = _mm256_and_si256(s, mask), i1 = _mm256_and_si256(_mm256_srli_epi64(s, kWordBits), mask);
    const __m256d a0 = small_to_pd(i0), a1 = small_to_pd(i1);
    const __m256d wl = small_to_pd(_mm256_add_epi64(i0, i1));
    const __m256d b0 = _mm256_sub_pd(t0, a0), b1 = _mm256_sub_pd(t1, a1), wr = _mm256_sub_pd(wv, wl);
    const __m256d sl = _mm256_fmadd_pd(a1, a1, _mm256_mul_pd(a0, a0));
    const __m256d sr = _mm256_fmadd_pd(b1, b1, _mm256_mul_pd(b0, b0));
    const __m256d p = _mm256_add_pd(_mm256_div_pd(sl, wl), _mm256_div_pd(sr, wr));  // read only where live
    const __m256d up = _mm256_and_pd(_mm256_castsi256_pd(live), _mm256_cmp_pd(p, best, _CMP_GT_OQ));
    best = _mm256_blendv_pd(best, p, up);
    best_at = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(best_at), _mm256_castsi256_pd(idx), up));
    best_left = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(best_left), _mm256_castsi256_pd(s), up));
    idx = _mm256_add_epi64(idx, four);
  }
  alignas(32) double bests[4];
  alignas(32) int64_t ats[4];
  alignas(32) uint64_t lefts[4];
  _mm256_store_pd(bests, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(ats), best_at);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lefts), best_left);
  double top = bests[0];
  for (int k = 1; k < 4; ++k) top = bests[k] > top ? bests[k] : top;
  if (top == -std::numeric_limits<double>::infinity()) return top;
  int64_t first = std::numeric_limits<int64_t>::max();
  for (int k = 0; k < 4; ++k)
    if (bests[k] == top && ats[k] < first) first = ats[k], *left = lefts[k];
  *at = static_cast<int>(first);
  return top;
}

}  // namespace

void class_proxies_avx2(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                        const double* total, double min_leaf, double min_weight, double* pr) {
  avx2::class_proxies(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
}

bool split_kernels_avx2(SplitKernels& k) {
  split_kernels_portable(k);
  k.class_proxies = class_proxies_avx2;
  k.compact_words = compact_words_avx2;
  k.word_gini = word_gini_avx2;
  k.build_words_kept = build_words_kept_avx2;
  k.name = "avx2";
  return true;
}

}  // namespace forgeml::tree
#else
namespace forgeml::tree {
bool split_kernels_avx2(SplitKernels&) { return false; }
}  // namespace forgeml::tree
#endif
