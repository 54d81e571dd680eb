// The batchnorm fold: the one place where a batchnorm's parameters become
// arithmetic. man/bsp-format.5 (BATCHNORM FOLD) states the same rules for
// readers outside bsp; change both together.
//
//   g[c] = gamma[c] / sqrt(var[c] + eps)       in double: gamma and var widened
//                                              from float32, eps the node's attribute
//
// As a per-channel affine (the reference forward, a batchnorm the fusion pass
// leaves alone, the AIE2 fp32 epilogue):
//   scale[c] = float(g[c])
//   shift[c] = float(beta[c] - g[c] * mean[c])  (in double)
//   y = x * scale[c] + shift[c]                 in float32
//
// Folded into the conv2d or dense layer before it (the fp32 kernels and the
// int8 quantiser), with b = 0 when the layer has no bias:
//   W'[c, k] = W[c, k] * float(g[c])           in float32
//   b'[c]    = float(double(b[c] - mean[c]) * g[c] + beta[c])
//                                              b - mean in float32, the rest in double
#pragma once

#include <vector>

#include "core/model.hpp"

namespace bsp {

// g[c] of a batchnorm node.
std::vector<double> batchnorm_gain(const Node& bn);

struct ChannelAffine {
  std::vector<float> scale, shift;  // [C]
};
ChannelAffine batchnorm_affine(const Node& bn);

// A layer's weight (any shape with the output channel first) and bias [Cout]
// with batchnorm `bn` folded in; bn null: the weight and bias as they are.
struct FoldedLayer {
  Tensor weight;
  Tensor bias;  // [Cout], zeros without a bias
};
FoldedLayer fold_batchnorm(const Tensor& weight, const Tensor* bias, const Node* bn);
// The same for a conv2d or dense node's own weight and bias.
FoldedLayer fold_batchnorm(const Node& layer, const Node* bn);

}  // namespace bsp
