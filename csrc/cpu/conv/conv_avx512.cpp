// AVX-512 implicit-GEMM convolution, channels last.
//   x is (N, H, W, C), w is (KH, KW, C, O), y is (N, OH, OW, O).
// Forward is a GEMM y(M = pixels, O) = patches(M, K) @ w(K, O) with K = (kh, kw, c), never building
// the patch matrix: each image is copied once into a zero-padded buffer (thread-local, so it stays
// in L2), after which a patch row is a few contiguous "segments" of the padded image at fixed
// offsets from the pixel's base offset (with dilation 1 a segment is a whole kernel row, KW*C
// floats). The micro-kernel keeps an MR-pixel x 16*NV-channel tile of y in registers (6 x 64,
// 14 x 32 or 24 x 16), broadcasts the pixels' inputs and streams w packed into 16*NV-wide panels;
// 3x3 kernels on C = 1 or 3 inputs (K = 9 or 27) get a fully unrolled variant.
// Backward-data at stride 1 is the same forward on dy with the flipped kernel; otherwise (strides,
// or C too small to fill a vector) a GEMM dcol = dy @ w^T into chunks, scattered back (col2im).
// Backward-weight is dw(K, O) = patches^T @ dy: an MR-row block of K (contiguous in x) by 16*NV
// channels, reduced over the pixels, with per-thread partial sums added at the end; db is summed
// from the same blocks of dy while they are in cache.
// Threads: forward and backward-data hand out (image, pixel block) items dynamically; the weight
// gradient uses fixed ranges so its sums are identical from run to run.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "cpu/conv/conv.h"
#include "cpu/conv/kernels.h"
#include "cpu/conv/winograd.h"
#include "forgeml/check.h"
#include "forgeml/isa_local.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {

using gemm::Activation;

// ---------------------------------------------------------------- padded images and patch layout

// Where the patches of one image live: a (Hp, Wp, C) buffer (the padded copy, or x itself when no
// padding is needed), pixel (oh, ow) starts at rowoff = (oh*sh*Wp + ow*sw)*C, and its patch is
// nseg segments of L floats at segoff[s] from there.
struct Layout {
  int64_t Hp = 0, Wp = 0;
  bool copy = false;  // the image needs a padded copy
  int64_t L = 0;
  LocalVec<int64_t> segoff;

  explicit Layout(const Geom& g) {
    Hp = (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1;
    Wp = (g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1;
    copy = g.pt > 0 || g.pl > 0 || Hp - g.pt > g.H || Wp - g.pl > g.W;
    if (!copy) Hp = g.H, Wp = g.W;
    if (g.dw == 1) {  // a kernel row is one contiguous run of KW*C floats
      L = g.KW * g.C;
      for (int64_t kh = 0; kh < g.KH; ++kh) segoff.push_back(kh * g.dh * Wp * g.C);
    } else {
      L = g.C;
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) segoff.push_back((kh * g.dh * Wp + kw * g.dw) * g.C);
    }
  }
  int64_t image_size(const Geom& g) const { return Hp * Wp * g.C; }
  // out[i] = offset of pixel p0 + i, for i < count (one division, then steps).
  void rowoffs(const Geom& g, int64_t p0, int64_t count, int64_t* out) const {
    int64_t oh = p0 / g.OW, ow = p0 % g.OW;
    for (int64_t i = 0; i < count; ++i) {
      out[i] = (oh * g.sh * Wp + ow * g.sw) * g.C;
      if (++ow == g.OW) ow = 0, ++oh;
    }
  }
};

// Copies image xi (H, W, C) into buf (Hp, Wp, C) with zeros outside.
void pad_image(const Geom& g, const Layout& lay, const float* xi, float* buf) {
  const int64_t C = g.C;
  for (int64_t hp = 0; hp < lay.Hp; ++hp) {
    float* dst = buf + hp * lay.Wp * C;
    int64_t ih = hp - g.pt;
    if (ih < 0 || ih >= g.H) {
      std::memset(dst, 0, sizeof(float) * lay.Wp * C);
      continue;
    }
    int64_t w0 = std::min(g.pl, lay.Wp), w1 = std::min(lay.Wp, g.pl + g.W);  // [w0, w1) is real
    std::memset(dst, 0, sizeof(float) * w0 * C);
    std::memcpy(dst + w0 * C, xi + (ih * g.W + (w0 - g.pl)) * C, sizeof(float) * (w1 - w0) * C);
    std::memset(dst + w1 * C, 0, sizeof(float) * (lay.Wp - w1) * C);
  }
}

// B(r, c) = B[r*rs + c*cs] for r < R, c < NC, packed into panels of 16*NV columns:
// panel t is R rows of 16*NV floats, zero beyond NC.
LocalVec<float> pack_panels(const float* B, int64_t R, int64_t NC, int64_t rs, int64_t cs, int NV) {
  int64_t nr = 16 * NV, nt = (NC + nr - 1) / nr;
  LocalVec<float> out(nt * R * nr, 0.f);
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < nr && t * nr + j < NC; ++j) out[(t * R + r) * nr + j] = B[r * rs + (t * nr + j) * cs];
  return out;
}

