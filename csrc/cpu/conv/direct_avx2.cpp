// AVX2 direct convolution forward for inputs with few channels (C < 8: a network's RGB or grey
// first layer), where the GEMM path's patch rows (K = KH*KW*C floats) are too short to pay for
// building them. Each image is copied once into a zero-padded buffer; a pixel's patch is then
// KH segments of KW*C contiguous floats (with dilation 1; else KH*KW segments of C) at fixed
// offsets from its base offset. A tile is 6 pixels x 16 output channels in 12 ymm accumulators:
// per depth step two loads of w (packed in 16-column panels) and one broadcast per pixel. The 3x3
// kernels on C = 1 and 3 get fully unrolled tiles (every input address a base plus an immediate).
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <utility>

#include "cpu/conv/kernels.h"
#include "cpu/store_lanes_avx2.h"
#include "forgeml/isa_local.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {

constexpr int kMR = 6, kNR = 16;

// Where one image's patches live in its padded copy (Hp, Wp, C): pixel (oh, ow) starts at
// (oh*sh*Wp + ow*sw)*C and its patch is nseg segments of L floats at segoff[s] from there.
struct Layout {
  int64_t Hp, Wp, L;
  LocalVec<int64_t> segoff;
  explicit Layout(const Geom& g) {
    Hp = (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1;
    Wp = (g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1;
    if (g.dw == 1) {
      L = g.KW * g.C;
      for (int64_t kh = 0; kh < g.KH; ++kh) segoff.push_back(kh * g.dh * Wp * g.C);
    } else {
      L = g.C;
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) segoff.push_back((kh * g.dh * Wp + kw * g.dw) * g.C);
    }
  }
  // Every output pixel's offset, row-major.
  LocalVec<int64_t> pixel_offsets(const Geom& g) const {
    LocalVec<int64_t> off(g.OH * g.OW);
    for (int64_t p = 0; p < g.OH * g.OW; ++p) off[p] = ((p / g.OW) * g.sh * Wp + (p % g.OW) * g.sw) * g.C;
    return off;
  }
};

// buf (Hp, Wp, C) = image xi with zeros outside it (rows and columns past the input too: the
// padded extent can reach beyond H + pt when the last window does not).
void pad_image(const Geom& g, const Layout& lay, const float* xi, float* buf) {
  const int64_t C = g.C;
  std::fill(buf, buf + lay.Hp * lay.Wp * C, 0.f);
  for (int64_t hp = 0; hp < lay.Hp; ++hp) {
    const int64_t ih = hp - g.pt;
    if (ih < 0 || ih >= g.H) continue;
    const int64_t w0 = std::min(g.pl, lay.Wp), w1 = std::min(lay.Wp, g.pl + g.W);
    if (w1 > w0)
      std::memcpy(buf + (hp * lay.Wp + w0) * C, xi + (ih * g.W + w0 - g.pl) * C, sizeof(float) * (w1 - w0) * C);
  }
}

struct TileArgs {
  const float* xb;        // padded image
  const int64_t* rowoff;  // the tile's pixel offsets into xb
  const int64_t* segoff;
  int64_t nseg, L;
  const float* wp;  // the panel: nseg * L rows of 16 floats
  const float* bp;  // 16 floats of bias (zeros when there is none)
  float* y;
  int64_t ldy;
  int ncols;
  bool relu;
};

// y[r, :ncols] = (relu)(bias + patch[r, :] . w[:, panel]); NSEG, L = 0: taken from the arguments.
template <int MR, int NSEG, int L>
void tile(const TileArgs& a) {
  const int64_t nseg = NSEG ? NSEG : a.nseg, len = L ? L : a.L;
  __m256 acc[MR][2];
  const __m256 b0 = _mm256_loadu_ps(a.bp), b1 = _mm256_loadu_ps(a.bp + 8);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = b0, acc[r][1] = b1;
  const float* wp = a.wp;
#pragma GCC unroll 4
  for (int64_t s = 0; s < nseg; ++s) {
    const float* p[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) p[r] = a.xb + a.rowoff[r] + a.segoff[s];
#pragma GCC unroll 32
    for (int64_t l = 0; l < len; ++l, wp += kNR) {
      const __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256 x = _mm256_broadcast_ss(p[r] + l);
        acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
      }
    }
  }
  // Plain stores (store_lanes for an edge tile); locals for y, so the stores do not make the
  // compiler reload the arguments.
  float* const y = a.y;
  const int64_t ldy = a.ldy;
  const bool full = a.ncols == kNR;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    __m256 o0 = acc[r][0], o1 = acc[r][1];
    if (a.relu) o0 = _mm256_max_ps(_mm256_setzero_ps(), o0), o1 = _mm256_max_ps(_mm256_setzero_ps(), o1);
    if (full) {
      _mm256_storeu_ps(y + r * ldy, o0);
      _mm256_storeu_ps(y + r * ldy + 8, o1);
    } else {
      store_lanes(y + r * ldy, o0, a.ncols);
      store_lanes(y + r * ldy + 8, o1, a.ncols - 8);
    }
  }
}

