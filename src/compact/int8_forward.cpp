// The int8 reference forward: plain scalar loops over the rules of int8.hpp.
// This is the oracle the int8 kernels and the AIE2 simulator must match bit
// for bit, so it favours obviousness over speed (OpenMP over output rows only).
#include <memory>
#include <unordered_map>

#include "compact/int8.hpp"
#include "core/act_sparsity.hpp"
#include "core/shapes.hpp"
#include "core/reference_ops.hpp"

namespace bsp::q8 {

namespace {

using Q = Array<int8_t>;

Shape without_batch(const Shape& s) { return Shape(s.begin() + 1, s.end()); }

Q conv(const Node& n, const QNode& q, const Q& x) {
  const ConvGeom g = conv_geom(n, without_batch(x.shape()));
  const int64_t N = x.dim(0), cpg = g.cin_per_group(), opg = g.cout_per_group();
  Q y({N, g.Ho, g.Wo, g.Cout});
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < N; ++b)
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow)
        for (int64_t co = 0; co < g.Cout; ++co) {
          const int64_t grp = co / opg;
          int32_t acc = q.bias[static_cast<size_t>(co)];
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw < 0 || iw >= g.W) continue;
              const int8_t* xp = x.data() + ((b * g.H + ih) * g.W + iw) * g.C + grp * cpg;
              const int8_t* wp = q.weight.data() + ((co * g.kh + i) * g.kw + j) * cpg;
              for (int64_t c = 0; c < cpg; ++c) acc += int32_t{xp[c]} * int32_t{wp[c]};
            }
          }
          y[static_cast<size_t>(((b * g.Ho + oh) * g.Wo + ow) * g.Cout + co)] =
              requantize(acc, q.rq[static_cast<size_t>(co)], q.lo, q.hi);
        }
  return y;
}

Q dense(const QNode& q, const Q& x) {
  const int64_t N = x.dim(0), F = x.dim(1), O = q.weight.dim(0);
  if (q.weight.dim(1) != F) fail("dense: weight takes {} inputs, input has {}", q.weight.dim(1), F);
  Q y({N, O});
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < N; ++b)
    for (int64_t o = 0; o < O; ++o) {
      int32_t acc = q.bias[static_cast<size_t>(o)];
      for (int64_t f = 0; f < F; ++f) acc += int32_t{x[static_cast<size_t>(b * F + f)]} * q.weight[static_cast<size_t>(o * F + f)];
      y[static_cast<size_t>(b * O + o)] = requantize(acc, q.rq[static_cast<size_t>(o)], q.lo, q.hi);
    }
  return y;
}

Q affine(const QNode& q, const Q& x) {
  const int64_t C = x.shape().back(), rows = static_cast<int64_t>(x.size()) / C;
  Q y(x.shape());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const size_t i = static_cast<size_t>(r * C + c), k = static_cast<size_t>(c);
      const int32_t acc = int32_t{x[i]} * q.weight[k] + q.bias[k];
      y[i] = requantize(acc, q.rq[k], q.lo, q.hi);
    }
  return y;
}

Q relu(const Q& x) {
  Q y(x.shape());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] > 0 ? x[i] : int8_t{0};
  return y;
}

// Max or divisor-rescaled sum over each window's real elements.
Q pool(const Node& n, const QNode& q, const Q& x, bool is_max) {
  const WindowGeom g = pool_geom(n, without_batch(x.shape()));
  const bool include_pad = n.attrs.get_int("count_include_pad", 1) != 0;
  const int64_t N = x.dim(0);
  Q y({N, g.Ho, g.Wo, g.C});
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < N; ++b)
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow)
        for (int64_t c = 0; c < g.C; ++c) {
          int32_t mx = -128, sum = 0, real = 0;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw < 0 || iw >= g.W) continue;
              const int32_t v = x[static_cast<size_t>(((b * g.H + ih) * g.W + iw) * g.C + c)];
              mx = std::max(mx, v);
              sum += v;
              ++real;
            }
          }
          int8_t out;
          if (is_max) {
            out = static_cast<int8_t>(mx);
          } else {
            // A window of padding only (possible with count_include_pad) sums to 0.
            const int64_t div = include_pad ? g.kh * g.kw : std::max<int64_t>(real, 1);
            out = requantize(sum, q.count_rq.at(static_cast<size_t>(div - 1)), -128, 127);
          }
          y[static_cast<size_t>(((b * g.Ho + oh) * g.Wo + ow) * g.C + c)] = out;
        }
  return y;
}

