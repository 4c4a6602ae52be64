// Standalone probe of the tensor-core bf16 / int8 GEMMs (csrc/cuda/gemm_lowp.cu) on a real GPU,
// without Python: each case against a float64 reference kernel on the bf16-rounded / int8 inputs,
// then the whole call (pre-pass + main loop) timed with CUDA events. Build (from the repo root):
//   nvcc -arch=sm_90 -O3 -std=c++17 --expt-relaxed-constexpr -Icsrc -Icsrc/include \
//     bench/tc_gemm_probe.cu csrc/cuda/gemm_lowp.cu csrc/cuda/runtime.cu -o tc_gemm_probe
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda/gemm_lowp.cuh"
#include "cuda/launch.cuh"

namespace fc = forgeml::cuda;

namespace {

__device__ float rne_bf16(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  return __uint_as_float(u);
}

// C[i][j] = act(sum_k op(A)[i][k] op(B)[k][j] + bias[j]) in float64, inputs rounded when bf16.
__global__ void ref_bf16(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
                         const float* bias, int act, double* C) {
  const int i = blockIdx.y * blockDim.y + threadIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M || j >= N) return;
  double s = 0;
  for (int k = 0; k < K; ++k)
    s +=
        double(rne_bf16(ta ? A[k * lda + i] : A[i * lda + k])) * double(rne_bf16(tb ? B[j * ldb + k] : B[k * ldb + j]));
  if (bias) s += bias[j];
  if (act == 1) s = s < 0 ? 0 : s;
  C[i * N + j] = s;
}

__global__ void ref_int8(int M, int N, int K, const int8_t* A, const float* sa, const int8_t* B, const float* sb,
                         double* C) {
  const int i = blockIdx.y * blockDim.y + threadIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M || j >= N) return;
  long long s = 0;
  for (int k = 0; k < K; ++k) s += int(A[i * K + k]) * int(B[k * N + j]);
  C[i * N + j] = double(s) * double(sa[i] * sb[j]);
}

template <class T>
T* upload(const std::vector<T>& h) {
  T* d = nullptr;
  FORGEML_CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(T) + 16));
  FORGEML_CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

uint64_t rng_state = 88172645463325252ull;
float uniform() {  // xorshift64, in [-1, 1)
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return float((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

// Max |C - ref| / (1 + |ref|) over the matrix.
double compare(const float* dC, const double* dR, int64_t n) {
  std::vector<float> c(n);
  std::vector<double> r(n);
  FORGEML_CUDA_CHECK(cudaMemcpy(c.data(), dC, n * 4, cudaMemcpyDeviceToHost));
  FORGEML_CUDA_CHECK(cudaMemcpy(r.data(), dR, n * 8, cudaMemcpyDeviceToHost));
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::isnan(c[i]) ? 1e30 : std::fabs(c[i] - r[i]) / (1 + std::fabs(r[i]));
    worst = e > worst ? e : worst;
  }
  return worst;
}

template <class F>
double time_ms(F f, int reps) {
  for (int i = 0; i < 3; ++i) f();
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < reps; ++i) f();
  cudaEventRecord(b);
  FORGEML_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a), cudaEventDestroy(b);
  return ms / reps;
}

