// The int8 convolution (gemm_lowp.h: conv2d_int8_packed), optionally followed by a max pooling.
//
// One parallel region over blocks of whole images (about kBlockRows patch rows each); per block,
// on one thread and in cache: each image quantized with its own scale into a zero-bordered byte
// image, its patches gathered into the packed operand, the micro-kernels with the epilogue
// (lowp_block), then the pooling from the block's output. So there is no full-size im2col buffer,
// one wake of the threads per call, and with a pooling the full convolution output is never
// written. Images with more patch rows than a block (and no pooling) go one at a time, their rows
// split over the threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>

#include "cpu/conv/pool_rows.h"
#include "cpu/gemm/lowp_run.h"
#include "forgeml/check.h"
#include "forgeml/gemm_lowp_chain.h"
#include "forgeml/parallel.h"

namespace forgeml::gemm {

namespace {

using detail::Lowp;
using detail::LowpKernels;
using detail::Words;

constexpr int64_t kBlockRows = 256;  // patch rows per block: its operand and output stay in L1 / L2
constexpr int64_t kSlack = 16;       // bytes past the buffers that the 8-byte copies may touch

// A patch row as 8-byte copies from the window's corner in the bordered image: piece t copies
// src[t] .. + 8 to dst[t] .. + 8 of the row. Pieces go in increasing dst order, so the up to 7
// bytes a piece writes past its run are overwritten by the next one (or, past K, left: B's
// padding rows are zero); the last piece of a row may spill into the next row, written after it.
struct Pieces {
  static constexpr int kMax = 16;
  int count = 0;
  int64_t src[kMax], dst[kMax];
};

// The call's fixed parts. The input image is copied, quantized, into a (hp, wp, c) byte image whose
// border (the padding, and any rows / columns a window reaches past the input) holds 128, the
// unsigned form of zero, so the gather needs no bounds checks.
struct Conv {
  const ConvGeometry& g;
  const MaxPoolGeometry* pool;
  const LowpKernels& k;
  const Epilogue& ep;
  int64_t K, N, Kg, rows, hp, wp;
  Lowp base;      // B, its scales and corrections, the kernels; a / M / C / row_scale per block
  Pieces pieces;  // set after construction: pieces_of needs wp
  conv::PoolRows pool_rows;
  bool pool4 = false;  // the pooling on the int32 sums (window_block)
};

// One thread's buffers for blocks of up to `images` images.
struct Scratch {
  std::unique_ptr<uint8_t[]> img;  // the bordered byte image
  std::unique_ptr<int8_t[]> q;     // the image quantized, before the +128
  Words a;                         // patch rows, Kg words each
  std::unique_ptr<float[]> rs, out;

  Scratch(const Conv& c, int64_t images, bool with_out)
      : img(new uint8_t[c.hp * c.wp * c.g.c + kSlack]),
        q(new int8_t[std::max<int64_t>(1, c.g.h * c.g.w * c.g.c)]),
        a(static_cast<size_t>(images * c.rows * c.Kg + kSlack / 4)),
        rs(new float[std::max<int64_t>(1, images * c.rows)]),
        out(with_out ? new float[images * c.rows * c.N] : nullptr) {
    std::memset(img.get(), 128, c.hp * c.wp * c.g.c + kSlack);
    // the bytes past K of a row may keep what a copy left there: B's padding rows are zero
    std::memset(a.get(), 128, (images * c.rows * c.Kg + kSlack / 4) * 4);
  }
};

// Image b into s.img; returns its scale.
float quantize_image(const Conv& c, const float* X, int64_t b, Scratch& s) {
  const ConvGeometry& g = c.g;
  const int64_t image = g.h * g.w * g.c, line = g.w * g.c;
  const float scale = c.k.quantize_row(X + b * image, image, s.q.get());
  FORGEML_CHECK_ARG(!std::isnan(scale), "x: image ", b,
                    " holds NaN or infinity; int8 quantization needs finite values");
  for (int64_t y = 0; y < g.h; ++y) {
    const int8_t* __restrict src = s.q.get() + y * line;
    uint8_t* __restrict dst = s.img.get() + ((y + g.pad_top) * c.wp + g.pad_left) * g.c;
    for (int64_t t = 0; t < line; ++t) dst[t] = static_cast<uint8_t>(src[t]) ^ 0x80u;  // q + 128
  }
  return scale;
}

// The pieces of the geometry, or count 0 when there are more than kMax.
Pieces pieces_of(const Conv& c) {
  const ConvGeometry& g = c.g;
  const int64_t C = g.c, line = c.wp * C, run = g.dw == 1 ? g.kw * C : C, runs = g.dw == 1 ? 1 : g.kw;
  Pieces p;
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t r = 0; r < runs; ++r)
      for (int64_t t = 0; t < run; t += 8) {
        if (p.count == Pieces::kMax) return Pieces{};
        p.src[p.count] = ki * g.dh * line + r * g.dw * C + t;
        p.dst[p.count] = (ki * runs + r) * run + t;
        ++p.count;
      }
  return p;
}

// f(std::integral_constant<int, P>) with P = count for the counts whose copies unroll (a 3x3
// kernel's rows of 1-3 channels, ...), P = 0 for any other.
template <class F>
void with_piece_count(int count, F&& f) {
  switch (count) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 9:
      return f(std::integral_constant<int, 9>{});
    default:
      return f(std::integral_constant<int, 0>{});
  }
}

