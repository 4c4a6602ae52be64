// SGEMM for every CPU kernel family (dense layers, convolution, recurrent steps, SVM kernels).
//
// All matrices are row-major float32 with leading dimensions (row strides) in elements:
//   op(A) is (M, K): A is (M, K) with lda >= K, or (K, M) with lda >= M when trans_a.
//   op(B) is (K, N): B is (K, N) with ldb >= N, or (N, K) with ldb >= K when trans_b.
//   C is (M, N) with ldc >= N.
//   C = epilogue(alpha * op(A) @ op(B) + beta * C)
// beta == 0 means C is write-only (it may hold NaN). K == 0 gives epilogue(beta * C).
// The epilogue runs on each finished block of C while it is still in cache: first the bias
// (length N, broadcast over rows), then the activation, then the family's own function.
// Calls are thread-safe; they use forgeml::num_threads() threads unless max_threads limits it
// (pass 1 from inside an OpenMP region). Invalid sizes throw std::invalid_argument.
#pragma once
#include <cstdint>
#include <memory>

namespace forgeml::gemm {

enum class Activation : int { none = 0, relu = 1, sigmoid = 2, tanh = 3, gelu = 4 };

// Called once per finished block: rows [i0, i1) and columns [j0, j1) of C, where c points at
// C(i0, j0) and rows are ldc apart. Must only touch that block. Blocks are a register tile's rows
// across a column block (at most 12 x 320 on AVX-512) on the fast paths and the whole of C on the
// reference path, so do not assume a size; blocks are disjoint and may run concurrently.
using EpilogueFn = void (*)(void* ctx, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* c, int64_t ldc);

struct Epilogue {
  const float* bias = nullptr;  // length N, or null
  Activation act = Activation::none;
  EpilogueFn fn = nullptr;  // optional family-specific fusion (e.g. recurrent gates)
  void* ctx = nullptr;
};

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           const Epilogue& epilogue = {}, int max_threads = 0);

// C[b] = epilogue(alpha * op(A[b]) @ op(B[b]) + beta * C[b]) for b in [0, batch); the strides
// are in elements between consecutive matrices (0 broadcasts one matrix over the batch).
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c, const Epilogue& epilogue = {},
                   int max_threads = 0);

// op(B) packed once into the micro-kernel's panel layout, for reuse across many calls with
// different A (a recurrent kernel over time steps, convolution weights over image tiles).
// It keeps its own copy (B may change or go away afterwards) and the kernel of the ISA active
// when it was built.
class PackedB {
 public:
  PackedB(bool trans_b, int64_t K, int64_t N, const float* B, int64_t ldb);
  ~PackedB();
  PackedB(PackedB&&) noexcept;
  PackedB& operator=(PackedB&&) noexcept;
  int64_t K() const;
  int64_t N() const;
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

void sgemm_packed(bool trans_a, int64_t M, float alpha, const float* A, int64_t lda, const PackedB& B,
                  float beta, float* C, int64_t ldc, const Epilogue& epilogue = {}, int max_threads = 0);

// The plain triple loop (float64 accumulation), kept as the oracle and the fallback.
void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                     const Epilogue& epilogue = {});

// Elementwise activation on n floats, shared by epilogues and other families.
void apply_activation(Activation act, float* x, int64_t n);

}  // namespace forgeml::gemm
