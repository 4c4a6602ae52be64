// Convolution on the shared SGEMM (gemm.h): the path for CPUs without AVX-512 (portable, and AVX2
// where its own kernels, below, do not apply).
//   x is (N, H, W, C), w is (KH, KW, C, O) = a (K, O) matrix, y is (N, OH, OW, O).
// The patch matrix is built in chunks of rows (never whole for large inputs):
//   forward:         y[chunk] = act(cols @ w + bias)        (the bias/activation epilogue)
//   backward-data:   dcols = dy[chunk] @ w^T, scattered back into dx (col2im)
//   backward-weight: dw += cols^T @ dy[chunk]
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/conv/conv.h"
#include "cpu/conv/kernels.h"
#include "cpu/conv/winograd.h"
#include "forgeml/parallel.h"

namespace forgeml::conv {

namespace {

// Rows of about 1 MiB of patches per chunk.
int64_t chunk_rows(const Geom& g) { return std::max<int64_t>(64, (int64_t{1} << 18) / std::max<int64_t>(g.K(), 1)); }

// cols (rows, K) = patches of pixels [m0, m0 + rows) (pixels counted over the whole batch).
void im2col(const Geom& g, const float* x, int64_t m0, int64_t rows, float* cols) {
  const int64_t K = g.K(), P = g.OH * g.OW;
  parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int64_t m = m0 + i, n = m / P, p = m % P, oh = p / g.OW, ow = p % g.OW;
      float* dst = cols + i * K;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        int64_t ih = oh * g.sh + kh * g.dh - g.pt;
        for (int64_t kw = 0; kw < g.KW; ++kw, dst += g.C) {
          int64_t iw = ow * g.sw + kw * g.dw - g.pl;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
            std::memset(dst, 0, sizeof(float) * g.C);
          else
            std::memcpy(dst, x + ((n * g.H + ih) * g.W + iw) * g.C, sizeof(float) * g.C);
        }
      }
    }
  });
}

// dx += col2im(dcols) for pixels [m0, m0 + rows). Patches overlap only inside an image, so the
// threads split the chunk at image boundaries: each image's pixels stay on one thread.
void col2im(const Geom& g, const float* dcols, int64_t m0, int64_t rows, float* dx) {
  const int64_t K = g.K(), P = g.OH * g.OW;
  const int64_t n0 = m0 / P, n1 = (m0 + rows - 1) / P + 1;  // images the chunk touches
  parallel_for(n1 - n0, 1, [&](int64_t b, int64_t e) {
    const int64_t first = std::max(m0, (n0 + b) * P), last = std::min(m0 + rows, (n0 + e) * P);
    for (int64_t m = first; m < last; ++m) {
      int64_t n = m / P, p = m % P, oh = p / g.OW, ow = p % g.OW;
      const float* src = dcols + (m - m0) * K;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        int64_t ih = oh * g.sh + kh * g.dh - g.pt;
        for (int64_t kw = 0; kw < g.KW; ++kw, src += g.C) {
          int64_t iw = ow * g.sw + kw * g.dw - g.pl;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
          float* d = dx + ((n * g.H + ih) * g.W + iw) * g.C;
          for (int64_t c = 0; c < g.C; ++c) d[c] += src[c];
        }
      }
    }
  });
}

bool is_pointwise(const Geom& g) {  // 1x1, stride 1, no padding: x is already the patch matrix
  return g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pb == 0 && g.pl == 0 && g.pr == 0;
}

void forward_gemm(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act,
                  float* y) {
  const int64_t M = g.N * g.OH * g.OW, K = g.K();
  gemm::Epilogue ep;
  ep.bias = bias;
  ep.act = act;
  if (is_pointwise(g)) return gemm::sgemm(false, false, M, g.O, K, 1.f, x, K, w, g.O, 0.f, y, g.O, ep);
  const int64_t rows = chunk_rows(g);
  std::vector<float> cols(std::min(rows, M) * K);
  for (int64_t m0 = 0; m0 < M; m0 += rows) {
    int64_t r = std::min(rows, M - m0);
    im2col(g, x, m0, r, cols.data());
    gemm::sgemm(false, false, r, g.O, K, 1.f, cols.data(), K, w, g.O, 0.f, y + m0 * g.O, g.O, ep);
    check_interrupt();
  }
}

