// Fused training steps for a stack of Dense layers ending in softmax + sparse cross-entropy.
//
// One call runs many steps (a whole epoch) with no Python in between: per step the forward
// matmuls with bias and activation in the GEMM epilogue, the stable softmax cross-entropy and its
// gradient, the backward matmuls, per-variable clipping and the optimizer update. It is the same
// arithmetic as forgeml.keras's layer-by-layer path (which stays the reference and the fallback).
//
// Shapes: x is (n, dims[0]) row-major; layer l maps (m, dims[l]) -> (m, dims[l+1]) with kernel
// (dims[l], dims[l+1]) at params + w_off[l] and bias (dims[l+1]) at params + b_off[l] (or none
// when b_off[l] < 0); the last layer's output are logits over dims[L] classes. grads has params'
// layout. Batch s of the run covers rows [s * batch, min(n, (s + 1) * batch)) of the row order
// `perm` (identity when null). y holds class ids in [0, dims[L]); sw optional sample weights.
#pragma once
#include <cstdint>

namespace forgeml::dense {

enum class OptKind : int { sgd = 0, adam = 1, rmsprop = 2 };

struct Net {
  int layers = 0;
  const int64_t* dims = nullptr;   // layers + 1
  const int* acts = nullptr;       // layers: gemm::Activation codes of hidden layers (last ignored)
  const int64_t* w_off = nullptr;  // layers
  const int64_t* b_off = nullptr;  // layers, -1 = no bias
  float* params = nullptr;
  float* grads = nullptr;
  int64_t n_params = 0;
};

struct Data {
  const float* x = nullptr;
  int64_t n = 0;
  const int64_t* perm = nullptr;  // null: rows in order
  const int64_t* y = nullptr;
  const double* sw = nullptr;     // null: all ones
  int64_t batch = 32;
  int64_t first_step = 0;
  int64_t steps = 0;
};

// Keras 3 update rules (see forgeml/keras/optimizers). Slots have params' layout; unused ones null.
struct Optimizer {
  OptKind kind = OptKind::sgd;
  double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7;  // adam
  bool amsgrad = false;
  double momentum = 0.0;                                // sgd, rmsprop
  bool nesterov = false;
  double rho = 0.9;                                     // rmsprop
  bool centered = false;
  double weight_decay = 0.0;                            // decoupled: p -= p * wd * lr first
  double clipnorm = 0.0, clipvalue = 0.0, global_clipnorm = 0.0;  // 0: off
  float* momentum_slot = nullptr;
  float* velocity = nullptr;
  float* velocity_hat = nullptr;
  float* average_gradient = nullptr;
};

struct Totals {
  double loss = 0.0;     // sum over samples of w_i * loss_i
  double correct = 0.0;  // samples whose argmax logit is the label
  int64_t count = 0;
};

// lrs[s]: learning rate of step s of this run; t0: optimizer iterations before the run.
Totals train_steps(const Net& net, const Data& data, const Optimizer& opt, const double* lrs, int64_t t0);

// One optimizer update of params (n) from grads (weight decay first, no clipping); t is 1-based.
void optimizer_update(float* params, const float* grads, int64_t n, const Optimizer& opt, double lr, int64_t t);

// Forward only (evaluation): logits or softmax probabilities of every row of x into out (n, classes).
void forward(const Net& net, const float* x, int64_t n, int64_t batch, bool softmax, float* out);

// The backward of a row softmax y (m, c) (rows.cpp): dx = y * (dy - rowsum(dy * y)).
void softmax_rows_backward(const float* y, const float* dy, int64_t m, int64_t c, float* dx);

// Layer normalization of each row of x (m, c) (forgeml.keras's LayerNormalization, rows.cpp):
// xhat = (x - mean) * inv with inv = 1 / sqrt(var + eps) per row, y = xhat * gamma + beta (gamma
// and beta (c) may be null). xhat (m, c) and inv (m) are kept for the backward.
void layer_norm(const float* x, int64_t m, int64_t c, const float* gamma, const float* beta, float eps, float* y,
                float* xhat, float* inv);

// Its backward from dy (m, c): dx (null: not wanted), dgamma and dbeta (c; null: not wanted, else
// overwritten with the column sums of dy * xhat and dy).
void layer_norm_backward(const float* dy, const float* xhat, const float* inv, int64_t m, int64_t c,
                         const float* gamma, float* dx, float* dgamma, float* dbeta);

// target (rows, d) [idx[i], :] += values (n, d) [i, :] for i in order (an Embedding's gradient,
// np.add.at's sums); an index outside [0, rows) is an error before anything is written.
void scatter_add_rows(float* target, int64_t rows, int64_t d, const int64_t* idx, int64_t n, const float* values);

}  // namespace forgeml::dense
