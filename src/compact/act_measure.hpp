// The zero-block fractions of the activation rules of a model, measured on
// data: what a Sparse-Blox-like extension or a kernel that skips zero input
// blocks could skip (bsp estimate --data; reusable by an explorer of
// thresholds). For every conv2d / dense node with a rule (act_sparsity.hpp),
// the fraction of its input blocks that are all zero after its rule, over
// the images given.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/act_sparsity.hpp"
#include "core/model.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"

namespace bsp {

struct LayerActStats {
  size_t node = 0;            // index in Model::nodes
  std::string name;
  ActRule rule;               // the node's rule
  int32_t tq = 0;             // the int8 threshold T applied (int8 measurements), else 0
  int64_t blocks = 0;         // input blocks seen, over all images
  int64_t zero_blocks = 0;    // of them, all zero after the rule
  double fraction() const { return blocks > 0 ? static_cast<double>(zero_blocks) / static_cast<double>(blocks) : 0.0; }
};

enum class ActMeasureEngine {
  Int8,  // the int8 reference forward of /compact (q8::reference_forward): the AIE2 int8 program's values
  FP32,  // the fp32 reference forward
};

struct ActMeasureOptions {
  ActMeasureEngine engine = ActMeasureEngine::Int8;
  int64_t batch = 8;  // images per forward pass
};

// Runs the model on the first `limit` images of `images` (limit <= 0: all),
// normalised with `norm` as bsp eval does, and counts each ruled layer's
// zero input blocks. Layers without a rule are not listed (their blocks are
// moved and multiplied whatever they hold). Throws bsp::Error when the
// images do not fit the model or Int8 is asked of a model without an int8
// program.
std::vector<LayerActStats> measure_act_fractions(const Model& m, const ImageSet& images, const Normalization& norm,
                                                 int64_t limit, const ActMeasureOptions& opt = {});

}  // namespace bsp