// Rows [r0, r1) with P pieces a row (P a constant: the copies unroll).
template <int P>
void gather_fixed(const Conv& c, const Pieces& pc, const uint8_t* img, int64_t r0, int64_t r1, uint8_t* d) {
  const ConvGeometry& g = c.g;
  const int64_t C = g.c, line = c.wp * C, row_bytes = 4 * c.Kg, sx = g.sw * C, sy = g.sh * line, ow = g.ow;
  int64_t src[P], dst[P];
  for (int t = 0; t < P; ++t) src[t] = pc.src[t], dst[t] = pc.dst[t];
  int64_t oy = r0 / ow, ox = r0 % ow;
  for (int64_t i = r0; i < r1; ++oy, ox = 0) {
    const uint8_t* base = img + oy * sy + ox * sx;
    for (const int64_t e = std::min(r1, i + ow - ox); i < e; ++i, base += sx, d += row_bytes)
#pragma GCC unroll 16
      for (int t = 0; t < P; ++t) std::memcpy(d + dst[t], base + src[t], 8);
  }
}

// The same for any count of pieces, and byte by byte when a row needs more than Pieces::kMax.
void gather_any(const Conv& c, const Pieces& pc, const uint8_t* img, int64_t r0, int64_t r1, uint8_t* d) {
  const ConvGeometry& g = c.g;
  const int64_t C = g.c, line = c.wp * C, row_bytes = 4 * c.Kg;
  for (int64_t i = r0; i < r1; ++i, d += row_bytes) {
    const uint8_t* base = img + (i / g.ow) * g.sh * line + (i % g.ow) * g.sw * C;
    if (pc.count) {
      for (int t = 0; t < pc.count; ++t) std::memcpy(d + pc.dst[t], base + pc.src[t], 8);
      continue;
    }
    uint8_t* p = d;
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj, p += C) std::memcpy(p, base + ki * g.dh * line + kj * g.dw * C, C);
  }
}

// Patch rows [r0, r1) of the image in s.img (row = oy * ow + ox) into a, Kg words a row.
void gather(const Conv& c, const Scratch& s, int64_t r0, int64_t r1, uint32_t* a) {
  const uint8_t* img = s.img.get();
  auto* d = reinterpret_cast<uint8_t*>(a);
  with_piece_count(c.pieces.count, [&](auto p) {
    if constexpr (p.value == 0) gather_any(c, c.pieces, img, r0, r1, d);
    else gather_fixed<p.value>(c, c.pieces, img, r0, r1, d);
  });
}

// Forwards a block's epilogue function with the rows shifted to the whole output's numbering.
struct Shift {
  const Epilogue* ep;
  int64_t row0;
};
void shifted(void* ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* c, int64_t ldc) {
  const auto* s = static_cast<const Shift*>(ctx);
  s->ep->fn(s->ep->ctx, i0 + s->row0, i1 + s->row0, j0, j1, c, ldc);
}

