// Fused Dense-stack training steps: see dense_step.h for the contract.
#include "cpu/dense_step/dense_step.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/gemm.h"
#include "forgeml/parallel.h"

namespace forgeml::dense {
namespace {

using gemm::Activation;

// ------------------------------------------------------------------------------- kernels

// g *= act'(h), with the activation's derivative written in terms of its output h.
void activation_backward(Activation act, const float* h, float* g, int64_t n) {
  switch (act) {
    case Activation::relu:
      for (int64_t i = 0; i < n; ++i) g[i] = h[i] > 0.f ? g[i] : 0.f;
      break;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) g[i] *= h[i] * (1.f - h[i]);
      break;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) g[i] *= 1.f - h[i] * h[i];
      break;
    default:
      break;
  }
}

// Softmax cross-entropy on logits z (m, c) in place: z becomes the gradient of
// sum_i w_i * loss_i / m. Adds the weighted loss and the argmax hits to t.
void softmax_xent(float* z, int64_t m, int64_t c, const int64_t* y, const double* w, Totals& t) {
  const float inv_m = 1.f / static_cast<float>(m);
  for (int64_t i = 0; i < m; ++i) {
    float* r = z + i * c;
    int64_t arg = 0;
    float mx = r[0];
    for (int64_t j = 1; j < c; ++j)
      if (r[j] > mx) mx = r[j], arg = j;
    const int64_t yi = y[i];
    const float zy = r[yi] - mx;
    float s = 0.f;
    for (int64_t j = 0; j < c; ++j) {
      r[j] = std::exp(r[j] - mx);
      s += r[j];
    }
    const double wi = w ? w[i] : 1.0;
    t.loss += wi * (std::log(static_cast<double>(s)) - zy);
    t.correct += arg == yi ? 1.0 : 0.0;
    const float scale = static_cast<float>(wi) * inv_m / s;
    for (int64_t j = 0; j < c; ++j) r[j] *= scale;
    r[yi] -= static_cast<float>(wi) * inv_m;
  }
  t.count += m;
}

// db = column sums of g (m, n).
void column_sums(const float* g, int64_t m, int64_t n, float* db) {
  std::fill(db, db + n, 0.f);
  for (int64_t i = 0; i < m; ++i) {
    const float* r = g + i * n;
    for (int64_t j = 0; j < n; ++j) db[j] += r[j];
  }
}

double sum_squares(const float* g, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
  return s;
}

void scale(float* g, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) g[i] *= f;
}

// Per-variable clipnorm (Keras 3 clips each gradient to its own norm), global_clipnorm, clipvalue.
void clip(const Net& net, const Optimizer& o) {
  float* g = net.grads;
  if (o.clipvalue > 0) {
    const float c = static_cast<float>(o.clipvalue);
    for (int64_t i = 0; i < net.n_params; ++i) g[i] = std::min(c, std::max(-c, g[i]));
  } else if (o.clipnorm > 0) {
    for (int l = 0; l < net.layers; ++l) {
      const int64_t sizes[2] = {net.dims[l] * net.dims[l + 1], net.dims[l + 1]};
      const int64_t offs[2] = {net.w_off[l], net.b_off[l]};
      for (int k = 0; k < 2; ++k) {
        if (offs[k] < 0) continue;
        const double norm = std::sqrt(sum_squares(g + offs[k], sizes[k]));
        if (norm > o.clipnorm) scale(g + offs[k], sizes[k], static_cast<float>(o.clipnorm / norm));
      }
    }
  } else if (o.global_clipnorm > 0) {
    const double norm = std::sqrt(sum_squares(g, net.n_params));
    if (norm > o.global_clipnorm) scale(g, net.n_params, static_cast<float>(o.global_clipnorm / norm));
  }
}

