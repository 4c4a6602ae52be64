// C symbols through which threadpoolctl finds and limits forgeml's thread pool (the controller
// class is python/forgeml/_threadpoolctl.py; it loads this module with ctypes and looks for
// forgeml_threadpool_get_num_threads to tell it apart from other modules named _cpu).
#include "forgeml/parallel.h"

#define FORGEML_EXPORT extern "C" __attribute__((visibility("default")))

FORGEML_EXPORT int forgeml_threadpool_get_num_threads() { return forgeml::num_threads(); }

// Returns 0, or -1 for a count below 1 (a C caller gets no exception).
FORGEML_EXPORT int forgeml_threadpool_set_num_threads(int n) {
  if (n < 1) return -1;
  forgeml::set_num_threads(n);
  return 0;
}

FORGEML_EXPORT const char* forgeml_threadpool_version() { return FORGEML_VERSION; }
