// Partial-vector stores for the AVX2 units (include only from files compiled with -mavx2).
// vmaskmovps stores are microcoded on AMD Zen 2 (tens of cycles each): a 128 x 32 @ 32 x 10 GEMM
// spent a third of its time in its edge stores. Internal linkage, as isa_local.h explains.
#pragma once
#include <immintrin.h>

namespace forgeml {
namespace {

// Lanes [0, min(r, 8)) of x to p; none for r <= 0.
inline void store_lanes(float* p, __m256 x, int r) {
  if (r >= 8) return _mm256_storeu_ps(p, x);
  __m128 h = _mm256_castps256_ps128(x);
  if (r >= 4) {
    _mm_storeu_ps(p, h);
    h = _mm256_extractf128_ps(x, 1);
    p += 4, r -= 4;
  }
  if (r >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), h);
    h = _mm_movehl_ps(h, h);
    p += 2, r -= 2;
  }
  if (r >= 1) _mm_store_ss(p, h);
}

}  // namespace
}  // namespace forgeml
