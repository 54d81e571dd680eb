// Inside prune.cpp: the per-family mask choosers. Each takes the layers of
// one pruning step, with their targets and the masks they must stay inside,
// and fills in each layer's new mask (it does not touch the weights).
#pragma once

#include <vector>

#include "core/model.hpp"
#include "sparsity/pattern.hpp"

namespace bsp::prune_detail {

struct LayerWork {
  Node* node = nullptr;
  const Tensor* w = nullptr;  // weight [Cout, kh, kw, Cin] or [out, in], pruned weights already zero
  double density = 1.0;       // target
  const Mask* old = nullptr;  // the mask the new one must stay inside (same family), or null
  int64_t cout = 0, window = 1, cin = 0;  // window = kh * kw (1 for dense)
  int64_t k() const { return window * cin; }  // rows of B[K, N]
  int64_t numel() const { return cout * window * cin; }
  Mask result;  // filled by the chooser
};

// Per-element block scores (criterion of pattern.hpp) of the weight viewed as
// [Cout, window, Cin] cut into R x C channel blocks; scores [ceil(Cout/R), ceil(Cin/C)].
void block_scores(const LayerWork& l, int64_t r, int64_t c, Criterion crit, std::vector<float>& scores);

void choose_blocks(std::vector<LayerWork>& layers, const Pattern& p, Criterion crit, Scope scope);
void choose_channels(std::vector<LayerWork>& layers, Criterion crit, Scope scope);
void choose_unstructured(std::vector<LayerWork>& layers, Scope scope);
void choose_nm(std::vector<LayerWork>& layers, const Pattern& p);
void choose_tiles(std::vector<LayerWork>& layers, const Pattern& p, Scope scope);

// Kept entries of a mask's bits.
int64_t count_kept(const Array<uint8_t>& bits);

}  // namespace bsp::prune_detail
