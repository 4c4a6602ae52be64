// forgeml._emu.sgemm: the CUDA SGEMM under the emulator, numpy in/out (tests only).
// Arrays with a unit column stride keep their row stride as the leading dimension (so tests
// cover ld > cols and unaligned pointers); anything else is copied to a contiguous float32 array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <algorithm>

#include "bind/registry.h"
#include "cuda/gemm.cuh"
#include "forgeml/check.h"

namespace py = pybind11;

namespace {

struct Matrix {
  py::array_t<float> keep;
  int64_t rows, cols, ld;
};

Matrix as_matrix(const py::object& obj, const char* name) {
  auto a = py::array_t<float>::ensure(obj);
  FORGEML_CHECK_ARG(a && a.ndim() == 2, name, ": expected a 2-D float array");
  if (a.shape(1) > 1 && a.strides(1) != sizeof(float)) a = py::array_t<float, py::array::c_style>::ensure(a);
  if (a.strides(0) % sizeof(float) != 0 || a.strides(0) < 0) a = py::array_t<float, py::array::c_style>::ensure(a);
  const int64_t ld = a.shape(0) > 1 ? a.strides(0) / int64_t(sizeof(float)) : std::max<int64_t>(a.shape(1), 1);
  return {a, a.shape(0), a.shape(1), std::max<int64_t>({ld, a.shape(1), 1})};
}

py::array_t<float> sgemm(const py::object& a_obj, const py::object& b_obj, bool trans_a, bool trans_b,
                         const py::object& bias_obj, int activation, float alpha, float beta,
                         const py::object& c_obj, int tile) {
  Matrix a = as_matrix(a_obj, "a"), b = as_matrix(b_obj, "b");
  const int64_t M = trans_a ? a.cols : a.rows, K = trans_a ? a.rows : a.cols;
  const int64_t Kb = trans_b ? b.cols : b.rows, N = trans_b ? b.rows : b.cols;
  FORGEML_CHECK_ARG(K == Kb, "b: inner dimensions differ: op(a) is (", M, ", ", K, "), op(b) is (", Kb, ", ", N, ")");
  py::array_t<float, py::array::c_style> bias;  // a default array_t is an empty array, not null
  const float* bias_ptr = nullptr;
  if (!bias_obj.is_none()) {
    bias = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(bias_obj);
    FORGEML_CHECK_ARG(bias && bias.ndim() == 1 && bias.shape(0) == N, "bias: expected shape (", N, ",)");
    bias_ptr = bias.data();
  }
  py::array_t<float> c({M, N});
  if (!c_obj.is_none()) {
    auto c_in = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(c_obj);
    FORGEML_CHECK_ARG(c_in && c_in.ndim() == 2 && c_in.shape(0) == M && c_in.shape(1) == N,
                      "c: expected shape (", M, ", ", N, ")");
    std::copy_n(c_in.data(), M * N, c.mutable_data());
  } else {
    FORGEML_CHECK_ARG(beta == 0.0f, "c: needed when beta != 0");
    std::fill_n(c.mutable_data(), M * N, NAN);  // beta == 0: the kernel must never read C
  }
  {
    py::gil_scoped_release release;
    forgeml::cuda::sgemm(trans_a, trans_b, M, N, K, alpha, a.keep.data(), a.ld, b.keep.data(), b.ld, beta,
                         c.mutable_data(), std::max<int64_t>(N, 1), bias_ptr, activation,
                         nullptr, tile);
  }
  return c;
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("sgemm", &sgemm, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
        py::arg("bias") = py::none(), py::arg("activation") = 0, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f,
        py::arg("c") = py::none(), py::arg("tile") = 0,
        "act(alpha * op(a) @ op(b) + beta * c + bias) with the CUDA SGEMM kernels under the emulator; "
        "tile 0 picks by size, 64 or 128 forces one.");
}};

}  // namespace
