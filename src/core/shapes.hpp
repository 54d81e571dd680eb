// Shape inference and the geometry of windowed ops. Shapes here carry no
// batch dimension: [H, W, C] for feature maps, [F] for vectors.
#pragma once

#include <vector>

#include "core/model.hpp"

namespace bsp {

// A 2-D window op (conv or pool) on one [H, W, C] input.
struct WindowGeom {
  int64_t H = 0, W = 0, C = 0;          // input
  int64_t kh = 1, kw = 1;               // window
  int64_t sh = 1, sw = 1;               // stride
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // padding top, left, bottom, right
  int64_t dh = 1, dw = 1;               // dilation
  int64_t Ho = 0, Wo = 0;               // output
};

struct ConvGeom : WindowGeom {
  int64_t Cout = 0;
  int64_t groups = 1;
  int64_t cin_per_group() const { return C / groups; }
  int64_t cout_per_group() const { return Cout / groups; }
  // One weight plane per channel: groups = C = Cout (the depthwise kernels').
  bool depthwise() const { return groups > 1 && groups == C && Cout == C; }
};

ConvGeom conv_geom(const Node& n, const Shape& in);
WindowGeom pool_geom(const Node& n, const Shape& in);

// The output shape of one node given its input shapes.
Shape infer_node_shape(const Node& n, const std::vector<const Shape*>& ins);

// Dense multiply-accumulates of one node per image given its output shape:
// Ho * Wo * Cout * kh * kw * Cin/groups for a conv2d, out * in for a dense
// layer, 0 otherwise; throws bsp::Error naming the node on int64 overflow.
int64_t node_macs(const Node& n, const Shape& out);

// One shape per node, in node order; throws bsp::Error naming the node when
// shapes do not fit together.
std::vector<Shape> infer_shapes(const Model& m);

}  // namespace bsp
