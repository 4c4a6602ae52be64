// The ISA-independent parts of the Winograd F(2x2, 3x3) forward (winograd.h): which geometries
// take it, and the weight transform (once per call, scalar).
#include "cpu/conv/winograd.h"

namespace forgeml::conv {

bool winograd_applies(const Geom& g) {
  return g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.C >= 16 && g.O >= 16 &&
         g.OH >= 2 && g.OW >= 2;
}

void winograd_weights(const Geom& g, const float* w, float* u) {
  const int64_t C = g.C, O = g.O, CO = C * O;
  for (int64_t c = 0; c < C; ++c) {
    const float* gk[3][3];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) gk[i][j] = w + (i * 3 + j) * CO + c * O;
    float* ue[16];
    for (int e = 0; e < 16; ++e) ue[e] = u + e * CO + c * O;
    for (int64_t o = 0; o < O; ++o) {
      float t[4][3];
      for (int j = 0; j < 3; ++j) {
        const float a = gk[0][j][o], b = gk[1][j][o], d = gk[2][j][o];
        t[0][j] = a, t[1][j] = 0.5f * (a + b + d), t[2][j] = 0.5f * (a - b + d), t[3][j] = d;
      }
      for (int i = 0; i < 4; ++i) {
        ue[4 * i + 0][o] = t[i][0];
        ue[4 * i + 1][o] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        ue[4 * i + 2][o] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        ue[4 * i + 3][o] = t[i][2];
      }
    }
  }
}

}  // namespace forgeml::conv
