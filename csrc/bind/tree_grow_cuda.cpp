// forgeml._cuda tree_grow_forest: the GPU tree grower (tree_gpu_grower.h) on device pointers
// (integers) and a stream handle. Validated in python/forgeml/ops/_tree_gpu.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "bind/registry.h"
#include "bind/tree_gpu_grower.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace tg = forgeml::cuda::tree_gpu;

namespace {

template <class T>
T* ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

tg::Params params(int d, int criterion, int K, int max_depth, int min_samples_split, int min_samples_leaf,
                  double min_weight_fraction_leaf, double min_impurity_decrease, int max_features, bool bootstrap,
                  int64_t n_draws) {
  tg::Params p;
  p.d = d, p.criterion = criterion, p.K = K, p.max_depth = max_depth, p.min_samples_split = min_samples_split;
  p.min_samples_leaf = min_samples_leaf, p.min_weight_fraction_leaf = min_weight_fraction_leaf;
  p.min_impurity_decrease = min_impurity_decrease, p.max_features = max_features, p.bootstrap = bootstrap;
  p.n_draws = n_draws;
  return p;
}

// One array of every tree's field, trees one after another.
template <class T, class F>
py::array_t<T> cat(const std::vector<tg::Tree>& trees, F field) {
  size_t n = 0;
  for (auto& t : trees) n += field(t).size();
  py::array_t<T> a(static_cast<py::ssize_t>(n));
  T* o = a.mutable_data();
  for (auto& t : trees) o = std::copy(field(t).begin(), field(t).end(), o);
  return a;
}

py::dict as_dict(const std::vector<tg::Tree>& trees, int K) {
  py::array_t<int64_t> offsets(static_cast<py::ssize_t>(trees.size() + 1));
  py::array_t<int32_t> depth(static_cast<py::ssize_t>(trees.size()));
  offsets.mutable_data()[0] = 0;
  for (size_t t = 0; t < trees.size(); ++t) {
    offsets.mutable_data()[t + 1] = offsets.data()[t] + static_cast<int64_t>(trees[t].feature.size());
    depth.mutable_data()[t] = trees[t].depth;
  }
  py::dict out;
  out["offsets"] = offsets;
  out["depth"] = depth;
  out["feature"] = cat<int32_t>(trees, [](const tg::Tree& t) -> auto& { return t.feature; });
  out["left"] = cat<int32_t>(trees, [](const tg::Tree& t) -> auto& { return t.left; });
  out["right"] = cat<int32_t>(trees, [](const tg::Tree& t) -> auto& { return t.right; });
  out["thr_bin"] = cat<int32_t>(trees, [](const tg::Tree& t) -> auto& { return t.thr_bin; });
  out["nan_left"] = cat<uint8_t>(trees, [](const tg::Tree& t) -> auto& { return t.nan_left; });
  out["impurity"] = cat<double>(trees, [](const tg::Tree& t) -> auto& { return t.impurity; });
  out["weighted_n"] = cat<double>(trees, [](const tg::Tree& t) -> auto& { return t.weighted_n; });
  out["n_samples"] = cat<int64_t>(trees, [](const tg::Tree& t) -> auto& { return t.n_samples; });
  py::array_t<double> value = cat<double>(trees, [](const tg::Tree& t) -> auto& { return t.value; });
  out["value"] = value.reshape({value.size() / K, static_cast<py::ssize_t>(K)});
  return out;
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def(
      "tree_grow_workspace_bytes",
      [](int64_t n, int d, int criterion, int K, bool bootstrap) {
        return tg::workspace_bytes(n, params(d, criterion, K, 1, 2, 1, 0, 0, 1, bootstrap, 0));
      },
      py::arg("n"), py::arg("d"), py::arg("criterion"), py::arg("K"), py::arg("bootstrap"));
  m.def(
      "tree_grow_forest",
      [](uintptr_t codes, int64_t n, int d, uintptr_t cls, uintptr_t y, uintptr_t w,
         py::array_t<uint64_t, py::array::c_style | py::array::forcecast> seeds, int criterion, int K, int max_depth,
         int min_samples_split, int min_samples_leaf, double min_weight_fraction_leaf, double min_impurity_decrease,
         int max_features, bool bootstrap, int64_t n_draws, uintptr_t workspace, int workers, uintptr_t stream,
         bool fused, bool batch, int fail_tree, int64_t fail_batch) {
        FORGEML_CHECK_ARG(K >= 1 && K <= 16, "n_classes: expected 1 .. 16, got ", K);
        FORGEML_CHECK_ARG(n >= 0 && d >= 1 && max_features >= 1,
                          "codes, max_features: expected n >= 0, d >= 1, max_features >= 1");
        FORGEML_CHECK_ARG(workers >= 1, "workers: expected >= 1, got ", workers);
        tg::Params p = params(d, criterion, K, max_depth, min_samples_split, min_samples_leaf, min_weight_fraction_leaf,
                              min_impurity_decrease, max_features, bootstrap, n_draws);
        p.fused = fused, p.batch = batch, p.fail_tree = fail_tree, p.fail_batch = fail_batch;
        const tg::Input in{ptr<const uint8_t>(codes), n, ptr<const int32_t>(cls), ptr<const double>(y),
                           ptr<const double>(w)};
        std::vector<uint64_t> s(seeds.data(), seeds.data() + seeds.size());
        std::vector<tg::Tree> trees;
        tg::Counts counts;
        {
          py::gil_scoped_release nogil;
          trees = tg::grow_forest(in, p, s.data(), static_cast<int>(s.size()), ptr<char>(workspace), workers,
                                  ptr<CUstream_st>(stream), &counts);
        }
        py::dict c;
        c["pairs"] = counts.pairs, c["leaf_pairs"] = counts.leaf_pairs, c["launches"] = counts.launches,
        c["memsets"] = counts.memsets;
        c["h2d"] = counts.h2d, c["d2h"] = counts.d2h, c["syncs"] = counts.syncs;
        c["batches"] = counts.batches, c["batched"] = counts.batched, c["batch_sync_s"] = counts.batch_sync_s;
        c["issue_s"] = counts.issue_s, c["wait_s"] = counts.wait_s, c["prepare_s"] = counts.prepare_s;
        c["host_s"] = counts.host_s(), c["grow_s"] = counts.grow_s;
        return py::make_tuple(as_dict(trees, K), c);
      },
      py::arg("codes"), py::arg("n"), py::arg("d"), py::arg("cls"), py::arg("y"), py::arg("w"), py::arg("seeds"),
      py::arg("criterion"), py::arg("K"), py::arg("max_depth"), py::arg("min_samples_split"),
      py::arg("min_samples_leaf"), py::arg("min_weight_fraction_leaf"), py::arg("min_impurity_decrease"),
      py::arg("max_features"), py::arg("bootstrap"), py::arg("n_draws"), py::arg("workspace"), py::arg("workers"),
      py::arg("stream"), py::arg("fused") = true, py::arg("batch") = false, py::arg("fail_tree") = -1,
      py::arg("fail_batch") = 0);
}};

}  // namespace
