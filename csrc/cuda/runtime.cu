// Device discovery for forgeml._cuda. Asked once by the Python backend; a count of 0 or an
// error here means "no usable GPU", with the reason kept for show_config().
#include <string>
#include <utility>

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

}  // namespace forgeml::cuda
