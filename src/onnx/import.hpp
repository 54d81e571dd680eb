// ONNX models into bsp models (bsp import, man/bsp-import.1), read with the
// ONNX project's own protobuf classes (Debian's libonnx-dev).
//
// Layouts: NCHW activations become NHWC, OIHW convolution weights OHWI; a
// Flatten of a C x H x W map, which ONNX orders C, H, W and bsp H, W, C,
// permutes the columns of the dense layer that reads it. Batchnorm stays a
// batchnorm node (finetuning trains it). The shape-only subgraphs exporters
// emit (Shape, Gather, Unsqueeze, Concat, Slice, Cast feeding a Reshape) are
// folded as constants; Dropout and Identity drop out; a MatMul followed by
// the Add of a constant is one dense layer.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"

namespace bsp::onnx_io {

struct ImportOptions {
  std::optional<Shape> input_shape;  // [H, W, C]: for dynamic dimensions (--input-shape HxWxC)
  std::vector<double> mean, std;     // the input normalisation (--input-mean, --input-std), or empty
};

// Reads `path` (named `display` in messages). Throws bsp::Error with the
// reason: not an ONNX model, an opset outside what bsp reads, an operator it
// does not convert (naming the node and listing the supported ones),
// missing external data, a dynamic input dimension without input_shape.
// The model's history starts with where it came from:
// "onnx 'NAME': producer P V, opset N".
Model import_onnx(const std::string& path, const std::string& display, const ImportOptions& opt);

// The ONNX operators import converts, sorted.
std::vector<std::string> supported_operators();

// The opsets of the default domain import reads.
constexpr int64_t kMinOpset = 7, kMaxOpset = 18;

}  // namespace bsp::onnx_io
