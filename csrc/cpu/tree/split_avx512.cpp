// The split kernels' AVX-512 entry: the portable table with class_proxies compiled for AVX-512
// (split_proxies.h's loop, eight boundaries per divide).
#include "cpu/tree/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <limits>

#include "cpu/tree/hist_words.h"

#define FORGEML_TREE_PROXIES_NS avx512
#include "cpu/tree/split_proxies.h"

namespace forgeml::tree {

namespace {

// compact_words, eight bins per step: the nonzero words compressed to the front of a register and
// stored whole (the store's tail is overwritten by the next step), the bins likewise.
int compact_words_avx512(uint64_t* h, uint64_t* raw, int* bins) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i idx = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i eight = _mm512_set1_epi64(8);
  int u = 0;
  for (int b = 0; b < 256; b += 8) {
    const __m512i v = _mm512_loadu_si512(h + b);
    const __mmask8 nz = _mm512_test_epi64_mask(v, v);
    _mm512_storeu_si512(raw + u, _mm512_maskz_compress_epi64(nz, v));  // no branch: mixed nodes mispredict it
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(bins + u),
                        _mm512_cvtepi64_epi32(_mm512_maskz_compress_epi64(nz, idx)));
    _mm512_storeu_si512(h + b, zero);
    u += __builtin_popcount(nz);
    idx = _mm512_add_epi64(idx, eight);
  }
  return u;
}

// word_gini, eight boundaries per step: the prefix sums within the register (three shifted adds)
// plus the carry of the steps before; per lane the first maximum and its boundary, then the
// first boundary with the largest of them.
double word_gini_avx512(const uint64_t* raw, int m, const double* total, double min_leaf, double min_weight, int* at,
                        uint64_t* left) {
  const __m512d n = _mm512_set1_pd(total[0]), w = _mm512_set1_pd(total[1]);
  const __m512d t0 = _mm512_set1_pd(total[2]), t1 = _mm512_set1_pd(total[3]);
  const __m512d ml = _mm512_set1_pd(min_leaf), mw = _mm512_set1_pd(min_weight), zero = _mm512_setzero_pd();
  const __m512i mask = _mm512_set1_epi64(static_cast<int64_t>(kWordMask)), zi = _mm512_setzero_si512();
  const __m512i last = _mm512_set1_epi64(7), eight = _mm512_set1_epi64(8);
  __m512d best = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  __m512i best_at = zi, best_left = zi, carry = zi;
  __m512i idx = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const int nb = m - 1;  // boundaries
  for (int j = 0; j < nb; j += 8) {
    const __mmask8 live = nb - j >= 8 ? 0xff : static_cast<__mmask8>((1u << (nb - j)) - 1);
    __m512i s = _mm512_maskz_loadu_epi64(live, raw + j);
    s = _mm512_add_epi64(s, _mm512_alignr_epi64(s, zi, 7));  // + the lane before
    s = _mm512_add_epi64(s, _mm512_alignr_epi64(s, zi, 6));  // + the two before that
    s = _mm512_add_epi64(s, _mm512_alignr_epi64(s, zi, 4));  // + the four before those
    s = _mm512_add_epi64(s, carry);
    carry = _mm512_permutexvar_epi64(last, s);
    const __m512i i0 = _mm512_and_si512(s, mask), i1 = _mm512_and_si512(_mm512_srli_epi64(s, kWordBits), mask);
    const __m512d a0 = _mm512_cvtepu64_pd(i0), a1 = _mm512_cvtepu64_pd(i1);
    const __m512d wl = _mm512_cvtepu64_pd(_mm512_add_epi64(i0, i1));
    const __m512d nl = _mm512_cvtepu64_pd(_mm512_srli_epi64(s, 2 * kWordBits));
    const __m512d b0 = _mm512_sub_pd(t0, a0), b1 = _mm512_sub_pd(t1, a1);
    const __m512d wr = _mm512_sub_pd(w, wl), nr = _mm512_sub_pd(n, nl);
    __mmask8 ok = _mm512_mask_cmp_pd_mask(live, nl, ml, _CMP_GE_OQ);
    ok = _mm512_mask_cmp_pd_mask(ok, nr, ml, _CMP_GE_OQ);
    ok = _mm512_mask_cmp_pd_mask(ok, wl, mw, _CMP_GE_OQ);
    ok = _mm512_mask_cmp_pd_mask(ok, wr, mw, _CMP_GE_OQ);
    ok = _mm512_mask_cmp_pd_mask(ok, wl, zero, _CMP_GT_OQ);
    ok = _mm512_mask_cmp_pd_mask(ok, wr, zero, _CMP_GT_OQ);
    // integers below 2^43: the squares and their sums are exact, the divides and the add round once
    const __m512d sl = _mm512_fmadd_pd(a1, a1, _mm512_mul_pd(a0, a0));
    const __m512d sr = _mm512_fmadd_pd(b1, b1, _mm512_mul_pd(b0, b0));
    const __m512d p = _mm512_add_pd(_mm512_maskz_div_pd(ok, sl, wl), _mm512_maskz_div_pd(ok, sr, wr));
    const __mmask8 up = _mm512_mask_cmp_pd_mask(ok, p, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_pd(best, up, p);
    best_at = _mm512_mask_mov_epi64(best_at, up, idx);
    best_left = _mm512_mask_mov_epi64(best_left, up, s);
    idx = _mm512_add_epi64(idx, eight);
  }
  const double top = _mm512_reduce_max_pd(best);
  *at = 0;
  *left = raw[0];
  if (top == -std::numeric_limits<double>::infinity()) return top;
  const __mmask8 is_top = _mm512_cmp_pd_mask(best, _mm512_set1_pd(top), _CMP_EQ_OQ);
  const int64_t first = _mm512_mask_reduce_min_epi64(is_top, best_at);
  alignas(64) int64_t ats[8];
  alignas(64) uint64_t lefts[8];
  _mm512_store_si512(ats, best_at);
  _mm512_store_si512(lefts, best_left);
  for (int k = 0; k < 8; ++k)
    if (((is_top >> k) & 1) && ats[k] == first) *left = lefts[k];
  *at = static_cast<int>(first);
  return top;
}

}  // namespace

void class_proxies_avx512(const double* cl, int stride, const double* wl, const double* nl, int m, int K,
                          const double* total, double min_leaf, double min_weight, double* pr) {
  avx512::class_proxies(cl, stride, wl, nl, m, K, total, min_leaf, min_weight, pr);
}

bool split_kernels_avx512(SplitKernels& k) {
  split_kernels_portable(k);
  k.class_proxies = class_proxies_avx512;
  k.compact_words = compact_words_avx512;
  k.word_gini = word_gini_avx512;
  k.build_words_kept = build_words_kept_avx2;
  k.name = "avx512";
  return true;
}

}  // namespace forgeml::tree
#else
namespace forgeml::tree {
bool split_kernels_avx512(SplitKernels&) { return false; }
}  // namespace forgeml::tree
#endif
