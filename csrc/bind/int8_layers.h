// The int8 Dense layer list that the chain bindings take from Python: [(packed kernel, scale,
// bias or None, activation code)] (keras/quantization.py builds it).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "forgeml/check.h"
#include "forgeml/gemm_lowp_chain.h"

namespace forgeml::bind {

inline const float* int8_vector_of(const pybind11::handle& o, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  auto v = pybind11::reinterpret_borrow<pybind11::array>(o);
  FORGEML_CHECK_ARG(
      v.dtype().kind() == 'f' && v.itemsize() == 4 && v.ndim() == 1 && v.shape(0) == n && (n <= 1 || v.strides(0) == 4),
      name, ": expected a contiguous float32 vector of length ", n);
  return static_cast<const float*>(v.data());
}

// The layers; the arrays stay owned by the Python objects in the list.
inline std::vector<gemm::Int8Dense> int8_layers_of(const pybind11::handle& layers) {
  std::vector<gemm::Int8Dense> stack;
  for (const pybind11::handle& item : pybind11::reinterpret_borrow<pybind11::list>(layers)) {
    auto t = pybind11::reinterpret_borrow<pybind11::tuple>(item);
    FORGEML_CHECK_ARG(t.size() == 4, "layers: expected (packed kernel, scale, bias, activation) tuples");
    const auto& w = t[0].cast<const gemm::PackedInt8&>();
    const int act = t[3].cast<int>();
    FORGEML_CHECK_ARG(act >= 0 && act <= 4, "activation: expected 0..4, got ", act);
    stack.push_back({&w, int8_vector_of(t[1], w.n(), "scale"), int8_vector_of(t[2], w.n(), "bias"),
                     static_cast<gemm::Activation>(act)});
  }
  FORGEML_CHECK_ARG(!stack.empty(), "layers: expected at least one layer");
  return stack;
}

}  // namespace forgeml::bind
