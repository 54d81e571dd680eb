// Activation block sparsity (Spex / Sparse-Blox, AICAS 2023): a conv2d or
// dense node may carry a rule that zeroes the small blocks of its INPUT
// before the layer runs (man/bsp-format.5, ACTIVATION SPARSITY).
//
// The rule lives on the consumer, not the producer: the consumer is where a
// zero block is skipped (its kernel skips zero input blocks, the AIE2
// extension does not move them to the core), and a tensor read by two layers
// (a residual branch) can be thresholded differently for each.
//
// Node attributes:
//   act_threshold  float64 >= 0, finite (0: no block is ever zeroed)
//   act_block      int64[3] = [bh, bw, bc] (default [1, 8, 8]), each 1..2^24
// Rule, per image, over the input [H, W, C] (a vector input [F] counts as
// [1, 1, F]) cut into blocks of bh x bw x bc from (0, 0, 0), edge blocks
// partial: a block is zeroed when every value v in it has |v| < t, with t
// the threshold rounded to float32 and the comparison in float32 (strictly
// below; a NaN keeps its block). Every engine applies exactly this rule.
//
// int8 (compact/int8.hpp): the rule on the quantised input q with scale s:
// a block is zeroed when every |q| < T, T = min(ceil(act_threshold / s), 256)
// computed in float64 (act_qthreshold): the fp32 rule on the dequantised
// values q * s in exact arithmetic.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/model.hpp"

namespace bsp {

struct ActRule {
  double threshold = 0;                     // the attribute as stored
  std::array<int64_t, 3> block{1, 8, 8};    // [bh, bw, bc]
  float t() const { return static_cast<float>(threshold); }  // the float32 threshold compared against
};

constexpr std::array<int64_t, 3> kDefaultActBlock{1, 8, 8};

// The node's rule, or none when it has no act_threshold or its threshold is
// 0 (a rule that never zeroes anything). The node must be valid
// (check_act_rule).
std::optional<ActRule> act_rule(const Node& n);
// Whether any node of m has a rule that can zero something.
bool has_act_rules(const Model& m);

// Throws bsp::Error naming the node when its act_threshold / act_block are
// malformed: on an op other than conv2d and dense, a threshold that is not a
// finite float >= 0, a block that is not three integers in 1..2^24, or an
// act_block without act_threshold.
void check_act_rule(const Node& n);

// Sets (threshold > 0) or removes (threshold 0) the rule of a conv2d or
// dense node.
void set_act_rule(Node& n, double threshold, const std::array<int64_t, 3>& block);

// The shape of one image as [H, W, C] for the rule: x is [N, H, W, C] or
// [N, F] (-> [1, 1, F]).
std::array<int64_t, 3> act_image_shape(const Shape& x);

// The reference rule: x [N, H, W, C] or [N, F]; zeroes, in place, every block
// whose values all have |v| < t (float32). Returns the number of blocks
// zeroed (over all images).
int64_t zero_small_blocks_inplace(float* x, const Shape& shape, const std::array<int64_t, 3>& block, float t);
// A copy of x with the small blocks zeroed.
Tensor zero_small_blocks(const Tensor& x, const std::array<int64_t, 3>& block, float t);
// The int8 rule: zeroes every block whose values all have |q| < tq.
int64_t zero_small_blocks_inplace(int8_t* x, const Shape& shape, const std::array<int64_t, 3>& block, int32_t tq);

// The fraction of blocks of x that are all-zero after the rule with
// threshold t (t = 0: the blocks already all zero). For bench and explore:
// what a kernel that skips zero input blocks could skip.
double zero_block_fraction(const Tensor& x, const std::array<int64_t, 3>& block, float t);
// Blocks per image of a [H, W, C] map.
int64_t act_blocks_per_image(const std::array<int64_t, 3>& hwc, const std::array<int64_t, 3>& block);

// The int8 threshold T for a rule of threshold `threshold` on an input of
// scale s: min(ceil(threshold / s), 256) in float64 (0 for threshold 0).
int32_t act_qthreshold(double threshold, double s);

}  // namespace bsp