void bf16_case(int M, int N, int K, bool ta, bool tb, bool with_bias, bool timed) {
  std::vector<float> ha(int64_t(M) * K), hb(int64_t(K) * N), hbias(N);
  for (auto& x : ha) x = uniform();
  for (auto& x : hb) x = uniform();
  for (auto& x : hbias) x = uniform();
  float *A = upload(ha), *B = upload(hb), *bias = with_bias ? upload(hbias) : nullptr, *C = nullptr;
  double* R = nullptr;
  FORGEML_CUDA_CHECK(cudaMalloc(&C, int64_t(M) * N * 4));
  FORGEML_CUDA_CHECK(cudaMalloc(&R, int64_t(M) * N * 8));
  const int lda = ta ? M : K, ldb = tb ? K : N, act = with_bias ? 1 : 0;
  auto run = [&] {
    fc::gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, C, N, bias, act, nullptr, fc::LowpKernel::tensor_cores);
  };
  run();
  ref_bf16<<<dim3((N + 15) / 16, (M + 15) / 16), dim3(16, 16)>>>(ta, tb, M, N, K, A, lda, B, ldb, bias, act, R);
  FORGEML_CUDA_CHECK(cudaDeviceSynchronize());
  const double err = compare(C, R, int64_t(M) * N);
  // Tensor cores add fp32 partial sums without full rounding (seen on an H200: the error grows
  // ~linearly in K, 2.2e-4 at K = 4096), so the bound is K units of a 22-bit mantissa.
  const double tol = std::max(1e-5, K * 0x1p-22);
  std::printf("bf16 %5dx%5dx%5d ta=%d tb=%d bias+relu=%d  max rel err %.2e %s", M, K, N, ta, tb, with_bias, err,
              err < tol ? "ok" : "FAIL");
  if (timed) {
    const double ms = time_ms(run, 20);
    std::printf("  %.4f ms  %.1f TFLOP/s", ms, 2.0 * M * N * K / ms * 1e-9);
  }
  std::printf("\n");
  cudaFree(A), cudaFree(B), cudaFree(bias), cudaFree(C), cudaFree(R);
}

void int8_case(int M, int N, int K, bool timed) {
  std::vector<int8_t> ha(int64_t(M) * K), hb(int64_t(K) * N);
  std::vector<float> hsa(M), hsb(N);
  for (auto& x : ha) x = int8_t(std::lround(uniform() * 127.0f));
  for (auto& x : hb) x = int8_t(std::lround(uniform() * 127.0f));
  ha[0] = -128;
  for (auto& x : hsa) x = 0.01f + 0.005f * uniform();
  for (auto& x : hsb) x = 0.01f + 0.005f * uniform();
  int8_t *A = upload(ha), *B = upload(hb);
  float *sa = upload(hsa), *sb = upload(hsb), *C = nullptr;
  double* R = nullptr;
  FORGEML_CUDA_CHECK(cudaMalloc(&C, int64_t(M) * N * 4));
  FORGEML_CUDA_CHECK(cudaMalloc(&R, int64_t(M) * N * 8));
  auto run = [&] {
    fc::gemm_int8(M, N, K, A, K, sa, B, N, sb, C, N, nullptr, 0, nullptr, fc::LowpKernel::tensor_cores);
  };
  run();
  ref_int8<<<dim3((N + 15) / 16, (M + 15) / 16), dim3(16, 16)>>>(M, N, K, A, sa, B, sb, R);
  FORGEML_CUDA_CHECK(cudaDeviceSynchronize());
  const double err = compare(C, R, int64_t(M) * N);
  std::printf("int8 %5dx%5dx%5d                    max rel err %.2e %s", M, K, N, err, err < 1e-5 ? "ok" : "FAIL");
  if (timed) {
    const double ms = time_ms(run, 20);
    std::printf("  %.4f ms  %.1f TOPS", ms, 2.0 * M * N * K / ms * 1e-9);
  }
  std::printf("\n");
  cudaFree(A), cudaFree(B), cudaFree(sa), cudaFree(sb), cudaFree(C), cudaFree(R);
}

}  // namespace

int main() {
  auto [ok, what] = fc::device_status();
  std::printf("device: %s\n", what.c_str());
  if (!ok) return 1;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) bf16_case(300, 261, 97, ta, tb, ta != tb, false);
  bf16_case(1, 1, 1, false, false, true, false);
  int8_case(300, 261, 97, false);
  int8_case(1, 1, 1, false);
  bf16_case(2048, 2048, 2048, false, false, false, true);
  bf16_case(1000, 1501, 777, false, false, false, true);
  bf16_case(4096, 4096, 4096, false, false, false, true);
  bf16_case(2048, 2048, 2048, true, true, false, true);
  int8_case(2048, 2048, 2048, true);
  int8_case(1000, 1501, 777, true);
  int8_case(4096, 4096, 4096, true);
  return 0;
}