// m rows of a (scales rs) times B into out (N floats a row); row0 numbers the first one.
void multiply(const Conv& c, const uint32_t* a, const float* rs, int64_t m, float* out, int64_t row0) {
  Shift sh{&c.ep, row0};
  Epilogue ep = c.ep;
  if (ep.fn) ep.fn = shifted, ep.ctx = &sh;
  Lowp L = c.base;
  L.M = m, L.a = a, L.row_scale = rs, L.C = out, L.ldc = c.N, L.ep = &ep;
  detail::lowp_block(L, 0, m, 0, c.base.npad / c.k.nr);
}

// The max pooling of `images` consecutive images, x (images, oh, ow, N) -> y (images, pool oh,
// pool ow, N), by conv::pool_forward's loops (one call for the block: an image is only a few
// pixels, so a call per image would cost more than the pooling).
void pool_images(const Conv& c, const float* x, float* y, int64_t images) {
  const MaxPoolGeometry& p = *c.pool;
  conv::Geom g;
  g.N = images, g.H = c.g.oh, g.W = c.g.ow, g.C = c.N, g.KH = p.kh, g.KW = p.kw, g.sh = p.sh, g.sw = p.sw;
  g.pt = p.pad_top, g.pl = p.pad_left, g.OH = p.oh, g.OW = p.ow;
  c.pool_rows(g, conv::Pool::max, x, y, 0, images * p.oh);
}

// Whether the pooling can run on the tiles' int32 sums (lowp.h: pool4): 2 x 2 windows with stride
// 2, all inside the convolution output, relu or no activation, one depth block, and every column
// scale > 0 (quantization makes them so; a scale set by hand to <= 0 or NaN would turn the max
// of the sums into the wrong row).
bool pool4_applies(const Conv& c) {
  const MaxPoolGeometry* p = c.pool;
  const float* cs = c.base.col_scale;
  return p && std::all_of(cs, cs + c.N, [](float v) { return v > 0.f; }) && (c.k.pool4[0][1] || c.k.pool4_windows[0]) &&
         c.k.int8_bias_relu && c.pieces.count > 0 && c.Kg <= c.k.kcg && !c.ep.fn &&
         (c.ep.act == Activation::none || c.ep.act == Activation::relu) && p->kh == 2 && p->kw == 2 && p->sh == 2 &&
         p->sw == 2 && p->pad_top == 0 && p->pad_left == 0 && 2 * p->oh <= c.g.oh && 2 * p->ow <= c.g.ow;
}

// The patch rows of the image in s.img in window order: for each pooled pixel its four
// convolution pixels (top left, top right, bottom left, bottom right); the rest are never computed.
// P pieces a row as a constant (the copies unroll, their offsets in registers), or 0: pc.count.
template <int P>
void gather_windows_fixed(const Conv& c, const Pieces& pc, const uint8_t* img, uint8_t* d) {
  const ConvGeometry& g = c.g;
  const int64_t C = g.c, line = c.wp * C, row_bytes = 4 * c.Kg, sx = g.sw * C, sy = g.sh * line;
  const int count = P ? P : pc.count;
  int64_t src[Pieces::kMax], dst[Pieces::kMax];
  for (int t = 0; t < count; ++t) src[t] = pc.src[t], dst[t] = pc.dst[t];
  const int64_t corner[4] = {0, sx, sy, sy + sx};
  const int64_t oh = c.pool->oh, ow = c.pool->ow;  // locals: the byte stores below may alias c
  for (int64_t py = 0; py < oh; ++py)
    for (int64_t px = 0; px < ow; ++px) {
      const uint8_t* window = img + 2 * py * sy + 2 * px * sx;
      for (int q = 0; q < 4; ++q, d += row_bytes) {
        const uint8_t* base = window + corner[q];
#pragma GCC unroll 16
        for (int t = 0; t < (P ? P : count); ++t) std::memcpy(d + dst[t], base + src[t], 8);
      }
    }
}

void gather_windows(const Conv& c, const Scratch& s, uint32_t* a) {
  const uint8_t* img = s.img.get();
  auto* d = reinterpret_cast<uint8_t*>(a);
  const ConvGeometry& g = c.g;
  if (c.k.windows_3x3 && g.c == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1)
    return c.k.windows_3x3(img, c.wp, c.pool->oh, c.pool->ow, d);  // Kg = 3: 12-byte rows
  with_piece_count(c.pieces.count, [&](auto p) { gather_windows_fixed<p.value>(c, c.pieces, img, d); });
}