void backward_gemm(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw) {
  const int64_t M = g.N * g.OH * g.OW, K = g.K();
  if (is_pointwise(g)) {
    if (dx) gemm::sgemm(false, true, M, K, g.O, 1.f, dy, g.O, w, g.O, 0.f, dx, K);
    if (dw) gemm::sgemm(true, false, K, g.O, M, 1.f, x, K, dy, g.O, 0.f, dw, g.O);
    return;
  }
  const int64_t rows = chunk_rows(g);
  std::vector<float> cols(std::min(rows, M) * K);
  for (int64_t m0 = 0; m0 < M; m0 += rows) {
    int64_t r = std::min(rows, M - m0);
    if (dw) {
      im2col(g, x, m0, r, cols.data());
      gemm::sgemm(true, false, K, g.O, r, 1.f, cols.data(), K, dy + m0 * g.O, g.O, 1.f, dw, g.O);
    }
    if (dx) {
      gemm::sgemm(false, true, r, K, g.O, 1.f, dy + m0 * g.O, g.O, w, g.O, 0.f, cols.data(), K);
      col2im(g, cols.data(), m0, r, dx);
    }
    check_interrupt();
  }
}

// backward_gemm accumulates into dx and dw: zero them first.
void backward_zeroed(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  if (db) bias_grad(g, dy, db);
  if (dx) std::fill(dx, dx + g.N * g.H * g.W * g.C, 0.f);
  if (dw) std::fill(dw, dw + g.K() * g.O, 0.f);
  backward_gemm(g, x, w, dy, dx, dw);
}

}  // namespace

void kernels_portable(Kernels& k) { k = {&forward_gemm, &backward_zeroed, "portable"}; }

#if defined(__x86_64__)
// AVX2: 3x3 stride-1 kernels on enough channels through Winograd (AVX2 transforms), inputs with
// few channels through the direct kernels, the rest on the GEMM path (gemm's AVX2 micro-kernel).
namespace {
void forward_avx2(const Geom& g, const float* x, const float* w, const float* bias, gemm::Activation act, float* y) {
  if (winograd_applies(g)) return winograd_forward_avx2(g, x, w, bias, act, y);
  if (direct_avx2_applies(g)) return direct_forward_avx2(g, x, w, bias, act, y);
  forward_gemm(g, x, w, bias, act, y);
}

// Backward: a 3x3 stride-1 kernel through Winograd (the data gradient is a forward of dy with the
// flipped kernel, the weight gradient has its own transforms: winograd.h); the data and weight
// gradients of inputs with few channels by the direct kernels; the rest on the GEMM path.
void backward_avx2(const Geom& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                   float* db) {
  Geom f;
  const bool wino_dx = dx && flipped_geometry(g, f) && winograd_applies(f);
  const bool direct_dx = dx && !wino_dx && direct_data_grad_avx2_applies(g);
  const bool own_dx = wino_dx || direct_dx;
  const bool own_dw = dw && (winograd_applies(g) || direct_avx2_applies(g));
  if (!own_dx && !own_dw) return backward_zeroed(g, x, w, dy, dx, dw, db);
  if (wino_dx) {
    std::vector<float> wf(g.K() * g.O);
    flip_weights(g, w, wf.data());
    winograd_forward_avx2(f, dy, wf.data(), nullptr, gemm::Activation::none, dx);
    check_interrupt();
  }
  if (direct_dx) {
    direct_data_grad_avx2(g, w, dy, dx);
    check_interrupt();
  }
  if (own_dw) {
    if (winograd_applies(g)) winograd_weight_grad_avx2(g, x, dy, dw);
    else direct_weight_grad_avx2(g, x, dy, dw);
    check_interrupt();
  }
  if ((dx && !own_dx) || (dw && !own_dw)) backward_zeroed(g, x, w, dy, own_dx ? nullptr : dx, own_dw ? nullptr : dw, db);
  else if (db) bias_grad(g, dy, db);
}
}  // namespace

bool kernels_avx2(Kernels& k) {
  k = {&forward_avx2, &backward_avx2, "avx2"};
  return true;
}
#else
bool kernels_avx2(Kernels&) { return false; }
#endif

}  // namespace forgeml::conv