inline __mmask16 lane_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// ---------------------------------------------------------------- micro-kernels

struct FwdArgs {
  const float* xb;             // padded image
  const int64_t* rowoff;       // MR pixel offsets into xb
  const int64_t* segoff;       // nseg segment offsets
  int64_t nseg, L;             // K = nseg * L
  const float* wp;             // packed panel: K rows of 16*NV
  const float* bias;           // 16*NV floats or null
  float* y;                    // tile origin
  int64_t ldy, ncols;          // row stride of y, valid columns in this tile
  bool relu;
};

// y[r, :ncols] = (relu)(bias + sum_k patch[r, k] * w[k, :]) for an MR x 16*NV tile.
template <int MR, int NV>
void fwd_kernel(const FwdArgs& a) {
  __m512 acc[MR][NV];
  #pragma GCC unroll 32
  for (int v = 0; v < NV; ++v) {
    __m512 b0 = a.bias ? _mm512_loadu_ps(a.bias + 16 * v) : _mm512_setzero_ps();
    #pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) acc[r][v] = b0;
  }
  const float* wp = a.wp;
  for (int64_t s = 0; s < a.nseg; ++s) {
    const float* p[MR];
    #pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) p[r] = a.xb + a.rowoff[r] + a.segoff[s];
#pragma GCC unroll 4
    for (int64_t l = 0; l < a.L; ++l) {
      __m512 b[NV];
      #pragma GCC unroll 32
      for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_ps(wp + 16 * v);
      wp += 16 * NV;
      #pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        __m512 x = _mm512_set1_ps(p[r][l]);
        #pragma GCC unroll 32
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
      }
    }
  }
  __m512 zero = _mm512_setzero_ps();
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < NV; ++v) {
      __m512 o = a.relu ? _mm512_max_ps(zero, acc[r][v]) : acc[r][v];
      _mm512_mask_storeu_ps(a.y + r * a.ldy + 16 * v, lane_mask(a.ncols - 16 * v), o);
    }
}

// The same tile for a small fixed patch (3x3 kernels on C = 1 or 3 inputs: K = 9 or 27), fully
// unrolled: segments are S floats apart (S = segoff[1] - segoff[0]), so every input address is a
// per-(row, segment) base plus an immediate, and no loop overhead remains.
template <int MR, int NV, int NSEG, int L>
void fwd_kernel_fixed(const FwdArgs& a) {
  const int64_t S = NSEG > 1 ? a.segoff[1] - a.segoff[0] : 0;
  const float* xb = a.xb + a.segoff[0];
  int64_t off[MR];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) off[r] = a.rowoff[r];
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int v = 0; v < NV; ++v) {
    __m512 b0 = a.bias ? _mm512_loadu_ps(a.bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) acc[r][v] = b0;
  }
  const float* wp = a.wp;
#pragma GCC unroll 4
  for (int s = 0; s < NSEG; ++s) {
    const float* xs = xb + s * S;
#pragma GCC unroll 16
    for (int l = 0; l < L; ++l) {
      __m512 b[NV];
#pragma GCC unroll 32
      for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_ps(wp + ((s * L + l) * NV + v) * 16);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        __m512 x = _mm512_set1_ps(xs[off[r] + l]);
#pragma GCC unroll 32
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
      }
    }
  }
  float* const y = a.y;
  const int64_t ldy = a.ldy, ncols = a.ncols;
  const bool relu = a.relu;
  __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 32
    for (int v = 0; v < NV; ++v) {
      __m512 o = relu ? _mm512_max_ps(zero, acc[r][v]) : acc[r][v];
      _mm512_mask_storeu_ps(y + r * ldy + 16 * v, lane_mask(ncols - 16 * v), o);
    }
}

