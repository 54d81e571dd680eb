// Activation buffers reused across the steps and passes of a runner: a freed
// buffer serves the next output of the same size, so a pass takes no page
// faults or zeroing of fresh memory (the kernels write every output element).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace bsp::kernels {

template <typename T>
class BufferPool {
 public:
  // A buffer of shape s: a freed one of the same size, or a new one, 64-byte
  // aligned at another offset within a page than the last (no 4K aliasing
  // between a kernel's input, output and residual streams).
  Array<T> take(Shape s) {
    const size_t n = static_cast<size_t>(shape_numel(s));
    for (size_t i = 0; i < free_.size(); ++i)
      if (free_[i].size() == n) {
        Array<T> a = std::move(free_[i]);
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        a.reshape(std::move(s));
        return a;
      }
    return Array<T>::aligned(std::move(s), (allocs_++ * 13) % 64);
  }
  // Returns a's storage to the pool (an empty a is ignored); a is left empty.
  void give(Array<T>& a) {
    if (!a.empty()) free_.push_back(std::move(a));
    a = Array<T>();
  }

 private:
  std::vector<Array<T>> free_;
  size_t allocs_ = 0;
};

}  // namespace bsp::kernels
