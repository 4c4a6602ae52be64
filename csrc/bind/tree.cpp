// forgeml._cpu tree kernels: binning, forest growth, prediction, and the split scan on its own.
// Shapes are validated in python/forgeml/ops/tree.py; the checks here guard the pointers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <atomic>
#include <cstring>

#include "bind/pooled_array.h"
#include "bind/registry.h"
#include "bind/tree_sparse.h"
#include "forgeml/check.h"
#include "forgeml/parallel.h"
#include "forgeml/validate.h"
#include "cpu/tree/tree.h"
#include "cpu/tree/tree_out_pool.h"

namespace py = pybind11;
namespace ft = forgeml::tree;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
const T* ptr_or_null(const std::optional<Arr<T>>& a) { return a ? a->data() : nullptr; }

py::tuple bin_edges(Arr<float> X, std::optional<Arr<double>> weight, int max_bins, int64_t sample, uint64_t seed) {
  FORGEML_CHECK_ARG(X.ndim() == 2, "X: expected 2-D");
  int64_t n = X.shape(0);
  int d = static_cast<int>(X.shape(1));
  FORGEML_CHECK_ARG(!weight || weight->size() == n, "weight: expected ", n, " values");
  Arr<float> edges({static_cast<py::ssize_t>(d), py::ssize_t{256}});
  Arr<int32_t> n_edges(d);
  {
    py::gil_scoped_release nogil;
    ft::bin_edges(X.data(), n, d, ptr_or_null(weight), max_bins, sample, seed, edges.mutable_data(),
                  n_edges.mutable_data());
  }
  return py::make_tuple(edges, n_edges);
}

Arr<uint8_t> bin_codes(Arr<float> X, Arr<float> edges, Arr<int32_t> n_edges) {
  FORGEML_CHECK_ARG(X.ndim() == 2 && edges.ndim() == 2 && edges.shape(1) == 256 && edges.shape(0) == X.shape(1) &&
                    n_edges.size() == X.shape(1), "bin_codes: inconsistent shapes");
  Arr<uint8_t> codes({X.shape(0), X.shape(1)});
  py::gil_scoped_release nogil;
  ft::bin_codes(X.data(), X.shape(0), static_cast<int>(X.shape(1)), edges.data(), n_edges.data(), codes.mutable_data());
  return codes;
}

// X as CSC columns: indptr (d+1) int64, indices (nnz) int32 row ids, data (nnz) float32.
void check_csc(const Arr<int64_t>& indptr, const Arr<int32_t>& indices, const Arr<float>& data, int64_t n, int d) {
  FORGEML_CHECK_ARG(n >= 0 && d >= 0 && indptr.ndim() == 1 && indptr.size() == d + 1, "X: indptr needs ", d + 1,
                    " values");
  FORGEML_CHECK_ARG(indices.size() == data.size(), "X: indices and data differ in length");
  const int64_t* p = indptr.data();
  FORGEML_CHECK_ARG(p[0] == 0 && p[d] == indices.size(), "X: indptr does not span the stored entries");
  for (int f = 0; f < d; ++f) FORGEML_CHECK_ARG(p[f] <= p[f + 1], "X: indptr is not ascending");
  const int32_t* r = indices.data();
  for (py::ssize_t k = 0; k < indices.size(); ++k)
    FORGEML_CHECK_ARG(r[k] >= 0 && r[k] < n, "X: row index out of range at entry ", k);
}

py::tuple bin_edges_csc(Arr<int64_t> indptr, Arr<int32_t> indices, Arr<float> data, int64_t n, int d,
                        std::optional<Arr<double>> weight, int max_bins, int64_t sample, uint64_t seed) {
  check_csc(indptr, indices, data, n, d);
  FORGEML_CHECK_ARG(!weight || weight->size() == n, "weight: expected ", n, " values");
  Arr<float> edges({static_cast<py::ssize_t>(d), py::ssize_t{256}});
  Arr<int32_t> n_edges(d);
  {
    py::gil_scoped_release nogil;
    ft::bin_edges_csc(indptr.data(), indices.data(), data.data(), n, d, ptr_or_null(weight), max_bins, sample, seed,
                      edges.mutable_data(), n_edges.mutable_data());
  }
  return py::make_tuple(edges, n_edges);
}

