// forgeml._cpu.TreeCompactRows: a few-row predictor over a CompactForest's arrays as stored (e.g.
// memory-mapped from a compact forest file), checked step by step (cpu/tree/compact_rows.h). It
// keeps the arrays alive and checks their shapes and roots once (O(trees)), never the nodes.
// Its `few` attribute is the 1-row predict_proba path: a raw CPython function (the pybind11
// dispatcher and array_t's conversion cost ~30 us of a ~100 us call on a cold cache) that takes
// any ndarray and returns None where the caller's full validation must decide.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "bind/registry.h"
#include "cpu/tree/compact.h"
#include "cpu/tree/compact_rows.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace ft = forgeml::tree;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

class CompactRows {
 public:
  CompactRows(Arr<int32_t> nodes, Arr<int32_t> source, Arr<int64_t> roots, Arr<double> values, int64_t n_features,
              int64_t max_rows, py::object top, bool leaf_rows)
      : keep_(py::make_tuple(nodes, source, roots, values, top)), max_rows_(max_rows) {
    static_assert(sizeof(ft::CompactNode) == 12, "CompactNode is three 32-bit words");
    FORGEML_CHECK_ARG(nodes.ndim() == 2 && nodes.shape(1) == 3, "nodes: expected an (m, 3) int32 array");
    FORGEML_CHECK_ARG(source.ndim() == 1 && source.shape(0) == nodes.shape(0), "source: expected ", nodes.shape(0),
                      " entries");
    FORGEML_CHECK_ARG(roots.ndim() == 1 && roots.size() >= 1, "roots: expected a non-empty 1-D array");
    check_values(values);
    FORGEML_CHECK_ARG(n_features >= 0, "n_features: must be >= 0");
    f_ = {reinterpret_cast<const ft::CompactNode*>(nodes.data()),
          nodes.shape(0),
          source.data(),
          roots.data(),
          roots.size(),
          values.data(),
          values.shape(0),
          static_cast<int>(values.shape(1)),
          n_features};
    f_.leaf_rows = leaf_rows;
    if (!top.is_none()) {  // (T, top_words(L)) int32, C order: L from the width
      FORGEML_CHECK_ARG(py::isinstance<py::array_t<int32_t>>(top), "top: expected an int32 ndarray");
      const auto a = py::reinterpret_borrow<py::array>(top);
      FORGEML_CHECK_ARG(a.ndim() == 2 && a.shape(0) == roots.size() && (a.flags() & py::array::c_style),
                        "top: expected a C-ordered (", roots.size(), ", words) int32 array");
      for (int L : {3, 6, 9})
        if (a.shape(1) == ft::top_words(L)) f_.top_levels = L;
      FORGEML_CHECK_ARG(f_.top_levels, "top: ", a.shape(1), " words a tree fits no number of levels");
      f_.top = static_cast<const int32_t*>(a.data());  // (kept alive in keep_)
    }
    ft::check_compact_arrays(f_);
  }

  // Over a validated TreeCompactForest (py object `compact`, kept alive) and its leaf values, with
  // top blocks of top_levels levels built here (0: none).
  CompactRows(py::object compact, Arr<double> values, int64_t max_rows, int top_levels)
      : keep_(py::make_tuple(compact, values)), max_rows_(max_rows) {
    const auto& c = compact.cast<const ft::CompactForest&>();
    check_values(values);
    FORGEML_CHECK_ARG(values.shape(0) == c.n_source_nodes, "values: expected ", c.n_source_nodes, " rows");
    f_ = {c.nodes.data(),  static_cast<int64_t>(c.nodes.size()), c.source.data(),
          c.roots.data(),  static_cast<int64_t>(c.roots.size()), values.data(),
          values.shape(0), static_cast<int>(values.shape(1)),    c.n_features};
    FORGEML_CHECK_ARG(top_levels == 0 || top_levels == 3 || top_levels == 6 || top_levels == 9,
                      "top_levels: expected 0, 3, 6 or 9, got ", top_levels);
    ft::check_compact_arrays(f_);
    if (top_levels) {
      top_ = ft::compact_top_blocks(f_, top_levels);
      f_.top = top_.data(), f_.top_levels = top_levels;
    }
  }

  Arr<double> predict(Arr<float> X) const {
    FORGEML_CHECK_ARG(X.ndim() == 2 && X.shape(1) == f_.n_features, "X: expected shape (n_samples, ", f_.n_features,
                      "), got ", X.ndim() == 2 ? X.shape(1) : -1, " features");
    Arr<double> out({X.shape(0), static_cast<py::ssize_t>(f_.k)});
    if (X.shape(0) <= 4) {  // a few rows: releasing the GIL costs more than the walks
      ft::compact_predict_rows(f_, X.data(), X.shape(0), out.mutable_data());
      return out;
    }
    py::gil_scoped_release nogil;
    ft::compact_predict_rows(f_, X.data(), X.shape(0), out.mutable_data());
    return out;
  }

