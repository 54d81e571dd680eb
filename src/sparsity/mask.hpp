// Masks as the rest of bsp uses them: expanded to one bit per weight and
// applied to a layer's weights. The patterns that choose masks live beside
// this file (see bsp-prune(1)); the stored form is described in model.hpp.
#pragma once

#include "core/model.hpp"

namespace bsp {

// The layer's mask with one entry per weight element (same shape as the
// weight): a block mask is broadcast over its R x kh x kw x C (conv) or R x C
// (dense) block. A layer without a mask gets all ones.
Array<uint8_t> element_mask(const Node& n);
// The same for a mask (null: all ones) of a weight of that shape.
Array<uint8_t> element_mask(const Mask* m, const Shape& weight_shape);

// Zeroes every weight the mask prunes. Returns the number of nonzero weights
// that were zeroed (0 when the weights already respected the mask). With
// `kept_sq`, also gives the sum of squares of the weights afterwards (summed
// in a fixed order: the same for any thread count).
int64_t apply_mask(Node& n, double* kept_sq = nullptr);

}  // namespace bsp