// column_major: the codes come back as an (n, d) Fortran-order array.
py::array_t<uint8_t> bin_codes_csc(Arr<int64_t> indptr, Arr<int32_t> indices, Arr<float> data, int64_t n, int d,
                                   Arr<float> edges, bool column_major) {
  check_csc(indptr, indices, data, n, d);
  FORGEML_CHECK_ARG(edges.ndim() == 2 && edges.shape(0) == d && edges.shape(1) == 256, "edges: expected (", d,
                    ", 256)");
  const py::ssize_t sn = static_cast<py::ssize_t>(n), sd = static_cast<py::ssize_t>(d);
  py::array_t<uint8_t> codes = column_major ? py::array_t<uint8_t>({sn, sd}, {py::ssize_t{1}, sn})
                                            : py::array_t<uint8_t>({sn, sd});
  py::gil_scoped_release nogil;
  ft::bin_codes_csc(indptr.data(), indices.data(), data.data(), n, d, edges.data(), column_major,
                    codes.mutable_data());
  return codes;
}

// The trees as one array per field, concatenated in tree order with node offsets (T + 1). The copies
// first touch the new arrays' pages (hundreds of MB for a large forest, where page faults cost more
// than the copy): the trees are copied on the forest's threads, without the GIL, each freed once
// copied. With edges (d, 256), the fields come in the dtypes tree._tree.Forest keeps, written once:
// feature, left, right as intp (feature -2 at leaves) and threshold = edges[feature, thr_bin] as
// float64 (-2 at leaves), no thr_bin; without, the grower's: int32 fields and thr_bin.
py::dict concat_trees(std::vector<ft::TreeOut>& trees, int k, int threads, const std::optional<Arr<float>>& edges) {
  const int T = static_cast<int>(trees.size());
  Arr<int64_t> offsets(T + 1);
  Arr<int32_t> depths(T);
  int64_t N = 0;
  for (int t = 0; t < T; ++t) {
    offsets.mutable_data()[t] = N;
    depths.mutable_data()[t] = trees[t].depth;
    N += static_cast<int64_t>(trees[t].feature.size());
  }
  offsets.mutable_data()[T] = N;
  const bool final = edges.has_value();
  py::array feature, left, right, thr;  // int32 or intp; thr_bin (int32) or threshold (float64)
  using forgeml::bind::pooled_array;  // a forest's fields are large: pages kept between fits
  const py::ssize_t sN = static_cast<py::ssize_t>(N);
  if (final) {
    feature = pooled_array<py::ssize_t>({sN}), left = pooled_array<py::ssize_t>({sN});
    right = pooled_array<py::ssize_t>({sN}), thr = pooled_array<double>({sN});
  } else {
    feature = pooled_array<int32_t>({sN}), left = pooled_array<int32_t>({sN});
    right = pooled_array<int32_t>({sN}), thr = pooled_array<int32_t>({sN});
  }
  py::array_t<uint8_t> nan_left = pooled_array<uint8_t>({sN});
  py::array_t<double> impurity = pooled_array<double>({sN}), weighted_n = pooled_array<double>({sN});
  py::array_t<double> value = pooled_array<double>({sN, static_cast<py::ssize_t>(k)});
  py::array_t<int64_t> n_samples = pooled_array<int64_t>({sN});
  {
    auto bytes = [](auto& arr) { return reinterpret_cast<char*>(arr.mutable_data()); };
    char* const feat_out = bytes(feature);
    char* const left_out = bytes(left);
    char* const right_out = bytes(right);
    char* const thr_out = bytes(thr);
    const std::array<char*, 5> dst = {bytes(nan_left), bytes(impurity), bytes(weighted_n), bytes(n_samples),
                                      bytes(value)};
    const float* edge = final ? edges->data() : nullptr;
    const int64_t* off = offsets.data();
    py::gil_scoped_release nogil;
    std::atomic<int> next{0};
    forgeml::parallel_run(std::max(1, std::min(threads, T)), [&](int, int) {
      for (int t; (t = next.fetch_add(1)) < T;) {
        ft::TreeOut tr = std::move(trees[t]);  // back to the pool once copied (tree_out_pool.h)
        struct Give {
          ft::TreeOut& t;
          ~Give() { ft::give_tree_out(std::move(t)); }
        } give{tr};
        const int64_t o = off[t], m = static_cast<int64_t>(tr.feature.size());
        int i = 0;
        auto put = [&](const auto& src, int64_t width = 1) {
          const size_t b = sizeof(src[0]);
          std::memcpy(dst[i++] + o * width * b, src.data(), b * m * width);
        };
        put(tr.nan_left); put(tr.impurity); put(tr.weighted_n); put(tr.n_samples); put(tr.value, k);
        if (!final) {
          std::memcpy(feat_out + o * 4, tr.feature.data(), 4 * m);
          std::memcpy(left_out + o * 4, tr.left.data(), 4 * m);
          std::memcpy(right_out + o * 4, tr.right.data(), 4 * m);
          std::memcpy(thr_out + o * 4, tr.thr_bin.data(), 4 * m);
          continue;
        }
        auto* f = reinterpret_cast<py::ssize_t*>(feat_out) + o;
        auto* l = reinterpret_cast<py::ssize_t*>(left_out) + o;
        auto* r = reinterpret_cast<py::ssize_t*>(right_out) + o;
        auto* h = reinterpret_cast<double*>(thr_out) + o;
        for (int64_t j = 0; j < m; ++j) {
          const int32_t fj = tr.feature[j];
          const bool leaf = fj < 0;
          f[j] = leaf ? -2 : fj;
          h[j] = leaf ? -2.0 : static_cast<double>(edge[static_cast<int64_t>(fj) * 256 + (tr.thr_bin[j] & 255)]);
          l[j] = tr.left[j];
          r[j] = tr.right[j];
        }
      }
    });
  }
  py::dict out;
  out["offsets"] = offsets; out["depth"] = depths; out["feature"] = feature; out["left"] = left;
  out["right"] = right; out[final ? "threshold" : "thr_bin"] = thr; out["nan_left"] = nan_left;
  out["impurity"] = impurity; out["weighted_n"] = weighted_n; out["n_samples"] = n_samples; out["value"] = value;
  return out;
}