Q global_avgpool(const QNode& q, const Q& x) {
  const int64_t N = x.dim(0), HW = x.dim(1) * x.dim(2), C = x.dim(3);
  Q y({N, C});
  for (int64_t b = 0; b < N; ++b)
    for (int64_t c = 0; c < C; ++c) {
      int32_t sum = 0;
      for (int64_t p = 0; p < HW; ++p) sum += x[static_cast<size_t>((b * HW + p) * C + c)];
      y[static_cast<size_t>(b * C + c)] = requantize(sum, q.count_rq.at(0), -128, 127);
    }
  return y;
}

Q add(const QNode& q, const std::vector<const Q*>& in) {
  Q y(in.at(0)->shape());
  const int64_t round = q.in_shift > 0 ? (int64_t{1} << (q.in_shift - 1)) : 0;
  for (size_t i = 0; i < y.size(); ++i) {
    int64_t acc = round;
    for (size_t k = 0; k < in.size(); ++k) acc += int64_t{(*in[k])[i]} * q.in_mult[k];
    y[i] = static_cast<int8_t>(clamp(acc >> q.in_shift, q.lo, q.hi));
  }
  return y;
}

Q concat(const QNode& q, const std::vector<const Q*>& in) {
  Shape s = in.at(0)->shape();
  int64_t C = 0;
  for (const Q* t : in) C += t->shape().back();
  s.back() = C;
  Q y(s);
  const int64_t rows = static_cast<int64_t>(y.size()) / C;
  int64_t off = 0;
  for (size_t k = 0; k < in.size(); ++k) {
    const int64_t Ck = in[k]->shape().back();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < Ck; ++c)
        y[static_cast<size_t>(r * C + off + c)] = requantize((*in[k])[static_cast<size_t>(r * Ck + c)], q.in_rq[k], -128, 127);
    off += Ck;
  }
  return y;
}

Q lut(const QNode& q, const Q& x) {
  if (q.table.size() != 256) fail("internal: a lookup table of {} entries", q.table.size());
  Q y(x.shape());
  for (size_t i = 0; i < x.size(); ++i) y[i] = q.table[static_cast<size_t>(x[i] + 128)];
  return y;
}

// b the same shape as a, or [N, 1, 1, C] broadcast over a [N, H, W, C].
Q mul(const QNode& q, const Q& a, const Q& b) {
  Q y(a.shape());
  const bool bcast = b.shape() != a.shape();
  const int64_t C = a.shape().back(), HW = bcast ? a.dim(1) * a.dim(2) : 1;
  if (bcast && (b.size() != static_cast<size_t>(a.dim(0) * C) || b.shape().back() != C))
    fail("internal: mul of {} by {}", shape_str(a.shape()), shape_str(b.shape()));
  for (size_t i = 0; i < a.size(); ++i) {
    const size_t k = bcast ? (i / static_cast<size_t>(HW * C)) * static_cast<size_t>(C) + i % static_cast<size_t>(C) : i;
    y[i] = requantize(int64_t{a[i]} * b[k], q.prod_rq, -128, 127);
  }
  return y;
}

Q flatten(const Q& x) {
  Q y = x.clone();
  y.reshape({x.dim(0), static_cast<int64_t>(x.size()) / x.dim(0)});
  return y;
}

}  // namespace