struct DwArgs {
  const float* xb;        // padded image
  const int64_t* rowoff;  // nm pixel offsets
  int64_t nm;
  const int64_t* koff;    // MR offsets of the K rows inside a patch (koff[0] only when contiguous)
  const float* dy;        // dy at (first pixel, first column); rows ldd apart
  int64_t ldd, ncols;
  float* out;             // dw tile origin, rows ldo apart: out += the tile's sum
  int64_t ldo;
};

// out[r, :ncols] += sum_m patch[m, koff[r]] * dy[m, :ncols].
template <int MR, int NV, bool CONTIG>
void dw_kernel(const DwArgs& a) {
  const int64_t nm = a.nm, ldd = a.ldd, ldo = a.ldo;
  const int64_t* rowoff = a.rowoff;
  float* const out = a.out;
  const float* d = a.dy;
  __mmask16 mk[NV];
  #pragma GCC unroll 32
  for (int v = 0; v < NV; ++v) mk[v] = lane_mask(a.ncols - 16 * v);
  int64_t ko[MR];  // contiguous rows: one offset, the rest are immediates
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) ko[r] = CONTIG ? r : a.koff[r];
  const float* xb = CONTIG ? a.xb + a.koff[0] : a.xb;
  __m512 acc[MR][NV];
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (const int64_t* ro = rowoff; ro != rowoff + nm; ++ro, d += ldd) {
    const float* xp = xb + *ro;
    __m512 b[NV];
    #pragma GCC unroll 32
    for (int v = 0; v < NV; ++v) b[v] = _mm512_maskz_loadu_ps(mk[v], d + 16 * v);
    #pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      __m512 x = _mm512_set1_ps(xp[ko[r]]);
      #pragma GCC unroll 32
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
    }
  }
  #pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < NV; ++v) {
      float* o = out + r * ldo + 16 * v;
      _mm512_mask_storeu_ps(o, mk[v], _mm512_add_ps(_mm512_maskz_loadu_ps(mk[v], o), acc[r][v]));
    }
}

// Tables of kernels for MR = 1..MAX, so edge tiles run the same code with fewer rows.
template <int NV, int... R>
constexpr std::array<void (*)(const FwdArgs&), sizeof...(R) + 1> fwd_table(std::integer_sequence<int, R...>) {
  return {nullptr, &fwd_kernel<R + 1, NV>...};
}
template <int NV, bool CONTIG, int... R>
constexpr std::array<void (*)(const DwArgs&), sizeof...(R) + 1> dw_table(std::integer_sequence<int, R...>) {
  return {nullptr, &dw_kernel<R + 1, NV, CONTIG>...};
}

// Rows per tile for 16-, 32- and 64-column tiles (about 24-28 accumulators of 32 registers).
constexpr int kFwdMR1 = 24, kFwdMR2 = 14, kFwdMR4 = 6;
constexpr int kDwMR1 = 24, kDwMR2 = 12, kDwMR4 = 6;
constexpr auto kFwd1 = fwd_table<1>(std::make_integer_sequence<int, kFwdMR1>{});
constexpr auto kFwd2 = fwd_table<2>(std::make_integer_sequence<int, kFwdMR2>{});
constexpr auto kFwd4 = fwd_table<4>(std::make_integer_sequence<int, kFwdMR4>{});
constexpr auto kDw1c = dw_table<1, true>(std::make_integer_sequence<int, kDwMR1>{});
constexpr auto kDw2c = dw_table<2, true>(std::make_integer_sequence<int, kDwMR2>{});
constexpr auto kDw4c = dw_table<4, true>(std::make_integer_sequence<int, kDwMR4>{});
constexpr auto kDw1g = dw_table<1, false>(std::make_integer_sequence<int, kDwMR1>{});
constexpr auto kDw2g = dw_table<2, false>(std::make_integer_sequence<int, kDwMR2>{});
constexpr auto kDw4g = dw_table<4, false>(std::make_integer_sequence<int, kDwMR4>{});

