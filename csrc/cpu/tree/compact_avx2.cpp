// The compact-forest batch walk (kernels.h) compiled for AVX2: the AVX-512 file's walk over the
// coded layout (compact_coded.h: X quantized once per block into exact threshold codes, one-word
// nodes, the top levels from a breadth-first table) with 8 lanes a vector, 2 vectors (16 rows) in
// lockstep. Measured on Zen 2 (bench/results/tree_predict_profile.md, AVX2 round): 1.45x the
// portable float walk on the bench forest; the two gathers a level are ~55% of the time, a scalar
// 8- or 16-lane walk over the same codes was 1.2x slower, 4 vectors no faster than 2, and blocks
// smaller than a thread's whole chunk re-read the trees (1 MiB of X: 1.2x slower). Chunks under
// kCodedRows rows, and forests the coded layout does not fit, take the portable walk. Each row adds
// its trees' leaf values in tree order: the same bits as every other walk.
#include "cpu/tree/compact_coded_walk.h"
#include "cpu/tree/kernels.h"
#include "forgeml/isa_local.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace forgeml::tree {
namespace {

constexpr int kW = 8;                              // lanes of a YMM register
constexpr int kVectors = 2;                        // vectors walked in lockstep
constexpr int64_t kBlockBytes = int64_t{4} << 20;  // float X rows per block (their codes: a quarter)
constexpr int64_t kCodedRows = 64;                 // fewer rows in a chunk: the portable walk
constexpr int64_t kCodedBuildRows = 1024;          // a chunk this large builds the coded layout

// v[p] for lane positions p in [0, 8) of the 8 words at v.
inline __m256i pick8(const int32_t* v, __m256i p) {
  return _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v)), p);
}

// v[p] for p in [0, 16): two permutes, bit 3 of p picks.
inline __m256i pick16(const int32_t* v, __m256i p) {
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(pick8(v, p)), _mm256_castsi256_ps(pick8(v + 8, p)),
                                              _mm256_castsi256_ps(_mm256_slli_epi32(p, 28))));
}

// v[p] for p in [0, 32): bit 4 of p picks between two pick16s.
inline __m256i pick32(const int32_t* v, __m256i p) {
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(pick16(v, p)), _mm256_castsi256_ps(pick16(v + 16, p)),
                                              _mm256_castsi256_ps(_mm256_slli_epi32(p, 27))));
}

// codes (rows [r0, r1) of X) = compact_coded.h's codes, 8 features of a row per vector: a
// branch-free binary search of each lane's feature's cut table (a power of two long, +inf padded).
template <int CB>
void quantize_rows(const CodedForest& c, const float* X, int64_t d, int64_t r0, int64_t r1, uint8_t* codes) {
  const int P = 1 << c.search_steps;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i nan_code = _mm256_set1_epi32(static_cast<int>(c.nan_code));
  // The low CB bytes of each 32-bit lane, packed to the front of each 128-bit half.
  const __m256i pack = CB == 1 ? _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8,
                                                  12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)
                               : _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5,
                                                  8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int64_t j0 = 0; j0 < d; j0 += kW) {
    const int n = static_cast<int>(std::min<int64_t>(kW, d - j0));
    const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    // Lanes past the last feature search the last feature's table (never stored).
    const __m256i base =
        _mm256_mullo_epi32(_mm256_min_epi32(_mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>(j0))),
                                            _mm256_set1_epi32(static_cast<int>(d - 1))),
                           _mm256_set1_epi32(P));
    for (int64_t r = r0; r < r1; ++r) {
      const __m256 v = _mm256_maskload_ps(X + r * d + j0, in);
      __m256i pos = _mm256_setzero_si256();
      for (int h = P >> 1; h > 0; h >>= 1) {
        const __m256i at = _mm256_add_epi32(_mm256_add_epi32(base, pos), _mm256_set1_epi32(h - 1));
        const __m256 t = _mm256_i32gather_ps(c.cuts.data(), at, 4);
        pos = _mm256_add_epi32(
            pos, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(t, v, _CMP_LT_OQ)), _mm256_set1_epi32(h)));
      }
      pos = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(pos), _mm256_castsi256_ps(nan_code), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
      const __m256i packed = _mm256_shuffle_epi8(pos, pack);
      alignas(32) uint8_t bytes[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(bytes), packed);
      uint8_t* out = codes + ((r - r0) * d + j0) * CB;
      // The two halves' 4 CB-byte codes sit at bytes 0 and 16.
      std::memcpy(out, bytes, std::min(n, 4) * CB);
      if (n > 4) std::memcpy(out + 4 * CB, bytes + 16, (n - 4) * CB);
    }
  }
}

