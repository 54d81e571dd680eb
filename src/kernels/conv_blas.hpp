// The OpenBLAS baseline for conv2d and dense layers (NHWC): a 1x1 stride-1
// convolution is one sgemm on the activations as they are; any other
// convolution is im2col ([pixels, kh*kw*Cin], the weight's OHWI order) and
// one sgemm. This is what `bsp bench` compares the sparse kernels against.
#pragma once

#include "core/fusion.hpp"
#include "core/shapes.hpp"
#include "core/tensor.hpp"

namespace bsp::kernels {

class ConvBlas {
 public:
  // w OHWI [Cout, kh, kw, Cin] (groups = 1), bias [Cout] or null.
  ConvBlas(const ConvGeom& g, const float* w, const float* bias);
  // x [N, H, W, C] -> y [N, Ho, Wo, Cout]; z (same shape as y) added, then the clamp.
  void run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const;

 private:
  ConvGeom g_;
  std::vector<float> w_, bias_;
};

// OpenBLAS's thread count (it keeps its own pool); bsp sets it to OpenMP's.
void set_blas_threads(int n);

}  // namespace bsp::kernels
