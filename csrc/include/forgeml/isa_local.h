// Containers for the translation units compiled with a wider instruction set than the rest of the
// module (*_avx2.cpp, *_avx512.cpp). Every inline function or template instance a unit emits with
// external linkage (std::vector<float>::resize, ...) is a weak symbol; the linker keeps one copy
// of each for the whole module, and if it keeps the AVX-512 unit's copy, portable code calling it
// dies of SIGILL on a CPU without AVX-512 (seen: std::vector<float> in tree binning on an AVX2-only
// AMD EPYC, through conv_avx512.cpp's copy). LocalVec is a std::vector whose allocator type has
// internal linkage, so every member it instantiates is local to the unit that uses it.
// .ci/check_isa_symbols.py fails CI when an ISA unit defines a weak symbol another unit defines.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace forgeml {
namespace {  // internal linkage on purpose: one allocator type per translation unit

template <class T>
struct LocalAllocator {
  using value_type = T;
  LocalAllocator() = default;
  template <class U>
  LocalAllocator(const LocalAllocator<U>&) noexcept {}  // NOLINT: rebinding, as std::allocator
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p); }
  friend bool operator==(const LocalAllocator&, const LocalAllocator&) { return true; }
  friend bool operator!=(const LocalAllocator&, const LocalAllocator&) { return false; }
};

template <class T>
using LocalVec = std::vector<T, LocalAllocator<T>>;

}  // namespace
}  // namespace forgeml
