// forgeml._emu.gemm_bf16 / gemm_int8: the CUDA bf16 and int8 GEMMs under the emulator, NumPy
// in/out (tests only). Inputs are copied to C-contiguous arrays of the kernel's type.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "bind/registry.h"
#include "cuda/gemm_lowp.cuh"
#include "forgeml/check.h"

namespace py = pybind11;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
Arr<T> matrix(const py::object& o, const char* name) {
  auto a = Arr<T>::ensure(o);
  FORGEML_CHECK_ARG(a && a.ndim() == 2, name, ": expected a 2-D array");
  return a;
}

const float* vec(const py::object& o, Arr<float>& keep, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  keep = Arr<float>::ensure(o);
  FORGEML_CHECK_ARG(keep && keep.ndim() == 1 && keep.shape(0) == n, name, ": expected shape (", n, ",)");
  return keep.data();
}

py::array_t<float> output(int64_t M, int64_t N) {
  py::array_t<float> c({M, N});
  std::fill_n(c.mutable_data(), M * N, NAN);  // write-only: every element must be written
  return c;
}

forgeml::cuda::LowpKernel kernel_named(const std::string& kernel) {
  FORGEML_CHECK_ARG(kernel == "auto" || kernel == "simt" || kernel == "tensor_cores",
                    "kernel: expected 'auto', 'simt' or 'tensor_cores', got '", kernel, "'");
  return kernel == "simt"           ? forgeml::cuda::LowpKernel::simt
         : kernel == "tensor_cores" ? forgeml::cuda::LowpKernel::tensor_cores
                                    : forgeml::cuda::LowpKernel::automatic;
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("gemm_bf16", [](const py::object& a_obj, const py::object& b_obj, bool ta, bool tb, const py::object& bias_obj,
                        int activation, const std::string& kernel) {
    const auto which = kernel_named(kernel);
    auto a = matrix<float>(a_obj, "a"), b = matrix<float>(b_obj, "b");
    const int64_t M = ta ? a.shape(1) : a.shape(0), K = ta ? a.shape(0) : a.shape(1);
    const int64_t N = tb ? b.shape(0) : b.shape(1);
    FORGEML_CHECK_ARG((tb ? b.shape(1) : b.shape(0)) == K, "b: inner dimension differs from a's ", K);
    Arr<float> bias;
    const float* bp = vec(bias_obj, bias, N, "bias");
    auto c = output(M, N);
    py::gil_scoped_release release;
    forgeml::cuda::gemm_bf16(ta, tb, M, N, K, a.data(), std::max<int64_t>(1, a.shape(1)), b.data(),
                             std::max<int64_t>(1, b.shape(1)), c.mutable_data(), std::max<int64_t>(1, N), bp,
                             activation, nullptr, which);
    return c;
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("bias") = py::none(),
     py::arg("activation") = 0, py::arg("kernel") = "auto",
     "act(bf16(op(a)) @ bf16(op(b)) + bias) with a CUDA kernel under the emulator (auto: tensor cores, as on sm_80+).");

  m.def("gemm_int8", [](const py::object& a_obj, const py::object& as_obj, const py::object& b_obj,
                        const py::object& bs_obj, const py::object& bias_obj, int activation,
                        const std::string& kernel) {
    const auto which = kernel_named(kernel);
    auto a = matrix<int8_t>(a_obj, "a"), b = matrix<int8_t>(b_obj, "b");
    const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
    FORGEML_CHECK_ARG(b.shape(0) == K, "b: expected ", K, " rows");
    Arr<float> as, bs, bias;
    const float* asp = vec(as_obj, as, M, "a_scale");
    const float* bsp = vec(bs_obj, bs, N, "b_scale");
    FORGEML_CHECK_ARG(asp && bsp, "a_scale, b_scale: required");
    const float* bp = vec(bias_obj, bias, N, "bias");
    auto c = output(M, N);
    py::gil_scoped_release release;
    forgeml::cuda::gemm_int8(M, N, K, a.data(), std::max<int64_t>(1, K), asp, b.data(), std::max<int64_t>(1, N), bsp,
                             c.mutable_data(), std::max<int64_t>(1, N), bp, activation, nullptr, which);
    return c;
  }, py::arg("a"), py::arg("a_scale"), py::arg("b"), py::arg("b_scale"), py::arg("bias") = py::none(),
     py::arg("activation") = 0, py::arg("kernel") = "auto",
     "act(a_scale b_scale (a @ b) + bias) with a CUDA int8 kernel under the emulator (auto: tensor cores).");
}};

}  // namespace
