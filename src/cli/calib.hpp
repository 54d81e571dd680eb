// Calibration images for int8 quantisation (bsp compact, bsp bench).
#pragma once

#include <string>

#include "core/model.hpp"

namespace bsp::cli {

// `count` images [count, H, W, C] for model m. With no source, synthetic
// N(0, 1) images (a warning on stderr says so, prefixed "bsp SUB: ").
Tensor calibration_images(const Model& m, const std::string& source, int64_t count, const char* sub);

}  // namespace bsp::cli