// One optimizer update of all parameters; t is the 1-based step number.
void update(const Net& net, const Optimizer& o, double lr, int64_t t) {
  float* p = net.params;
  const float* g = net.grads;
  const int64_t n = net.n_params;
  if (o.weight_decay > 0) scale(p, n, static_cast<float>(1.0 - o.weight_decay * lr));
  const float flr = static_cast<float>(lr);
  switch (o.kind) {
    case OptKind::sgd: {
      if (o.momentum == 0.0) {
        for (int64_t i = 0; i < n; ++i) p[i] -= flr * g[i];
        break;
      }
      float* m = o.momentum_slot;
      const float mu = static_cast<float>(o.momentum);
      if (o.nesterov) {
        for (int64_t i = 0; i < n; ++i) {
          m[i] = mu * m[i] - flr * g[i];
          p[i] += mu * m[i] - flr * g[i];
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          m[i] = mu * m[i] - flr * g[i];
          p[i] += m[i];
        }
      }
      break;
    }
    case OptKind::adam: {
      const float b1 = static_cast<float>(1.0 - o.beta_1), b2 = static_cast<float>(1.0 - o.beta_2);
      const float eps = static_cast<float>(o.epsilon);
      const float alpha = static_cast<float>(lr * std::sqrt(1.0 - std::pow(o.beta_2, static_cast<double>(t))) /
                                             (1.0 - std::pow(o.beta_1, static_cast<double>(t))));
      float *m = o.momentum_slot, *v = o.velocity, *vh = o.velocity_hat;
      for (int64_t i = 0; i < n; ++i) {
        m[i] += (g[i] - m[i]) * b1;
        v[i] += (g[i] * g[i] - v[i]) * b2;
        float vv = v[i];
        if (vh) vv = vh[i] = std::max(vh[i], vv);
        p[i] -= alpha * (m[i] / (std::sqrt(vv) + eps));
      }
      break;
    }
    case OptKind::rmsprop: {
      const float rho = static_cast<float>(o.rho), eps = static_cast<float>(o.epsilon);
      const float mu = static_cast<float>(o.momentum);
      float *v = o.velocity, *a = o.average_gradient, *m = o.momentum_slot;
      for (int64_t i = 0; i < n; ++i) {
        v[i] = rho * v[i] + (1.f - rho) * (g[i] * g[i]);
        float denom = v[i];
        if (a) {
          a[i] = rho * a[i] + (1.f - rho) * g[i];
          denom -= a[i] * a[i];
        }
        const float step = flr * (g[i] / std::sqrt(denom + eps));
        if (m) {
          m[i] = mu * m[i] + step;
          p[i] -= m[i];
        } else {
          p[i] -= step;
        }
      }
      break;
    }
  }
}

void check_net(const Net& net) {
  FORGEML_CHECK_ARG(net.layers >= 1, "layers: expected at least one Dense layer");
  for (int l = 0; l < net.layers; ++l) {
    FORGEML_CHECK_ARG(net.dims[l] > 0 && net.dims[l + 1] > 0, "dims: expected positive sizes");
    FORGEML_CHECK_ARG(net.w_off[l] >= 0 && net.w_off[l] + net.dims[l] * net.dims[l + 1] <= net.n_params,
                      "w_off: kernel ", l, " lies outside params");
    FORGEML_CHECK_ARG(net.b_off[l] < 0 || net.b_off[l] + net.dims[l + 1] <= net.n_params,
                      "b_off: bias ", l, " lies outside params");
    FORGEML_CHECK_ARG(net.acts[l] >= 0 && net.acts[l] <= 3, "acts: expected none, relu, sigmoid or tanh");
  }
}

// Per-call workspace: the activations of every layer and two gradient buffers.
struct Work {
  std::vector<float> xb;                // gathered input rows (m, dims[0])
  std::vector<std::vector<float>> h;    // layer outputs (m, dims[l+1])
  std::vector<float> g0, g1;            // gradients wrt layer outputs, ping-pong
  std::vector<int64_t> yb;
  std::vector<double> wb;
  Work(const Net& net, int64_t m) : xb(m * net.dims[0]), h(net.layers), yb(m), wb(m) {
    int64_t widest = 0;
    for (int l = 0; l < net.layers; ++l) {
      h[l].resize(m * net.dims[l + 1]);
      widest = std::max(widest, net.dims[l + 1]);
    }
    g0.resize(m * widest);
    g1.resize(m * widest);
  }
};

// Forward of rows x (m, dims[0]); the last layer leaves logits in w.h.back().
void forward_rows(const Net& net, const float* x, int64_t m, Work& w) {
  const float* a = x;
  for (int l = 0; l < net.layers; ++l) {
    const int64_t k = net.dims[l], n = net.dims[l + 1];
    gemm::Epilogue ep;
    ep.bias = net.b_off[l] >= 0 ? net.params + net.b_off[l] : nullptr;
    ep.act = l + 1 < net.layers ? static_cast<Activation>(net.acts[l]) : Activation::none;
    gemm::sgemm(false, false, m, n, k, 1.f, a, k, net.params + net.w_off[l], n, 0.f, w.h[l].data(), n, ep);
    a = w.h[l].data();
  }
}

}  // namespace

