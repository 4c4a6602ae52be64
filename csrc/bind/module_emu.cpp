// forgeml._emu (test-only): the CUDA kernels compiled with g++ against the SIMT emulator.
// _emu itself takes NumPy arrays (kernel tests); _emu.device is the _cuda API (the *_cuda.cpp
// binding files compiled again: device pointers as integers, a stream handle), so the Python
// GPU path runs unchanged on the emulator, where device memory is host memory.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <utility>

#include "bind/registry.h"

namespace py = pybind11;

PYBIND11_MODULE(_emu, m) {
  m.doc() = "forgeml CUDA kernels under the SIMT emulator (tests only)";
  forgeml::bind::register_all(m);
  py::module_ dev = m.def_submodule("device", "the _cuda API over the SIMT emulator (host memory)");
  dev.attr("archs") = "emulated";
  dev.def("runtime_version", [] { return 0; });
  dev.def("device_status", [] { return std::make_pair(true, std::string("SIMT emulator (forgeml._emu)")); });
  forgeml::bind::register_all(dev, forgeml::bind::kDeviceApi);
}
