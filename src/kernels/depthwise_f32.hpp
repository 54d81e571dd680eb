// Depthwise convolution on the CPU (fp32): a conv2d with one input channel
// per group and one output channel per input (MobileNet's and EfficientNet's
// 3x3 and 5x5 stages), which the block kernels (conv_f32.hpp) cannot run.
// NHWC in and out; channels are the vector lanes, so every tap of a window
// is one load and one FMA per lane block, the taps' weights held in
// registers across a row of outputs. OpenMP over (image, output row).
#pragma once

#include <cstdint>

#include "core/fusion.hpp"
#include "core/shapes.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

// The weights as the kernel reads them: w [taps, Cp] tap-major (a tap's
// channels contiguous), bias [Cp]; Cp = C rounded up to 16, zero-padded.
struct DepthwiseWeights {
  int64_t taps = 0, C = 0, Cp = 0;
  AlignedVector<float> w, bias;
};

// One call: x [N, H, W, C] -> y [N, Ho, Wo, C]; z (like y, or null) is added
// before the clamp.
struct DepthwiseArgs {
  const ConvGeom* g;
  const DepthwiseWeights* w;
  const float* x;
  int64_t N;
  float* y;
  const float* z;
  Clamp clamp;
};
using DepthwiseFn = void (*)(const DepthwiseArgs&);
DepthwiseFn depthwise_f32_generic();
DepthwiseFn depthwise_f32_avx2();
DepthwiseFn depthwise_f32_avx512();

class DepthwiseF32 {
 public:
  // w OHWI [C, kh, kw, 1] (a folded batchnorm already applied), bias [C] or null.
  DepthwiseF32(const ConvGeom& g, const float* w, const float* bias);
  void run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const;
  const ConvGeom& geom() const { return g_; }

 private:
  ConvGeom g_;
  DepthwiseWeights w_;
};

}  // namespace bsp::kernels
