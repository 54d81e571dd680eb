// Per-layer and total statistics of a model, as `bsp info` reports them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"

namespace bsp {

struct LayerStats {
  std::string name;
  Op op;
  Shape output_shape;              // without the batch dimension
  int64_t params = 0;              // trainable (BN running statistics not counted)
  int64_t nonzero_params = 0;      // params minus the zero weights of conv2d/dense layers
  int64_t macs = 0;                // multiply-accumulates per image: conv2d and dense only
  int64_t bytes = 0;               // stored parameter bytes, BN statistics included
  std::optional<double> density;   // conv2d/dense: mask density, or nonzero fraction when unmasked
  std::optional<std::string> pattern;  // the mask's pattern, if pruned
};

struct ModelStats {
  std::vector<LayerStats> layers;
  int64_t params = 0, nonzero_params = 0, macs = 0, bytes = 0;
};

ModelStats model_stats(const Model& m);

}  // namespace bsp
