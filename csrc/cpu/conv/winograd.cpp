// The ISA-independent parts of the Winograd F(2x2, 3x3) forward (winograd.h): which geometries
// take it, the weight transform (once per call, scalar) and the loop over chunks of tiles.
#include "cpu/conv/winograd.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "forgeml/parallel.h"

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

void winograd_patch(const Geom& g, const WinogradTiles& tl, const float* x, int64_t t, const float* zeros,
                    const float* (&d)[4][4]) {
  const int64_t n = t / (tl.th * tl.tw), ty = (t % (tl.th * tl.tw)) / tl.tw, tx = t % tl.tw;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int64_t yy = 2 * ty - g.pt + i, xx = 2 * tx - g.pl + j;
      d[i][j] = yy >= 0 && yy < g.H && xx >= 0 && xx < g.W ? x + ((n * g.H + yy) * g.W + xx) * g.C : zeros;
    }
}

void winograd_outputs(const Geom& g, const WinogradTiles& tl, int64_t t, int64_t (&off)[4]) {
  const int64_t n = t / (tl.th * tl.tw), oy = 2 * ((t % (tl.th * tl.tw)) / tl.tw), ox = 2 * (t % tl.tw);
  for (int p = 0; p < 4; ++p) {
    const int64_t yy = oy + p / 2, xx = ox + p % 2;
    off[p] = yy < g.OH && xx < g.OW ? ((n * g.OH + yy) * g.OW + xx) * g.O : -1;
  }
}

void winograd_run(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y,
                  int64_t chunk_tiles, WinogradInput input, WinogradOutput output) {
  constexpr int64_t kGroupTiles = 16384;  // tiles between Ctrl-C checks
  const WinogradTiles tl{(g.OH + 1) / 2, (g.OW + 1) / 2};
  const int64_t tiles = g.N * tl.th * tl.tw;
  std::vector<float> u(16 * g.C * g.O);
  winograd_weights(g, w, u.data());
  std::vector<gemm::PackedB> packs;
  packs.reserve(16);
  for (int e = 0; e < 16; ++e) packs.emplace_back(false, g.C, g.O, u.data() + e * g.C * g.O, g.O);
  const std::vector<float> zeros(g.C, 0.f);
  for (int64_t g0 = 0; g0 < tiles; g0 += kGroupTiles) {
    const int64_t g1 = std::min(tiles, g0 + kGroupTiles);
    parallel_for((g1 - g0 + chunk_tiles - 1) / chunk_tiles, 1, [&](int64_t c0, int64_t c1) {
      std::unique_ptr<float[]> v(new float[16 * chunk_tiles * g.C]), mp(new float[16 * chunk_tiles * g.O]);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t t0 = g0 + c * chunk_tiles, m = std::min(chunk_tiles, g1 - t0);
        input(g, tl, x, t0, m, zeros.data(), v.get());
        for (int e = 0; e < 16; ++e)
          gemm::sgemm_packed(false, m, 1.f, v.get() + e * m * g.C, g.C, packs[e], 0.f, mp.get() + e * m * g.O, g.O, {},
                             1);
        output(g, tl, mp.get(), t0, m, bias, act, y);
      }
    });
    check_interrupt();
  }
}

}  // namespace forgeml::conv
