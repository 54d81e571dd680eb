// Reading and writing bsp model files, format v1 (specified in
// man/bsp-format.5).
#pragma once

#include <string>

#include "core/model.hpp"

namespace bsp {

constexpr const char* kFormatName = "bsp";
constexpr int64_t kFormatMajor = 1;
constexpr int64_t kFormatMinor = 0;

// Loads a model. `display` names the file in error messages
// ("cannot read 'x.h5': not an HDF5 file"). Unknown groups are ignored, so
// files of a newer minor version open; a newer major version is refused.
Model load_model(const std::string& path, const std::string& display);

// Writes a model to `path` (normally an OutputFile's temporary path).
void save_model(const Model& m, const std::string& path);

}  // namespace bsp
