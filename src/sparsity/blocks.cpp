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
      for (int64_t i = 0; i < I; ++i)
        if (v[i] != T(0)) row[i / C] = 1;
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
