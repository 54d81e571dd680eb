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
//
// int8 (an int8-compacted model's program, compact/int8.hpp) goes out in the
// QDQ form runtimes quantise from: every tensor bsp keeps in int8 is a
// QuantizeLinear (its scale, zero point int8 0) followed by a
// DequantizeLinear; a layer's weight is its int8 OIHW weight dequantised per
// output channel (axis 0), its bias the int32 bias dequantised with scale
// s_in * w_scale[o]; folded batchnorms and fused relus are gone (a fused
// clamp is a Relu or Clip on the bounds' real values before the
// QuantizeLinear); an unfolded batchnorm is a 1x1 depthwise Conv. A runtime
// computes the same values up to rounding: ONNX rounds x / scale half to
// even in float, bsp rescales in integers and rounds half up.
#pragma once

#include <string>

#include "core/model.hpp"

namespace bsp::onnx_io {

constexpr int64_t kExportOpset = 13;

struct ExportOptions {
  bool int8 = false;  // the int8 program in QDQ form (the model must be int8-compacted)
};

// Writes m to `path`. The model's history (with the export's own command
// line appended by the caller) goes into the metadata.
void export_onnx(const Model& m, const std::string& path, const ExportOptions& opt = {});

}  // namespace bsp::onnx_io
