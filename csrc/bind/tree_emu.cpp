// forgeml._emu tree kernels (numpy in/out: emulated device memory is host memory).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include "bind/registry.h"
#include "cuda/tree.cuh"
#include "forgeml/check.h"

namespace py = pybind11;
namespace ct = forgeml::cuda::tree;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

py::tuple histogram(Arr<uint8_t> codes, Arr<int32_t> rows, std::optional<Arr<int32_t>> cls, Arr<double> w,
                    std::optional<Arr<double>> y, int H) {
  FORGEML_CHECK_ARG(codes.ndim() == 2, "codes: expected 2-D");
  const int64_t n = codes.shape(0);
  const int d = static_cast<int>(codes.shape(1));
  FORGEML_CHECK_ARG(w.size() == n && (cls ? cls->size() == n : (y && y->size() == n)), "w, cls/y: expected ", n);
  for (py::ssize_t i = 0; i < rows.size(); ++i)
    FORGEML_CHECK_ARG(rows.data()[i] >= 0 && rows.data()[i] < n, "rows: out of range");
  Arr<double> hw({static_cast<py::ssize_t>(d), py::ssize_t{256}, static_cast<py::ssize_t>(H)});
  Arr<uint32_t> cnt({static_cast<py::ssize_t>(d), py::ssize_t{256}});
  std::fill_n(hw.mutable_data(), hw.size(), 0.0);
  std::fill_n(cnt.mutable_data(), cnt.size(), 0u);
  {
    py::gil_scoped_release nogil;
    ct::histogram(codes.data(), n, d, rows.data(), rows.size(), cls ? cls->data() : nullptr, w.data(),
                  y ? y->data() : nullptr, H, hw.mutable_data(), cnt.mutable_data(), nullptr);
  }
  return py::make_tuple(hw, cnt);
}

py::tuple split_scan(Arr<double> hw, Arr<uint32_t> cnt, int criterion, Arr<double> total, double min_leaf,
                     double min_weight_leaf) {
  FORGEML_CHECK_ARG(hw.ndim() == 3 && hw.shape(1) == 256 && cnt.ndim() == 2 && cnt.shape(0) == hw.shape(0),
                    "hw, cnt: expected (d, 256, H) and (d, 256)");
  const int d = static_cast<int>(hw.shape(0)), H = static_cast<int>(hw.shape(2));
  Arr<double> proxy(d);
  Arr<int32_t> bin(d), nan_left(d);
  {
    py::gil_scoped_release nogil;
    ct::split_scan(hw.data(), cnt.data(), d, H, criterion, total.data(), min_leaf, min_weight_leaf,
                   proxy.mutable_data(), bin.mutable_data(), nan_left.mutable_data(), nullptr);
  }
  return py::make_tuple(proxy, bin, nan_left);
}

// Stable partition of each node's rows: returns (rows after, n_left (nodes)).
py::tuple partition(Arr<uint8_t> codes, Arr<int32_t> rows, Arr<int64_t> ranges, Arr<int32_t> feature, Arr<int32_t> bin,
                    Arr<int32_t> nan_left) {
  FORGEML_CHECK_ARG(codes.ndim() == 2 && ranges.ndim() == 2 && ranges.shape(1) == 2, "codes, ranges: expected 2-D");
  const int64_t n = codes.shape(0), m = rows.size();
  const int d = static_cast<int>(codes.shape(1)), nodes = static_cast<int>(ranges.shape(0));
  FORGEML_CHECK_ARG(feature.size() == nodes && bin.size() == nodes && nan_left.size() == nodes,
                    "feature, bin, nan_left: expected one per node");
  for (int z = 0; z < nodes; ++z)
    FORGEML_CHECK_ARG(ranges.data()[2 * z] >= 0 && ranges.data()[2 * z] <= ranges.data()[2 * z + 1] &&
                          ranges.data()[2 * z + 1] <= m && feature.data()[z] >= 0 && feature.data()[z] < d,
                      "ranges, feature: out of range");
  for (int64_t i = 0; i < m; ++i) FORGEML_CHECK_ARG(rows.data()[i] >= 0 && rows.data()[i] < n, "rows: out of range");
  Arr<int32_t> out(m), tmp(m);
  Arr<int64_t> n_left(nodes);
  std::copy_n(rows.data(), m, out.mutable_data());
  {
    py::gil_scoped_release nogil;
    ct::partition(codes.data(), d, out.mutable_data(), tmp.mutable_data(), ranges.data(), nodes, feature.data(),
                  bin.data(), nan_left.data(), n_left.mutable_data(), nullptr);
  }
  return py::make_tuple(out, n_left);
}

// partition_into with `blocks` blocks per node (0: the launcher's choice): (out, n_left); out is
// -1 outside the ranges.
py::tuple partition_into(Arr<uint8_t> codes, Arr<int32_t> rows, Arr<int64_t> ranges, Arr<int32_t> feature,
                         Arr<int32_t> bin, Arr<int32_t> nan_left, int blocks) {
  FORGEML_CHECK_ARG(codes.ndim() == 2 && ranges.ndim() == 2 && ranges.shape(1) == 2, "codes, ranges: expected 2-D");
  const int64_t n = codes.shape(0), m = rows.size();
  const int d = static_cast<int>(codes.shape(1)), nodes = static_cast<int>(ranges.shape(0));
  FORGEML_CHECK_ARG(feature.size() == nodes && bin.size() == nodes && nan_left.size() == nodes,
                    "feature, bin, nan_left: expected one per node");
  int64_t max_rows = 0;
  for (int z = 0; z < nodes; ++z) {
    const int64_t a = ranges.data()[2 * z], b = ranges.data()[2 * z + 1];
    FORGEML_CHECK_ARG(a >= 0 && a <= b && b <= m && feature.data()[z] >= 0 && feature.data()[z] < d,
                      "ranges, feature: out of range");
    max_rows = std::max(max_rows, b - a);
  }
  for (int64_t i = 0; i < m; ++i) FORGEML_CHECK_ARG(rows.data()[i] >= 0 && rows.data()[i] < n, "rows: out of range");
  Arr<int32_t> out(m);
  Arr<int64_t> n_left(nodes);
  std::fill_n(out.mutable_data(), m, -1);
  std::vector<int64_t> block_left(static_cast<size_t>(nodes) * ct::kMaxPartBlocks);
  int launches;
  {
    py::gil_scoped_release nogil;
    launches = ct::partition_into(codes.data(), d, rows.data(), out.mutable_data(), ranges.data(), nodes, max_rows,
                                  feature.data(), bin.data(), nan_left.data(), block_left.data(), n_left.mutable_data(),
                                  nullptr, blocks);
  }
  return py::make_tuple(out, n_left, launches);
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("tree_partition", &partition, py::arg("codes"), py::arg("rows"), py::arg("ranges"), py::arg("feature"),
        py::arg("bin"), py::arg("nan_left"));
  m.def("tree_partition_into", &partition_into, py::arg("codes"), py::arg("rows"), py::arg("ranges"),
        py::arg("feature"), py::arg("bin"), py::arg("nan_left"), py::arg("blocks"));
  m.def("tree_histogram", &histogram, py::arg("codes"), py::arg("rows"), py::arg("cls"), py::arg("w"), py::arg("y"),
        py::arg("H"));
  m.def("tree_split_scan", &split_scan, py::arg("hw"), py::arg("cnt"), py::arg("criterion"), py::arg("total"),
        py::arg("min_leaf"), py::arg("min_weight_leaf"));
}};

}  // namespace