// m window-ordered rows of a (m a multiple of 4) into m / 4 pooled rows of y.
void multiply_pool4(const Conv& c, const uint32_t* a, const float* rs, int64_t m, float* y) {
  const LowpKernels& k = c.k;
  const int64_t nr = k.nr, Kg = c.Kg, panels = c.base.npad / nr;
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t j0 = p * nr;
    const int n = static_cast<int>(std::min<int64_t>(nr, c.N - j0));
    const uint32_t* b = c.base.b + p * nr * Kg;
    detail::LowpTile t{rs, c.base.col_scale + j0, c.base.corr + j0};
    t.bias = c.ep.bias ? c.ep.bias + j0 : nullptr, t.relu = c.ep.act == Activation::relu;
    if (k.pool4_windows[0]) {  // every window in one call
      k.pool4_windows[2 * n <= nr](Kg, a, Kg, b, y + j0, c.N, false, t, static_cast<int>(m), n);
      continue;
    }
    for (int64_t ir = 0; ir < m; ir += k.mr) {
      const int mm = static_cast<int>(std::min<int64_t>(k.mr, m - ir));
      t.row_scale = rs + ir;
      k.pool4[2 * n <= nr][mm / 4](Kg, a + ir * Kg, Kg, b, y + ir / 4 * c.N + j0, c.N, false, t, mm, n);
    }
  }
}

// Images [i0, i1) of the batch, whole, on the calling thread.
void image_block(const Conv& c, const float* X, float* Y, int64_t i0, int64_t i1, Scratch& s) {
  const int64_t rows = c.rows;
  if (c.pool4) {
    const int64_t rows4 = 4 * c.pool->oh * c.pool->ow;
    for (int64_t b = i0; b < i1; ++b) {
      const float scale = quantize_image(c, X, b, s);
      const int64_t r = (b - i0) * rows4;
      std::fill(s.rs.get() + r, s.rs.get() + r + rows4, scale);
      gather_windows(c, s, s.a.get() + r * c.Kg);
    }
    return multiply_pool4(c, s.a.get(), s.rs.get(), (i1 - i0) * rows4, Y + i0 * rows4 / 4 * c.N);
  }
  for (int64_t b = i0; b < i1; ++b) {
    const float scale = quantize_image(c, X, b, s);
    const int64_t r = (b - i0) * rows;
    std::fill(s.rs.get() + r, s.rs.get() + r + rows, scale);
    gather(c, s, 0, rows, s.a.get() + r * c.Kg);
  }
  const int64_t m = (i1 - i0) * rows;
  if (!c.pool) return multiply(c, s.a.get(), s.rs.get(), m, Y + i0 * rows * c.N, i0 * rows);
  multiply(c, s.a.get(), s.rs.get(), m, s.out.get(), i0 * rows);
  pool_images(c, s.out.get(), Y + i0 * c.pool->oh * c.pool->ow * c.N, i1 - i0);
}

void check_pool(const MaxPoolGeometry& p) {
  FORGEML_CHECK_ARG(
      p.kh >= 1 && p.kw >= 1 && p.sh >= 1 && p.sw >= 1 && p.pad_top >= 0 && p.pad_left >= 0 && p.oh >= 0 && p.ow >= 0,
      "conv2d_int8: bad pooling geometry");
}

}  // namespace