// codes (n, d): C order (row-major) or Fortran order (column-major, for wide sparse X).
py::dict grow_forest(py::array_t<uint8_t, py::array::forcecast> codes, std::optional<Arr<int32_t>> y_class,
                     std::optional<Arr<double>> y, Arr<double> weight, Arr<uint64_t> seeds, const py::dict& kw) {
  FORGEML_CHECK_ARG(codes.ndim() == 2, "codes: expected 2-D");
  // sparse X: its codes come as entries (tree_sparse.cpp) and `codes` only gives the shape
  const bool sparse = kw.contains("sparse_codes") && !kw["sparse_codes"].is_none();
  const bool column_major = codes.shape(0) > 1 && codes.shape(1) > 1 && !(codes.flags() & py::array::c_style);
  FORGEML_CHECK_ARG(sparse || (column_major ? (codes.flags() & py::array::f_style) != 0
                                            : (codes.flags() & py::array::c_style) != 0),
                    "codes: expected a C- or Fortran-contiguous array");
  const int64_t n = codes.shape(0);
  ft::Params p;
  p.criterion = static_cast<ft::Criterion>(kw["criterion"].cast<int>());
  p.n_classes = kw["n_classes"].cast<int>();
  p.max_depth = kw["max_depth"].cast<int>();
  p.min_samples_split = kw["min_samples_split"].cast<int64_t>();
  p.min_samples_leaf = kw["min_samples_leaf"].cast<int64_t>();
  p.min_weight_fraction_leaf = kw["min_weight_fraction_leaf"].cast<double>();
  p.min_impurity_decrease = kw["min_impurity_decrease"].cast<double>();
  p.max_features = kw["max_features"].cast<int>();
  p.max_leaf_nodes = kw["max_leaf_nodes"].cast<int64_t>();
  if (kw.contains("hist_subtraction")) p.hist_subtraction = kw["hist_subtraction"].cast<bool>();
  if (kw.contains("int_counts")) p.int_counts = kw["int_counts"].cast<bool>();
  if (kw.contains("random_split")) p.random_split = kw["random_split"].cast<bool>();
  if (kw.contains("monotonic") && !kw["monotonic"].is_none()) {
    Arr<int8_t> m = kw["monotonic"].cast<Arr<int8_t>>();
    FORGEML_CHECK_ARG(m.ndim() == 1 && m.shape(0) == codes.shape(1), "monotonic_cst: expected ", codes.shape(1),
                      " values");
    p.monotonic.assign(m.data(), m.data() + m.size());
    for (int8_t c : p.monotonic) FORGEML_CHECK_ARG(c >= -1 && c <= 1, "monotonic_cst: values must be -1, 0 or 1");
  }
  ft::ForestParams fp;
  fp.bootstrap = kw["bootstrap"].cast<bool>();
  fp.n_draws = kw["n_draws"].cast<int64_t>();
  fp.balanced_subsample = kw["balanced_subsample"].cast<bool>();
  const int threads = kw["threads"].cast<int>();
  const bool classify = ft::is_classification(p.criterion);
  const int n_outputs = kw.contains("n_outputs") ? kw["n_outputs"].cast<int>() : 1;
  FORGEML_CHECK_ARG(n_outputs >= 1, "y: expected at least one output");
  const int64_t ny = n * n_outputs;
  FORGEML_CHECK_ARG(classify ? (y_class && y_class->size() == ny) : (y && y->size() == ny), "y: expected ", n,
                    " x ", n_outputs, " values");
  FORGEML_CHECK_ARG(weight.size() == n, "weight: expected ", n, " values");
  if (classify) {
    const int32_t* yc = y_class->data();
    for (int64_t i = 0; i < ny; ++i)
      FORGEML_CHECK_ARG(yc[i] >= 0 && yc[i] < p.n_classes, "y: class index out of range at row ", i);
  }
  ft::Data data{sparse ? nullptr : codes.data(), n, static_cast<int>(codes.shape(1)), ptr_or_null(y_class), ptr_or_null(y), n_outputs};
  data.column_major = column_major;
  std::optional<Arr<int64_t>> entry_ptr;
  std::optional<Arr<int32_t>> entry_feature;
  if (kw.contains("entry_ptr") && !kw["entry_ptr"].is_none()) {  // sparse X's stored entries, CSR
    entry_ptr = kw["entry_ptr"].cast<Arr<int64_t>>();
    entry_feature = kw["entry_feature"].cast<Arr<int32_t>>();
    const int64_t* ep = entry_ptr->data();
    FORGEML_CHECK_ARG(entry_ptr->size() == n + 1 && ep[0] == 0 && ep[n] == entry_feature->size(),
                      "entry_ptr: expected n + 1 offsets spanning entry_feature");
    for (int64_t r = 0; r < n; ++r) FORGEML_CHECK_ARG(ep[r] <= ep[r + 1], "entry_ptr: not ascending");
    const int32_t* ef = entry_feature->data();
    for (py::ssize_t k = 0; k < entry_feature->size(); ++k)
      FORGEML_CHECK_ARG(ef[k] >= 0 && ef[k] < data.d, "entry_feature: feature index out of range");
    data.entry_ptr = ep;
    data.entry_feature = ef;
  }
  ft::SparseCodes sparse_codes;
  py::tuple sparse_arrays;  // kept alive while the trees grow
  if (sparse) {
    sparse_arrays = kw["sparse_codes"].cast<py::tuple>();
    sparse_codes = forgeml::bind::tree_sparse_codes(sparse_arrays, n, data.d);
    data.sparse = &sparse_codes;
  }
  std::optional<Arr<float>> edges;  // given: the fields in Forest's dtypes (concat_trees)
  if (kw.contains("edges") && !kw["edges"].is_none()) {
    edges = kw["edges"].cast<Arr<float>>();
    FORGEML_CHECK_ARG(edges->ndim() == 2 && edges->shape(0) == data.d && edges->shape(1) == 256, "edges: expected (",
                      data.d, ", 256)");
  }
  std::vector<ft::TreeOut> trees;
  {
    py::gil_scoped_release nogil;
    trees = ft::grow_forest(data, p, fp, weight.data(), seeds.data(), static_cast<int>(seeds.size()), threads);
  }
  return concat_trees(trees, classify ? p.n_classes * n_outputs : n_outputs, threads, edges);
}

