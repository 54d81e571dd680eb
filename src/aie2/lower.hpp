// Lowering a model graph to the stages the AIE2 back end executes. A stage is
// one pass over the array: a conv2d/dense layer with its batchnorm, residual
// add and relu folded into the epilogue, a pool, an elementwise op, or a
// softmax. Concat and flatten cost nothing: producers write their channel
// slice of the concat's buffer directly, and a flatten is the same NHWC bytes
// seen as a vector.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/act_sparsity.hpp"
#include "core/model.hpp"

namespace bsp::aie2 {

// An activation buffer: one stage's output (or the network input), [H, W, C]
// NHWC with C channels per pixel. Concat outputs own a storage that their
// inputs' producers write slices of.
struct Storage {
  std::string name;  // the node whose value it holds
  int64_t H = 0, W = 0, C = 0;
  int first_stage = -1;  // the stage that writes it first (-1: the network input)
  int last_stage = -1;   // the last stage that reads it (stages.size(): the network output)
  bool is_input = false, is_output = false;
  int64_t elements() const { return H * W * C; }
};

// A stage operand or result: channels [c0, c0 + C) of a storage as an
// [H, W, C] map, or with `flat` the whole storage read as a [1, 1, H*W*C]
// vector (a dense layer after a flatten).
struct View {
  int storage = -1;
  int64_t H = 0, W = 0, C = 0, c0 = 0;
  bool flat = false;
};

enum class StageKind { Conv, Pool, Eltwise, Softmax };
const char* stage_kind_name(StageKind k);

// What an eltwise stage computes besides a sum of its inputs (add, copy)
// and the relu or clip that ends it.
enum class EltFn { None, Sigmoid, HardSigmoid, HardSwish, Mul };

struct Stage {
  StageKind kind = StageKind::Conv;
  std::string name;                // the main node's name
  std::vector<std::string> nodes;  // every model node it executes, in order
  std::vector<View> in;            // conv/pool/softmax: one input; eltwise: one or more
  std::optional<View> add;         // conv: residual operand added after batchnorm
  View out;

  // Window geometry (conv and pool): input H x W x Cin, output Ho x Wo x Cout.
  // Dense layers are 1x1 convolutions on a [1, 1, in] map. Eltwise/softmax:
  // a 1x1 window with Cin = Cout.
  int64_t H = 0, W = 0, Cin = 0, Ho = 0, Wo = 0, Cout = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;

  // Conv: the weighted node, and the batchnorm folded into it (-1: none).
  int conv_node = -1, bn_node = -1;
  // Conv: a grouped conv's group count; its weight is spread over every
  // input channel with zeros outside each output channel's group
  // (stage_weight), whose all-zero 8x8 blocks are skipped like pruned ones.
  // affine: a batchnorm the fusion pass could not fold, run as a 1x1
  // depthwise conv of identity weights (conv_node = bn_node = the batchnorm;
  // its channel affine is the epilogue's scale and shift).
  int64_t groups = 1;
  bool affine = false;
  // The add node folded into a conv, or an eltwise stage's add (-1: none);
  // for a folded add, which of its inputs is the conv's value.
  int add_node = -1, add_self = 0;
  // The node whose value the stage produces (its last fused node), and the
  // concats that value is a slice of, innermost first: (concat node, input).
  int out_node = -1;
  std::vector<std::pair<int, int>> concat_path;
  bool relu = false;
  // A clip to [clip_lo, clip_hi]: an eltwise stage's one node, or the
  // activation ending a conv's or an add's epilogue.
  bool clip = false;
  double clip_lo = 0, clip_hi = 0;
  // Eltwise: the function of its one node (sigmoid, hardsigmoid with alpha
  // and beta, hardswish), or the product of its two inputs (mul); with
  // bcast the second input is a [1, 1, C] per-channel scale broadcast over
  // H and W (squeeze-excitation).
  EltFn fn = EltFn::None;
  double alpha = 0, beta = 0;
  bool bcast = false;
  // Pool.
  bool pool_max = false;
  bool count_include_pad = true;
  // Conv: the activation rule of its node (core/act_sparsity.hpp), applied
  // to its input in[0] as the input travels to the cores (man/bsp-isa.7,
  // ACTIVATION RULES); none when the node has no rule.
  std::optional<ActRule> act;

  bool channelwise() const { return kind == StageKind::Pool || kind == StageKind::Eltwise; }
  int64_t ih(int64_t oh) const { return (oh - 1) * sh + (kh - 1) * dh + 1; }  // input rows for oh output rows
  int64_t iw(int64_t ow) const { return (ow - 1) * sw + (kw - 1) * dw + 1; }
  int64_t macs() const;  // dense multiply-accumulates (conv), 0 otherwise
};

struct Lowered {
  std::vector<Storage> storages;
  std::vector<Stage> stages;
  int input_storage = -1, output_storage = -1;
};

// Throws bsp::Error naming the node for graphs the back end cannot run
// (grouped convolutions, a batchnorm that follows no conv, ...).
Lowered lower(const Model& m);

}  // namespace bsp::aie2
