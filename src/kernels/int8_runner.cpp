#include "kernels/int8_runner.hpp"

#include <chrono>
#include <unordered_map>

#include "core/act_sparsity.hpp"
#include "core/reference_ops.hpp"
#include "kernels/ops_i8.hpp"
#include "sparsity/blocks.hpp"
#include "kernels/width_fold.hpp"

namespace bsp::kernels {

// One step per group of the fusion pass (core/fusion.hpp; the int8 program
// was folded with the same pass, without its fused adds): a conv2d with one
// group or a dense layer on the VNNI kernel with the group's add in its
// epilogue, a depthwise conv likewise on ops_i8, anything else node by node.
Int8Runner::Int8Runner(const Model& m, const compact::CompactModel& c) : m_(m), q_(*c.int8) {
  const auto shapes = infer_shapes(m);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < m.nodes.size(); ++i) index[m.nodes[i].name] = i;
  // The node whose computation a node's tensor is (identities resolved): slots are indexed by it.
  const auto resolve = [&](size_t k) {
    while (q_.nodes[k].kind == q8::Kind::Identity) k = index.at(m.nodes[k].inputs.at(0));
    return k;
  };
  const Fusion fu = fuse(m, {.fold_layers = true, .fuse_add = true});
  for (const FusedGroup& g : fu.groups) {
    const Node& n = m.nodes[g.head];
    const q8::QNode& qn = q_.nodes[g.head];
    Step s;
    s.node = g.head;
    s.out = resolve(g.out);
    StepInfo info;
    info.name = n.name;
    info.op = n.op;
    for (size_t j : g.nodes)
      if (j != g.head) info.fused.push_back(m.nodes[j].name);
    // (The input's quantisation runs on ops_i8 too.)
    info.kernel = qn.kind == q8::Kind::Add || qn.kind == q8::Kind::MaxPool || qn.kind == q8::Kind::GlobalAvgPool ||
                          qn.kind == q8::Kind::Input
                      ? "int8"
                      : "ref-int8";
    const bool conv_like = (qn.kind == q8::Kind::Conv && n.attrs.get_int("groups", 1) == 1) || qn.kind == q8::Kind::Dense;
    const bool depthwise = qn.kind == q8::Kind::Conv && n.attrs.get_int("groups", 1) > 1 &&
                           conv_geom(n, shapes[index.at(n.inputs.at(0))]).depthwise();
    if (conv_like || depthwise) {
      for (const auto& src : n.inputs) s.in.push_back(resolve(index.at(src)));
      if (depthwise)
        prepare_depthwise(s, info, shapes[index.at(n.inputs.at(0))], g);
      else
        prepare_layer(s, info, c, shapes[index.at(n.inputs.at(0))], g);
      if (s.add) s.in.push_back(s.addend = resolve(g.addend));
      if (qn.act_q > 0) s.act_block = act_rule(n).value().block;
    } else {
      // Node by node: the group's computations (its identities alias their input).
      for (size_t j : g.nodes) {
        if (q_.nodes[j].kind == q8::Kind::Identity) continue;
        Step::Link l{j, {}};
        for (const auto& src : m.nodes[j].inputs) l.in.push_back(resolve(index.at(src)));
        s.in.insert(s.in.end(), l.in.begin(), l.in.end());
        s.chain.push_back(std::move(l));
      }
    }
    steps_.push_back(std::move(s));
    infos_.push_back(std::move(info));
  }
  last_use_.assign(m.nodes.size(), 0);
  act_stats_.assign(steps_.size(), {});
  for (size_t k = 0; k < steps_.size(); ++k)
    for (size_t src : steps_[k].in) last_use_[src] = k;
  final_ = resolve(m.nodes.size() - 1);
  last_use_[final_] = steps_.size();
}

