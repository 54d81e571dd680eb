// Quantisation: folding, weight and activation scales, requantisation
// parameters (the rules are stated in int8.hpp).
#include "compact/int8.hpp"

#include "core/act_sparsity.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/act_sparsity.hpp"
#include "core/finite.hpp"
#include "core/fold.hpp"
#include "core/fusion.hpp"
#include "core/op_table.hpp"
#include "core/reference_forward.hpp"
#include "core/reference_ops.hpp"
#include "core/shapes.hpp"

namespace bsp::q8 {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Input: return "input";
    case Kind::Identity: return "identity";
    case Kind::Conv: return "conv2d";
    case Kind::Dense: return "dense";
    case Kind::Affine: return "affine";
    case Kind::Relu: return "relu";
    case Kind::MaxPool: return "maxpool";
    case Kind::AvgPool: return "avgpool";
    case Kind::GlobalAvgPool: return "global_avgpool";
    case Kind::Add: return "add";
    case Kind::Concat: return "concat";
    case Kind::Flatten: return "flatten";
    case Kind::Softmax: return "softmax";
    case Kind::Clip: return "clip";
    case Kind::Lut: return "lut";
    case Kind::Mul: return "mul";
    case Kind::kCount: break;
  }
  return "?";
}

Requant make_requant(double real) {
  if (!(real > 0) || !std::isfinite(real)) fail("internal: requantisation factor {} is not positive", real);
  int e = 0;
  const double f = std::frexp(real, &e);  // real = f * 2^e, f in [0.5, 1)
  if (f == 0.5) {                         // an exact power of two, 2^(e-1)
    const int k = e - 1;
    if (k > 30) fail("requantisation factor {} is too large", real);
    if (k >= 0) return {static_cast<int32_t>(int64_t{1} << k), 0};
    if (-k > 62) return {0, 62};
    return {1, -k};
  }
  int64_t mult = std::llround(std::ldexp(f, 31));
  if (mult == (int64_t{1} << 31)) {
    mult >>= 1;
    ++e;
  }
  int shift = 31 - e;
  if (shift < 0) fail("requantisation factor {} is too large", real);
  if (shift > 62) return {static_cast<int32_t>(std::llround(std::ldexp(real, 62))), 62};
  return {static_cast<int32_t>(mult), shift};
}

double quant_scale(double max_abs, bool pow2) {
  // Callers check their statistics first (calibrate, quantize_weights): a
  // NaN or an infinity here is a bug, not a scale of 1.
  if (!std::isfinite(max_abs) || max_abs < 0) fail("internal: no int8 scale for a largest magnitude of {}", max_abs);
  if (max_abs == 0) return 1.0;
  const double s = max_abs / 127.0;
  return pow2 ? std::exp2(std::ceil(std::log2(s))) : s;
}

int8_t quantize_value(float x, double scale) {
  const double v = static_cast<double>(x) / scale;
  if (std::isnan(v)) return 0;
  if (v <= -128) return -128;
  if (v >= 127) return 127;
  // Round half to even, as nearbyint in the default rounding mode, without
  // its library call (a model input quantises every pixel).
#if defined(__SSE2__)
  return static_cast<int8_t>(_mm_cvtsd_si32(_mm_set_sd(v)));  // cvtsd2si: the current (nearest-even) mode
#else
  return static_cast<int8_t>(std::nearbyint(v));
#endif
}

