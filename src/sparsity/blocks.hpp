// The channel-block structure of a weight: which R x C blocks of output x
// input channels (each over every kernel tap) hold anything. The one
// derivation behind the AIE2 schedule's block occupancy, the 8x8 kernels'
// cover of layers stored in other forms, the trainer's block skipping and
// the bsr compact form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bsp {

struct BlockGrid {
  int64_t rows = 0, cols = 0;  // ceil(O / R), ceil(I / C)
  std::vector<uint8_t> bits;   // [rows, cols] row-major: 1 = the block holds something
  int64_t count = 0;           // blocks set

  bool operator()(int64_t r, int64_t c) const { return bits[static_cast<size_t>(r * cols + c)] != 0; }
  // Its set blocks as CSR: row_ptr [rows + 1], col_idx ascending within a row.
  void to_csr(std::vector<int32_t>& row_ptr, std::vector<int32_t>& col_idx) const;
};

// `values` viewed as [O, taps, I] (a conv weight OHWI with taps = kh*kw, per
// group; a dense weight with taps = 1; or an element mask of either): block
// (r, c) is set when values[(o*taps + t)*I + i] != 0 for some o in
// [r*R, r*R + R), i in [c*C, c*C + C) and any t. Edge blocks are smaller.
template <typename T>
BlockGrid block_grid(const T* values, int64_t O, int64_t taps, int64_t I, int64_t R = 8, int64_t C = 8);

// Every block set.
BlockGrid full_block_grid(int64_t O, int64_t I, int64_t R = 8, int64_t C = 8);

}  // namespace bsp
