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

// One pool per device, made on first use and kept for the life of the process; null where the
// device has no memory pools or making one failed (then scratch is plain cudaMalloc).
struct ScratchPools {
  std::mutex mu;
  std::vector<cudaMemPool_t> pool;
  std::vector<bool> tried;
};
ScratchPools& scratch_pools() {
  static ScratchPools p;
  return p;
}

cudaMemPool_t make_pool(int dev) {
  int supported = 0;
  if (cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, dev) != cudaSuccess || !supported) {
    cudaGetLastError();
    return nullptr;
  }
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = dev;
  cudaMemPool_t pool = nullptr;
  if (cudaMemPoolCreate(&pool, &props) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  uint64_t keep = uint64_t(256) << 20;  // cached bytes the pool holds on to across synchronizes
  if (cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) cudaGetLastError();
  return pool;
}

cudaMemPool_t scratch_pool(int dev) {
  auto& p = scratch_pools();
  std::lock_guard<std::mutex> lock(p.mu);
  if (dev >= static_cast<int>(p.pool.size())) p.pool.resize(dev + 1, nullptr), p.tried.resize(dev + 1, false);
  if (!p.tried[dev]) p.pool[dev] = make_pool(dev), p.tried[dev] = true;
  return p.pool[dev];
}

void drop_pool(int dev) {  // an allocation from it failed: plain cudaMalloc from now on
  auto& p = scratch_pools();
  std::lock_guard<std::mutex> lock(p.mu);
  p.pool[dev] = nullptr;
}

}  // namespace

void* scratch_alloc(size_t bytes, cudaStream_t stream, bool& pooled) {
  int dev = 0;
  FORGEML_CUDA_CHECK(cudaGetDevice(&dev));
  void* p = nullptr;
  pooled = false;
  if (cudaMemPool_t pool = scratch_pool(dev)) {
    if (cudaMallocFromPoolAsync(&p, bytes, pool, stream) == cudaSuccess) {
      pooled = true;
      return p;
    }
    cudaGetLastError();
    drop_pool(dev);
  }
  FORGEML_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void scratch_free(void* p, cudaStream_t stream, bool pooled) noexcept {
  // nothing to report from a destructor; clear the error so the next check does not see it
  if ((pooled ? cudaFreeAsync(p, stream) : cudaFree(p)) != cudaSuccess) cudaGetLastError();
}

}  // namespace forgeml::cuda
