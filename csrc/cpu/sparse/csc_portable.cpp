// The portable CSC kernel (csc.h): 16 rows per block in plain loops the compiler vectorises.
#include "cpu/sparse/kernels.h"

namespace forgeml::sparse::detail {

namespace {

constexpr int kMB = 16;

void panel(int64_t cols, int64_t* cur, const int64_t* end, int32_t k1, const int32_t* idx, const float* val,
           const float* xt, float* yt, bool accumulate) {
  for (int64_t c = 0; c < cols; ++c) {
    float* y = yt + c * kMB;
    float acc[kMB];
    for (int b = 0; b < kMB; ++b) acc[b] = accumulate ? y[b] : 0.f;
    int64_t p = cur[c];
    for (; p < end[c] && idx[p] < k1; ++p) {
      const float v = val[p];
      const float* x = xt + int64_t{idx[p]} * kMB;
      for (int b = 0; b < kMB; ++b) acc[b] += v * x[b];
    }
    cur[c] = p;
    for (int b = 0; b < kMB; ++b) y[b] = acc[b];
  }
}

}  // namespace

void csc_portable(CscKernel& k) { k = CscKernel{panel, kMB, "csc_portable_16"}; }

}  // namespace forgeml::sparse::detail
