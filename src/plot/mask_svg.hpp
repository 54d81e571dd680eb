// `bsp info --svg`: every conv2d and dense layer's weights as a grid of 8x8
// channel blocks (output channels across, input channels down), each block
// shaded by the fraction of its weights kept (all kh x kw taps counted).
#pragma once

#include <string>

#include "core/model.hpp"

namespace bsp::plot {

void write_mask_svg(const Model& m, const std::string& path);

}  // namespace bsp::plot
