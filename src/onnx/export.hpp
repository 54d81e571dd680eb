// bsp models out as ONNX (bsp export, man/bsp-export.1): opset 13, NCHW,
// for the runtimes people deploy with.
//
// Every bsp op has its ONNX form: conv2d Conv (OIHW), dense Gemm (transB),
// batchnorm BatchNormalization, relu Relu, pools MaxPool / AveragePool,
// global_avgpool GlobalAveragePool + Flatten, add Add (Sum for more than
// two), concat Concat on channels, softmax Softmax. A flatten of a map of
// more than one position is Transpose(0, 2, 3, 1) + Flatten: bsp flattens in
// H, W, C order, and so the dense layer after it keeps its weights as they
// are. Pruned weights are zeros. What ONNX cannot hold (masks, exact
// batchnorm epsilons, the history) goes into metadata_props (metadata.hpp).
#pragma once

#include <string>

#include "core/model.hpp"

namespace bsp::onnx_io {

constexpr int64_t kExportOpset = 13;

// Writes m to `path`. The model's history (with the export's own command
// line appended by the caller) goes into the metadata.
void export_onnx(const Model& m, const std::string& path);

}  // namespace bsp::onnx_io
