// NumPy arrays over pages kept for reuse: a fit's large outputs (a forest's node fields, hundreds
// of MB) would otherwise land on fresh pages each time, and first touches of fresh pages cost
// more than filling them (0.5 s per 300 MB on a VM whose host backs guest memory lazily, against
// 0.02 s to refill pages already mapped). When such an array is freed its pages go back to a pool
// (madvise MADV_FREE: the kernel may still take them under memory pressure) and the next large
// array of this module takes them. Arrays below 1 MiB, and systems without mmap, get plain NumPy
// arrays.
#pragma once
#include <pybind11/numpy.h>

#include <cstddef>

namespace forgeml::bind {

namespace py = pybind11;

// A block of at least `bytes` (page-aligned; null: the pool does not serve this size) and its
// capacity, to hand back with pool_give once its last user is gone.
void* pool_take(size_t bytes, size_t* capacity);
void pool_give(void* block, size_t capacity);
// Bytes of freed blocks the pool holds now (tests).
size_t pool_held_bytes();
// Unmaps every held block (forgeml.release_cached_memory); returns their bytes.
size_t pool_release();

// An uninitialised C-order array of T with the given shape, on pooled pages when large.
template <class T>
py::array_t<T> pooled_array(std::vector<py::ssize_t> shape) {
  size_t bytes = sizeof(T);
  for (py::ssize_t s : shape) bytes *= static_cast<size_t>(s);
  size_t capacity = 0;
  void* block = pool_take(bytes, &capacity);
  if (!block) return py::array_t<T>(shape);
  struct Owner {
    void* block;
    size_t capacity;
  };
  py::capsule base(new Owner{block, capacity}, [](void* p) {
    auto* o = static_cast<Owner*>(p);
    pool_give(o->block, o->capacity);
    delete o;
  });
  return py::array_t<T>(shape, static_cast<T*>(block), base);
}

}  // namespace forgeml::bind