// A conv2d or dense group on the VNNI kernel: bsr 8x8 layers skip their
// pruned blocks, tw layers run on the tw kernel, nm layers on the nm kernel
// (nm_i8.hpp) where it takes their N:M, other forms on the 8x8 blocks
// covering their nonzero int8 weights; the group's two-input add runs in the
// kernel's epilogue.
void Int8Runner::prepare_layer(Step& s, StepInfo& info, const compact::CompactModel& c, const Shape& in,
                               const FusedGroup& g) {
  const Node& n = m_.nodes[g.head];
  const q8::QNode& qn = q_.nodes[g.head];
  if (qn.kind == q8::Kind::Conv) {
    s.geom = conv_geom(n, in);
  } else {
    s.dense_layer = true;
    s.geom.H = s.geom.W = s.geom.Ho = s.geom.Wo = 1;
    s.geom.C = qn.weight.dim(1);
    s.geom.Cout = qn.weight.dim(0);
  }
  const ConvGeom& geo = s.geom;
  info.macs = geo.Ho * geo.Wo * geo.Cout * geo.kh * geo.kw * geo.C;
  const compact::CompactLayer* l = c.layer(n.name);
  const compact::WeightGeom wg = compact::weight_geom(qn.weight.shape());
  if (g.add >= 0) {
    const q8::QNode& qa = q_.nodes[static_cast<size_t>(g.add)];
    s.add = q8::FusedAdd::make(qa.in_mult.at(static_cast<size_t>(g.add_self)),
                               qa.in_mult.at(static_cast<size_t>(1 - g.add_self)), qa.in_shift, qa.lo, qa.hi);
  }
  // A tw layer whose nonzero weights all lie in its tiles (else the 8x8 blocks covering them, below).
  if (l && l->format == compact::Format::TW && tw_covers(*l, qn.weight.data())) {
    s.tw = std::make_unique<TwConvI8>(geo, *l, qn.weight.data(), qn.bias.data(), qn.rq, qn.lo, qn.hi);
    info.kernel = "int8-tw";
    return;
  }
  if (l && l->format == compact::Format::NM && active_isa() != Isa::Avx2 &&
      NmConvI8::takes(geo, l->N, l->M, qn.weight.data())) {
    // N:M on its own kernel (nm_i8.hpp). AVX2 has no kernel of its own for
    // it: there the layer runs on the 8x8 blocks below.
    s.nm = std::make_unique<NmConvI8>(geo, l->N, l->M, qn.weight.data(), qn.bias.data(), qn.rq, qn.lo, qn.hi);
    info.kernel = "int8-nm";
    return;
  }
  std::vector<int32_t> rp, ci;
  if (l && l->format == compact::Format::Bsr && l->R == 8 && l->C == 8) {
    rp = l->row_ptr, ci = l->col_idx;
    info.kernel = "int8-bsr";
  } else if (l && l->format != compact::Format::Dense) {
    block_grid(qn.weight.data(), wg.O, wg.kh * wg.kw, wg.I).to_csr(rp, ci);  // the 8x8 blocks covering its nonzeros
    info.kernel = std::string("int8-") + compact::format_name(l->format) + "-as-bsr";
  } else {
    info.kernel = "int8-dense";
  }
  if (rp.empty() && width_fold_pays(geo)) {
    s.width_fold = true;
    s.conv = std::make_unique<ConvI8>(width_folded(geo), qn.weight.data(), rp, ci, qn.bias.data(), qn.rq, qn.lo, qn.hi);
  } else {
    s.conv = std::make_unique<ConvI8>(geo, qn.weight.data(), rp, ci, qn.bias.data(), qn.rq, qn.lo, qn.hi);
  }
}