namespace {

int32_t saturate_i32(double v) {
  if (std::isnan(v)) return 0;
  return static_cast<int32_t>(std::clamp(v, -2147483648.0, 2147483647.0));
}

// Per-output-channel quantisation of folded weights; fills weight, bias,
// w_scale and rq of q given the input and output scales.
void quantize_weights(const std::string& name, const Tensor& w, const Tensor& b, double s_in, bool pow2, QNode& q) {
  const int64_t O = w.dim(0), K = static_cast<int64_t>(w.size()) / O;
  // |acc| <= K * 128 * 127 + |bias| must stay an int32.
  if (static_cast<double>(K) * 128 * 127 > 2147483647.0 / 2)
    fail("layer '{}': {} inputs per output overflow an int32 accumulator", name, K);
  q.weight = Array<int8_t>(w.shape());
  q.bias = Array<int32_t>({O});
  q.w_scale.resize(static_cast<size_t>(O));
  q.rq.resize(static_cast<size_t>(O));
  // Folding a batchnorm can overflow float32 where the stored parameters
  // did not: int8 never quantises a NaN or an infinity.
  if (const int64_t e = first_nonfinite(w.data(), static_cast<int64_t>(w.size())); e < static_cast<int64_t>(w.size()))
    fail("layer '{}': folded weight {} of output channel {} is {} (the layer and its batchnorm overflow float32)", name,
         e, e / K, nonfinite_word(w[static_cast<size_t>(e)]));
  if (const int64_t e = first_nonfinite(b.data(), static_cast<int64_t>(b.size())); e < static_cast<int64_t>(b.size()))
    fail("layer '{}': folded bias of output channel {} is {} (the layer and its batchnorm overflow float32)", name, e,
         nonfinite_word(b[static_cast<size_t>(e)]));
  for (int64_t o = 0; o < O; ++o) {
    const float* wr = w.data() + o * K;
    double mx = 0;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, static_cast<double>(std::abs(wr[k])));
    const double s = quant_scale(mx, pow2);
    q.w_scale[static_cast<size_t>(o)] = s;
    for (int64_t k = 0; k < K; ++k) {
      const double v = std::nearbyint(static_cast<double>(wr[k]) / s);
      q.weight[static_cast<size_t>(o * K + k)] = static_cast<int8_t>(std::clamp(v, -127.0, 127.0));
    }
    const double bias_bound = 2147483647.0 / 2;
    q.bias[static_cast<size_t>(o)] = saturate_i32(std::clamp(std::nearbyint(b[static_cast<size_t>(o)] / (s_in * s)),
                                                             -bias_bound, bias_bound));
    q.rq[static_cast<size_t>(o)] = make_requant(s_in * s / q.scale);
  }
}

// Folding: the kind of every node from the fusion pass's groups (layers
// with their batchnorm and relu, adds and unfolded batchnorms with their
// relu; no add fused into a layer: every add output is a tensor with a scale).
void assign_kinds(const Model& m, const Fusion& fu, QModel& q) {
  for (const FusedGroup& g : fu.groups) {
    const Node& n = m.nodes[g.head];
    QNode& qn = q.nodes[g.head];
    require_backend(n, Backend::Int8, g.head + 1 == m.nodes.size());
    switch (n.op) {
      case Op::Input: qn.kind = Kind::Input; break;
      case Op::Conv2d: qn.kind = Kind::Conv; break;
      case Op::Dense: qn.kind = Kind::Dense; break;
      case Op::BatchNorm: qn.kind = Kind::Affine; break;
      case Op::Relu: qn.kind = Kind::Relu; break;
      case Op::MaxPool: qn.kind = Kind::MaxPool; break;
      case Op::AvgPool: qn.kind = Kind::AvgPool; break;
      case Op::GlobalAvgPool: qn.kind = Kind::GlobalAvgPool; break;
      case Op::Add: qn.kind = Kind::Add; break;
      case Op::Concat: qn.kind = Kind::Concat; break;
      case Op::Flatten: qn.kind = Kind::Flatten; break;
      case Op::Softmax: qn.kind = Kind::Softmax; break;
      case Op::Clip: qn.kind = Kind::Clip; break;
      case Op::Sigmoid:
      case Op::HardSigmoid:
      case Op::HardSwish: qn.kind = Kind::Lut; break;
      case Op::Mul: qn.kind = Kind::Mul; break;
      default: fail_unsupported(n, Backend::Int8);  // the table says int8 does not run it
    }
    // A relu's clamp is known now; a clip's needs the group's scale (quantize).
    if (g.act >= 0 && m.nodes[static_cast<size_t>(g.act)].op == Op::Relu) qn.lo = 0;
    for (size_t j : g.nodes)
      if (j != g.head) {
        q.nodes[j].kind = Kind::Identity;
        q.nodes[j].fused_into = n.name;
      }
  }
}

// Calibration: the largest magnitude of every tensor over the images.
// Every observed tensor must be finite: a NaN would vanish from the maximum
// (std::max ignores it) and an infinity would leave no usable scale.
std::vector<double> calibrate(const Model& m, const Tensor& calib, const QuantOptions& opt, int64_t batch) {
  if (calib.rank() != 4 || calib.dim(0) < 1) fail("calibration data must hold at least one image");
  if (const int64_t e = first_nonfinite(calib.data(), static_cast<int64_t>(calib.size()));
      e < static_cast<int64_t>(calib.size()))
    fail("calibration image {} holds {}", e / (static_cast<int64_t>(calib.size()) / calib.dim(0)),
         nonfinite_word(calib[static_cast<size_t>(e)]));
  std::vector<double> maxabs(m.nodes.size(), 0.0);
  const int64_t N = calib.dim(0), per = static_cast<int64_t>(calib.size()) / N;
  for (int64_t b0 = 0; b0 < N; b0 += batch) {
    const int64_t nb = std::min(batch, N - b0);
    Shape s = calib.shape();
    s[0] = nb;
    Tensor x(s);
    std::copy(calib.data() + b0 * per, calib.data() + (b0 + nb) * per, x.data());
    size_t bad = m.nodes.size();
    auto observe = [&](size_t i, const Tensor& t) {
      if (bad == m.nodes.size() && any_nonfinite(t.data(), static_cast<int64_t>(t.size()))) bad = i;
      double mx = 0;
      for (float v : t) mx = std::max(mx, static_cast<double>(std::abs(v)));
      maxabs[i] = std::max(maxabs[i], mx);
    };
    if (opt.forward)
      opt.forward(x, observe);
    else
      reference_forward(m, x, observe);
    if (bad < m.nodes.size())
      fail("calibration: node '{}' outputs nan or infinite values on calibration images {} to {} (the model "
           "overflows float32; int8 cannot quantise it)",
           m.nodes[bad].name, b0, b0 + nb - 1);
  }
  return maxabs;
}

