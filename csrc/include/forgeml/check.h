// Argument checks that throw (never abort): std::invalid_argument becomes ValueError
// in Python, std::runtime_error becomes RuntimeError.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace forgeml {

template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace forgeml

#define FORGEML_CHECK_ARG(cond, ...) \
  do { if (!(cond)) throw std::invalid_argument(::forgeml::concat(__VA_ARGS__)); } while (0)
#define FORGEML_CHECK_RT(cond, ...) \
  do { if (!(cond)) throw std::runtime_error(::forgeml::concat(__VA_ARGS__)); } while (0)
