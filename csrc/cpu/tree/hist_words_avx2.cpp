// build_words_kept (kernels.h) for AVX2, used by the AVX2 and AVX-512 tables: a row's drawn codes
// come from ceil(d / 16) 16-byte loads of its codes and one byte shuffle each (the portable loop:
// a byte load per feature), then leave as one 8-byte store beside the nf histogram updates. The
// loop is store-bound where a core retires one store a cycle (Zen 2). Rows of fewer than 16 or
// more than 64 codes take the portable loop.
#include "cpu/tree/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <array>
#include <utility>

#include "cpu/tree/hist_words.h"

namespace forgeml::tree {

namespace {

// L 16-byte pieces cover a row of d codes (16 (L - 1) < d <= 16 L): piece q at 16 q, the last at
// d - 16, so no load leaves the row. sel[q] moves feature j's code to byte j when piece q holds
// it (each feature from one piece); every other byte of sel[q] is -128 (a zero byte).
template <int L, int NF>
void build_kept(const ClassRow* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f, uint64_t* pk,
                uint64_t* keep) {
  const int64_t last = d - 16;
  alignas(16) int8_t table[L][16];
  for (int q = 0; q < L; ++q)
    for (int b = 0; b < 16; ++b) table[q][b] = -128;
  for (int j = 0; j < NF; ++j) {
    const int q = f[j] / 16 < L - 1 ? f[j] / 16 : L - 1;
    table[q][j] = static_cast<int8_t>(f[j] - (q < L - 1 ? 16 * q : last));
  }
  __m128i sel[L];
  for (int q = 0; q < L; ++q) sel[q] = _mm_load_si128(reinterpret_cast<const __m128i*>(table[q]));
  for (int64_t i = 0; i < m; ++i) {
    prefetch_codes_ahead(rows, i, m, codes, d);
    const ClassRow& rr = rows[i];
    const uint8_t* c = codes + static_cast<int64_t>(rr.row) * d;
    __m128i v = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + last)), sel[L - 1]);
    for (int q = 0; q < L - 1; ++q)
      v = _mm_or_si128(v, _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16 * q)), sel[q]));
    const uint64_t word = static_cast<uint64_t>(_mm_cvtsi128_si64(v));
    keep[i] = word;
    const uint64_t inc = word_inc(rr.cls, rr.w);
    for (int j = 0; j < NF; ++j) pk[j * kWordStride + ((word >> (8 * j)) & 0xff)] += inc;
  }
}

using BuildKept = void (*)(const ClassRow*, int64_t, const uint8_t*, int64_t, const int*, uint64_t*, uint64_t*);

template <int L, int... J>
constexpr std::array<BuildKept, 8> kept_for_pieces(std::integer_sequence<int, J...>) {
  return {build_kept<L, J + 1>...};
}

// [pieces - 1][nf - 1]
constexpr std::array<BuildKept, 8> kBuildKept[4] = {
    kept_for_pieces<1>(std::make_integer_sequence<int, 8>()), kept_for_pieces<2>(std::make_integer_sequence<int, 8>()),
    kept_for_pieces<3>(std::make_integer_sequence<int, 8>()), kept_for_pieces<4>(std::make_integer_sequence<int, 8>())};

}  // namespace

void build_words_kept_avx2(const ClassRow* rows, int64_t m, const uint8_t* codes, int64_t d, const int* f, int nf,
                           uint64_t* pk, uint64_t* keep) {
  const int64_t pieces = (d + 15) / 16;
  if (d >= 16 && pieces <= 4 && nf >= 1 && nf <= 8)
    return kBuildKept[pieces - 1][nf - 1](rows, m, codes, d, f, pk, keep);
  split_kernels_for(Isa::portable).build_words_kept(rows, m, codes, d, f, nf, pk, keep);
}

}  // namespace forgeml::tree

#endif
