// What both modes of bsp explore (man/bsp-explore.1) measure: a model's
// accuracy on a held-out part of a data set, on the fp32 kernels runner
// (src/kernels/runner.hpp, which applies the activation rules), and the
// zero blocks of every conv2d/dense layer's input on the way.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"

namespace bsp::explore {

// The held-out images: indices into the test split of `total` images.
// first = true: images 0..n-1 (what `bsp eval --limit n` evaluates);
// otherwise n images drawn without replacement by a permutation that depends
// only on the seed (data/batch.hpp shuffled_order), sorted. n >= total: all.
std::vector<int64_t> holdout_indices(int64_t total, int64_t n, uint64_t seed, bool first);

// A conv2d or dense node and the numbers the search weighs it by.
struct LayerInfo {
  size_t node = 0;   // index in the model
  std::string name;
  int64_t macs = 0;  // dense multiply-accumulates per image
  std::array<int64_t, 3> hwc{};  // its input per image as [H, W, C] (a vector [F]: [1, 1, F])
  int64_t values() const { return hwc[0] * hwc[1] * hwc[2]; }
};
// Every conv2d and dense node of m, in model order.
std::vector<LayerInfo> weighted_layers(const Model& m);

// The blocks of one input (over all images) and the values inside them:
// how many are all zero after a rule of threshold t.
struct BlockCount {
  int64_t blocks = 0, zero_blocks = 0;
  int64_t values = 0, zero_values = 0;  // values in the zero blocks (partial edge blocks are smaller)
  BlockCount& operator+=(const BlockCount& o) {
    blocks += o.blocks, zero_blocks += o.zero_blocks, values += o.values, zero_values += o.zero_values;
    return *this;
  }
  double fraction() const { return blocks ? static_cast<double>(zero_blocks) / static_cast<double>(blocks) : 0; }
};
// The blocks of x ([N, H, W, C] or [N, F], act_sparsity.hpp's tiling) whose
// values all have |v| < t or are 0, i.e. zero once the rule of threshold t
// has run (t = 0: the blocks already zero); a NaN keeps its block. The same
// count as zero_block_fraction (act_sparsity.hpp), with the values.
BlockCount count_zero_blocks(const Tensor& x, const std::array<int64_t, 3>& block, float t);
// Appends the largest magnitude of every block of x (a NaN: +infinity) to
// out, a whole image at a time, while out holds fewer than `cap` values (so
// the sample does not depend on the batch size): the distribution the
// threshold ladders are cut from.
void block_maxima(const Tensor& x, const std::array<int64_t, 3>& block, std::vector<float>& out, size_t cap);

struct EvalOutcome {
  int64_t n = 0, correct = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0; }
};

class HoldoutEval {
 public:
  // `s` must outlive the evaluator. norm: the model's stored normalisation,
  // or the held-out images' own statistics.
  HoldoutEval(const ImageSet& s, std::vector<int64_t> idx, Normalization norm, int64_t batch);
  int64_t images() const { return static_cast<int64_t>(idx_.size()); }

  // Runs m as it is (its activation rules applied) on the fp32 dense path
  // of the kernels runner (compact forms ignored: the graph's weights). For
  // every batch, `on_input(k, x)` sees the input of layers[k] as the layer
  // receives it before its own rule. Throws bsp::Error when the logits are
  // not finite.
  EvalOutcome run(const Model& m, const std::vector<LayerInfo>& layers,
                  const std::function<void(size_t k, const Tensor& x)>& on_input = {}) const;

 private:
  const ImageSet& s_;
  std::vector<int64_t> idx_;
  Normalization norm_;
  int64_t batch_;
};

}  // namespace bsp::explore