// Column width (in vectors) for n output columns.
int pick_nv(int64_t n) { return n <= 16 ? 1 : n < 64 ? 2 : 4; }
int fwd_mr(int nv) { return nv == 1 ? kFwdMR1 : nv == 2 ? kFwdMR2 : kFwdMR4; }
int dw_mr(int nv) { return nv == 1 ? kDwMR1 : nv == 2 ? kDwMR2 : kDwMR4; }

using FwdFn = void (*)(const FwdArgs&);
// The unrolled full-height kernel for (NV, segments, L), or null when there is none.
FwdFn fixed_fwd(int NV, int64_t nseg, int64_t L) {
  if (nseg != 3 || (L != 3 && L != 9)) return nullptr;
  if (L == 3) return NV == 1 ? &fwd_kernel_fixed<kFwdMR1, 1, 3, 3> : NV == 2 ? &fwd_kernel_fixed<kFwdMR2, 2, 3, 3>
                                                                              : &fwd_kernel_fixed<kFwdMR4, 4, 3, 3>;
  return NV == 1 ? &fwd_kernel_fixed<kFwdMR1, 1, 3, 9> : NV == 2 ? &fwd_kernel_fixed<kFwdMR2, 2, 3, 9>
                                                                 : &fwd_kernel_fixed<kFwdMR4, 4, 3, 9>;
}

void run_fwd(int NV, int mr, const FwdArgs& a) { NV == 1 ? kFwd1[mr](a) : NV == 2 ? kFwd2[mr](a) : kFwd4[mr](a); }
void run_dw(int NV, bool contig, int mr, const DwArgs& a) {
  if (contig) NV == 1 ? kDw1c[mr](a) : NV == 2 ? kDw2c[mr](a) : kDw4c[mr](a);
  else NV == 1 ? kDw1g[mr](a) : NV == 2 ? kDw2g[mr](a) : kDw4g[mr](a);
}

// ---------------------------------------------------------------- work split

// Items are (image, block of pixels); when there are fewer images than threads each image is
// split so every thread has work. body(t, n, p0, p1) runs on chunk t with image n, pixels [p0, p1).
// Calls run in groups of about kGroupFlops so Ctrl-C is honoured between groups of a long call
// (and a short call is one parallel region: each region costs a wake-up of every thread).
constexpr double kGroupFlops = 4e9;

// Dynamic: threads take the next item from a shared counter, so a thread the OS delays (a busy
// machine) leaves its work to the others; only for outputs each item writes alone. Static: fixed
// contiguous ranges, for per-thread partial sums that must not depend on timing (dw).
template <bool DYNAMIC, class F>
void for_each_block(const Geom& g, int64_t tile, F&& body) {
  int T = num_threads();
  int64_t P = g.OH * g.OW, tiles = (P + tile - 1) / tile;
  int64_t want = DYNAMIC ? 4 * T : T;  // items wanted in all
  int64_t per = std::max<int64_t>(1, std::min<int64_t>(tiles, (want + g.N - 1) / std::max<int64_t>(g.N, 1)));
  int64_t items = g.N * per;
  int64_t chunks = std::min<int64_t>(T, items);
  double item_flops = 2.0 * P * g.K() * g.O / per;
  int64_t group = std::max<int64_t>(chunks, static_cast<int64_t>(kGroupFlops / std::max(item_flops, 1.0)));
  auto run_item = [&](int64_t c, int64_t it) {
    int64_t n = it / per, j = it % per;
    int64_t p0 = std::min(P, (tiles * j / per) * tile), p1 = std::min(P, (tiles * (j + 1) / per) * tile);
    if (p0 < p1) body(c, n, p0, p1);
  };
  for (int64_t i0 = 0; i0 < items; i0 += group) {
    int64_t i1 = std::min(items, i0 + group);
    std::atomic<int64_t> next{i0};
    parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        if (DYNAMIC) {
          for (int64_t it = next.fetch_add(1); it < i1; it = next.fetch_add(1)) run_item(c, it);
        } else {
          int64_t b = i0 + (i1 - i0) * c / chunks, e = i0 + (i1 - i0) * (c + 1) / chunks;
          for (int64_t it = b; it < e; ++it) run_item(c, it);
        }
      }
    }, static_cast<int>(chunks));
    check_interrupt();
  }
}

