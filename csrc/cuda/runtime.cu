// Device discovery for forgeml._cuda. Asked once by the Python backend; a count of 0 or an
// error here means "no usable GPU", with the reason kept for show_config().
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cuda/launch.cuh"

namespace forgeml::cuda {

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

std::pair<bool, std::string> device_status() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    std::string why = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls are not poisoned
    if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice)
      return {false, why + " (no NVIDIA driver or no device on this machine)"};
    return {false, why};
  }
  if (count == 0) return {false, "no CUDA device found"};
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp prop{};
  err = cudaGetDeviceProperties(&prop, dev);
  if (err != cudaSuccess) return {false, cudaGetErrorString(err)};
  return {true, std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")"};
}

namespace {

// One pool per device, made on first use and kept for the life of the process.
cudaMemPool_t scratch_pool(int dev) {
  static std::mutex mu;
  static std::vector<cudaMemPool_t> pools;
  std::lock_guard<std::mutex> lock(mu);
  if (dev >= static_cast<int>(pools.size())) pools.resize(dev + 1, nullptr);
  if (!pools[dev]) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    cudaMemPool_t pool = nullptr;
    FORGEML_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
    uint64_t keep = uint64_t(256) << 20;  // cached bytes the pool holds on to across synchronizes
    FORGEML_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    pools[dev] = pool;
  }
  return pools[dev];
}

}  // namespace

void* scratch_alloc(size_t bytes, cudaStream_t stream) {
  int dev = 0;
  FORGEML_CUDA_CHECK(cudaGetDevice(&dev));
  void* p = nullptr;
  FORGEML_CUDA_CHECK(cudaMallocFromPoolAsync(&p, bytes, scratch_pool(dev), stream));
  return p;
}

void scratch_free(void* p, cudaStream_t stream) noexcept {
  if (cudaFreeAsync(p, stream) != cudaSuccess) cudaGetLastError();  // nothing to report from a destructor
}

}  // namespace forgeml::cuda
