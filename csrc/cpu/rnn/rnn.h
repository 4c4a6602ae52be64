// Recurrent sequences (Keras 3 semantics): SimpleRNN, LSTM, GRU (reset_after=True), CPU.
//
// x is (N, T, F) row-major; H hidden units; G gates (1 RNN, 4 LSTM i|f|c|o, 3 GRU z|r|h).
// Keras layouts: kernel (F, G*H), recurrent_kernel (H, G*H), bias (G*H,) or GRU (2, G*H).
//
// Inside, the gate columns are permuted so that each thread owns a contiguous column slice that
// holds every gate of its units: the hidden units are split into parts [u0, u1) (Split), and
// part k's columns are [G*u0, G*u1) ordered gate-major: gate g of unit j sits at
// G*u0 + g*(u1-u0) + (j-u0). Each thread then runs its own recurrent GEMM on its packed slice
// of the recurrent kernel and finishes its units' gates while they are hot; one barrier per step.
#pragma once
#include <cstdint>
#include <vector>

namespace forgeml::rnn {

enum class Cell : int { simple = 0, lstm = 1, gru = 2 };
enum class Act : int { tanh = 0, sigmoid = 1, relu = 2, linear = 3 };  // SimpleRNN activation

inline int gates_of(Cell cell) { return cell == Cell::lstm ? 4 : cell == Cell::gru ? 3 : 1; }

struct Dims {
  int64_t N, T, F, H;
  int G;
  int64_t GH() const { return G * H; }
};

// Unit boundaries of the thread parts: bounds[0] = 0 < ... < bounds[P] = H.
using Split = std::vector<int64_t>;
// force_parts > 0 (tests) splits into that many parts regardless of size.
Split make_split(const Dims& d, int threads, int force_parts = 0);
// perm[c] = permuted column of Keras column c (length G*H).
std::vector<int64_t> column_perm(const Dims& d, const Split& split);
// dst[r, perm[c]] = src[r, c] (to_perm) or dst[r, c] = src[r, perm[c]] (from_perm), rows x G*H.
void permute_columns(const std::vector<int64_t>& perm, int64_t rows, const float* src, float* dst, bool to_perm);

// What forward leaves for backward (all permuted layouts):
//   y (N, T, H): h_t.  xg (N, T, G*H): the activated gates (LSTM i f g o, GRU z r h~; unused for
//   SimpleRNN, where y is the whole state).  aux (N, T, H): LSTM c_t, GRU b_h = h_{t-1}·R_h + b1_h.
struct Forward {
  const float* x;       // (N, T, F)
  const float* kernel;  // (F, GH) permuted
  const float* rkernel; // (H, GH) permuted
  const float* bias;    // (GH) permuted; GRU (2, GH) permuted per row
  const float* h0;      // (N, H) or null for zeros
  const float* c0;      // (N, H) or null (LSTM)
  float* y;             // (N, T, H)
  float* xg;            // (N, T, GH) (SimpleRNN: unused; LSTM: null when no backward follows)
  float* aux;           // (N, T, H) (LSTM, GRU)
  // Every matrix product (forward and backward) in bf16: operands rounded to bfloat16 once,
  // float32 sums (gemm_lowp.h's contract); gates, states and dbias stay float32.
  bool bf16 = false;
  // LSTM float32 only (lstm_forward.cpp): -1 picks how threads share the work; tests force
  // 1 (blocks of batch rows per thread) or 0 (the thread parts of the units).
  int lstm_rows = -1;
};
void forward(Cell cell, Act act, const Dims& d, const Split& split, const Forward& f);

struct Backward {
  const float* dy;    // (N, T, H) or null
  const float* dh_T;  // (N, H) or null
  const float* dc_T;  // (N, H) or null (LSTM)
  float* dx;          // (N, T, F)
  float* dkernel;     // (F, GH) permuted
  float* drkernel;    // (H, GH) permuted
  float* dbias;       // (GH) or GRU (2, GH), permuted
  float* dh0;         // (N, H)
  float* dc0;         // (N, H) (LSTM)
};
void backward(Cell cell, Act act, const Dims& d, const Split& split, const Forward& f, const Backward& b);

}  // namespace forgeml::rnn
