// The int8 inference semantics of bsp: one definition that the int8 reference
// forward (below), the int8 CPU kernels and the AIE2 simulator all reproduce
// bit for bit. man/bsp-format.5 (section INT8 SEMANTICS) states the same rules.
//
// Tensors. Every activation tensor is int8, symmetric, one scale per tensor:
// real value = q * scale, q in [-128, 127], zero is q = 0 (so zero padding is
// q = 0). Weights are int8 in [-127, 127] with one scale per output channel.
// The model input is quantised once (quantize_value); the model output is
// dequantised (q * scale) unless the last node is a softmax, which runs in
// float on the dequantised logits.
//
// Integer arithmetic. Conv2d and dense accumulate in int32:
//     acc[o] = bias_q[o] + sum_k x_q[k] * w_q[o][k]
// and requantise per output channel with an integer multiplier and shift:
//     y_q[o] = clamp(rescale(acc[o], rq[o]), lo, hi)
//     rescale(a, {m, s}) = (a * m + (s > 0 ? 2^(s-1) : 0)) >> s   (int64, arithmetic shift)
// i.e. round half up. lo = 0 when a ReLU is fused, else -128; hi = 127; a
// fused clip gives its bounds quantised with the output's scale instead.
//
// Folding (decided once, when the model is quantised; see QNode::kind): the
// groups of the fusion pass (core/fusion.hpp) without fused adds:
//   - a batchnorm whose input is a conv2d/dense with no other consumer is folded
//     into that layer's weights and bias before the weights are quantised
//     (the arithmetic: core/fold.hpp);
//   - a relu whose input tensor has no other consumer and is produced by a
//     conv2d, dense, affine or add is fused as lo = 0; a clip there is fused
//     as lo, hi = its bounds quantised (quantize_value) with the scale of the
//     group's output, the clip's tensor;
//   - folded nodes become Identity: their output is their input tensor.
// Other ops:
//   affine (a batchnorm that cannot be folded) = a per-channel 1x1 conv whose
//     weight and bias are the batchnorm's channel affine (scale, shift):
//     y = clamp(rescale(x_q * w_q[c] + bias_q[c], rq[c]), lo, hi);
//   relu: max(q, 0); maxpool: max over the real elements of the window;
//   flatten: the same bytes; clip (not fused): clamp(q, lo, hi) with lo and hi the
//   bounds quantised with the input's scale (quantize_value); all four keep
//   the input's scale.
//   avgpool / global_avgpool: s = int32 sum of the window's real elements,
//     y = clamp(rescale(s, count_rq[n-1]), -128, 127), n the divisor (window
//     size with count_include_pad, else the number of real elements); the
//     output keeps the input's scale, so count_rq[n-1] encodes 1/n.
//   add: y = clamp((sum_i x_i * in_mult[i] + 2^(in_shift-1)) >> in_shift, lo, hi)
//     with one shift for all inputs (int64).
//   concat: each input rescaled to the output scale: clamp(rescale(x_i, in_rq[i]), -128, 127).
//   sigmoid, hardsigmoid, hardswish (kind lut): y = table[x + 128], a
//     256-entry int8 table made when the model is quantised from the input
//     scale s_in and the node's own calibrated output scale s_out:
//     table[v + 128] = quantize_value(f(float(v * s_in)), s_out), f the
//     float32 reference function (core/reference_ops.hpp).
//   mul: y = clamp(rescale(x0 * x1, rq), -128, 127), the int32 product of
//     the two int8 inputs (x1 a per-channel [1, 1, C] value broadcast over
//     H and W, or the same shape) and one Requant rq for s0 * s1 / s_out,
//     s_out the node's own calibrated scale.
//   softmax: float softmax of the dequantised input (only as the last node).
//
// Activation rules (core/act_sparsity.hpp; bsp-format(5), ACTIVATION
// SPARSITY): a conv2d or dense node with act_threshold t > 0 first zeroes the
// blocks of its int8 input x (scale s_in, the input tensor's) whose every
// value has |q| < T, T = min(ceil(t / s_in), 256) in float64 (act_qthreshold):
// the fp32 rule on the dequantised input q * s_in. T is derived, not stored:
// from the graph's act_threshold and the stored scales, when the model is
// quantised and when a program is read (set_act_thresholds). Calibration
// runs the fp32 forward with the rules applied.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/model.hpp"