void Int8Runner::prepare_depthwise(Step& s, StepInfo& info, const Shape& in, const FusedGroup& g) {
  const q8::QNode& qn = q_.nodes[g.head];
  s.geom = conv_geom(m_.nodes[g.head], in);
  const ConvGeom& geo = s.geom;
  info.macs = geo.Ho * geo.Wo * geo.Cout * geo.kh * geo.kw;
  info.kernel = "int8-depthwise";
  const int64_t taps = geo.kh * geo.kw;
  s.depthwise_w.resize(static_cast<size_t>(taps * geo.C));
  for (int64_t c = 0; c < geo.C; ++c)  // OHWI [C, kh, kw, 1] -> [tap, C]
    for (int64_t t = 0; t < taps; ++t) s.depthwise_w[static_cast<size_t>(t * geo.C + c)] = qn.weight[static_cast<size_t>(c * taps + t)];
  if (g.add >= 0) {
    const q8::QNode& qa = q_.nodes[static_cast<size_t>(g.add)];
    s.add = q8::FusedAdd::make(qa.in_mult.at(static_cast<size_t>(g.add_self)),
                               qa.in_mult.at(static_cast<size_t>(1 - g.add_self)), qa.in_shift, qa.lo, qa.hi);
  }
}

Tensor Int8Runner::forward(const Tensor& x, const std::function<void(size_t, double)>& on_step,
                           bool before_softmax) const {
  check_batch_input(m_, x.shape());
  const int64_t N = x.dim(0);
  std::vector<Array<int8_t>> slot(m_.nodes.size());
  Tensor result;
  for (size_t k = 0; k < steps_.size(); ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    const Step& s = steps_[k];
    const Node& n = m_.nodes[s.node];
    const q8::QNode& qn = q_.nodes[s.node];
    // A layer's activation rule (int8.hpp): in place when this step is the
    // input's last reader, else on a copy made in the same pass (another
    // reader may have another rule or none); the pass maps the zero units
    // for the block-sparse kernel to skip (act_skip.hpp; not the folded
    // stem, the nm and tw kernels, the depthwise conv: they multiply the
    // zeroed input).
    Array<int8_t> zeroed;
    bool copied = false;
    ActZeroMap zmap;
    const ActZeroMap* zeros = nullptr;
    if ((s.conv || !s.depthwise_w.empty()) && qn.act_q > 0) {
      Array<int8_t>& src = slot[s.in[0]];
      copied = last_use_[s.in[0]] != k || (s.add && s.addend == s.in[0]);
      if (copied) zeroed = buffers_.take(src.shape());
      apply_act_rule(src.data(), copied ? zeroed.data() : src.data(), src.shape(), s.act_block, qn.act_q, zmap);
      act_stats_[k].zero_blocks += zmap.zero_blocks;
      act_stats_[k].blocks += zmap.blocks;
      // Not a dense layer: its tiles are single images (the phase plan's one
      // virtual pixel per image), and listing the kept blocks costs more
      // than one product each (measured: fc1 of fmnist-cnn 0.75x at 87%).
      if (act_skip_ && s.conv && !s.width_fold && !s.dense_layer && zmap.unit_fraction() >= kMinSkipFractionI8)
        zeros = &zmap;
    }
    const int8_t* layer_in = copied ? zeroed.data() : s.in.empty() ? nullptr : slot[s.in[0]].data();
    if (qn.kind == q8::Kind::Input) {
      Array<int8_t> q = buffers_.take(x.shape());
      ops_i8(active_isa()).quantize(x.data(), static_cast<int64_t>(x.size()), qn.scale, q.data());
      slot[s.node] = std::move(q);
    } else if (s.tw) {
      const ConvGeom& g = s.geom;
      Array<int8_t> y = s.dense_layer ? buffers_.take({N, g.Cout}) : buffers_.take({N, g.Ho, g.Wo, g.Cout});
      s.tw->run(slot[s.in[0]].data(), N, y.data(), s.add ? slot[s.addend].data() : nullptr, s.add ? &*s.add : nullptr);
      slot[s.out] = std::move(y);
    } else if (s.conv || s.nm) {
      const ConvGeom& g = s.geom;
      Array<int8_t> y = s.dense_layer ? buffers_.take({N, g.Cout}) : buffers_.take({N, g.Ho, g.Wo, g.Cout});
      const int8_t* z = s.add ? slot[s.addend].data() : nullptr;
      const q8::FusedAdd* add = s.add ? &*s.add : nullptr;
      if (s.width_fold) {
        Array<int8_t> folded = buffers_.take({N, g.H, g.Wo, g.kw * g.C});
        width_im2col(g, layer_in, N, folded.data());
        s.conv->run(folded.data(), N, y.data(), z, add);
        buffers_.give(folded);
      } else if (s.nm) {
        s.nm->run(slot[s.in[0]].data(), N, y.data(), z, add);
      } else {
        s.conv->run(layer_in, N, y.data(), z, add, zeros);
      }
      slot[s.out] = std::move(y);
    } else if (!s.depthwise_w.empty()) {
      const ConvGeom& g = s.geom;
      Array<int8_t> y = buffers_.take({N, g.Ho, g.Wo, g.Cout});
      ops_i8(active_isa()).depthwise(layer_in, N, g, s.depthwise_w.data(), qn.bias.data(), qn.rq.data(),
                                     qn.lo, qn.hi, s.add ? slot[s.addend].data() : nullptr, s.add ? &*s.add : nullptr,
                                     y.data());
      slot[s.out] = std::move(y);
    } else if (qn.kind == q8::Kind::Softmax) {
      const Array<int8_t>& in = slot[s.in[0]];
      const double sc = q_.nodes[s.in[0]].scale;
      Tensor f(in.shape());
      for (size_t i = 0; i < in.size(); ++i) f[i] = static_cast<float>(in[i] * sc);
      result = before_softmax ? std::move(f) : ref::softmax(f);
    } else if (qn.kind == q8::Kind::Add || qn.kind == q8::Kind::MaxPool || qn.kind == q8::Kind::GlobalAvgPool) {
      const OpsI8 ops = ops_i8(active_isa());
      const Array<int8_t>& x0 = slot[s.in[0]];
      Array<int8_t> y;
      if (qn.kind == q8::Kind::Add) {
        y = buffers_.take(x0.shape());
        std::vector<const int8_t*> xs;
        for (size_t src : s.in) xs.push_back(slot[src].data());
        ops.add(xs.data(), qn.in_mult.data(), static_cast<int>(xs.size()), qn.in_shift, qn.lo, qn.hi, y.data(),
                static_cast<int64_t>(y.size()));
      } else if (qn.kind == q8::Kind::MaxPool) {
        const WindowGeom g = pool_geom(n, Shape(x0.shape().begin() + 1, x0.shape().end()));
        y = buffers_.take({N, g.Ho, g.Wo, g.C});
        ops.maxpool(x0.data(), N, g, y.data());
      } else {
        y = buffers_.take({N, x0.dim(3)});
        ops.global_avgpool(x0.data(), N, x0.dim(1) * x0.dim(2), x0.dim(3), qn.count_rq.at(0), y.data());
      }
      slot[s.node] = std::move(y);
    } else {
      for (const Step::Link& l : s.chain) {
        std::vector<const Array<int8_t>*> ins;
        for (size_t src : l.in) ins.push_back(&slot[src]);
        slot[l.node] = q8::reference_node(m_.nodes[l.node], q_.nodes[l.node], ins);
      }
    }
    if (copied) buffers_.give(zeroed);
    for (size_t src : s.in)
      if (last_use_[src] == k) buffers_.give(slot[src]);
    if (on_step) on_step(k, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const size_t last = final_;
  if (q_.nodes[last].kind != q8::Kind::Softmax) {
    const Array<int8_t>& y = slot[last];
    result = Tensor(y.shape());
    for (size_t i = 0; i < y.size(); ++i) result[i] = static_cast<float>(y[i] * q_.nodes[last].scale);
  }
  return result;
}

}  // namespace bsp::kernels