// ---------------------------------------------------------------- forward driver

// y = act(conv(x, w) + bias) with w as (K, O) rows.
void conv_forward(const Geom& g, const float* x, const float* w, const float* bias, Activation act, float* y) {
  if (winograd_applies(g)) return winograd_forward(g, x, w, bias, act, y);  // 3x3, stride 1: fewer flops
  const int NV = pick_nv(g.O), NR = 16 * NV, MR = fwd_mr(NV);
  const Layout lay(g);
  const int64_t K = g.K(), nt = (g.O + NR - 1) / NR, P = g.OH * g.OW;
  LocalVec<float> wp = pack_panels(w, K, g.O, g.O, 1, NV);
  LocalVec<float> bp = bias ? pack_panels(bias, 1, g.O, 0, 1, NV) : LocalVec<float>();
  const bool relu = act == Activation::relu, other = act != Activation::relu && act != Activation::none;
  const int64_t nseg = static_cast<int64_t>(lay.segoff.size());
  bool progression = true;  // the unrolled kernel needs evenly spaced segments
  for (int64_t i = 2; i < nseg; ++i) progression &= lay.segoff[i] - lay.segoff[i - 1] == lay.segoff[1] - lay.segoff[0];
  const FwdFn fixed = progression ? fixed_fwd(NV, nseg, lay.L) : nullptr;
  LocalVec<int64_t> ro(P);  // pixel offsets are the same in every image
  lay.rowoffs(g, 0, P, ro.data());
  LocalVec<LocalVec<float>> bufs(num_threads());
  LocalVec<int64_t> last(num_threads(), -1);
  for_each_block<true>(g, MR, [&](int64_t t, int64_t n, int64_t p0, int64_t p1) {
    const float* xb = x + n * g.H * g.W * g.C;
    if (lay.copy) {
      auto& buf = bufs[t];
      if (last[t] != n) {
        buf.resize(lay.image_size(g));
        pad_image(g, lay, xb, buf.data());
        last[t] = n;
      }
      xb = buf.data();
    }
    for (int64_t q = p0; q < p1; q += MR) {
      int mr = static_cast<int>(std::min<int64_t>(MR, p1 - q));
      const int64_t* rowoff = ro.data() + q;
      float* yq = y + (n * P + q) * g.O;
      for (int64_t j = 0; j < nt; ++j) {
        FwdArgs a{xb, rowoff, lay.segoff.data(), static_cast<int64_t>(lay.segoff.size()), lay.L,
                  wp.data() + j * K * NR, bias ? bp.data() + j * NR : nullptr, yq + j * NR, g.O,
                  std::min<int64_t>(NR, g.O - j * NR), relu};
        if (fixed && mr == MR) fixed(a);
        else run_fwd(NV, mr, a);
      }
      if (other)
        for (int r = 0; r < mr; ++r) gemm::apply_activation(act, yq + r * g.O, g.O);
    }
  });
}

// ---------------------------------------------------------------- backward-data by col2im