namespace bsp::q8 {

// ---- The integer primitives (normative) ----

struct Requant {
  int32_t mult = 1;   // >= 0
  int32_t shift = 0;  // 0..62
};

inline int64_t rescale(int64_t acc, Requant r) {
  const int64_t round = r.shift > 0 ? (int64_t{1} << (r.shift - 1)) : 0;
  return (acc * r.mult + round) >> r.shift;
}

inline int32_t clamp(int64_t v, int32_t lo, int32_t hi) {
  return static_cast<int32_t>(v < lo ? lo : v > hi ? hi : v);
}

inline int8_t requantize(int64_t acc, Requant r, int32_t lo, int32_t hi) {
  return static_cast<int8_t>(clamp(rescale(acc, r), lo, hi));
}

// A two-input add fused after a layer's requantisation (the add rule below
// on its output v and the other addend z): clamp((v * m_self + z * m_other
// + round) >> shift, lo, hi), round = 2^(shift-1) (0 for shift 0).
struct FusedAdd {
  int32_t m_self = 0, m_other = 0;  // the add's in_mult of each input (32 bits: the vector kernels rely on it)
  int64_t round = 0;
  int32_t shift = 0, lo = -128, hi = 127;
  static FusedAdd make(int32_t m_self, int32_t m_other, int32_t shift, int32_t lo, int32_t hi) {
    return {m_self, m_other, shift > 0 ? int64_t{1} << (shift - 1) : 0, shift, lo, hi};
  }
  int8_t apply(int32_t v, int32_t z) const {
    return static_cast<int8_t>(clamp((int64_t{v} * m_self + int64_t{z} * m_other + round) >> shift, lo, hi));
  }
};

// The multiplier and shift that represent a positive real factor:
// real = mult * 2^-shift with mult in [2^30, 2^31) when possible (an exact
// power of two gives mult = 2^k, k >= 0, instead). Factors below 2^-62 give
// mult 0 (everything rounds to 0); factors of 2^31 or more are refused.
Requant make_requant(double real);

// The scale of a tensor whose largest magnitude is max_abs: max_abs / 127,
// or with pow2 the smallest power of two >= max_abs / 127; 1 when max_abs is 0.
// Throws bsp::Error for a negative or non-finite max_abs.
double quant_scale(double max_abs, bool pow2);

// q = clamp(round_half_even(x / scale), -128, 127), computed in double.
int8_t quantize_value(float x, double scale);

// ---- The quantised model ----

enum class Kind {
  Input,          // quantises the float input with `scale`
  Identity,       // folded (batchnorm) or fused (relu): output = its input tensor
  Conv,           // weight OHWI int8, bias int32, rq per output channel
  Dense,          // weight [out, in] int8, bias int32, rq per output
  Affine,         // an unfolded batchnorm: weight [C] int8, bias int32, rq per channel
  Relu,
  MaxPool,
  AvgPool,
  GlobalAvgPool,
  Add,
  Concat,
  Flatten,
  Softmax,        // float output
  Clip,           // clamp(q, lo, hi): the bounds quantised with the input's scale
  Lut,            // sigmoid, hardsigmoid, hardswish: table[q + 128]
  Mul,            // requantised int32 product of two inputs
  kCount          // (the number of kinds)
};
const char* kind_name(Kind k);

struct QNode {
  Kind kind = Kind::Identity;
  double scale = 1.0;            // output scale (unused for Softmax)
  int32_t lo = -128, hi = 127;   // output clamp; lo = 0 with a fused ReLU
  std::string fused_into;        // Identity: the node this one was folded/fused into
  // Conv, Dense, Affine
  Array<int8_t> weight;          // the dense int8 weights (OHWI, [out, in], or [C])
  Array<int32_t> bias;           // [Cout]
  std::vector<double> w_scale;   // [Cout]
  std::vector<Requant> rq;       // [Cout]: s_in * w_scale[o] / scale
  int32_t act_q = 0;             // Conv, Dense: the input's activation rule T (0: none), set_act_thresholds
  // Add
  std::vector<int32_t> in_mult;  // per input
  int32_t in_shift = 0;
  // Concat
  std::vector<Requant> in_rq;    // per input
  // AvgPool (one per possible divisor 1..kh*kw) and GlobalAvgPool (one: H*W)
  std::vector<Requant> count_rq;
  // Lut: y = table[x + 128] (256 entries)
  std::vector<int8_t> table;
  // Mul: s0 * s1 / scale
  Requant prod_rq;

  bool has_weight() const { return kind == Kind::Conv || kind == Kind::Dense || kind == Kind::Affine; }
};

// One QNode per graph node, same order as Model::nodes.
struct QModel {
  bool pow2 = false;
  std::vector<QNode> nodes;
};

// Runs the fp32 model on a batch and shows `observe` the output of every
// node whose tensor the int8 program keeps (the ends of fused chains; other
// nodes may be shown too).
using CalibForward =
    std::function<void(const Tensor& batch, const std::function<void(size_t node, const Tensor& out)>& observe)>;

struct QuantOptions {
  bool pow2 = false;    // power-of-two scales for weights and activations
  CalibForward forward;  // empty: the reference forward (exact, slow)
};

// Quantises a model: folds batchnorms and relus, quantises weights per output
// channel, and takes activation scales from the largest magnitude each tensor
// reaches over the calibration images `calib` [N, H, W, C] (fp32 reference
// forward, batches of at most `batch` images).
QModel quantize(const Model& m, const Tensor& calib, const QuantOptions& opt, int64_t batch = 16);

// Throws bsp::Error naming the first node where q does not fold the graph
// the way quantize() does (the fusion pass without fused adds): its kind,
// the node an identity is fused into, its clamp. Every back end relies on
// it, so a program read from a file is checked once, when it is read.
void check_folding(const Model& m, const QModel& q);

// Derives every Conv and Dense node's act_q from the graph's activation
// rules and the scale of the node's input tensor (quantize() and the reader
// of /compact call it).
void set_act_thresholds(const Model& m, QModel& q);

// ---- The int8 reference forward (scalar; the oracle) ----

// Quantises a float input [N, H, W, C] with the Input node's scale.
Array<int8_t> quantize_input(const Tensor& x, double scale);
void quantize_input(const Tensor& x, double scale, int8_t* out);  // into x.size() bytes

// Applies one non-Identity, non-Input, non-Softmax node to its int8 inputs.
Array<int8_t> reference_node(const Node& n, const QNode& q, const std::vector<const Array<int8_t>*>& in);

// Runs the int8 program on input [N, H, W, C] and returns the dequantised
// output (softmax applied in float when the model ends with one). `observe`
// sees every node's int8 output (Identity nodes alias their input).
Tensor reference_forward(const Model& m, const QModel& q, const Tensor& input,
                         const std::function<void(size_t node, const Array<int8_t>& out)>& observe = {});

}  // namespace bsp::q8
