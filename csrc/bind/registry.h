// Each family's binding file registers itself into its module, so adding a family never edits
// a shared file:   static forgeml::bind::Register reg{[](py::module_& m) { m.def(...); }};
// Every .so has its own list (pybind11 modules are built with hidden visibility).
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

namespace forgeml::bind {

namespace py = pybind11;
using Registrar = void (*)(py::module_&);

inline std::vector<Registrar>& registrars() {
  static std::vector<Registrar> list;
  return list;
}

struct Register {
  explicit Register(Registrar f) { registrars().push_back(f); }
};

inline void register_all(py::module_& m) {
  for (Registrar f : registrars()) f(m);
}

}  // namespace forgeml::bind