// dx = col2im(dy @ w^T): per image, chunks of pixels get dcol (pixels, K) from the micro-kernel
// (a 1x1 "convolution" of dy with w^T), then each row is added into the padded dx image.
void data_grad_col2im(const Geom& g, const float* w, const float* dy, float* dx) {
  const int64_t K = g.K();
  const int NV = pick_nv(K), NR = 16 * NV, MR = fwd_mr(NV);
  const Layout lay(g);
  const int64_t nt = (K + NR - 1) / NR, P = g.OH * g.OW, Kp = nt * NR;
  const int64_t chunk = MR * 8;
  LocalVec<float> wt = pack_panels(w, g.O, K, 1, g.O, NV);  // w^T: (O, K)
  const int64_t seg0 = 0;
  // Whole images per chunk of work: the scatter writes anywhere in the image.
  int T = num_threads();
  int64_t chunks = std::min<int64_t>(T, g.N);
  double image_flops = 2.0 * P * g.K() * g.O;
  int64_t group = std::max<int64_t>(chunks, static_cast<int64_t>(kGroupFlops / std::max(image_flops, 1.0)));
  for (int64_t n0 = 0; n0 < g.N; n0 += group) {
    int64_t n1 = std::min(g.N, n0 + group);
    std::atomic<int64_t> next{n0};  // images go to whichever thread is free (disjoint dx)
    parallel_for(std::min(chunks, n1 - n0), 1, [&](int64_t, int64_t) {
      LocalVec<float> pad(lay.image_size(g)), dcol(chunk * Kp);
      LocalVec<int64_t> xoff(chunk);
      int64_t rowoff[kFwdMR1];
      for (int64_t n = next.fetch_add(1); n < n1; n = next.fetch_add(1)) {
        std::fill(pad.begin(), pad.end(), 0.f);
        const float* dyn = dy + n * P * g.O;
        for (int64_t c0 = 0; c0 < P; c0 += chunk) {
          int64_t c1 = std::min(P, c0 + chunk);
          for (int64_t q = c0; q < c1; q += MR) {
            int mr = static_cast<int>(std::min<int64_t>(MR, c1 - q));
            for (int r = 0; r < mr; ++r) rowoff[r] = (q + r) * g.O;
            for (int64_t j = 0; j < nt; ++j) {
              FwdArgs a{dyn, rowoff, &seg0, 1, g.O, wt.data() + j * g.O * NR, nullptr,
                        dcol.data() + (q - c0) * Kp + j * NR, Kp, NR, false};
              run_fwd(NV, mr, a);
            }
          }
          lay.rowoffs(g, c0, c1 - c0, xoff.data());
          for (int64_t p = c0; p < c1; ++p) {
            float* base = pad.data() + xoff[p - c0];
            const float* src = dcol.data() + (p - c0) * Kp;
            for (size_t s = 0; s < lay.segoff.size(); ++s) {
              float* d = base + lay.segoff[s];
              const float* sp = src + s * lay.L;
              for (int64_t l = 0; l < lay.L; l += 16) {
                __mmask16 m = lane_mask(lay.L - l);
                _mm512_mask_storeu_ps(d + l, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + l),
                                                              _mm512_maskz_loadu_ps(m, sp + l)));
              }
            }
          }
        }
        // The real part of the padded image is dx (rows and columns no window reaches get 0).
        float* dxn = dx + n * g.H * g.W * g.C;
        std::fill(dxn, dxn + g.H * g.W * g.C, 0.f);
        int64_t hmax = std::min(g.H, lay.Hp - g.pt), wmax = std::min(g.W, lay.Wp - g.pl);
        for (int64_t ih = 0; ih < hmax; ++ih)
          std::memcpy(dxn + ih * g.W * g.C, pad.data() + ((ih + g.pt) * lay.Wp + g.pl) * g.C,
                      sizeof(float) * wmax * g.C);
      }
    }, static_cast<int>(chunks));
    check_interrupt();
  }
}

// ---------------------------------------------------------------- entry points

void forward_avx512(const Geom& g, const float* x, const float* w, const float* bias, Activation act, float* y) {
  conv_forward(g, x, w, bias, act, y);
}

void backward_data_avx512(const Geom& g, const float* w, const float* dy, float* dx) {
  Geom f;
  if (g.C < 16 || !flipped_geometry(g, f)) return data_grad_col2im(g, w, dy, dx);
  LocalVec<float> wf(g.K() * g.O);
  flip_weights(g, w, wf.data());
  conv_forward(f, dy, wf.data(), nullptr, Activation::none, dx);
}

// Adds the nm rows of dy (row stride O) into acc (O floats), 16 columns at a time.
void add_rows(const float* dy, int64_t nm, int64_t O, double* acc) {
  for (int64_t o = 0; o < O; o += 16) {
    __mmask16 m = lane_mask(O - o);
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < nm; ++i) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, dy + i * O + o));
    alignas(64) float tmp[16];
    _mm512_store_ps(tmp, s);
    for (int64_t j = 0; j < 16 && o + j < O; ++j) acc[o + j] += tmp[j];
  }
}

