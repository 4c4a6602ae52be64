// forgeml._cuda: the CUDA backend. Families add their functions through registry.h.
// Every function takes device pointers as integers and a stream handle (CuPy's current stream).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind/registry.h"
#include "cuda/launch.cuh"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "forgeml CUDA kernels";
  m.attr("archs") = FORGEML_CUDA_ARCHS;
  m.def("runtime_version", &forgeml::cuda::runtime_version);
  // (usable, device name or the reason none is usable); asked once by forgeml._backend.
  m.def("device_status", &forgeml::cuda::device_status);
  forgeml::bind::register_all(m);
}
