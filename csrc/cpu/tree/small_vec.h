// A vector of trivially copyable values that keeps up to N of them inline: tree growth makes and
// drops a few short arrays per node (the children's statistics, the constant-feature mask), and a
// heap allocation each cost more than the node's other bookkeeping. Longer ones (many classes or
// features) go to the heap as a std::vector would.
#pragma once
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

namespace forgeml::tree {

template <class T, size_t N>
class SmallVec {
  static_assert(std::is_trivially_copyable_v<T>, "SmallVec copies its values as bytes");

 public:
  SmallVec() = default;
  explicit SmallVec(size_t n, T value = T{}) { resize(n, value); }
  SmallVec(const SmallVec& o) {
    if (o.heap_) {
      assign(o.data(), o.size());
    } else {
      std::memcpy(buf_, o.buf_, sizeof(buf_));  // a fixed size: a few register moves, no call
      n_ = o.n_;
    }
  }
  SmallVec(SmallVec&& o) noexcept { take(o); }
  SmallVec& operator=(const SmallVec& o) {
    if (this != &o) assign(o.data(), o.size());
    return *this;
  }
  SmallVec& operator=(SmallVec&& o) noexcept {
    if (this != &o) {
      heap_.reset();
      cap_ = N;
      take(o);
    }
    return *this;
  }

  // The n values at p (not inside this vector).
  void assign(const T* p, size_t n) {
    grow(n);
    if (n) std::memcpy(data(), p, n * sizeof(T));
    n_ = n;
  }
  void resize(size_t n, T value = T{}) {
    grow(n);
    T* d = data();
    for (size_t i = n_; i < n; ++i) d[i] = value;
    n_ = n;
  }

  T* data() { return heap_ ? heap_.get() : buf_; }
  const T* data() const { return heap_ ? heap_.get() : buf_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + n_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + n_; }

 private:
  void grow(size_t n) {  // capacity for n values, the current ones kept
    if (n <= cap_) return;
    std::unique_ptr<T[]> h(new T[n]);
    if (n_) std::memcpy(h.get(), data(), n_ * sizeof(T));
    heap_ = std::move(h);
    cap_ = n;
  }
  void take(SmallVec& o) {  // o's values; o is left empty (inline) or without its heap block
    n_ = o.n_;
    if (o.heap_) {
      heap_ = std::move(o.heap_);
      cap_ = o.cap_;
      o.cap_ = N;
    } else {
      std::memcpy(buf_, o.buf_, sizeof(buf_));
    }
    o.n_ = 0;
  }

  // Not zeroed: only the first n_ values are ever read (a move or copy takes all N as a fixed-size
  // block of bytes, which costs less than zeroing them in every Entry a node makes and moves).
  T buf_[N];
  std::unique_ptr<T[]> heap_;
  size_t n_ = 0, cap_ = N;
};

}  // namespace forgeml::tree