// ------------------------------------------------------------------------------- entry points

Totals train_steps(const Net& net, const Data& d, const Optimizer& opt, const double* lrs, int64_t t0) {
  check_net(net);
  FORGEML_CHECK_ARG(d.batch > 0, "batch_size: expected > 0, got ", d.batch);
  Totals tot;
  if (d.steps <= 0 || d.n == 0) return tot;
  const int L = net.layers;
  const int64_t c = net.dims[L];
  Work w(net, std::min(d.batch, d.n));
  for (int64_t s = 0; s < d.steps; ++s) {
    const int64_t r0 = (d.first_step + s) * d.batch;
    FORGEML_CHECK_ARG(r0 < d.n, "steps: step ", d.first_step + s, " starts past the data (", d.n, " rows)");
    const int64_t m = std::min(d.batch, d.n - r0);
    // gather the batch (rows, labels, weights) in the run's row order
    const float* xb = d.x + r0 * net.dims[0];
    const int64_t* yb = d.y + r0;
    const double* wb = d.sw ? d.sw + r0 : nullptr;
    if (d.perm) {
      const int64_t d0 = net.dims[0];
      for (int64_t i = 0; i < m; ++i) {
        const int64_t row = d.perm[r0 + i];
        std::memcpy(w.xb.data() + i * d0, d.x + row * d0, sizeof(float) * d0);
        w.yb[i] = d.y[row];
        if (d.sw) w.wb[i] = d.sw[row];
      }
      xb = w.xb.data();
      yb = w.yb.data();
      wb = d.sw ? w.wb.data() : nullptr;
    }
    forward_rows(net, xb, m, w);
    float* g = w.h[L - 1].data();
    softmax_xent(g, m, c, yb, wb, tot);  // logits -> dloss/dlogits in place
    for (int l = L - 1; l >= 0; --l) {
      const int64_t k = net.dims[l], n = net.dims[l + 1];
      const float* a = l == 0 ? xb : w.h[l - 1].data();
      gemm::sgemm(true, false, k, n, m, 1.f, a, k, g, n, 0.f, net.grads + net.w_off[l], n);
      if (net.b_off[l] >= 0) column_sums(g, m, n, net.grads + net.b_off[l]);
      if (l == 0) break;
      float* gp = g == w.g0.data() ? w.g1.data() : w.g0.data();
      gemm::sgemm(false, true, m, k, n, 1.f, g, n, net.params + net.w_off[l], n, 0.f, gp, k);
      activation_backward(static_cast<Activation>(net.acts[l - 1]), w.h[l - 1].data(), gp, m * k);
      g = gp;
    }
    clip(net, opt);
    update(net, opt, lrs[s], t0 + s + 1);
    if ((s & 63) == 63) check_interrupt();
  }
  return tot;
}

void forward(const Net& net, const float* x, int64_t n, int64_t batch, bool softmax, float* out) {
  check_net(net);
  FORGEML_CHECK_ARG(batch > 0, "batch_size: expected > 0, got ", batch);
  if (n == 0) return;
  const int L = net.layers;
  const int64_t c = net.dims[L], d0 = net.dims[0];
  Work w(net, std::min(batch, n));
  for (int64_t r0 = 0; r0 < n; r0 += batch) {
    const int64_t m = std::min(batch, n - r0);
    forward_rows(net, x + r0 * d0, m, w);
    float* dst = out + r0 * c;
    std::memcpy(dst, w.h[L - 1].data(), sizeof(float) * m * c);
    if (softmax) {
      for (int64_t i = 0; i < m; ++i) {
        float* r = dst + i * c;
        const float mx = *std::max_element(r, r + c);
        float s = 0.f;
        for (int64_t j = 0; j < c; ++j) s += (r[j] = std::exp(r[j] - mx));
        for (int64_t j = 0; j < c; ++j) r[j] /= s;
      }
    }
  }
}

}  // namespace forgeml::dense