Arr<int32_t> bootstrap_counts(int64_t n, int64_t n_draws, uint64_t seed) {
  Arr<int32_t> c(n);
  ft::bootstrap_counts(n, n_draws, seed, c.mutable_data());
  return c;
}

void check_forest(const Arr<float>& X, const Arr<int32_t>& nodes, const Arr<int64_t>& roots) {
  FORGEML_CHECK_ARG(X.ndim() == 2 && nodes.ndim() == 2 && nodes.shape(1) == 4, "forest: inconsistent shapes");
  forgeml::check_forest_nodes(nodes.data(), nodes.shape(0), roots.data(), roots.size(), X.shape(1));
}

Arr<double> forest_predict(Arr<float> X, Arr<int32_t> nodes, Arr<double> values, Arr<int64_t> roots, int threads) {
  check_forest(X, nodes, roots);
  FORGEML_CHECK_ARG(values.ndim() == 2 && values.shape(0) == nodes.shape(0), "values: expected (nodes, k)");
  const int k = static_cast<int>(values.shape(1));
  Arr<double> out({X.shape(0), static_cast<py::ssize_t>(k)});
  py::gil_scoped_release nogil;
  ft::forest_predict(X.data(), X.shape(0), static_cast<int>(X.shape(1)), nodes.data(), values.data(), k,
                     roots.data(), static_cast<int>(roots.size()), out.mutable_data(), threads);
  return out;
}

