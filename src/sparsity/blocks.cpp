#include "sparsity/blocks.hpp"

#include <algorithm>
#include <cstring>

namespace bsp {

void BlockGrid::to_csr(std::vector<int32_t>& row_ptr, std::vector<int32_t>& col_idx) const {
  row_ptr.assign(1, 0);
  col_idx.clear();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c)
      if ((*this)(r, c)) col_idx.push_back(static_cast<int32_t>(c));
    row_ptr.push_back(static_cast<int32_t>(col_idx.size()));
  }
}

namespace {
// A value's bits with "nonzero" meaning the value is nonzero: a float's sign
// bit dropped (-0.0 is zero), integers as they are.
template <typename T>
struct NonzeroBits {
  using U = T;
  static U of(T v) { return v; }
};
template <>
struct NonzeroBits<float> {
  using U = uint32_t;
  static U of(float v) {
    U u;
    std::memcpy(&u, &v, sizeof u);
    return u & 0x7fffffffu;
  }
};
}  // namespace

template <typename T>
BlockGrid block_grid(const T* values, int64_t O, int64_t taps, int64_t I, int64_t R, int64_t C) {
  using Bits = NonzeroBits<T>;
  BlockGrid g;
  g.rows = (O + R - 1) / R;
  g.cols = (I + C - 1) / C;
  g.bits.assign(static_cast<size_t>(g.rows * g.cols), 0);
  // Per block row, one OR over its R x taps rows of I values into any[I]
  // (a flat loop that vectorises; the AIE2 schedule derives the blocks of
  // every layer pruned without a block mask, ResNet-50's 25 M weights per
  // schedule), then one test per block column.
  std::vector<typename Bits::U> any(static_cast<size_t>(I));
  for (int64_t r = 0; r < g.rows; ++r) {
    std::fill(any.begin(), any.end(), typename Bits::U{0});
    typename Bits::U* acc = any.data();
    for (int64_t o = r * R; o < std::min(O, r * R + R); ++o)
      for (int64_t t = 0; t < taps; ++t) {
        const T* v = values + (o * taps + t) * I;
        for (int64_t i = 0; i < I; ++i) acc[i] |= Bits::of(v[i]);
      }
    uint8_t* row = g.bits.data() + r * g.cols;
    for (int64_t c = 0; c < g.cols; ++c) {
      const int64_t i0 = c * C, i1 = std::min(I, i0 + C);
      typename Bits::U a{0};
      for (int64_t i = i0; i < i1; ++i) a |= acc[i];
      row[c] = a != 0;
    }
  }
  g.count = std::count(g.bits.begin(), g.bits.end(), uint8_t{1});
  return g;
}

template BlockGrid block_grid(const float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template BlockGrid block_grid(const int8_t*, int64_t, int64_t, int64_t, int64_t, int64_t);
template BlockGrid block_grid(const uint8_t*, int64_t, int64_t, int64_t, int64_t, int64_t);
template BlockGrid block_grid(const uint16_t*, int64_t, int64_t, int64_t, int64_t, int64_t);

BlockGrid full_block_grid(int64_t O, int64_t I, int64_t R, int64_t C) {
  BlockGrid g;
  g.rows = (O + R - 1) / R;
  g.cols = (I + C - 1) / C;
  g.bits.assign(static_cast<size_t>(g.rows * g.cols), 1);
  g.count = g.rows * g.cols;
  return g;
}

}  // namespace bsp
