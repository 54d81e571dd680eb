// ONNX tensors as bsp reads them (initializers, Constant nodes, the values
// the importer folds): float data as a Tensor, integer data as int64.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace onnx {
class TensorProto;
}

namespace bsp::onnx_io {

struct Const {
  Shape dims;               // the ONNX dimensions (NCHW order for 4-D)
  bool is_int = false;      // integer (int64, int32, bool, ...) rather than floating point
  Tensor f;                 // floating-point values (float32, float64 narrowed), in ONNX order
  std::vector<int64_t> i;   // integer values

  int64_t numel() const { return shape_numel(dims); }
  // The values as int64 (integers, or floats that are whole numbers); throws otherwise.
  std::vector<int64_t> ints(const std::string& what) const;
  // The values as float32 (ints converted).
  Tensor floats() const;
  Const clone() const { return Const{dims, is_int, f.clone(), i}; }
};

// Reads a TensorProto; `dir` is the model file's directory (external data
// is looked up there). Throws bsp::Error naming the tensor for a type bsp
// does not read (float16, strings, ...), a size that does not match its
// dimensions, or external data that is missing or short.
Const read_tensor(const onnx::TensorProto& t, const std::string& dir);

}  // namespace bsp::onnx_io