// An add's multipliers: one shift for all inputs, the largest that keeps
// every multiplier below 2^31 (with pow2 scales: the smallest that makes
// them integers).
void add_params(const std::vector<double>& r, bool pow2, QNode& qn) {
  int shift = 62;
  for (double v : r) shift = std::min(shift, 30 - static_cast<int>(std::floor(std::log2(v))));
  if (pow2) {
    int need = 0;
    for (double v : r) need = std::max(need, -static_cast<int>(std::lround(std::log2(v))));
    shift = std::min(shift, need);
  }
  shift = std::clamp(shift, 0, 62);
  qn.in_shift = shift;
  for (double v : r) qn.in_mult.push_back(static_cast<int32_t>(std::llround(std::ldexp(v, shift))));
}

// A lookup-table node's table: f of each int8 input value's real value,
// quantised on the output scale.
std::vector<int8_t> lookup_table(const Node& n, double s_in, double s_out) {
  std::vector<int8_t> t(256);
  const float alpha = n.op == Op::HardSigmoid ? static_cast<float>(n.attrs.get_double("alpha")) : 0.0f;
  const float beta = n.op == Op::HardSigmoid ? static_cast<float>(n.attrs.get_double("beta")) : 0.0f;
  for (int v = -128; v <= 127; ++v) {
    const float x = static_cast<float>(v * s_in);
    const float y = n.op == Op::Sigmoid ? ref::sigmoid(x) : n.op == Op::HardSigmoid ? ref::hardsigmoid(x, alpha, beta) : ref::hardswish(x);
    t[static_cast<size_t>(v + 128)] = quantize_value(y, s_out);
  }
  return t;
}

}  // namespace

void check_folding(const Model& m, const QModel& q) {
  if (q.nodes.size() != m.nodes.size()) fail("the int8 program has {} nodes, the graph {}", q.nodes.size(), m.nodes.size());
  QModel want;
  want.nodes.resize(m.nodes.size());
  const Fusion fu = fuse(m, {.fold_layers = true, .fuse_add = false});
  assign_kinds(m, fu, want);
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const QNode &a = q.nodes[i], &b = want.nodes[i];
    if (a.kind != b.kind)
      fail("node '{}' is {} in the int8 program, {} in the graph's folding", m.nodes[i].name, kind_name(a.kind),
           kind_name(b.kind));
    if (a.fused_into != b.fused_into)
      fail("node '{}' is fused into '{}' in the int8 program, into '{}' in the graph's folding", m.nodes[i].name,
           a.fused_into, b.fused_into);
    // (a clip's clamp, alone or ending a group, is its bounds quantised: not the folding's)
    const FusedGroup& g = fu.groups[fu.group_of[i]];
    const bool clipped = a.kind == Kind::Clip || (g.act >= 0 && m.nodes[static_cast<size_t>(g.act)].op == Op::Clip);
    if (a.kind != Kind::Identity && !clipped && (a.lo != b.lo || a.hi != b.hi))
      fail("node '{}' clamps to [{}, {}] in the int8 program, [{}, {}] in the graph's folding", m.nodes[i].name, a.lo,
           a.hi, b.lo, b.hi);
  }
}