void conv2d_int8_packed(const ConvGeometry& g, const float* X, const PackedInt8& B, const float* b_scale, float* Y,
                        const Epilogue& ep, int max_threads, const MaxPoolGeometry* pool, const Int8DenseTail* tail) {
  FORGEML_CHECK_ARG(g.n >= 0 && g.h >= 0 && g.w >= 0 && g.c >= 1 && g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 &&
                        g.dh >= 1 && g.dw >= 1 && g.pad_top >= 0 && g.pad_left >= 0 && g.oh >= 0 && g.ow >= 0,
                    "conv2d_int8: bad geometry");
  if (pool) check_pool(*pool);
  const int64_t K = g.kh * g.kw * g.c, N = B.n();
  FORGEML_CHECK_ARG(B.k() == K, "conv2d_int8: the kernel has ", B.k(), " rows, the patches ", K);
  // any oh / ow is safe: a window position outside the input reads zeros (the border)
  detail::check_packed("conv2d_int8", B, b_scale);
  const int64_t rows = g.oh * g.ow, M = g.n * rows;
  FORGEML_CHECK_ARG(M == 0 || N == 0 || (X && Y), "conv2d_int8: null pointer");
  const int64_t per_image = (pool ? pool->oh * pool->ow : rows) * N;  // Y's floats an image: a tail's row
  const int64_t widest = tail ? check_dense_tail(*tail, per_image) : 0;
  FORGEML_CHECK_ARG(!tail || g.n == 0 || tail->Y, "conv2d_int8: null tail output");
  if (M == 0 || N == 0 || (pool && pool->oh * pool->ow == 0)) {
    FORGEML_CHECK_ARG(!tail || g.n == 0, "conv2d_int8: a dense tail after an empty convolution output");
    return;
  }
  const LowpKernels& k = detail::lowp_kernels_for(B.isa(), 1);
  const int threads = detail::lowp_threads(M, N, K, max_threads);
  const int64_t Kg = (K + 3) / 4, npad = (N + k.nr - 1) / k.nr * k.nr;
  const int64_t hp = std::max(g.pad_top + g.h, (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  const int64_t wp = std::max(g.pad_left + g.w, (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1);
  Conv c{g,
         pool,
         k,
         ep,
         K,
         N,
         Kg,
         rows,
         hp,
         wp,
         Lowp{&k, &detail::kernel_for(B.isa()), 0, N, Kg, npad, nullptr, PackedInt8Access::panels(B), nullptr, b_scale,
              PackedInt8Access::corr(B), nullptr, N, nullptr},
         Pieces{},
         conv::active_pool_rows()};
  c.pieces = pieces_of(c);
  c.pool4 = pool4_applies(c);
  if (pool || rows <= kBlockRows) {
    const int64_t per_block = std::max<int64_t>(1, kBlockRows / rows), blocks = (g.n + per_block - 1) / per_block;
    parallel_for(
        blocks, 1,
        [&](int64_t b0, int64_t b1) {
          Scratch s(c, std::min(per_block, g.n), pool != nullptr);
          for (int64_t blk = b0; blk < b1; ++blk)
            image_block(c, X, Y, blk * per_block, std::min(g.n, (blk + 1) * per_block), s);
          if (tail) {
            const int64_t i0 = b0 * per_block, i1 = std::min(g.n, b1 * per_block);
            int8_dense_tail_rows(*tail, widest, Y + i0 * per_image, per_image, i0, i1);
          }
        },
        threads);
    return;
  }
  // large images: one at a time, quantized here, their rows in blocks over the threads
  Scratch s(c, 0, false);
  for (int64_t b = 0; b < g.n; ++b) {
    if (b > 0) check_interrupt();
    const float scale = quantize_image(c, X, b, s);
    parallel_for((rows + kBlockRows - 1) / kBlockRows, 1,
                 [&](int64_t b0, int64_t b1) {
                   Words a(static_cast<size_t>(kBlockRows * Kg + kSlack / 4));
                   std::memset(a.get(), 128, (kBlockRows * Kg + kSlack / 4) * 4);
                   std::unique_ptr<float[]> rs(new float[kBlockRows]);
                   std::fill(rs.get(), rs.get() + kBlockRows, scale);
                   for (int64_t blk = b0; blk < b1; ++blk) {
                     const int64_t r0 = blk * kBlockRows, r1 = std::min(rows, r0 + kBlockRows);
                     gather(c, s, r0, r1, a.get());
                     multiply(c, a.get(), rs.get(), r1 - r0, Y + (b * rows + r0) * N, b * rows + r0);
                   }
                 },
                 threads);
  }
  if (tail)
    int8_dense_chain(g.n, Y, per_image, tail->layers, tail->n_layers, tail->softmax, tail->Y, tail->ldy, max_threads);
}

}  // namespace forgeml::gemm
