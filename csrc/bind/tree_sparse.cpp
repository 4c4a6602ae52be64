// forgeml._cpu tree kernels on sparse X: its stored entries binned (tree_bin_sparse), and the
// checks of those arrays when tree_grow_forest is given them.
#include "bind/tree_sparse.h"

#include <pybind11/numpy.h>

#include <memory>
#include <utility>
#include <vector>

#include "bind/registry.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace ft = forgeml::tree;

namespace forgeml::bind {

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {  // the vector's memory, owned by the array
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule free(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(), free);
}

py::tuple bin_sparse(Arr<int64_t> indptr, Arr<int32_t> indices, Arr<float> data, int64_t n, int d, Arr<float> edges) {
  FORGEML_CHECK_ARG(n >= 0 && n < (int64_t{1} << 31) && d >= 0 && indptr.size() == d + 1, "X: indptr needs ", d + 1,
                    " values and n < 2^31");
  FORGEML_CHECK_ARG(indices.size() == data.size(), "X: indices and data differ in length");
  FORGEML_CHECK_ARG(edges.ndim() == 2 && edges.shape(0) == d && edges.shape(1) == 256, "edges: expected (", d,
                    ", 256)");
  const int64_t* p = indptr.data();
  FORGEML_CHECK_ARG(p[0] == 0 && p[d] == indices.size(), "X: indptr does not span the stored entries");
  for (int f = 0; f < d; ++f) FORGEML_CHECK_ARG(p[f] <= p[f + 1], "X: indptr is not ascending");
  for (int f = 0; f < d; ++f)
    for (int64_t k = p[f]; k < p[f + 1]; ++k)
      FORGEML_CHECK_ARG(
          indices.data()[k] >= 0 && indices.data()[k] < n && (k == p[f] || indices.data()[k - 1] < indices.data()[k]),
          "X: row indices out of range or not strictly ascending in column ", f);
  ft::SparseCodeArrays a;
  {
    py::gil_scoped_release nogil;
    a = ft::bin_sparse_codes(p, indices.data(), data.data(), n, d, edges.data());
  }
  return py::make_tuple(to_numpy(std::move(a.col_ptr)), to_numpy(std::move(a.col_row)), to_numpy(std::move(a.col_code)),
                        to_numpy(std::move(a.row_ptr)), to_numpy(std::move(a.row_feature)),
                        to_numpy(std::move(a.row_code)), to_numpy(std::move(a.zero_code)));
}

// Item i of t as a 1-D contiguous array of T with `size` values (no conversion: the pointer
// stays the tuple's).
template <class T>
const T* vec(const py::tuple& t, int i, int64_t size, const char* name) {
  py::object o = t[i];
  using Exact = py::array_t<T, py::array::c_style>;
  const bool exact = py::isinstance<Exact>(o);
  FORGEML_CHECK_ARG(exact, "sparse_codes: ", name, " expected a contiguous array of the dtype tree_bin_sparse gives");
  auto a = py::reinterpret_borrow<py::array_t<T>>(o);
  FORGEML_CHECK_ARG(a.ndim() == 1 && a.size() == size, "sparse_codes: ", name, " expected ", size, " values");
  return a.data();
}

}  // namespace

ft::SparseCodes tree_sparse_codes(const py::tuple& t, int64_t n, int d) {
  FORGEML_CHECK_ARG(t.size() == 7, "sparse_codes: expected the 7 arrays of tree_bin_sparse");
  const int64_t* cp = vec<int64_t>(t, 0, d + 1, "col_ptr");
  const int64_t m = cp[d];
  const int32_t* col_row = vec<int32_t>(t, 1, m, "col_row");
  const uint8_t* col_code = vec<uint8_t>(t, 2, m, "col_code");
  const int64_t* rp = vec<int64_t>(t, 3, n + 1, "row_ptr");
  const int32_t* row_feature = vec<int32_t>(t, 4, m, "row_feature");
  const uint8_t* row_code = vec<uint8_t>(t, 5, m, "row_code");
  const uint8_t* zero_code = vec<uint8_t>(t, 6, d, "zero_code");
  FORGEML_CHECK_ARG(cp[0] == 0 && rp[0] == 0 && rp[n] == m, "sparse_codes: offsets do not span the entries");
  for (int f = 0; f < d; ++f) FORGEML_CHECK_ARG(cp[f] <= cp[f + 1], "sparse_codes: col_ptr not ascending");
  for (int64_t r = 0; r < n; ++r) FORGEML_CHECK_ARG(rp[r] <= rp[r + 1], "sparse_codes: row_ptr not ascending");
  for (int64_t k = 0; k < m; ++k)
    FORGEML_CHECK_ARG(col_row[k] >= 0 && col_row[k] < n && row_feature[k] >= 0 && row_feature[k] < d,
                      "sparse_codes: index out of range at entry ", k);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = rp[r] + 1; k < rp[r + 1]; ++k)
      FORGEML_CHECK_ARG(row_feature[k - 1] < row_feature[k], "sparse_codes: row ", r,
                        "'s features not strictly ascending");
  ft::SparseCodes s{cp, col_row, col_code, rp, row_feature, row_code, zero_code};
  return s;
}

namespace {
Register reg{[](py::module_& m) {
  m.def("tree_bin_sparse", &bin_sparse, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n"),
        py::arg("d"), py::arg("edges"));
}};
}  // namespace

}  // namespace forgeml::bind
