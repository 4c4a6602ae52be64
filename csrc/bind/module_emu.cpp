// forgeml._emu (test-only): the CUDA kernels compiled with g++ against the SIMT emulator.
#include <pybind11/pybind11.h>

#include "bind/registry.h"

PYBIND11_MODULE(_emu, m) {
  m.doc() = "forgeml CUDA kernels under the SIMT emulator (tests only)";
  forgeml::bind::register_all(m);
}