using TileFn = void (*)(const TileArgs&);

template <int NSEG, int L, int... R>
constexpr std::array<TileFn, kMR + 1> tiles(std::integer_sequence<int, R...>) {
  return {nullptr, &tile<R + 1, NSEG, L>...};
}
constexpr auto kGeneral = tiles<0, 0>(std::make_integer_sequence<int, kMR>{});
constexpr auto k3x3c1 = tiles<3, 3>(std::make_integer_sequence<int, kMR>{});
constexpr auto k3x3c3 = tiles<3, 9>(std::make_integer_sequence<int, kMR>{});

// w (K, O) in panels of 16 columns, zero past O: panel j is K rows of 16.
LocalVec<float> pack_panels(const float* w, int64_t K, int64_t O) {
  const int64_t panels = (O + kNR - 1) / kNR;
  LocalVec<float> out(panels * K * kNR, 0.f);
  for (int64_t j = 0; j < panels; ++j)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < kNR && j * kNR + c < O; ++c) out[(j * K + k) * kNR + c] = w[k * O + j * kNR + c];
  return out;
}

// out[r, :ncols] += sum over the np pixels of patch[p, k0 + r] * dy[p, :ncols] for MR rows of
// the weight gradient (K, O) and one 16-column panel; koff[r]: row k0 + r's offset in a patch.
template <int MR>
void dw_tile(const float* xb, const int64_t* rowoff, int64_t np, const int64_t* koff, const float* dy, int64_t ldd,
             int ncols, float* out, int64_t ldo) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8), lane);
  const bool full = ncols == kNR;
  int64_t ko[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) ko[r] = koff[r];
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < np; ++p, dy += ldd) {
    const __m256 d0 = full ? _mm256_loadu_ps(dy) : _mm256_maskload_ps(dy, m0);
    const __m256 d1 = full ? _mm256_loadu_ps(dy + 8) : _mm256_maskload_ps(dy + 8, m1);
    const float* xp = xb + rowoff[p];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_broadcast_ss(xp + ko[r]);
      acc[r][0] = _mm256_fmadd_ps(xv, d0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xv, d1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* o = out + r * ldo;
    if (full) {
      _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), acc[r][0]));
      _mm256_storeu_ps(o + 8, _mm256_add_ps(_mm256_loadu_ps(o + 8), acc[r][1]));
    } else {
      store_lanes(o, _mm256_add_ps(_mm256_maskload_ps(o, m0), acc[r][0]), ncols);
      store_lanes(o + 8, _mm256_add_ps(_mm256_maskload_ps(o + 8, m1), acc[r][1]), ncols - 8);
    }
  }
}

using DwFn = void (*)(const float*, const int64_t*, int64_t, const int64_t*, const float*, int64_t, int, float*,
                      int64_t);
template <int... R>
constexpr std::array<DwFn, kMR + 1> dw_tiles(std::integer_sequence<int, R...>) {
  return {nullptr, &dw_tile<R + 1>...};
}
constexpr auto kDw = dw_tiles(std::make_integer_sequence<int, kMR>{});

}  // namespace

bool direct_avx2_applies(const Geom& g) { return g.C < 8; }

