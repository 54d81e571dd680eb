// The 8x8 block structure (bsr row_ptr / col_idx) covering the nonzero
// weights of a dense [O, kh, kw, I] array: how layers stored in other forms
// (bsr of another block size, nm and tw for int8) reach the 8x8 kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "compact/weights.hpp"

namespace bsp::kernels {

template <typename T>
void cover_8x8(const T* w, const compact::WeightGeom& g, std::vector<int32_t>& row_ptr, std::vector<int32_t>& col_idx) {
  const int64_t rows = (g.O + 7) / 8, cols = (g.I + 7) / 8, taps = g.kh * g.kw;
  row_ptr.assign(1, 0);
  col_idx.clear();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      bool any = false;
      for (int64_t o = r * 8; o < std::min(g.O, r * 8 + 8) && !any; ++o)
        for (int64_t t = 0; t < taps && !any; ++t)
          for (int64_t i = c * 8; i < std::min(g.I, c * 8 + 8) && !any; ++i) any = w[(o * taps + t) * g.I + i] != T(0);
      if (any) col_idx.push_back(static_cast<int32_t>(c));
    }
    row_ptr.push_back(static_cast<int32_t>(col_idx.size()));
  }
}

}  // namespace bsp::kernels