// G vectors of 8 rows through one tree over codes. The top kTopLevels levels come from the tree's
// breadth-first table (register permutes by each lane's position: one code gather a level);
// below, per level, one gather fetches each lane's node word (OneWord; else two: word and right
// child) and one its row's code (CB bytes, read as a 32-bit word and masked). The NaN-left bit adds
// 1 to the code (NaN's all-ones code wraps to 0, which every NaN-left node sends left).
template <int G, int CB, bool OneWord>
inline void walk_coded(const CodedForest& cf, const int* nodes, const int32_t* top, const uint8_t* const* codes,
                       const __m256i* xoff, int depth, __m256i* at) {
  static_assert(CodedForest::kTopLevels == 5, "the top levels' picks below are written for 5 levels");
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i feature_mask = _mm256_set1_epi32((1 << cf.feature_bits) - 1);
  const __m128i bias_shift = _mm_cvtsi32_si128(cf.feature_bits);
  const __m128i threshold_shift = _mm_cvtsi32_si128(cf.threshold_shift);
  const __m128i offset_shift = _mm_cvtsi32_si128(cf.feature_bits + 1);
  const __m256i offset_mask =
      _mm256_set1_epi32(static_cast<int>((1u << (cf.threshold_shift - cf.feature_bits - 1)) - 1));
  const __m256i code_bits = _mm256_set1_epi32(CB == 1 ? 0xff : 0xffff);
  // All ones in the lanes whose row goes right at the node words w (code > threshold index).
  auto goes_right = [&](int g, __m256i w) {
    const __m256i raw = _mm256_i32gather_epi32(reinterpret_cast<const int*>(codes[g]),
                                               _mm256_add_epi32(xoff[g], _mm256_and_si256(w, feature_mask)), CB);
    const __m256i code =
        _mm256_and_si256(_mm256_add_epi32(raw, _mm256_and_si256(_mm256_srl_epi32(w, bias_shift), one)), code_bits);
    return _mm256_cmpgt_epi32(code, _mm256_sra_epi32(w, threshold_shift));
  };
  // The top levels: p, each lane's position in the level (next: 2p, + 1 going right).
  __m256i p[G];
  for (int g = 0; g < G; ++g) p[g] = _mm256_setzero_si256();
  for (int l = 0; l < 4; ++l)
    for (int g = 0; g < G; ++g) {
      const __m256i right = goes_right(g, pick8(top + (1 << l) - 1, p[g]));
      p[g] = _mm256_sub_epi32(_mm256_add_epi32(p[g], p[g]), right);
    }
  for (int g = 0; g < G; ++g) {
    const __m256i right = goes_right(g, pick16(top + 15, p[g]));
    at[g] = pick32(top + CodedForest::kTopWords / 2, _mm256_sub_epi32(_mm256_add_epi32(p[g], p[g]), right));
  }
  for (int s = CodedForest::kTopLevels; s < depth; ++s) {
    __m256i still = _mm256_set1_epi32(-1);  // lanes that did not move
    for (int g = 0; g < G; ++g) {
      __m256i next;
      if constexpr (OneWord) {  // left: the next node; right: the word's offset (a leaf: 0)
        const __m256i w = _mm256_i32gather_epi32(nodes, at[g], 4);
        const __m256i off = _mm256_and_si256(_mm256_srl_epi32(w, offset_shift), offset_mask);
        next = _mm256_add_epi32(at[g], _mm256_blendv_epi8(one, off, goes_right(g, w)));
      } else {
        const __m256i w = _mm256_add_epi32(at[g], at[g]);
        const __m256i w0 = _mm256_i32gather_epi32(nodes, w, 4);
        const __m256i right = _mm256_i32gather_epi32(nodes + 1, w, 4);
        next = _mm256_blendv_epi8(_mm256_add_epi32(at[g], one), right, goes_right(g, w0));
      }
      still = _mm256_and_si256(still, _mm256_cmpeq_epi32(next, at[g]));
      at[g] = next;
    }
    if (_mm256_movemask_epi8(still) == -1) break;
  }
}

