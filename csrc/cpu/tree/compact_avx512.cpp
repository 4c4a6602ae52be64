// The compact-forest walk (kernels.h) compiled for AVX-512: 16 rows walk one tree per vector, two
// vectors (32 rows) in lockstep so two chains of gathers are in flight. Per level, gathers fetch
// each lane's node (feature, threshold, right child) and its row's feature value; a mask compare
// picks node + 1 (left) or the right child. A leaf points at itself and compares false, so the
// walk stops when no lane moved, or after the tree's depth. Lanes past the last row repeat that
// row and add nothing. Each row adds its trees' leaf values in tree order, as the portable walk
// does: the same bits. Measured choices (bench/results/tree_predict_profile.md, round 3): 2
// vectors beat 1, 4 and two trees at once; refilling lanes as their rows finish lost to lockstep;
// blocks of many rows (a tree pass reads each node line once per block) beat 128-row blocks.
// Chunks of >= kCodedRows rows walk the coded layout instead (compact_coded.h: X quantized once
// per block into exact threshold codes, one-word nodes, top levels from registers): 1.3-1.7x
// over the float walk on the bench forest (tree_predict_profile.md, round 5).
#include "cpu/tree/compact_coded_walk.h"
#include "cpu/tree/kernels.h"
#include "forgeml/isa_local.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>

namespace forgeml::tree {
namespace {

constexpr int kW = 16;                             // lanes of a ZMM register
constexpr int kVectors = 2;                        // vectors walked in lockstep
constexpr int64_t kBlockBytes = int64_t{4} << 20;  // X rows per block: the tree passes stream them from L3
constexpr int64_t kCodedRows = 64;  // fewer rows in a chunk: the float walk (quantizing them would cost more)
// A chunk this large builds the coded layout (35-50 ms for the bench's 1.45M nodes, repaid by
// ~15k rows): a loaded forest's first small batches keep their latency.
constexpr int64_t kCodedBuildRows = 1024;

// Walks G vectors of 16 lanes through the tree whose nodes (3 words each) start at nodes; lane l
// of vector g reads its row at x[g] + xoff[g][l]. at[g] ends on each lane's leaf.
template <int G>
inline void walk(const int* nodes, const float* const* x, const __m512i* xoff, int depth, __m512i* at) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i feature_bits = _mm512_set1_epi32(0x3fffffff);
  const __m512i nan_left = _mm512_set1_epi32(1 << 30);
  for (int g = 0; g < G; ++g) at[g] = _mm512_setzero_si512();
  for (int s = 0; s < depth; ++s) {
    __mmask16 moved = 0;
    for (int g = 0; g < G; ++g) {
      const __m512i w = _mm512_add_epi32(_mm512_add_epi32(at[g], at[g]), at[g]);  // first word of the node
      const __m512i feat = _mm512_i32gather_epi32(w, nodes, 4);
      const __m512 thr = _mm512_i32gather_ps(w, nodes + 1, 4);
      const __m512i right = _mm512_i32gather_epi32(w, nodes + 2, 4);
      const __m512 v = _mm512_i32gather_ps(_mm512_add_epi32(xoff[g], _mm512_and_si512(feat, feature_bits)), x[g], 4);
      const __mmask16 left = _mm512_cmp_ps_mask(v, thr, _CMP_LE_OQ) |
                             _mm512_mask_cmp_ps_mask(_mm512_test_epi32_mask(feat, nan_left), v, v, _CMP_UNORD_Q);
      const __m512i next = _mm512_mask_add_epi32(right, left, at[g], one);
      moved |= _mm512_cmpneq_epi32_mask(next, at[g]);
      at[g] = next;
    }
    if (!moved) break;
  }
}

// out rows [0, lanes) += the values of the leaves at (source: the tree's).
inline void add_leaves(const int32_t* source, __m512i at, const double* values, int k, double* out, int lanes) {
  alignas(64) int32_t src[kW];
  _mm512_store_si512(src, _mm512_i32gather_epi32(at, source, 4));
  if (k == 2) {  // two classes: the common case, unrolled
    for (int l = 0; l < lanes; ++l) {
      const double* v = values + static_cast<int64_t>(src[l]) * 2;
      out[2 * l] += v[0];
      out[2 * l + 1] += v[1];
    }
    return;
  }
  for (int l = 0; l < lanes; ++l) {
    const double* v = values + static_cast<int64_t>(src[l]) * k;
    double* o = out + static_cast<int64_t>(l) * k;
    for (int j = 0; j < k; ++j) o[j] += v[j];
  }
}

// Rows [c, min(c + 16 G, r1)) through tree t.
template <int G>
void walk_rows(const CompactForest& f, int64_t t, const float* X, int64_t d, int64_t c, int64_t r1,
               const double* values, int k, double* out) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const float* x[G];
  __m512i xoff[G], at[G];
  int lanes[G];
  for (int g = 0; g < G; ++g) {
    const int64_t r = std::min(c + kW * g, r1 - 1);
    lanes[g] = static_cast<int>(std::clamp<int64_t>(r1 - (c + kW * g), 0, kW));
    const int last = std::max(lanes[g], 1) - 1;  // lanes past the end repeat the last row
    x[g] = X + r * d;
    xoff[g] =
        _mm512_mullo_epi32(_mm512_min_epi32(lane, _mm512_set1_epi32(last)), _mm512_set1_epi32(static_cast<int>(d)));
  }
  const int64_t root = f.roots[t];
  walk<G>(reinterpret_cast<const int*>(f.nodes.data() + root), x, xoff, f.depth[t], at);
  for (int g = 0; g < G; ++g)
    if (lanes[g] > 0) add_leaves(f.source.data() + root, at[g], values, k, out + (c + kW * g) * k, lanes[g]);
}

