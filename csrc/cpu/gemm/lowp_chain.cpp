// int8_dense_chain and softmax_rows (forgeml/gemm_lowp_chain.h).
#include <algorithm>
#include <memory>

#include "cpu/dense_step/kernels.h"
#include "forgeml/check.h"
#include "forgeml/gemm_lowp_chain.h"
#include "forgeml/parallel.h"

namespace forgeml::gemm {

void softmax_rows(int64_t M, int64_t N, float* Y, int64_t ldy) {
  FORGEML_CHECK_ARG(M >= 0 && N >= 1 && ldy >= N, "softmax_rows: bad sizes");
  const auto& k = dense::detail::active_kernels();  // the fused Dense step's softmax, vectorised
  if (ldy == N) return k.softmax_rows(Y, M, N);
  for (int64_t i = 0; i < M; ++i) k.softmax_rows(Y + i * ldy, 1, N);
}

int64_t check_dense_tail(const Int8DenseTail& tail, int64_t k) {
  FORGEML_CHECK_ARG(tail.n_layers >= 1 && tail.layers, "int8_dense_chain: no layers");
  int64_t widest = 0;
  for (int l = 0; l < tail.n_layers; ++l) {
    const Int8Dense& d = tail.layers[l];
    FORGEML_CHECK_ARG(d.w && d.w_scale, "int8_dense_chain: layer ", l, " has no kernel or scale");
    if (l == 0)
      FORGEML_CHECK_ARG(d.w->k() == k, "int8_dense_chain: layer 0 takes ", d.w->k(), " inputs, its input has ", k);
    else
      FORGEML_CHECK_ARG(d.w->k() == tail.layers[l - 1].w->n(), "int8_dense_chain: layer ", l, " takes ", d.w->k(),
                        " inputs but layer ", l - 1, " gives ", tail.layers[l - 1].w->n());
    widest = std::max(widest, d.w->n());
  }
  FORGEML_CHECK_ARG(tail.ldy >= tail.layers[tail.n_layers - 1].w->n(), "int8_dense_chain: bad output stride");
  return widest;
}

void int8_dense_tail_rows(const Int8DenseTail& tail, int64_t widest, const float* X, int64_t ldx, int64_t r0,
                          int64_t r1) {
  const int64_t m = r1 - r0, N = tail.layers[tail.n_layers - 1].w->n();
  if (m <= 0) return;
  std::unique_ptr<float[]> buf(new float[static_cast<size_t>(2 * m * widest)]);
  const float* in = X;
  int64_t ld_in = ldx;
  for (int l = 0; l < tail.n_layers; ++l) {
    const Int8Dense& d = tail.layers[l];
    const bool last = l + 1 == tail.n_layers;
    float* out = last ? tail.Y + r0 * tail.ldy : buf.get() + (l & 1) * m * widest;
    const int64_t ld_out = last ? tail.ldy : d.w->n();
    gemm_int8_packed(m, nullptr, in, ld_in, nullptr, *d.w, d.w_scale, out, ld_out, Epilogue{d.bias, d.act}, 1);
    in = out, ld_in = ld_out;
  }
  if (tail.softmax) softmax_rows(m, N, tail.Y + r0 * tail.ldy, tail.ldy);
}

void int8_dense_chain(int64_t M, const float* X, int64_t ldx, const Int8Dense* layers, int n_layers, bool softmax,
                      float* Y, int64_t ldy, int max_threads) {
  FORGEML_CHECK_ARG(n_layers >= 1 && layers && layers[0].w, "int8_dense_chain: no layers");
  const Int8DenseTail tail{layers, n_layers, softmax, Y, ldy};
  const int64_t K0 = layers[0].w->k(), widest = check_dense_tail(tail, K0);
  FORGEML_CHECK_ARG(M >= 0 && ldx >= std::max<int64_t>(1, K0), "int8_dense_chain: bad sizes");
  if (M == 0) return;
  FORGEML_CHECK_ARG(X && Y, "int8_dense_chain: null pointer");
  parallel_for(
      M, 64, [&](int64_t r0, int64_t r1) { int8_dense_tail_rows(tail, widest, X + r0 * ldx, ldx, r0, r1); },
      max_threads);
}

}  // namespace forgeml::gemm