// Rows [c, min(c + 8 G, r1)) through tree t over codes (rows from c0, the first row of codes);
// their leaves go to leaves (prefetched, not added). Lanes past r1 repeat the last row.
template <int G, int CB>
void walk_rows_coded(const CompactForest& f, const CodedForest& cf, int64_t t, const uint8_t* codes, int64_t c0,
                     int64_t d, int64_t c, int64_t r1, const double* values, int k, double* out,
                     coded_walk::PendingLeaves<kVectors * kW>& leaves) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const uint8_t* x[G];
  __m256i xoff[G], at[G];
  int lanes = 0;
  for (int g = 0; g < G; ++g) {
    const int64_t r = std::min(c + kW * g, r1 - 1);
    const int here = static_cast<int>(std::clamp<int64_t>(r1 - (c + kW * g), 0, kW));
    lanes += here;
    const int last = std::max(here, 1) - 1;
    x[g] = codes + (r - c0) * d * CB;
    xoff[g] =
        _mm256_mullo_epi32(_mm256_min_epi32(lane, _mm256_set1_epi32(last)), _mm256_set1_epi32(static_cast<int>(d)));
  }
  const int64_t root = f.roots[t];
  const int32_t* top = cf.top.data() + t * CodedForest::kTopWords;
  if (!cf.words.empty())
    walk_coded<G, CB, true>(cf, reinterpret_cast<const int*>(cf.words.data() + root), top, x, xoff, f.depth[t], at);
  else
    walk_coded<G, CB, false>(cf, reinterpret_cast<const int*>(cf.nodes.data() + 2 * root), top, x, xoff, f.depth[t],
                             at);
  for (int g = 0; g < G; ++g)
    _mm256_store_si256(reinterpret_cast<__m256i*>(leaves.src + kW * g),
                       _mm256_i32gather_epi32(f.source.data() + root, at[g], 4));
  leaves.hold(lanes, out + c * k, values, k);
}

// This file's parts of the coded walk, for coded_walk::accumulate (compact_coded_walk.h).
struct Avx2Walk {
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

void accumulate_avx2(const CompactForest& f, const float* X, int64_t r0, int64_t r1, const double* values, int k,
                     const int64_t* trees, int64_t T, double* out) {
  const int64_t d = f.n_features, m = static_cast<int64_t>(f.nodes.size());
  // Gather indexes are int32: 2 words per node within a tree, 8 rows' offsets within a vector.
  bool fits = d * kW * 2 < (int64_t{1} << 31);
  for (size_t t = 0; fits && t < f.roots.size(); ++t)
    fits = 2 * ((t + 1 < f.roots.size() ? f.roots[t + 1] : m) - f.roots[t]) < (int64_t{1} << 31);
  if (fits && r1 - r0 >= kCodedRows && (r1 - r0 >= kCodedBuildRows || f.coded_built())) {
    const CodedForest& cf = f.coded();
    if (cf.usable && cf.code_bytes == 1)
      return coded_walk::accumulate<Avx2Walk, 1>(f, cf, X, r0, r1, values, k, trees, T, out);
    if (cf.usable) return coded_walk::accumulate<Avx2Walk, 2>(f, cf, X, r0, r1, values, k, trees, T, out);
  }
  compact_kernels_for(Isa::portable).accumulate(f, X, r0, r1, values, k, trees, T, out);
}

}  // namespace

bool compact_kernels_avx2(CompactKernels& k) {
  k = {accumulate_avx2, "avx2"};
  return true;
}

}  // namespace forgeml::tree

#else

namespace forgeml::tree {
bool compact_kernels_avx2(CompactKernels&) { return false; }
}  // namespace forgeml::tree

#endif
