// Reference implementations of every op, NHWC float32, OpenMP-parallel over
// output positions. They are the correctness oracle that the fast kernels,
// the trainer and the AIE2 simulator are checked against: plain loops, no
// cleverness beyond a vectorisable inner dot product.
#pragma once

#include <vector>

#include "core/fold.hpp"
#include "core/shapes.hpp"
#include "core/tensor.hpp"

namespace bsp::ref {

// x [N, H, W, C], w OHWI [Cout, kh, kw, C/groups], bias [Cout] or null
// -> [N, Ho, Wo, Cout]. Geometry from conv_geom() on x's [H, W, C].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g);
// x [N, F], w [O, F], bias [O] or null -> [N, O].
Tensor dense(const Tensor& x, const Tensor& w, const Tensor* bias);
// Inference-mode batch norm over the last axis: x * scale[c] + shift[c], the
// batchnorm as a channel affine (core/fold.hpp).
Tensor batchnorm(const Tensor& x, const ChannelAffine& a);
Tensor relu(const Tensor& x);
// min(max(x, lo), hi), in float32 (the bounds rounded to float32).
Tensor clip(const Tensor& x, double lo, double hi);
// The lookup-table activations, in float32: 1 / (1 + exp(-x));
// min(max(alpha * x + beta, 0), 1) (alpha, beta rounded to float32);
// x * hardsigmoid(x) with alpha 1/6, beta 1/2.
float sigmoid(float x);
float hardsigmoid(float x, float alpha, float beta);
float hardswish(float x);
Tensor sigmoid(const Tensor& x);
Tensor hardsigmoid(const Tensor& x, double alpha, double beta);
Tensor hardswish(const Tensor& x);
// a * b of the same shape, or a [N, H, W, C] times b [N, 1, 1, C] (b's value
// for a channel scales every position).
Tensor mul(const Tensor& a, const Tensor& b);
// Padding never wins a max; avg divides by the window size including padding
// when count_include_pad, else by the number of real elements.
Tensor maxpool(const Tensor& x, const WindowGeom& g);
Tensor avgpool(const Tensor& x, const WindowGeom& g, bool count_include_pad);
// [N, H, W, C] -> [N, C]
Tensor global_avgpool(const Tensor& x);
Tensor add(const std::vector<const Tensor*>& xs);
// Along the last axis.
Tensor concat(const std::vector<const Tensor*>& xs);
// [N, ...] -> [N, prod(...)], NHWC order.
Tensor flatten(const Tensor& x);
// Over the last axis, max-subtracted.
Tensor softmax(const Tensor& x);

}  // namespace bsp::ref