void direct_forward_avx2(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                         float* y) {
  const Layout lay(g);
  const int64_t K = g.K(), P = g.OH * g.OW, panels = (g.O + kNR - 1) / kNR;
  const LocalVec<float> wp = pack_panels(w, K, g.O);
  LocalVec<float> bp(panels * kNR, 0.f);
  if (bias) std::copy(bias, bias + g.O, bp.begin());
  const auto& table = g.KH == 3 && g.KW == 3 && g.dw == 1 && g.C == 1   ? k3x3c1
                      : g.KH == 3 && g.KW == 3 && g.dw == 1 && g.C == 3 ? k3x3c3
                                                                        : kGeneral;
  const LocalVec<int64_t> rowoff = lay.pixel_offsets(g);  // the same in every image
  const bool relu = act == gemm::Activation::relu, other = !relu && act != gemm::Activation::none;
  // Items of (image, pixel range): whole images when there are enough, else each image split so
  // every thread has work; threads take items from a counter (a parked thread leaves its share).
  const int T = num_threads();
  const int64_t per = std::max<int64_t>(1, std::min<int64_t>((P + kMR - 1) / kMR, (2 * T + g.N - 1) / g.N));
  const int64_t items = g.N * per;
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(T, items), 1, [&](int64_t, int64_t) {
    LocalVec<float> buf(lay.Hp * lay.Wp * g.C);
    int64_t padded = -1;
    for (int64_t it; (it = next.fetch_add(1)) < items;) {
      const int64_t n = it / per, part = it % per;
      const int64_t p0 = P * part / per / kMR * kMR, p1 = part + 1 == per ? P : P * (part + 1) / per / kMR * kMR;
      if (padded != n) pad_image(g, lay, x + n * g.H * g.W * g.C, buf.data()), padded = n;
      for (int64_t q = p0; q < p1; q += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, p1 - q));
        float* yq = y + (n * P + q) * g.O;
        for (int64_t j = 0; j < panels; ++j) {
          const TileArgs a{buf.data(),
                           rowoff.data() + q,
                           lay.segoff.data(),
                           static_cast<int64_t>(lay.segoff.size()),
                           lay.L,
                           wp.data() + j * K * kNR,
                           bp.data() + j * kNR,
                           yq + j * kNR,
                           g.O,
                           static_cast<int>(std::min<int64_t>(kNR, g.O - j * kNR)),
                           relu};
          table[mr](a);
        }
        if (other)
          for (int r = 0; r < mr; ++r) gemm::apply_activation(act, yq + r * g.O, g.O);
      }
    }
  });
  check_interrupt();
}

// dw = patches^T dy without building the patches: each thread sums a fixed range of images (or
// of an image's pixels, when there are few images) into its own (K, O) buffer, in blocks of
// pixels whose dy rows stay in cache across the K tiles; the buffers are added in thread order,
// so the sums are the same on every run.
void direct_weight_grad_avx2(const Geom& g, const float* x, const float* dy, float* dw) {
  const Layout lay(g);
  const int64_t K = g.K(), P = g.OH * g.OW, panels = (g.O + kNR - 1) / kNR;
  const LocalVec<int64_t> rowoff = lay.pixel_offsets(g);
  LocalVec<int64_t> koff(K);
  for (int64_t k = 0; k < K; ++k) koff[k] = lay.segoff[k / lay.L] + k % lay.L;
  const int T = num_threads();
  const int64_t per = std::max<int64_t>(1, std::min<int64_t>(P, (T + g.N - 1) / g.N)), items = g.N * per;
  const int chunks = static_cast<int>(std::min<int64_t>(T, items));
  LocalVec<float> part(static_cast<size_t>(chunks) * K * g.O, 0.f);
  constexpr int64_t kBlock = 256;  // pixels per pass over the K tiles
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    LocalVec<float> buf(lay.Hp * lay.Wp * g.C);
    for (int64_t c = cb; c < ce; ++c) {
      float* out = part.data() + c * K * g.O;
      int64_t padded = -1;
      for (int64_t it = items * c / chunks; it < items * (c + 1) / chunks; ++it) {
        const int64_t n = it / per, j = it % per, p0 = P * j / per, p1 = P * (j + 1) / per;
        if (padded != n) pad_image(g, lay, x + n * g.H * g.W * g.C, buf.data()), padded = n;
        for (int64_t q = p0; q < p1; q += kBlock) {
          const int64_t np = std::min(kBlock, p1 - q);
          const float* dq = dy + (n * P + q) * g.O;
          for (int64_t k0 = 0; k0 < K; k0 += kMR)
            for (int64_t jp = 0; jp < panels; ++jp)
              kDw[std::min<int64_t>(kMR, K - k0)](buf.data(), rowoff.data() + q, np, koff.data() + k0, dq + jp * kNR,
                                                  g.O, static_cast<int>(std::min<int64_t>(kNR, g.O - jp * kNR)),
                                                  out + k0 * g.O + jp * kNR, g.O);
        }
      }
    }
  });
  std::copy(part.begin(), part.begin() + K * g.O, dw);
  for (int c = 1; c < chunks; ++c)
    for (int64_t i = 0; i < K * g.O; ++i) dw[i] += part[c * K * g.O + i];
  check_interrupt();
}

}  // namespace forgeml::conv
#endif  // __x86_64__: conv_gemm.cpp's AVX2 entry calls it only there
