// Internal to csrc/cpu/rnn: op(B) packed once per call in gemm's micro-kernel layout
// (cpu/gemm/kernels.h), for the LSTM forward and backward that drive the micro-kernels themselves.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "cpu/gemm/kernels.h"

namespace forgeml::rnn {

struct FreeFloats {
  void operator()(float* p) const { std::free(p); }
};
using Floats = std::unique_ptr<float[], FreeFloats>;

// Rows [0, rows) as ceil(rows / mr) register tiles whose heights differ by at most one. A tile of
// a few rows has too few accumulator chains to hide the FMA latency (AVX2's 6 x 16 with 2 rows:
// 4 chains, 10 needed), so 32 rows as 5 + 5 + 5 + 5 + 6 + 6 beat 6 x 5 + 2 (the 2-row tile took
// 9.5% of an N = 32 LSTM forward for 6% of its rows). Each row's sums are the same in any tile.
struct RowTiles {
  int64_t rows, count;
  RowTiles(int64_t rows, int mr) : rows(rows), count((rows + mr - 1) / mr) {}
  int64_t begin(int64_t i) const { return rows * i / count; }
  int height(int64_t i) const { return static_cast<int>(begin(i + 1) - begin(i)); }
};

// n floats (at least one), 64-byte aligned, unset.
inline Floats floats(int64_t n) {
  void* p = std::aligned_alloc(64, static_cast<size_t>((std::max<int64_t>(n, 1) * 4 + 63) / 64 * 64));
  if (!p) throw std::bad_alloc();
  return Floats(static_cast<float*>(p));
}

// Columns [c0, c0 + cols) of op(B) (K deep) with op(B)(k, j) = src[k * ld + j], or with trans
// src[j * ld + k], in the micro-kernel's B layout: depth blocks of KC rows, each a run of
// NR-column panels of kc x NR floats (zero past cols), as gemm's PackedB.
class Panels {
 public:
  Panels(const gemm::detail::Kernel& kern, bool trans, const float* src, int64_t ld, int64_t K, int64_t c0,
         int64_t cols)
      : npad_((cols + kern.nr - 1) / kern.nr * kern.nr), data_(floats(K * npad_)) {
    const int64_t nr = kern.nr;
    for (int64_t pc = 0; pc < K; pc += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, K - pc);
      float* dst = data_.get() + pc * npad_;
      if (kern.pack_b) {
        kern.pack_b(trans, src, ld, c0, cols, pc, kc, dst);
        continue;
      }
      for (int64_t jp = 0; jp < npad_; jp += nr)
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t j = 0; j < nr; ++j) {
            const int64_t c = c0 + jp + j, r = pc + k;
            dst[jp * kc + k * nr + j] = jp + j >= cols ? 0.0f : trans ? src[c * ld + r] : src[r * ld + c];
          }
    }
  }
  // The panel of columns [j, j + NR) in the depth block starting at pc (kc deep).
  const float* at(int64_t pc, int64_t j, int64_t kc) const { return data_.get() + pc * npad_ + j * kc; }

 private:
  int64_t npad_;
  Floats data_;
};

}  // namespace forgeml::rnn