QModel quantize(const Model& m, const Tensor& calib, const QuantOptions& opt, int64_t batch) {
  const size_t count = m.nodes.size();
  const auto shapes = infer_shapes(m);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < count; ++i) index[m.nodes[i].name] = i;
  auto in = [&](size_t i, size_t k = 0) { return index.at(m.nodes[i].inputs.at(k)); };

  QModel q;
  q.pow2 = opt.pow2;
  q.nodes.resize(count);
  const Fusion fu = fuse(m, {.fold_layers = true, .fuse_add = false});
  assign_kinds(m, fu, q);
  const std::vector<double> maxabs = calibrate(m, calib, opt, batch);

  // Scales in node order: calibrated for computed tensors (a group's last
  // node), inherited for the rest; then the integer parameters.
  auto scale_of = [&](size_t i, size_t k = 0) { return q.nodes[in(i, k)].scale; };
  for (size_t i = 0; i < count; ++i) {
    const Node& n = m.nodes[i];
    QNode& qn = q.nodes[i];
    const FusedGroup& g = fu.groups[fu.group_of[i]];
    switch (qn.kind) {
      case Kind::Input:
      case Kind::Conv:
      case Kind::Dense:
      case Kind::Affine:
      case Kind::Add:
      case Kind::Lut:
      case Kind::Mul:
        qn.scale = quant_scale(maxabs[g.out], opt.pow2);
        break;
      case Kind::Identity:
        qn.scale = q.nodes[g.head].scale;
        break;
      case Kind::Relu:
      case Kind::MaxPool:
      case Kind::AvgPool:
      case Kind::GlobalAvgPool:
      case Kind::Flatten:
      case Kind::Softmax:
        qn.scale = scale_of(i);
        break;
      case Kind::Clip:
        qn.scale = scale_of(i);
        qn.lo = quantize_value(static_cast<float>(n.attrs.get_double("min")), qn.scale);
        qn.hi = quantize_value(static_cast<float>(n.attrs.get_double("max")), qn.scale);
        break;
      case Kind::kCount:
        break;
      case Kind::Concat: {
        double s = 0;
        for (size_t k = 0; k < n.inputs.size(); ++k) s = std::max(s, scale_of(i, k));
        qn.scale = s;
        break;
      }
    }
    if (g.head == i && g.act >= 0 && m.nodes[static_cast<size_t>(g.act)].op == Op::Clip) {
      // The group's value is the clip's: its bounds on the group's scale.
      const Node& c = m.nodes[static_cast<size_t>(g.act)];
      qn.lo = quantize_value(static_cast<float>(c.attrs.get_double("min")), qn.scale);
      qn.hi = quantize_value(static_cast<float>(c.attrs.get_double("max")), qn.scale);
    }
    if (qn.kind == Kind::Conv || qn.kind == Kind::Dense) {
      FoldedLayer f = fold_batchnorm(n, g.norm >= 0 ? &m.nodes[static_cast<size_t>(g.norm)] : nullptr);
      quantize_weights(n.name, f.weight, f.bias, scale_of(i), opt.pow2, qn);
    } else if (qn.kind == Kind::Affine) {
      const ChannelAffine a = batchnorm_affine(n);
      const int64_t C = static_cast<int64_t>(a.scale.size());
      Tensor w({C, 1}), b({C});
      std::copy(a.scale.begin(), a.scale.end(), w.data());
      std::copy(a.shift.begin(), a.shift.end(), b.data());
      quantize_weights(n.name, w, b, scale_of(i), opt.pow2, qn);
      qn.weight.reshape({C});
    } else if (qn.kind == Kind::Add) {
      std::vector<double> r;
      for (size_t k = 0; k < n.inputs.size(); ++k) r.push_back(scale_of(i, k) / qn.scale);
      add_params(r, opt.pow2, qn);
    } else if (qn.kind == Kind::Lut) {
      qn.table = lookup_table(n, scale_of(i), qn.scale);
    } else if (qn.kind == Kind::Mul) {
      qn.prod_rq = make_requant(scale_of(i, 0) * scale_of(i, 1) / qn.scale);
    } else if (qn.kind == Kind::Concat) {
      for (size_t k = 0; k < n.inputs.size(); ++k) qn.in_rq.push_back(make_requant(scale_of(i, k) / qn.scale));
    } else if (qn.kind == Kind::AvgPool) {
      const auto k = n.attrs.get_ints("kernel");
      for (int64_t c = 1; c <= k.at(0) * k.at(1); ++c) qn.count_rq.push_back(make_requant(1.0 / static_cast<double>(c)));
    } else if (qn.kind == Kind::GlobalAvgPool) {
      const Shape& s = shapes[in(i)];
      qn.count_rq.push_back(make_requant(1.0 / static_cast<double>(s.at(0) * s.at(1))));
    }
  }
  set_act_thresholds(m, q);
  return q;
}

void set_act_thresholds(const Model& m, QModel& q) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < m.nodes.size(); ++i) index[m.nodes[i].name] = i;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    QNode& qn = q.nodes.at(i);
    qn.act_q = 0;
    const std::optional<ActRule> r = act_rule(m.nodes[i]);
    if (!r || (qn.kind != Kind::Conv && qn.kind != Kind::Dense)) continue;
    qn.act_q = act_qthreshold(r->threshold, q.nodes.at(index.at(m.nodes[i].inputs.at(0))).scale);
  }
}

}  // namespace bsp::q8
