// Calibration images for int8 quantisation (bsp compact, bsp bench).
#pragma once

#include <string>

#include "core/model.hpp"

namespace bsp::cli {

// Up to `count` images [n, H, W, C] for model m from `source` (a --data
// spec: fashion-mnist, a directory of IDX files, an HDF5 data file; the
// training split, normalised like bsp eval does). With no source, `count`
// synthetic N(0, 1) images and a warning on stderr ("bsp SUB: warning: ...").
Tensor calibration_images(const Model& m, const std::string& source, int64_t count, const char* sub);

}  // namespace bsp::cli
