// forgeml._cpu: the CPU backend. Families add their functions through registry.h.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bind/registry.h"
#include "forgeml/cpu_features.h"
#include "forgeml/parallel.h"

namespace py = pybind11;

namespace {

// Runs on the thread that released the GIL, between chunks of a long kernel.
void python_interrupt_hook() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "forgeml CPU kernels";
  forgeml::set_interrupt_hook(python_interrupt_hook);

  m.attr("version") = FORGEML_VERSION;
  m.attr("compiler") = FORGEML_CXX_COMPILER;
  m.def("detected_isa", [] { return forgeml::isa_name(forgeml::detected_isa()); },
        "The best SIMD level this CPU supports.");
  m.def("active_isa", [] { return forgeml::isa_name(forgeml::active_isa()); },
        "The SIMD level the kernels use (FORGEML_ISA can lower it).");
  m.def("set_active_isa", [](const std::string& name) {
    for (auto isa : {forgeml::Isa::reference, forgeml::Isa::portable, forgeml::Isa::avx2, forgeml::Isa::avx512})
      if (name == forgeml::isa_name(isa)) return forgeml::set_active_isa(isa);
    throw std::invalid_argument("isa: expected 'reference', 'portable', 'avx2' or 'avx512', got '" + name + "'");
  }, py::arg("isa"));
  m.def("get_num_threads", &forgeml::num_threads);
  m.def("set_num_threads", &forgeml::set_num_threads, py::arg("n"));
  m.def("pool_spin_microseconds", &forgeml::pool::spin_microseconds,
        "How long an idle pool worker spins before it sleeps (FORGEML_SPIN_US).");
  m.def("pool_workers", &forgeml::pool::workers, "Worker threads the pool has started in this process.");
  m.def("_pool_run", [](int n, int throw_at, bool nested) {
    // Test hook: parallel_run(n) over tids that each record themselves (and, nested, run an inner
    // parallel_run of 3 tids); tid throw_at throws. Returns how often each tid ran and how many
    // distinct OS threads took part.
    std::vector<std::atomic<int>> runs(std::max(n, 0));
    std::vector<std::atomic<int>> inner(std::max(n, 0));
    std::mutex mu;
    std::vector<std::thread::id> ids;
    {
      py::gil_scoped_release nogil;
      forgeml::parallel_run(n, [&](int tid, int count) {
        if (count != n) throw std::logic_error("parallel_run: wrong tid count");
        runs[tid].fetch_add(1);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (std::find(ids.begin(), ids.end(), std::this_thread::get_id()) == ids.end())
            ids.push_back(std::this_thread::get_id());
        }
        if (nested)
          forgeml::parallel_run(3, [&](int, int) {
            if (!forgeml::in_parallel()) throw std::logic_error("nested call not marked in_parallel");
            inner[tid].fetch_add(1);
          });
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // long enough for workers to join
        if (tid == throw_at) throw std::invalid_argument("tid " + std::to_string(tid) + " failed");
      });
    }
    std::vector<int> out(runs.size()), nested_runs(inner.size());
    for (size_t i = 0; i < runs.size(); ++i) out[i] = runs[i].load(), nested_runs[i] = inner[i].load();
    return py::make_tuple(out, nested_runs, int(ids.size()));
  }, py::arg("n"), py::arg("throw_at") = -1, py::arg("nested") = false);
  m.def("_interruptible_wait", [](double seconds) {
    py::gil_scoped_release nogil;
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      forgeml::check_interrupt();
    }
  }, py::arg("seconds"), "Test hook: waits like a long kernel, honouring Ctrl-C between chunks.");

  forgeml::bind::register_all(m);
}
