// Pass plans: the K lists of the igemm8 / rowdot8 kernels (kernels.hpp) for
// one layer and one pass, with the weights packed for them.
//
// A plan splits the rows of a weight matrix (output channels for the forward
// pass, input channels for the data gradient) into blocks of 8. Block rb
// lists, for every K entry t it multiplies, the weight column kidx[t] and
// the offset off[t] of the activation row it reads. Zero 8x8 weight blocks
// are simply not listed, so the kernels never touch them.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model.hpp"
#include "sparsity/blocks.hpp"

namespace bsp::train {

struct PassPlan {
  int64_t rows = 0;        // real rows (the last block may be partial)
  int64_t row_stride = 0;  // weight elements from one row to the next
  std::vector<int64_t> start{0};  // [blocks + 1]: block rb holds entries start[rb] .. start[rb + 1]
  std::vector<int64_t> kidx;      // [T]: weight element of row 0 of the block for entry t
  std::vector<int64_t> off;       // [T]: activation offset for entry t
  std::vector<float> A;           // [T, 8]: packed weights, filled by pack()

  void reset(int64_t rows_, int64_t row_stride_);
  void add(int64_t k, int64_t o) {
    kidx.push_back(k);
    off.push_back(o);
  }
  void end_block() { start.push_back(static_cast<int64_t>(kidx.size())); }
  int64_t blocks() const { return static_cast<int64_t>(start.size()) - 1; }
  int64_t entries() const { return static_cast<int64_t>(kidx.size()); }
  int64_t block_rows(int64_t rb) const { return std::min<int64_t>(8, rows - rb * 8); }
  const float* block_A(int64_t rb) const { return A.data() + start[static_cast<size_t>(rb)] * 8; }
  const int64_t* block_off(int64_t rb) const { return off.data() + start[static_cast<size_t>(rb)]; }
  const int64_t* block_kidx(int64_t rb) const { return kidx.data() + start[static_cast<size_t>(rb)]; }
  int64_t block_T(int64_t rb) const { return start[static_cast<size_t>(rb) + 1] - start[static_cast<size_t>(rb)]; }

  // A[t][r] = W[(rb * 8 + r) * row_stride + kidx[t]] (times mask[...] when
  // given), zero for rows past `rows`.
  void pack(const float* W, const uint8_t* mask);
};

// Which 8 x 8 channel blocks of a weight hold any kept weight: keep(ob, ib)
// for output block ob (8 output channels / neurons) and input block ib (8
// input channels per group / inputs), over all kernel taps, from the node's
// element mask viewed as [rows, taps, cols] (conv OHWI: Cout, kh*kw,
// Cin/groups; dense: out, 1, in); block_grid's every block for a layer
// without a mask.
using BlockKeep = BlockGrid;

}  // namespace bsp::train