void quantize_input(const Tensor& x, double scale, int8_t* out) {
  const int64_t n = static_cast<int64_t>(x.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = quantize_value(x.data()[i], scale);
}

Array<int8_t> quantize_input(const Tensor& x, double scale) {
  Array<int8_t> q(x.shape());
  quantize_input(x, scale, q.data());
  return q;
}

Array<int8_t> reference_node(const Node& n, const QNode& q, const std::vector<const Array<int8_t>*>& in) {
  if ((q.kind == Kind::Conv || q.kind == Kind::Dense) && q.act_q > 0) {
    // The activation rule on a copy of the input (int8.hpp): the tensor may have other readers.
    const std::optional<ActRule> r = act_rule(n);
    if (!r) fail("internal: node '{}' has an int8 activation threshold but no rule", n.name);
    Q x = in.at(0)->clone();
    zero_small_blocks_inplace(x.data(), x.shape(), r->block, q.act_q);
    return q.kind == Kind::Conv ? conv(n, q, x) : dense(q, x);
  }
  switch (q.kind) {
    case Kind::Conv: return conv(n, q, *in.at(0));
    case Kind::Dense: return dense(q, *in.at(0));
    case Kind::Affine: return affine(q, *in.at(0));
    case Kind::Relu: return relu(*in.at(0));
    case Kind::MaxPool: return pool(n, q, *in.at(0), true);
    case Kind::AvgPool: return pool(n, q, *in.at(0), false);
    case Kind::GlobalAvgPool: return global_avgpool(q, *in.at(0));
    case Kind::Add: return add(q, in);
    case Kind::Concat: return concat(q, in);
    case Kind::Flatten: return flatten(*in.at(0));
    case Kind::Clip: {
      const Q& x = *in.at(0);
      Q y(x.shape());
      for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<int8_t>(clamp(x[i], q.lo, q.hi));
      return y;
    }
    case Kind::Lut: return lut(q, *in.at(0));
    case Kind::Mul: return mul(q, *in.at(0), *in.at(1));
    case Kind::Input:
    case Kind::Identity:
    case Kind::Softmax:
    case Kind::kCount:
      break;
  }
  fail("internal: node '{}' ({}) is not an int8 computation", n.name, kind_name(q.kind));
}

Tensor reference_forward(const Model& m, const QModel& q, const Tensor& input,
                         const std::function<void(size_t, const Array<int8_t>&)>& observe) {
  check_batch_input(m, input.shape());
  if (q.nodes.size() != m.nodes.size()) fail("internal: the int8 program does not match the graph");
  const size_t count = m.nodes.size();
  const Wiring w = wiring(m);
  // Identity nodes share their input's buffer.
  std::vector<std::shared_ptr<Q>> out(count);
  Tensor result;
  for (size_t i = 0; i < count; ++i) {
    const Node& n = m.nodes[i];
    const QNode& qn = q.nodes[i];
    std::vector<const Q*> ins;
    for (size_t j : w.inputs[i]) ins.push_back(out[j].get());
    if (qn.kind == Kind::Input) {
      out[i] = std::make_shared<Q>(quantize_input(input, qn.scale));
    } else if (qn.kind == Kind::Identity) {
      out[i] = out[w.inputs[i].at(0)];
    } else if (qn.kind == Kind::Softmax) {
      const Q& x = *ins.at(0);
      const double s = q.nodes[w.inputs[i].at(0)].scale;
      Tensor f(x.shape());
      for (size_t k = 0; k < x.size(); ++k) f[k] = static_cast<float>(x[k] * s);
      result = ref::softmax(f);
    } else {
      out[i] = std::make_shared<Q>(reference_node(n, qn, ins));
    }
    if (observe && out[i]) observe(i, *out[i]);
    for (size_t j : w.inputs[i])
      if (w.last_use[j] == i) out[j].reset();
  }
  if (q.nodes[count - 1].kind != Kind::Softmax) {
    const Q& y = *out[count - 1];
    result = Tensor(y.shape());
    for (size_t k = 0; k < y.size(); ++k) result[k] = static_cast<float>(y[k] * q.nodes[count - 1].scale);
  }
  return result;
}

}  // namespace bsp::q8
