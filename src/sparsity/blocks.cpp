#include "sparsity/blocks.hpp"

#include <algorithm>

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

template <typename T>
BlockGrid block_grid(const T* values, int64_t O, int64_t taps, int64_t I, int64_t R, int64_t C) {
  BlockGrid g;
  g.rows = (O + R - 1) / R;
  g.cols = (I + C - 1) / C;
  g.bits.assign(static_cast<size_t>(g.rows * g.cols), 0);
  for (int64_t o = 0; o < O; ++o) {
    uint8_t* row = g.bits.data() + (o / R) * g.cols;
    for (int64_t t = 0; t < taps; ++t) {
      const T* v = values + (o * taps + t) * I;
      // Per block column a branch-free OR over its C values (vectorises;
      // the per-element test with a division did not: the AIE2 schedule
      // derives the blocks of every layer pruned without a block mask).
      for (int64_t c = 0; c < g.cols; ++c) {
        const int64_t i0 = c * C, i1 = std::min(I, i0 + C);
        uint8_t any = 0;
        for (int64_t i = i0; i < i1; ++i) any |= static_cast<uint8_t>(v[i] != T(0));
        row[c] |= any;
      }
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