// codes (rows [r0, r1) of X) = compact_coded.h's codes, 16 features of a row per vector: a
// branch-free binary search of each lane's feature's cut table (a power of two long, +inf padded).
template <int CB>
void quantize_rows(const CodedForest& c, const float* X, int64_t d, int64_t r0, int64_t r1, uint8_t* codes) {
  const int P = 1 << c.search_steps;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i nan_code = _mm512_set1_epi32(static_cast<int>(c.nan_code));
  for (int64_t j0 = 0; j0 < d; j0 += kW) {
    const __mmask16 in = static_cast<__mmask16>((1u << std::min<int64_t>(kW, d - j0)) - 1);
    const __m512i base =
        _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(j0))), _mm512_set1_epi32(P));
    for (int64_t r = r0; r < r1; ++r) {
      const __m512 v = _mm512_maskz_loadu_ps(in, X + r * d + j0);
      __m512i pos = _mm512_setzero_si512();
      for (int h = P >> 1; h > 0; h >>= 1) {
        const __m512i at = _mm512_add_epi32(_mm512_add_epi32(base, pos), _mm512_set1_epi32(h - 1));
        const __m512 t = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, at, c.cuts.data(), 4);
        pos = _mm512_mask_add_epi32(pos, _mm512_cmp_ps_mask(t, v, _CMP_LT_OQ), pos, _mm512_set1_epi32(h));
      }
      pos = _mm512_mask_mov_epi32(pos, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), nan_code);
      uint8_t* out = codes + ((r - r0) * d + j0) * CB;
      if constexpr (CB == 1) _mm512_mask_cvtepi32_storeu_epi8(out, in, pos);
      else _mm512_mask_cvtepi32_storeu_epi16(out, in, pos);
    }
  }
}

