// Sparse-weight inference: Y = act(X @ W + bias) for a dense X (M, K) and a sparse W (K, N)
// stored by output column (CSC: column j holds the nonzeros W[idx[p], j] = val[p] for p in
// [ptr[j], ptr[j + 1])). The work is proportional to M * nnz(W), so a 90%-sparse Dense kernel
// runs in about a tenth of the dense GEMM's arithmetic.
//
// Row-major X (ldx) and Y (ldy), in elements; Y is write-only. Within a column the row indices
// must ascend strictly and lie in [0, K) (checked).
// Threads: forgeml::num_threads() unless max_threads limits it. Bad sizes throw invalid_argument.
#pragma once
#include <cstdint>

#include "forgeml/gemm.h"

namespace forgeml::sparse {

struct CscMatrix {
  int64_t K, N;
  const int64_t* ptr;  // N + 1 offsets, ptr[0] = 0, non-decreasing
  const int32_t* idx;  // row of each nonzero
  const float* val;
};

// Checks the CSC structure (offsets, row indices in range); throws invalid_argument naming it.
void check_csc(const CscMatrix& W);

void dense_x_csc(int64_t M, const float* X, int64_t ldx, const CscMatrix& W, float* Y, int64_t ldy,
                 const float* bias = nullptr, gemm::Activation act = gemm::Activation::none, int max_threads = 0);

const char* sparse_kernel_name();  // e.g. "csc_avx512_64"

}  // namespace forgeml::sparse
