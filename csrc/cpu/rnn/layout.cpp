// Thread parts of the hidden units and the gate-column permutation that goes with them.
#include <algorithm>

#include "rnn.h"

namespace forgeml::rnn {

Split make_split(const Dims& d, int threads, int force_parts) {
  if (force_parts > 0) {  // tests: any split, lane-aligned or not
    Split split{0};
    for (int64_t k = 1; k <= force_parts; ++k) {
      int64_t b = d.H * k / force_parts;
      if (b > split.back()) split.push_back(b);
    }
    if (split.back() != d.H) split.push_back(d.H);
    return split;
  }
  const int64_t lane = 16;  // one zmm of floats: parts start on a lane boundary
  // One step's recurrent GEMM must be worth a barrier (~1 us) per extra thread.
  double step_flops = 2.0 * d.N * d.H * d.GH();
  int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, (d.H + lane - 1) / lane));
  if (step_flops < 4e5) parts = 1;
  Split split{0};
  for (int64_t k = 1; k < parts; ++k) {
    int64_t b = (d.H * k / parts + lane / 2) / lane * lane;
    if (b > split.back() && b < d.H) split.push_back(b);
  }
  split.push_back(d.H);
  return split;
}

std::vector<int64_t> column_perm(const Dims& d, const Split& split) {
  std::vector<int64_t> perm(d.GH());
  for (size_t k = 0; k + 1 < split.size(); ++k) {
    int64_t u0 = split[k], w = split[k + 1] - u0;
    for (int g = 0; g < d.G; ++g)
      for (int64_t j = 0; j < w; ++j) perm[g * d.H + u0 + j] = d.G * u0 + g * w + j;
  }
  return perm;
}

void permute_columns(const std::vector<int64_t>& perm, int64_t rows, const float* src, float* dst, bool to_perm) {
  const int64_t cols = static_cast<int64_t>(perm.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * cols;
    float* o = dst + r * cols;
    if (to_perm)
      for (int64_t c = 0; c < cols; ++c) o[perm[c]] = s[c];
    else
      for (int64_t c = 0; c < cols; ++c) o[c] = s[perm[c]];
  }
}

}  // namespace forgeml::rnn
