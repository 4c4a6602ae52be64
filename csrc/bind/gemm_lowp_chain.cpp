// forgeml._cpu bindings for forgeml/gemm_lowp_chain.h: a quantized Dense stack in one call
// (keras/quantization.py builds the layer list) and the row softmax it ends with.
#include "forgeml/gemm_lowp_chain.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind/int8_layers.h"
#include "bind/registry.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace fg = forgeml::gemm;

namespace {

// A writable (rows, cols) C-contiguous float32 array (what the chain reads or writes).
float* rows_of(const py::array& a, const char* name, int64_t cols, bool writable) {
  FORGEML_CHECK_ARG(a.dtype().kind() == 'f' && a.itemsize() == 4 && a.ndim() == 2 && (a.flags() & py::array::c_style),
                    name, ": expected a C-contiguous 2-D float32 array, got dtype ", std::string(py::str(a.dtype())),
                    " with ", a.ndim(), " dimensions");
  FORGEML_CHECK_ARG(cols < 0 || a.shape(1) == cols, name, ": expected ", cols, " columns, got ", a.shape(1));
  if (writable) FORGEML_CHECK_ARG(a.writeable(), name, ": array is read-only");
  return static_cast<float*>(const_cast<void*>(a.data()));
}

}  // namespace

static forgeml::bind::Register reg{[](py::module_& m) {
  m.def(
      "int8_dense_chain",
      [](const py::array& x, const py::list& layers, bool softmax, const py::array& out) {
        const std::vector<fg::Int8Dense> stack = forgeml::bind::int8_layers_of(layers);
        const float* X = rows_of(x, "x", stack.front().w->k(), false);
        float* Y = rows_of(out, "out", stack.back().w->n(), true);
        FORGEML_CHECK_ARG(out.shape(0) == x.shape(0), "out: expected ", x.shape(0), " rows, got ", out.shape(0));
        const int64_t M = x.shape(0), K = stack.front().w->k(), N = stack.back().w->n();
        py::gil_scoped_release nogil;
        fg::int8_dense_chain(M, X, K, stack.data(), static_cast<int>(stack.size()), softmax, Y, N);
      },
      py::arg("x"), py::arg("layers"), py::arg("softmax"), py::arg("out"),
      "out = the int8 Dense layers [(packed, scale, bias, activation code)] applied to x in order, "
      "then a row softmax when softmax is true (one call; bit-identical to the layers one by one).");

  m.def(
      "softmax_rows",
      [](const py::array& y) {
        float* Y = rows_of(y, "y", -1, true);
        const int64_t M = y.shape(0), N = y.shape(1);
        if (M == 0 || N == 0) return;
        py::gil_scoped_release nogil;
        fg::softmax_rows(M, N, Y, N);
      },
      py::arg("y"), "In place max-shifted softmax of each row of a C-contiguous float32 (M, N) array.");
}};
