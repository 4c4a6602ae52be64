// Each family's binding file registers itself into its module, so adding a family never edits
// a shared file:   static forgeml::bind::Register reg{[](py::module_& m) { m.def(...); }};
// Every .so has its own list (pybind11 modules are built with hidden visibility).
//
// forgeml._emu also compiles the *_cuda.cpp binding files (with FORGEML_BIND_DEVICE_API): they
// register into a second list that becomes the submodule _emu.device, the _cuda API (device
// pointers as integers, a stream handle) over the emulator, so the Python GPU path above it is
// the real one in tests.
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

namespace forgeml::bind {

namespace py = pybind11;
using Registrar = void (*)(py::module_&);

enum List { kModule = 0, kDeviceApi = 1 };

inline std::vector<Registrar>& registrars(List list = kModule) {
  static std::vector<Registrar> lists[2];
  return lists[list];
}

template <List L>
struct RegisterIn {
  explicit RegisterIn(Registrar f) { registrars(L).push_back(f); }
};

#ifdef FORGEML_BIND_DEVICE_API
using Register = RegisterIn<kDeviceApi>;
#else
using Register = RegisterIn<kModule>;
#endif

inline void register_all(py::module_& m, List list = kModule) {
  for (Registrar f : registrars(list)) f(m);
}

}  // namespace forgeml::bind