Arr<int64_t> forest_apply(Arr<float> X, Arr<int32_t> nodes, Arr<int64_t> roots, int threads) {
  check_forest(X, nodes, roots);
  Arr<int64_t> out({X.shape(0), roots.size()});
  py::gil_scoped_release nogil;
  ft::forest_apply(X.data(), X.shape(0), static_cast<int>(X.shape(1)), nodes.data(), roots.data(),
                   static_cast<int>(roots.size()), out.mutable_data(), threads);
  return out;
}

py::tuple best_split(Arr<double> hist, Arr<double> total, int criterion, int n_classes, double min_samples_leaf,
                     double min_weight_leaf) {
  auto crit = static_cast<ft::Criterion>(criterion);
  int S = ft::is_classification(crit) ? n_classes + 2 : 4;
  FORGEML_CHECK_ARG(hist.ndim() == 3 && hist.shape(1) == 256 && hist.shape(2) == S && total.size() == S,
                    "hist: expected (d, 256, ", S, ") and total (", S, ")");
  ft::SplitResult r = ft::best_split(hist.data(), static_cast<int>(hist.shape(0)), total.data(), crit, n_classes,
                                     min_samples_leaf, min_weight_leaf);
  return py::make_tuple(r.feature, r.bin, r.nan_left, r.proxy);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("tree_bin_edges", &bin_edges, py::arg("X"), py::arg("weight"), py::arg("max_bins"), py::arg("sample"),
        py::arg("seed"));
  m.def("tree_bin_codes", &bin_codes, py::arg("X"), py::arg("edges"), py::arg("n_edges"));
  m.def("tree_bin_edges_csc", &bin_edges_csc, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n"),
        py::arg("d"), py::arg("weight"), py::arg("max_bins"), py::arg("sample"), py::arg("seed"));
  m.def("tree_bin_codes_csc", &bin_codes_csc, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n"),
        py::arg("d"), py::arg("edges"), py::arg("column_major") = false);
  m.def("tree_grow_forest", &grow_forest, py::arg("codes"), py::arg("y_class"), py::arg("y"), py::arg("weight"),
        py::arg("seeds"), py::arg("params"));
  m.def("tree_out_pool_trees", &ft::tree_out_pool_trees, "Grown trees' node arrays kept for the next trees.");
  m.def("tree_out_pool_release", &ft::tree_out_pool_release,
        "Frees the grown trees' node arrays kept for the next trees; returns their used bytes.");
  m.def("tree_bootstrap_counts", &bootstrap_counts, py::arg("n"), py::arg("n_draws"), py::arg("seed"));
  m.def("tree_forest_predict", &forest_predict, py::arg("X"), py::arg("nodes"), py::arg("values"), py::arg("roots"),
        py::arg("threads"));
  m.def("tree_forest_apply", &forest_apply, py::arg("X"), py::arg("nodes"), py::arg("roots"), py::arg("threads"));
  m.def("tree_best_split", &best_split, py::arg("hist"), py::arg("total"), py::arg("criterion"),
        py::arg("n_classes"), py::arg("min_samples_leaf"), py::arg("min_weight_leaf"));
}};

}  // namespace
