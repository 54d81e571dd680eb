// The fusion pass: the one place that decides which nodes run together as
// one step. Every inference back end consumes it (the fp32 kernels' runner,
// the int8 quantiser and int8 runner, the AIE2 lowering), and the trainer
// reads it with its own options, so they all agree on what a step is.
//
// A group starts at a head node and takes, in this order, each of the
// following that reads the group's value so far as its only consumer (the
// roles come from the op table, core/op_table.hpp):
//   Layer head (conv2d, dense), when fold_layers:
//     1. a Norm (batchnorm), folded into the layer's weights (core/fold.hpp);
//     2. when fuse_add: a two-input Residual (add) whose other operand is
//        computed by an earlier group (its head comes before this head);
//     3. an Activation (relu, clip), as the epilogue's clamp (group_clamp).
//   Norm head (a batchnorm not folded) and Residual head (an add not fused):
//     3. an Activation.
// A clip joins only when join_clip (the trainer's fused batchnorm and add
// layers apply a relu only).
//   Any other head: nothing.
// Options per consumer:
//   inference (fp32 runner, int8 runner, AIE2)  fold_layers, fuse_add
//   int8 quantisation and its calibration       fold_layers (each add is a
//                                               tensor of its own: its scale)
//   trainer                                     neither (batchnorm trains),
//                                               nor join_clip
// The groups with fuse_add are the groups without it, with each fused add's
// group merged into the layer's: the int8 program and its fast runner agree.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "core/model.hpp"

namespace bsp {

struct FusionOptions {
  bool fold_layers = true;  // a layer head takes a batchnorm, add and relu
  bool fuse_add = true;     // ... including a residual add
  bool join_clip = true;    // a clip joins as a group's activation, like a relu
};

struct FusedGroup {
  size_t head = 0;
  int64_t norm = -1;    // the batchnorm folded into a layer head, or -1
  int64_t add = -1;     // the add fused into a layer head's epilogue, or -1 ...
  size_t addend = 0;    // ... the node whose value is its other operand
  int add_self = 0;     // ... and which of its two inputs is the group's own value
  int64_t act = -1;     // the relu that ends the group, or -1
  size_t out = 0;       // the last node: the group's value is this node's value
  std::vector<size_t> nodes;  // head first, then the joined nodes in order

};

struct Fusion {
  std::vector<FusedGroup> groups;  // in the order of their heads
  std::vector<size_t> group_of;    // per node: the group it belongs to
  // The node whose group computes node i's value: i itself for a head,
  // else its group's head.
  size_t head_of(size_t i) const { return groups[group_of[i]].head; }
};

Fusion fuse(const Model& m, const FusionOptions& opt = {});

// The clamp that ends a group's epilogue: off without an activation, relu
// [0, +inf), clip [min, max]. Applied as min(max(v, lo), hi).
struct Clamp {
  bool on = false;
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
};
Clamp group_clamp(const Model& m, const FusedGroup& g);

}  // namespace bsp
