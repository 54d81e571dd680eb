// Dense n-dimensional arrays. Activations are NHWC, conv weights OHWI
// [Cout, kh, kw, Cin/groups], dense weights [out, in]; all row-major.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace bsp {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s);  // "[1, 224, 224, 3]"

// An owning, zero-initialised, move-only buffer of T with a shape. Storage
// comes from calloc so a large fresh array costs nothing until touched.
template <typename T>
class Array {
 public:
  Array() = default;
  explicit Array(Shape shape) : shape_(std::move(shape)) {
    size_ = static_cast<size_t>(shape_numel(shape_));
    if (size_ > 0) {
      data_ = static_cast<T*>(std::calloc(size_, sizeof(T)));
      if (!data_) throw Error("out of memory allocating " + std::to_string(size_ * sizeof(T)) + " bytes");
    }
  }
  Array(Shape shape, const std::vector<T>& values) : Array(std::move(shape)) {
    if (values.size() != size_) throw Error("internal: array initialiser has the wrong size");
    std::copy(values.begin(), values.end(), data_);
  }
  // Zeroed like Array(shape), but data() is 64-byte aligned plus `lines`
  // cache lines: buffers used together can be given different offsets within
  // a page (no 4K aliasing between a kernel's input, output and residual
  // streams), and vector stores never split a cache line.
  static Array aligned(Shape shape, size_t lines) {
    Array a;
    a.shape_ = std::move(shape);
    a.size_ = static_cast<size_t>(shape_numel(a.shape_));
    if (a.size_ > 0) {
      a.base_ = std::calloc(a.size_ * sizeof(T) + 64 * (lines + 1), 1);
      if (!a.base_) throw Error("out of memory allocating " + std::to_string(a.size_ * sizeof(T)) + " bytes");
      const uintptr_t p = (reinterpret_cast<uintptr_t>(a.base_) + 63) / 64 * 64 + 64 * lines;
      a.data_ = reinterpret_cast<T*>(p);
    }
    return a;
  }
  ~Array() { std::free(base_ ? base_ : data_); }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  Array(Array&& o) noexcept : shape_(std::move(o.shape_)), data_(o.data_), base_(o.base_), size_(o.size_) {
    o.data_ = nullptr;
    o.base_ = nullptr;
    o.size_ = 0;
  }
  Array& operator=(Array&& o) noexcept {
    if (this != &o) {
      std::free(base_ ? base_ : data_);
      shape_ = std::move(o.shape_);
      data_ = o.data_;
      base_ = o.base_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.base_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }

  Array clone() const {
    // An empty array clones empty: Array(Shape{}) would be a 1-element scalar.
    if (size_ == 0) {
      Array a;
      a.shape_ = shape_;
      return a;
    }
    Array a(shape_);
    if (size_) std::memcpy(a.data_, data_, size_ * sizeof(T));
    return a;
  }
  // Reinterpret with a new shape of the same element count.
  void reshape(Shape s) {
    if (static_cast<size_t>(shape_numel(s)) != size_) throw Error("internal: reshape changes the element count");
    shape_ = std::move(s);
  }
  void fill(T v) { std::fill(data_, data_ + size_, v); }

  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  Shape shape_;
  T* data_ = nullptr;
  void* base_ = nullptr;  // what to free when data_ was offset (aligned()), else null
  size_t size_ = 0;
};

using Tensor = Array<float>;

}  // namespace bsp
