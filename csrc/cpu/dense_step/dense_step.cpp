// Fused Dense-stack training steps: see dense_step.h for the contract.
#include "cpu/dense_step/dense_step.h"
#include "cpu/dense_step/kernels.h"
#include "cpu/rnn/steps.h"  // run_steps: phases of tasks over steps

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "forgeml/check.h"
#include "forgeml/gemm.h"
#include "forgeml/parallel.h"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace forgeml::dense {
namespace {

using gemm::Activation;

// Per-variable clipnorm (Keras 3 clips each gradient to its own norm), global_clipnorm, clipvalue.
void clip(const Net& net, const Optimizer& o, const detail::Kernels& k) {
  float* g = net.grads;
  if (o.clipvalue > 0) {
    k.clip_values(g, net.n_params, static_cast<float>(o.clipvalue));
  } else if (o.clipnorm > 0) {
    for (int l = 0; l < net.layers; ++l) {
      const int64_t sizes[2] = {net.dims[l] * net.dims[l + 1], net.dims[l + 1]};
      const int64_t offs[2] = {net.w_off[l], net.b_off[l]};
      for (int v = 0; v < 2; ++v) {
        if (offs[v] < 0) continue;
        const double norm = std::sqrt(k.sum_squares(g + offs[v], sizes[v]));
        if (norm > o.clipnorm) k.scale(g + offs[v], sizes[v], static_cast<float>(o.clipnorm / norm));
      }
    }
  } else if (o.global_clipnorm > 0) {
    const double norm = std::sqrt(k.sum_squares(g, net.n_params));
    if (norm > o.global_clipnorm) k.scale(g, net.n_params, static_cast<float>(o.global_clipnorm / norm));
  }
}

// Flush subnormals to zero on this thread while the step runs: the Adam/momentum slots of units
// whose gradient stays zero (dead ReLUs, dropped inputs) decay into subnormals, which make the
// update loop several times slower on x86. (XLA's CPU backend does the same.)
class FlushDenormals {
 public:
#if defined(__x86_64__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

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

// One slice of a step's batch: rows [i0, i1) of the m rows starting at r0 in the run's row order;
// forward, loss gradient (scaled by the whole batch), backward, weight gradients into grads.
void slice_gradients(const Net& net, const Data& d, int64_t r0, int64_t m, int64_t i0, int64_t i1, Work& w,
                     float* grads, Totals& tot, const detail::Kernels& k) {
  const int L = net.layers;
  const int64_t c = net.dims[L], d0 = net.dims[0], rows = i1 - i0;
  const float* xb = d.x + (r0 + i0) * d0;
  const int64_t* yb = d.y + r0 + i0;
  const double* wb = d.sw ? d.sw + r0 + i0 : nullptr;
  if (d.perm) {  // gather the slice (rows, labels, weights) in the run's row order
    constexpr int64_t kAhead = 8;  // rows prefetched ahead: random rows defeat the hardware prefetcher
    const int64_t* order = d.perm + r0 + i0;
    for (int64_t i = 0; i < rows; ++i) {
      if (i + kAhead < rows) {
        const char* next = reinterpret_cast<const char*>(d.x + order[i + kAhead] * d0);
        for (int64_t b = 0; b < d0 * 4; b += 64) __builtin_prefetch(next + b);
      }
      const int64_t row = order[i];
      std::memcpy(w.xb.data() + i * d0, d.x + row * d0, sizeof(float) * d0);
      w.yb[i] = d.y[row];
      if (d.sw) w.wb[i] = d.sw[row];
    }
    xb = w.xb.data();
    yb = w.yb.data();
    wb = d.sw ? w.wb.data() : nullptr;
  }
  forward_rows(net, xb, rows, w);
  float* g = w.h[L - 1].data();
  k.softmax_xent(g, rows, c, yb, wb, m, tot);  // logits -> dloss/dlogits in place
  for (int l = L - 1; l >= 0; --l) {
    const int64_t kd = net.dims[l], n = net.dims[l + 1];
    const float* a = l == 0 ? xb : w.h[l - 1].data();
    gemm::sgemm(true, false, kd, n, rows, 1.f, a, kd, g, n, 0.f, grads + net.w_off[l], n);
    if (net.b_off[l] >= 0) k.column_sums(g, rows, n, grads + net.b_off[l]);
    if (l == 0) break;
    float* gp = g == w.g0.data() ? w.g1.data() : w.g0.data();
    gemm::sgemm(false, true, rows, kd, n, 1.f, g, n, net.params + net.w_off[l], n, 0.f, gp, kd);
    k.activation_backward(net.acts[l - 1], w.h[l - 1].data(), gp, rows * kd);
    g = gp;
  }
}

// A batch of m rows runs as clamp(m / kSliceRows, 1, kMaxSlices) row slices on the threads (data
// parallel: each slice runs every layer on its rows; the weight gradients are summed in slice
// order). Slices rather than threads inside each GEMM: a Dense stack's GEMMs are too small to
// split well one by one. The slices depend on m only, so the thread count never changes a result.
constexpr int64_t kSliceRows = 128;
constexpr int64_t kMaxSlices = 8;

int slices_for(int64_t m) { return static_cast<int>(std::clamp<int64_t>(m / kSliceRows, 1, kMaxSlices)); }

// grads[i] += each other slice's gradient in slice order, over params [i0, i1).
void sum_slices(float* grads, const std::vector<std::vector<float>>& others, int used, int64_t i0, int64_t i1) {
  for (int t = 1; t < used; ++t) {
    const float* src = others[t - 1].data();
    for (int64_t i = i0; i < i1; ++i) grads[i] += src[i];
  }
}

// The step's end on every thread, each on its own range of parameters (update_range): the slices'
// sum, then clipvalue and the optimizer, all elementwise, so the split never changes a value. On
// one thread this tail was ~15% of the seed MLP's step with the other core idle, and the weights a
// thread updates stay in its cache for the next step's GEMMs (the other thread's reads of them
// were slower every step). Clipping by a norm needs the whole gradient and stays on the caller.
constexpr int64_t kAlign = 16;              // ranges on 64-byte lines: no line written by two threads
constexpr int64_t kParamsPerThread = 4096;  // fewer: a thread's share is shorter than handing it over

int update_ranges(const Net& net) {
  return static_cast<int>(std::clamp<int64_t>(net.n_params / kParamsPerThread, 1, num_threads()));
}

// Range j of nt (64-byte aligned) of the parameters: the slices' sum, then clipvalue and the
// optimizer over it.
void update_range(const Net& net, const Optimizer& opt, const std::vector<std::vector<float>>& others, int used,
                  double lr, int64_t t, const detail::Kernels& k, int j, int nt) {
  const int64_t n = net.n_params;
  auto edge = [&](int e) { return e == nt ? n : std::min(n, (n * e / nt + kAlign - 1) / kAlign * kAlign); };
  const int64_t i0 = edge(j), i1 = edge(j + 1);
  if (i0 >= i1) return;
  sum_slices(net.grads, others, used, i0, i1);
  if (opt.clipvalue > 0) k.clip_values(net.grads + i0, i1 - i0, static_cast<float>(opt.clipvalue));
  Net part = net;
  part.params += i0, part.grads += i0, part.n_params = i1 - i0;
  Optimizer o = opt;
  for (float** slot : {&o.momentum_slot, &o.velocity, &o.velocity_hat, &o.average_gradient})
    if (*slot) *slot += i0;
  k.update(part, o, lr, t);
}

}  // namespace

// ------------------------------------------------------------------------------- entry points

Totals train_steps(const Net& net, const Data& d, const Optimizer& opt, const double* lrs, int64_t t0) {
  check_net(net);
  FORGEML_CHECK_ARG(d.batch > 0, "batch_size: expected > 0, got ", d.batch);
  Totals tot;
  if (d.steps <= 0 || d.n == 0) return tot;
  const int64_t c = net.dims[net.layers];
  for (int64_t i = 0; i < d.n; ++i) {  // every index below is checked once here
    FORGEML_CHECK_ARG(d.y[i] >= 0 && d.y[i] < c, "y: label ", d.y[i], " at row ", i, " is outside [0, ", c, ")");
    FORGEML_CHECK_ARG(!d.perm || (d.perm[i] >= 0 && d.perm[i] < d.n), "perm: entry ", i, " is not a row index");
  }
  FlushDenormals ftz;
  ThreadCountScope threads_scope;
  const int64_t full = std::min(d.batch, d.n);
  const int slices = slices_for(full);
  // slice 0 may run a whole batch; the others at most half of one. Slice 0's gradients go straight
  // to net.grads, the others' to their own buffers.
  std::vector<Work> work;
  work.emplace_back(net, full);
  for (int s = 1; s < slices; ++s) work.emplace_back(net, (full + 1) / 2);
  std::vector<std::vector<float>> grads(slices - 1, std::vector<float>(net.n_params));
  std::vector<Totals> part(slices);
  const detail::Kernels& k = detail::active_kernels();
  auto rows_of = [&](int64_t s) {  // (first row, rows) of step s
    const int64_t r0 = (d.first_step + s) * d.batch;
    FORGEML_CHECK_ARG(r0 < d.n, "steps: step ", d.first_step + s, " starts past the data (", d.n, " rows)");
    return std::pair<int64_t, int64_t>{r0, std::min(d.batch, d.n - r0)};
  };
  auto slice = [&](int64_t s, int t) {
    const auto [r0, m] = rows_of(s);
    const int used = slices_for(m);
    if (t >= used) return;
    float* g = t == 0 ? net.grads : grads[t - 1].data();
    slice_gradients(net, d, r0, m, m * t / used, m * (t + 1) / used, work[t], g, part[t], k);
  };
  if (slices > 1 && num_threads() > 1 && opt.clipnorm <= 0 && opt.global_clipnorm <= 0) {
    rows_of(d.steps - 1);  // every step's rows checked before any runs
    // Each step: its slices (data parallel), then the sum of their gradients and the update over
    // ranges of the parameters, every range on its own; so a step is two phases of tasks, run by
    // one thread-pool call per 32 steps (rnn/steps.h) instead of two calls a step, whose wake-ups
    // and joins were ~9% of the seed MLP's epoch. Elementwise per range: same bits as one thread.
    const int ranges = update_ranges(net);
    rnn::run_steps(
        std::max(slices, ranges), d.steps, false,
        [&](int64_t t, int64_t s) {
          FlushDenormals worker_ftz;
          if (t < slices) slice(s, static_cast<int>(t));
        },
        [&](int64_t j, int64_t s) {
          FlushDenormals worker_ftz;
          if (j >= ranges) return;
          update_range(net, opt, grads, slices_for(rows_of(s).second), lrs[s], t0 + s + 1, k, static_cast<int>(j),
                       ranges);
        });
  } else {
    for (int64_t s = 0; s < d.steps; ++s) {
      const int used = slices_for(rows_of(s).second);
      if (used == 1) {
        slice(s, 0);
      } else {
        parallel_run(std::min(used, num_threads()), [&](int tid, int n) {
          FlushDenormals worker_ftz;
          for (int t = tid; t < used; t += n) slice(s, t);
        });
      }
      sum_slices(net.grads, grads, used, 0, net.n_params);
      clip(net, opt, k);
      k.update(net, opt, lrs[s], t0 + s + 1);
      if ((s & 63) == 63) check_interrupt();
    }
  }
  for (const Totals& p : part) {
    tot.loss += p.loss;
    tot.correct += p.correct;
    tot.count += p.count;
  }
  return tot;
}

void optimizer_update(float* params, const float* grads, int64_t n, const Optimizer& opt, double lr, int64_t t) {
  Net flat;
  flat.params = params;
  flat.grads = const_cast<float*>(grads);
  flat.n_params = n;
  FlushDenormals ftz;
  detail::active_kernels().update(flat, opt, lr, t);
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
    if (softmax) detail::active_kernels().softmax_rows(dst, m, c);
  }
}

}  // namespace forgeml::dense