  // predict's result for X, a 2-D float32 / float64 ndarray of 1..max_rows rows of n_features
  // (any strides); None for anything else or a value that is infinite as float32 (the caller's
  // validation then converts or rejects it as it always did). Raw NumPy C API through pybind11's
  // proxies (no py::array / py::dtype / array_t objects: each is more code run on a cold cache).
  py::object few(PyObject* X) const {
    using api_t = py::detail::npy_api;
    const api_t& api = api_t::get();
    if (!PyObject_TypeCheck(X, api.PyArray_Type_)) return py::none();
    const auto* a = py::detail::array_proxy(X);
    if (a->nd != 2 || a->dimensions[0] < 1 || a->dimensions[0] > max_rows_ || a->dimensions[1] != f_.n_features)
      return py::none();
    const auto* dt = py::detail::array_descriptor_proxy(a->descr);
    if ((dt->type_num != api_t::NPY_FLOAT_ && dt->type_num != api_t::NPY_DOUBLE_) || dt->byteorder != '=')
      return py::none();  // ('=': native)
    const int64_t n = a->dimensions[0], d = f_.n_features;
    const bool f32 = dt->type_num == api_t::NPY_FLOAT_;
    const auto* base = static_cast<const char*>(a->data);
    const int64_t s0 = a->strides[0], s1 = a->strides[1];
    const float* x = reinterpret_cast<const float*>(base);
    std::vector<float> copy;
    if (!f32 || s1 != 4 || (n > 1 && s0 != 4 * d) || reinterpret_cast<uintptr_t>(base) % 4) {
      copy.resize(n * d);  // any strides and float64: the float32 values, read with memcpy (alignment)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < d; ++j) {
          const char* p = base + i * s0 + j * s1;
          if (f32) {
            std::memcpy(&copy[i * d + j], p, 4);
          } else {
            double v;
            std::memcpy(&v, p, 8);
            copy[i * d + j] = static_cast<float>(v);
          }
        }
      x = copy.data();
    }
    for (int64_t i = 0; i < n * d; ++i)
      if (std::isinf(x[i])) return py::none();
    const Py_intptr_t dims[2] = {static_cast<Py_intptr_t>(n), static_cast<Py_intptr_t>(f_.k)};
    PyObject* descr = api.PyArray_DescrFromType_(api_t::NPY_DOUBLE_);
    if (!descr) throw py::error_already_set();
    auto out = py::reinterpret_steal<py::object>(
        api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, 2, dims, nullptr, nullptr, 0, nullptr));
    if (!out) throw py::error_already_set();
    auto* o = reinterpret_cast<double*>(py::detail::array_proxy(out.ptr())->data);
    if (n <= 4) {  // releasing the GIL costs more than a few walks
      ft::compact_predict_rows(f_, x, n, o);
    } else {
      py::gil_scoped_release nogil;  // (X stays alive: the caller holds it)
      ft::compact_predict_rows(f_, x, n, o);
    }
    return out;
  }

 private:
  static void check_values(const Arr<double>& values) {
    FORGEML_CHECK_ARG(values.ndim() == 2 && values.shape(1) >= 1 && values.shape(1) < (1 << 20),
                      "values: expected an (N, k) float64 array");
  }

  py::tuple keep_;  // what f_ points into
  std::vector<int32_t> top_;
  int64_t max_rows_;
  ft::CompactArrays f_{};
};

// rows.few as a METH_O builtin whose self is a capsule holding the CompactRows object.
PyObject* few_entry(PyObject* self, PyObject* X) {
  try {
    const auto* rows = static_cast<const CompactRows*>(PyCapsule_GetPointer(self, nullptr));
    return rows->few(X).release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyMethodDef few_def{"few", few_entry, METH_O,
                    "few(X): the rows' predictions for a 2-D float32/float64 ndarray of at most max_rows rows, "
                    "else None"};

py::object few_function(py::object rows) {
  const auto* p = &rows.cast<const CompactRows&>();
  // the capsule holds a reference to the Python object, so p outlives the builtin
  PyObject* cap = PyCapsule_New(const_cast<CompactRows*>(p), nullptr,
                                [](PyObject* c) { Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(c))); });
  if (!cap || PyCapsule_SetContext(cap, rows.release().ptr())) throw py::error_already_set();
  const auto owner = py::reinterpret_steal<py::object>(cap);
  return py::reinterpret_steal<py::object>(PyCFunction_New(&few_def, owner.ptr()));
}

