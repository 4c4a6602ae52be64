// forgeml._cuda tree kernels: device pointers as integers and a stream handle (validated in
// python/forgeml/ops/tree.py).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bind/registry.h"
#include "cuda/tree.cuh"

namespace py = pybind11;
namespace ct = forgeml::cuda::tree;

namespace {

template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("tree_histogram", [](uintptr_t codes, int64_t n, int d, uintptr_t rows, int64_t m_rows, uintptr_t cls,
                             uintptr_t w, uintptr_t y, int H, uintptr_t hw, uintptr_t cnt, uintptr_t stream) {
    py::gil_scoped_release nogil;
    ct::histogram(ptr<const uint8_t>(codes), n, d, ptr<const int32_t>(rows), m_rows, ptr<const int32_t>(cls),
                  ptr<const double>(w), ptr<const double>(y), H, ptr<double>(hw), ptr<uint32_t>(cnt),
                  ptr<CUstream_st>(stream));
  }, py::arg("codes"), py::arg("n"), py::arg("d"), py::arg("rows"), py::arg("m"), py::arg("cls"), py::arg("w"),
     py::arg("y"), py::arg("H"), py::arg("hw"), py::arg("cnt"), py::arg("stream"));
  m.def("tree_split_scan", [](uintptr_t hw, uintptr_t cnt, int d, int H, int criterion, uintptr_t total,
                              double min_leaf, double min_weight_leaf, uintptr_t proxy, uintptr_t bin,
                              uintptr_t nan_left, uintptr_t stream) {
    py::gil_scoped_release nogil;
    ct::split_scan(ptr<const double>(hw), ptr<const uint32_t>(cnt), d, H, criterion, ptr<const double>(total),
                   min_leaf, min_weight_leaf, ptr<double>(proxy), ptr<int32_t>(bin), ptr<int32_t>(nan_left),
                   ptr<CUstream_st>(stream));
  }, py::arg("hw"), py::arg("cnt"), py::arg("d"), py::arg("H"), py::arg("criterion"), py::arg("total"),
     py::arg("min_leaf"), py::arg("min_weight_leaf"), py::arg("proxy"), py::arg("bin"), py::arg("nan_left"),
     py::arg("stream"));
  m.def("tree_histogram_nodes", [](uintptr_t codes, int d, uintptr_t rows, uintptr_t ranges, int nodes,
                                   int64_t max_rows, uintptr_t cls, uintptr_t w, uintptr_t y, int H, uintptr_t hw,
                                   uintptr_t cnt, uintptr_t stream) {
    py::gil_scoped_release nogil;
    ct::histogram_nodes(ptr<const uint8_t>(codes), d, ptr<const int32_t>(rows), ptr<const int64_t>(ranges), nodes,
                        max_rows, ptr<const int32_t>(cls), ptr<const double>(w), ptr<const double>(y), H,
                        ptr<double>(hw), ptr<uint32_t>(cnt), ptr<CUstream_st>(stream));
  }, py::arg("codes"), py::arg("d"), py::arg("rows"), py::arg("ranges"), py::arg("nodes"), py::arg("max_rows"),
     py::arg("cls"), py::arg("w"), py::arg("y"), py::arg("H"), py::arg("hw"), py::arg("cnt"), py::arg("stream"));
  m.def("tree_split_scan_nodes", [](uintptr_t hw, uintptr_t cnt, int d, int nodes, int H, int criterion,
                                    uintptr_t total, double min_leaf, double min_weight_leaf, uintptr_t proxy,
                                    uintptr_t bin, uintptr_t nan_left, uintptr_t left, uintptr_t varies,
                                    uintptr_t stream) {
    py::gil_scoped_release nogil;
    ct::split_scan_nodes(ptr<const double>(hw), ptr<const uint32_t>(cnt), d, nodes, H, criterion,
                         ptr<const double>(total), min_leaf, min_weight_leaf, ptr<double>(proxy), ptr<int32_t>(bin),
                         ptr<int32_t>(nan_left), ptr<double>(left), ptr<int32_t>(varies), ptr<CUstream_st>(stream));
  }, py::arg("hw"), py::arg("cnt"), py::arg("d"), py::arg("nodes"), py::arg("H"), py::arg("criterion"),
     py::arg("total"), py::arg("min_leaf"), py::arg("min_weight_leaf"), py::arg("proxy"), py::arg("bin"),
     py::arg("nan_left"), py::arg("left"), py::arg("varies"), py::arg("stream"));
  m.def("tree_partition", [](uintptr_t codes, int d, uintptr_t rows, uintptr_t tmp, uintptr_t ranges, int nodes,
                             uintptr_t feature, uintptr_t bin, uintptr_t nan_left, uintptr_t n_left,
                             uintptr_t stream) {
    py::gil_scoped_release nogil;
    ct::partition(ptr<const uint8_t>(codes), d, ptr<int32_t>(rows), ptr<int32_t>(tmp), ptr<const int64_t>(ranges),
                  nodes, ptr<const int32_t>(feature), ptr<const int32_t>(bin), ptr<const int32_t>(nan_left),
                  ptr<int64_t>(n_left), ptr<CUstream_st>(stream));
  }, py::arg("codes"), py::arg("d"), py::arg("rows"), py::arg("tmp"), py::arg("ranges"), py::arg("nodes"),
     py::arg("feature"), py::arg("bin"), py::arg("nan_left"), py::arg("n_left"), py::arg("stream"));
}};

}  // namespace