// walk over codes (compact_coded.h). The tree's top kTopLevels levels come from its breadth-first
// table (the level's node words permuted by each lane's position: one code gather a level); below,
// per level, one gather fetches each lane's node word (OneWord; else two: word and right child)
// and one its row's code (CB bytes, read as a 32-bit word and masked). The NaN-left bit adds 1 to
// the code (NaN's all-ones code wraps to 0, which every NaN-left node sends left).
template <int G, int CB, bool OneWord>
inline void walk_coded(const CodedForest& cf, const int* nodes, const int32_t* top, const uint8_t* const* codes,
                       const __m512i* xoff, int depth, __m512i* at) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i feature_mask = _mm512_set1_epi32((1 << cf.feature_bits) - 1);
  const __m512i bias_shift = _mm512_set1_epi32(cf.feature_bits);
  const __m512i threshold_shift = _mm512_set1_epi32(cf.threshold_shift);
  const __m512i offset_shift = _mm512_set1_epi32(cf.feature_bits + 1);
  const __m512i offset_mask =
      _mm512_set1_epi32(static_cast<int>((1u << (cf.threshold_shift - cf.feature_bits - 1)) - 1));
  const __m512i code_bits = _mm512_set1_epi32(CB == 1 ? 0xff : 0xffff);
  // left: lanes whose row goes left at the node words w0.
  auto goes_left = [&](int g, __m512i w0) {
    const __m512i raw =
        _mm512_i32gather_epi32(_mm512_add_epi32(xoff[g], _mm512_and_si512(w0, feature_mask)), codes[g], CB);
    const __m512i code =
        _mm512_and_si512(_mm512_add_epi32(raw, _mm512_and_si512(_mm512_srlv_epi32(w0, bias_shift), one)), code_bits);
    return _mm512_cmple_epi32_mask(code, _mm512_srav_epi32(w0, threshold_shift));
  };
  // The top levels: each lane's position p in the level; the level's node words are a register.
  constexpr int L = CodedForest::kTopLevels;
  __m512i p[G];
  for (int g = 0; g < G; ++g) p[g] = _mm512_setzero_si512();
  for (int l = 0; l < L; ++l) {
    const __m512i words = _mm512_loadu_si512(top + (1 << l) - 1);  // 2^l <= 16 used
    for (int g = 0; g < G; ++g) {
      const __mmask16 left = goes_left(g, _mm512_permutexvar_epi32(p[g], words));
      const __m512i twice = _mm512_add_epi32(p[g], p[g]);  // the next position: 2p, + 1 going right
      p[g] = _mm512_mask_add_epi32(_mm512_add_epi32(twice, one), left, twice, _mm512_setzero_si512());
    }
  }
  const __m512i lo = _mm512_loadu_si512(top + CodedForest::kTopWords / 2),
                hi = _mm512_loadu_si512(top + CodedForest::kTopWords / 2 + 16);
  for (int g = 0; g < G; ++g) at[g] = _mm512_permutex2var_epi32(lo, p[g], hi);
  for (int s = L; s < depth; ++s) {
    __mmask16 moved = 0;
    for (int g = 0; g < G; ++g) {
      __m512i next;
      if constexpr (OneWord) {  // left: the next node; right: the word's offset (a leaf: 0)
        const __m512i w = _mm512_i32gather_epi32(at[g], nodes, 4);
        const __m512i off = _mm512_and_si512(_mm512_srlv_epi32(w, offset_shift), offset_mask);
        next = _mm512_add_epi32(at[g], _mm512_mask_mov_epi32(off, goes_left(g, w), one));
      } else {
        const __m512i w = _mm512_add_epi32(at[g], at[g]);
        const __m512i w0 = _mm512_i32gather_epi32(w, nodes, 4);
        const __m512i right = _mm512_i32gather_epi32(w, nodes + 1, 4);
        next = _mm512_mask_add_epi32(right, goes_left(g, w0), at[g], one);
      }
      moved |= _mm512_cmpneq_epi32_mask(next, at[g]);
      at[g] = next;
    }
    if (!moved) break;
  }
}