// A few rows through a validated TreeCompactForest (a fitted forest): the same walk, trees in lockstep.
Arr<double> predict_rows(const ft::CompactForest& c, Arr<float> X, Arr<double> values) {
  FORGEML_CHECK_ARG(X.ndim() == 2 && X.shape(1) == c.n_features, "X: expected shape (n_samples, ", c.n_features,
                    "), got ", X.ndim() == 2 ? X.shape(1) : -1, " features");
  FORGEML_CHECK_ARG(values.ndim() == 2 && values.shape(0) == c.n_source_nodes && values.shape(1) >= 1,
                    "values: expected (", c.n_source_nodes, ", k)");
  const ft::CompactArrays f{c.nodes.data(),  static_cast<int64_t>(c.nodes.size()), c.source.data(),
                            c.roots.data(),  static_cast<int64_t>(c.roots.size()), values.data(),
                            values.shape(0), static_cast<int>(values.shape(1)),    c.n_features};
  ft::check_compact_arrays(f);
  Arr<double> out({X.shape(0), values.shape(1)});
  if (X.shape(0) <= 4) {
    ft::compact_predict_rows(f, X.data(), X.shape(0), out.mutable_data());
    return out;
  }
  py::gil_scoped_release nogil;
  ft::compact_predict_rows(f, X.data(), X.shape(0), out.mutable_data());
  return out;
}

// (nodes with each leaf's row of values in its feature word (m, 3), top blocks (T, top_words))
// of a validated TreeCompactForest: what a compact forest file stores for the few-row walk.
py::tuple top_arrays(const ft::CompactForest& c, int levels) {
  FORGEML_CHECK_ARG(levels == 3 || levels == 6 || levels == 9, "levels: expected 3, 6 or 9, got ", levels);
  const int64_t m = static_cast<int64_t>(c.nodes.size()), T = static_cast<int64_t>(c.roots.size());
  const ft::CompactArrays f{c.nodes.data(),   m, c.source.data(), c.roots.data(), T, nullptr,
                            c.n_source_nodes, 1, c.n_features};
  ft::check_compact_arrays(f);
  Arr<int32_t> nodes({m, int64_t{3}}), top({T, ft::top_words(levels)});
  std::memcpy(nodes.mutable_data(), c.nodes.data(), m * sizeof(ft::CompactNode));
  int32_t* w = nodes.mutable_data();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t a = c.roots[t], b = t + 1 < T ? c.roots[t + 1] : m;
    for (int64_t i = a; i < b; ++i)
      if (c.nodes[i].right == i - a) w[3 * i] = c.source[i];
  }
  const auto blocks = ft::compact_top_blocks(f, levels);
  std::memcpy(top.mutable_data(), blocks.data(), blocks.size() * 4);
  return py::make_tuple(nodes, top);
}

forgeml::bind::Register reg{[](py::module_& m) {
  py::class_<CompactRows>(m, "TreeCompactRows",
                          "Predicts a few rows from a compact forest's stored arrays, checking each node it reads.")
      .def(py::init<Arr<int32_t>, Arr<int32_t>, Arr<int64_t>, Arr<double>, int64_t, int64_t, py::object, bool>(),
           py::arg("nodes"), py::arg("source"), py::arg("roots"), py::arg("values"), py::arg("n_features"),
           py::arg("max_rows") = 16, py::arg("top") = py::none(), py::arg("leaf_rows") = false)
      .def(py::init<py::object, Arr<double>, int64_t, int>(), py::arg("compact"), py::arg("values"),
           py::arg("max_rows") = 16, py::arg("top_levels") = 0)
      .def("predict", &CompactRows::predict, py::arg("X"))
      .def_property_readonly("few", &few_function,
                             "few(X) -> predict(X), or None unless X is a 2-D float32/float64 ndarray of 1..max_rows "
                             "rows of the forest's width, finite or NaN as float32 (a raw builtin: cheap to call)");
  m.def("tree_compact_top_arrays", &top_arrays, py::arg("compact"), py::arg("levels"),
        "(nodes (m, 3) int32 with each leaf's row of values in its feature word, top blocks (T, words) int32) of a "
        "TreeCompactForest, as a compact forest file stores them for the few-row walk.");
  m.def("tree_compact_predict_rows", &predict_rows, py::arg("compact"), py::arg("X"), py::arg("values"),
        "A few rows through a TreeCompactForest, on the calling thread (the same sums as its predict).");
}};

}  // namespace
