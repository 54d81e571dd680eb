// Reading NumPy .npy files of float32 (what `numpy.save` writes for a
// float32 array), for inputs given on the command line.
#pragma once

#include <string>

#include "core/tensor.hpp"

namespace bsp {

// Reads a C-order little-endian float32 array (dtype '<f4'; '<f8' is
// converted). Throws bsp::Error naming the problem (not a .npy file, another
// dtype, Fortran order, truncated data).
Tensor read_npy(const std::string& path);

// Writes t as a .npy file (format 1.0, '<f4', C order) to `path`.
void write_npy(const Tensor& t, const std::string& path);

}  // namespace bsp