// Rows [c, min(c + 16 G, r1)) through tree t over codes (rows from c0, the first row of codes);
// their leaves go to leaves (prefetched, not added).
template <int G, int CB>
void walk_rows_coded(const CompactForest& f, const CodedForest& cf, int64_t t, const uint8_t* codes, int64_t c0,
                     int64_t d, int64_t c, int64_t r1, const double* values, int k, double* out,
                     coded_walk::PendingLeaves<kVectors * kW>& leaves) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const uint8_t* x[G];
  __m512i xoff[G], at[G];
  int lanes = 0;
  for (int g = 0; g < G; ++g) {
    const int64_t r = std::min(c + kW * g, r1 - 1);
    const int here = static_cast<int>(std::clamp<int64_t>(r1 - (c + kW * g), 0, kW));
    lanes += here;
    const int last = std::max(here, 1) - 1;  // lanes past the end repeat the last row
    x[g] = codes + (r - c0) * d * CB;
    xoff[g] =
        _mm512_mullo_epi32(_mm512_min_epi32(lane, _mm512_set1_epi32(last)), _mm512_set1_epi32(static_cast<int>(d)));
  }
  const int64_t root = f.roots[t];
  const int32_t* top = cf.top.data() + t * CodedForest::kTopWords;
  if (!cf.words.empty())
    walk_coded<G, CB, true>(cf, reinterpret_cast<const int*>(cf.words.data() + root), top, x, xoff, f.depth[t], at);
  else
    walk_coded<G, CB, false>(cf, reinterpret_cast<const int*>(cf.nodes.data() + 2 * root), top, x, xoff, f.depth[t],
                             at);
  for (int g = 0; g < G; ++g)
    _mm512_store_si512(leaves.src + kW * g, _mm512_i32gather_epi32(at[g], f.source.data() + root, 4));
  leaves.hold(lanes, out + c * k, values, k);
}

// This file's parts of the coded walk, for coded_walk::accumulate (compact_coded_walk.h).
struct Avx512Walk {
  static constexpr int kLanes = kW, kVectors = ::forgeml::tree::kVectors;
  static constexpr int64_t kBlockBytes = ::forgeml::tree::kBlockBytes;
  template <int CB>
  static void quantize(const CodedForest& c, const float* X, int64_t d, int64_t r0, int64_t r1, uint8_t* codes) {
    quantize_rows<CB>(c, X, d, r0, r1, codes);
  }
  template <int G, int CB>
  static void rows(const CompactForest& f, const CodedForest& cf, int64_t t, const uint8_t* codes, int64_t c0,
                   int64_t d, int64_t c, int64_t r1, const double* values, int k, double* out,
                   coded_walk::PendingLeaves<kVectors * kW>& leaves) {
    walk_rows_coded<G, CB>(f, cf, t, codes, c0, d, c, r1, values, k, out, leaves);
  }
};

void accumulate_avx512(const CompactForest& f, const float* X, int64_t r0, int64_t r1, const double* values, int k,
                       const int64_t* trees, int64_t T, double* out) {
  const int64_t d = f.n_features, m = static_cast<int64_t>(f.nodes.size());
  // Gather indexes are int32: 3 words per node within a tree, 16 rows' offsets within a vector.
  bool fits = d * kW < (int64_t{1} << 31);
  for (size_t t = 0; fits && t < f.roots.size(); ++t)
    fits = 3 * ((t + 1 < f.roots.size() ? f.roots[t + 1] : m) - f.roots[t]) < (int64_t{1} << 31);
  if (!fits) return compact_kernels_for(Isa::portable).accumulate(f, X, r0, r1, values, k, trees, T, out);
  if (r1 - r0 >= kCodedRows && (r1 - r0 >= kCodedBuildRows || f.coded_built())) {
    const CodedForest& cf = f.coded();
    if (cf.usable && cf.code_bytes == 1)
      return coded_walk::accumulate<Avx512Walk, 1>(f, cf, X, r0, r1, values, k, trees, T, out);
    if (cf.usable) return coded_walk::accumulate<Avx512Walk, 2>(f, cf, X, r0, r1, values, k, trees, T, out);
  }
  const int64_t block = std::max<int64_t>(128, kBlockBytes / (4 * std::max<int64_t>(d, 1)));
  for (int64_t b0 = r0; b0 < r1; b0 += block) {
    const int64_t b1 = std::min(r1, b0 + block);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = trees ? trees[s] : s;
      int64_t c = b0;
      for (; c + kW * kVectors <= b1; c += kW * kVectors) walk_rows<kVectors>(f, t, X, d, c, b1, values, k, out);
      for (; c < b1; c += kW) walk_rows<1>(f, t, X, d, c, b1, values, k, out);
    }
  }
}

}  // namespace

bool compact_kernels_avx512(CompactKernels& k) {
  k = {accumulate_avx512, "avx512"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool compact_kernels_avx512(CompactKernels&) { return false; }
}  // namespace forgeml::tree

#endif
