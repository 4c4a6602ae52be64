// forgeml._emu: the emulator's controls and its sample kernels (numpy in/out: emulated device
// memory is host memory).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bind/registry.h"
#include "cuda/samples.cuh"
#include "emu/simt.h"
#include "forgeml/check.h"

namespace py = pybind11;
namespace samples = forgeml::cuda::samples;
namespace emu = forgeml::emu;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IntArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

namespace {

void set_thread_order(const std::string& order, uint64_t seed) {
  if (order == "forward") emu::thread_order = emu::Order::forward;
  else if (order == "reversed") emu::thread_order = emu::Order::reversed;
  else if (order == "shuffled") emu::thread_order = emu::Order::shuffled;
  else FORGEML_CHECK_ARG(false, "order: expected 'forward', 'reversed' or 'shuffled', got '", order, "'");
  emu::shuffle_seed = seed;
}

std::string thread_order() {
  static const char* names[] = {"forward", "reversed", "shuffled"};
  return names[static_cast<int>(emu::thread_order.load())];
}

void check_launch(int blocks, int threads) {
  FORGEML_CHECK_ARG(blocks >= 1, "blocks: expected >= 1, got ", blocks);
  FORGEML_CHECK_ARG(threads >= 32 && threads <= 1024 && threads % 32 == 0,
                    "threads: expected a multiple of 32 in [32, 1024], got ", threads);
}

py::tuple block_reduce(FloatArray x, int blocks, int threads) {
  check_launch(blocks, threads);
  FloatArray partial(blocks);
  unsigned positives = 0;
  {
    py::gil_scoped_release release;
    samples::block_reduce(x.data(), x.size(), partial.mutable_data(), &positives, blocks, threads, nullptr);
  }
  return py::make_tuple(partial, positives);
}

py::array_t<uint32_t> histogram(IntArray codes, int bins, int blocks, int threads, bool remove_barrier_for_test) {
  check_launch(blocks, threads);
  FORGEML_CHECK_ARG(bins >= 1 && bins <= 16384, "bins: expected 1..16384, got ", bins);
  const int32_t* c = codes.data();
  for (py::ssize_t i = 0; i < codes.size(); ++i)
    FORGEML_CHECK_ARG(c[i] >= 0 && c[i] < bins, "codes: expected values in [0, ", bins, "), got ", c[i]);
  py::array_t<uint32_t> hist(bins);
  std::fill_n(hist.mutable_data(), bins, 0u);
  {
    py::gil_scoped_release release;
    samples::histogram(c, codes.size(), bins, hist.mutable_data(), blocks, threads, remove_barrier_for_test,
                       nullptr);
  }
  return hist;
}

FloatArray transpose(FloatArray x) {
  FORGEML_CHECK_ARG(x.ndim() == 2, "x: expected a 2-D array, got ", x.ndim(), "-D");
  FloatArray y({x.shape(1), x.shape(0)});
  {
    py::gil_scoped_release release;
    samples::transpose(x.data(), x.shape(0), x.shape(1), y.mutable_data(), nullptr);
  }
  return y;
}

forgeml::bind::Register reg{[](py::module_& m) {
  m.def("set_thread_order", &set_thread_order, py::arg("order"), py::arg("seed") = 0,
        "Order in which a block's fibers are resumed: 'forward', 'reversed' or 'shuffled' (seeded).");
  m.def("thread_order", &thread_order);
  m.def("set_block_threads", [](int n) { emu::block_threads = n; }, py::arg("n"),
        "OS threads that run blocks in parallel (0 = OpenMP's default, 1 = one after another).");
  m.def("block_reduce", &block_reduce, py::arg("x"), py::arg("blocks"), py::arg("threads"),
        "(per-block sums, count of x > 0) of the warp-shuffle reduction sample.");
  m.def("histogram", &histogram, py::arg("codes"), py::arg("bins"), py::arg("blocks"), py::arg("threads"),
        py::arg("remove_barrier_for_test") = false);
  m.def("transpose", &transpose, py::arg("x"), "x.T through the 2-D-block shared-memory transpose sample.");
  m.def("divergent_barrier", [](int kind, int threads) {
    py::gil_scoped_release release;
    samples::divergent_barrier(kind, threads);
  }, py::arg("kind"), py::arg("threads") = 64);
}};

}  // namespace