void backward_weight_avx512(const Geom& g, const float* x, const float* dy, float* dw, float* db) {
  const int NV = pick_nv(g.O), NR = 16 * NV, MR = dw_mr(NV);
  const Layout lay(g);
  const int64_t K = g.K(), nt = (g.O + NR - 1) / NR, P = g.OH * g.OW;
  // Row tiles of K: runs inside one segment when segments are long, else any MR rows.
  struct KTile { int64_t k0; int mr; bool contig; std::array<int64_t, kDwMR1> koff; };
  LocalVec<KTile> ktiles;
  const int64_t nseg = static_cast<int64_t>(lay.segoff.size());
  if (lay.L >= MR) {
    for (int64_t s = 0; s < nseg; ++s)
      for (int64_t l = 0; l < lay.L; l += MR) {
        KTile kt{s * lay.L + l, static_cast<int>(std::min<int64_t>(MR, lay.L - l)), true, {}};
        kt.koff[0] = lay.segoff[s] + l;
        ktiles.push_back(kt);
      }
  } else {
    int64_t ntile = (K + MR - 1) / MR, rows = (K + ntile - 1) / ntile;
    for (int64_t k0 = 0; k0 < K; k0 += rows) {
      KTile kt{k0, static_cast<int>(std::min<int64_t>(rows, K - k0)), false, {}};
      for (int r = 0; r < kt.mr; ++r) kt.koff[r] = lay.segoff[(k0 + r) / lay.L] + (k0 + r) % lay.L;
      ktiles.push_back(kt);
    }
  }
  int T = num_threads();
  LocalVec<LocalVec<float>> part(T);
  LocalVec<LocalVec<double>> dbpart(T);  // db from the dy blocks while they are in cache
  LocalVec<LocalVec<float>> bufs(T);
  LocalVec<int64_t> last(T, -1);
  const int64_t block = 256;  // pixels per pass over the K x O tiles
  LocalVec<int64_t> ro(P);
  lay.rowoffs(g, 0, P, ro.data());
  for_each_block<false>(g, block, [&](int64_t t, int64_t n, int64_t p0, int64_t p1) {
    if (part[t].empty()) part[t].assign(K * g.O, 0.f);
    if (db && dbpart[t].empty()) dbpart[t].assign(g.O, 0.0);
    const float* xb = x + n * g.H * g.W * g.C;
    if (lay.copy) {
      auto& buf = bufs[t];
      if (last[t] != n) {
        buf.resize(lay.image_size(g));
        pad_image(g, lay, xb, buf.data());
        last[t] = n;
      }
      xb = buf.data();
    }
    for (int64_t q = p0; q < p1; q += block) {
      int64_t nm = std::min(block, p1 - q);
      const int64_t* rowoff = ro.data() + q;
      const float* dq = dy + (n * P + q) * g.O;
      for (const KTile& kt : ktiles)
        for (int64_t j = 0; j < nt; ++j) {
          DwArgs a{xb, rowoff, nm, kt.koff.data(), dq + j * NR, g.O, std::min<int64_t>(NR, g.O - j * NR),
                   part[t].data() + kt.k0 * g.O + j * NR, g.O};
          run_dw(NV, kt.contig, kt.mr, a);
        }
      if (db) add_rows(dq, nm, g.O, dbpart[t].data());
    }
  });
  if (db) {
    for (int64_t o = 0; o < g.O; ++o) {
      double sum = 0.0;
      for (int t = 0; t < T; ++t) sum += dbpart[t].empty() ? 0.0 : dbpart[t][o];
      db[o] = static_cast<float>(sum);
    }
  }
  std::fill(dw, dw + K * g.O, 0.f);
  for (int t = 0; t < T; ++t)
    if (!part[t].empty())
      for (int64_t i = 0; i < K * g.O; ++i) dw[i] += part[t][i];
}

// Each part writes every element of dx, dw and db (no zero fill needed).
void backward_avx512(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  if (dx) backward_data_avx512(g, w, dy, dx);
  check_interrupt();
  if (dw) backward_weight_avx512(g, x, dy, dw, db);
  else if (db) bias_grad(g, dy, db);
}

}  // namespace

bool kernels_avx512(Kernels& k) {
  k = {&forward_avx512, &backward_avx512, "avx512"};
  return true;
}

}  // namespace forgeml::conv
#else
#include "cpu/conv/kernels.h"

namespace forgeml::conv {
bool kernels_avx512(Kernels&) { return false; }
}  // namespace forgeml::conv
#endif
