#include "kernels/runner.hpp"

#include <chrono>
#include <unordered_map>

#include "compact/compact.hpp"
#include "core/act_sparsity.hpp"
#include "core/fold.hpp"
#include "core/fusion.hpp"
#include "core/op_table.hpp"
#include "core/reference_forward.hpp"
#include "core/shapes.hpp"
#include "kernels/buffer_pool.hpp"
#include "kernels/act_skip.hpp"
#include "kernels/conv_blas.hpp"
#include "kernels/conv_f32.hpp"
#include "kernels/depthwise_f32.hpp"
#include "kernels/int8_runner.hpp"
#include "kernels/nm_f32.hpp"
#include "kernels/ops_f32.hpp"
#include "kernels/tw.hpp"
#include "kernels/width_fold.hpp"
#include "sparsity/blocks.hpp"

namespace bsp::kernels {

const char* path_name(Path p) {
  switch (p) {
    case Path::Auto: return "auto";
    case Path::Dense: return "dense";
    case Path::Blas: return "blas";
  }
  return "?";
}

namespace {

// An fp32 step. Conv-like steps own one of conv / blas / nm / tw; other
// steps run the graph node with the reference op.
struct Step {
  StepInfo info;
  size_t node = 0;                 // the main graph node
  size_t out = 0;                  // the slot written: the last node of the fused chain
  std::vector<size_t> in;          // slots read
  struct Link {
    size_t node;
    std::vector<size_t> in;        // its input slots (the one before it in the chain: its value)
  };
  std::vector<Link> chain;         // "ref" steps: the group's nodes, run one by one
  int64_t residual = -1;           // slot added before the clamp, or -1
  Clamp clamp;                     // the group's relu or clip
  ConvGeom geom;                   // conv-like steps (dense layers: a 1x1 conv on 1x1 images)
  bool is_dense_layer = false;
  bool width_fold = false;         // conv runs on the width-folded input (width_fold.hpp)
  std::unique_ptr<ConvF32> conv;
  std::unique_ptr<ConvBlas> blas;
  std::unique_ptr<NmConvF32> nm;
  std::unique_ptr<TwConvF32> tw;
  std::unique_ptr<DepthwiseF32> depthwise;
  std::optional<ActRule> act;      // conv-like steps: the input's activation rule (forward)
  bool pool = false;               // max/avg/global-avg pool on ops_f32 (geom: its window)
  bool count_include_pad = true;   // avgpool
};

}  // namespace

struct Runner::Impl {
  const Model& m;
  Path path;
  std::vector<Step> steps;
  std::vector<StepInfo> infos;
  std::vector<size_t> last_use;  // per slot: the last step reading it
  std::unique_ptr<Int8Runner> int8;
  mutable BufferPool<float> buffers;  // activations reused across steps and passes
  bool act_skip = true;
  mutable std::vector<ActStat> act_stats;  // per step
  Tensor take(Shape s) const { return buffers.take(std::move(s)); }
  void give(Tensor& t) const { buffers.give(t); }

  bool fuse_add = true;

  Impl(const Model& model, Path p, bool fuse) : m(model), path(p), fuse_add(fuse) {
    if (p == Path::Auto && m.compact && m.compact->dtype == DType::Int8) {
      int8 = std::make_unique<Int8Runner>(m, *m.compact);
      return;
    }
    build();
  }

  // One step per group of the fusion pass (core/fusion.hpp): a conv2d with
  // one group or a dense layer runs its group on a conv kernel (batchnorm
  // folded, add and relu or clip in the epilogue), a depthwise conv likewise
  // on its own kernel, a pool on ops_f32, anything else node by node with
  // the reference ops.
  void build() {
    const size_t count = m.nodes.size();
    const auto shapes = infer_shapes(m);
    const Fusion fu = fuse(m, {.fold_layers = true, .fuse_add = fuse_add});
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < count; ++i) index[m.nodes[i].name] = i;
    for (const FusedGroup& g : fu.groups) {
      const Node& n = m.nodes[g.head];
      require_backend(n, Backend::Fp32, g.head + 1 == count);
      Step s;
      s.node = g.head;
      s.out = g.out;
      s.info.name = n.name;
      s.info.op = n.op;
      for (const auto& src : n.inputs) s.in.push_back(index.at(src));
      for (size_t j : g.nodes)
        if (j != g.head) s.info.fused.push_back(m.nodes[j].name);
      const int64_t groups = n.op == Op::Conv2d ? n.attrs.get_int("groups", 1) : 1;
      const bool conv_like = (n.op == Op::Conv2d && groups == 1) || n.op == Op::Dense;
      const bool depthwise = n.op == Op::Conv2d && groups > 1 && conv_geom(n, shapes[s.in.at(0)]).depthwise();
      if (conv_like || depthwise) {
        s.residual = g.add >= 0 ? static_cast<int64_t>(g.addend) : -1;
        s.clamp = group_clamp(m, g);
        s.act = act_rule(n);
        const Node* bn = g.norm >= 0 ? &m.nodes[static_cast<size_t>(g.norm)] : nullptr;
        if (depthwise)
          prepare_depthwise(s, n, bn, shapes[s.in.at(0)]);
        else
          prepare_layer(s, n, bn, shapes[s.in.at(0)]);
      } else if (n.op == Op::MaxPool || n.op == Op::AvgPool || n.op == Op::GlobalAvgPool) {
        const Shape in = shapes[s.in.at(0)];
        s.pool = true;
        if (n.op == Op::GlobalAvgPool) {
          s.geom.H = in.at(0), s.geom.W = in.at(1), s.geom.C = in.at(2);
        } else {
          static_cast<WindowGeom&>(s.geom) = pool_geom(n, in);  // shapes carry no batch
          s.count_include_pad = n.attrs.get_int("count_include_pad", 1) != 0;
        }
        s.info.kernel = "pool";
      } else {
        s.info.kernel = "ref";
        for (size_t j : g.nodes) {
          Step::Link l{j, {}};
          for (const auto& src : m.nodes[j].inputs) l.in.push_back(index.at(src));
          s.chain.push_back(std::move(l));
        }
        if (g.add >= 0) s.in.push_back(g.addend);  // read by the chain: freed after it
      }
      steps.push_back(std::move(s));
    }
    last_use.assign(count, 0);
    for (size_t k = 0; k < steps.size(); ++k) {
      for (size_t src : steps[k].in) last_use[src] = k;
      if (steps[k].residual >= 0) last_use[static_cast<size_t>(steps[k].residual)] = k;
    }
    last_use[count - 1] = steps.size();  // the last node is always a step's output
    for (const Step& s : steps) infos.push_back(s.info);
    act_stats.assign(steps.size(), {});
  }

  // A "ref" step: the group's nodes in order, each on the reference op; the
  // input that is the node before it in the chain is that node's value.
  Tensor run_chain(const Step& s, const std::vector<Tensor>& slot) const {
    Tensor cur;
    size_t cur_node = s.chain.front().node;
    for (const Step::Link& l : s.chain) {
      std::vector<const Tensor*> ins;
      for (size_t i : l.in) ins.push_back(l.node != s.node && i == cur_node ? &cur : &slot[i]);
      cur = reference_node(m.nodes[l.node], ins);
      cur_node = l.node;
    }
    return cur;
  }

  // A depthwise conv: its weights dense (a pruned one's zeros kept), the
  // batchnorm folded.
  void prepare_depthwise(Step& s, const Node& n, const Node* bn, const Shape& in) {
    s.geom = conv_geom(n, in);
    const ConvGeom& g = s.geom;
    s.info.macs = g.Ho * g.Wo * g.Cout * g.kh * g.kw;
    const compact::CompactLayer* cl = path == Path::Auto && m.compact ? m.compact->layer(n.name) : nullptr;
    const Tensor weight = cl && cl->dtype == DType::BF16 ? compact::expand_weight(*m.compact, n.name)
                                                         : n.param("weight").clone();
    const FoldedLayer f = fold_batchnorm(weight, n.has_param("bias") ? &n.param("bias") : nullptr, bn);
    s.depthwise = std::make_unique<DepthwiseF32>(g, f.weight.data(), f.bias.data());
    s.info.kernel = "depthwise";
  }

  void prepare_layer(Step& s, const Node& n, const Node* bn, const Shape& in) {
    if (n.op == Op::Conv2d) {
      s.geom = conv_geom(n, in);
    } else {
      const Tensor& w = n.param("weight");
      s.is_dense_layer = true;
      s.geom.H = s.geom.W = s.geom.Ho = s.geom.Wo = 1;
      s.geom.C = w.dim(1);
      s.geom.Cout = w.dim(0);
    }
    const ConvGeom& g = s.geom;
    s.info.macs = g.Ho * g.Wo * g.Cout * g.kh * g.kw * g.C;
    const compact::CompactLayer* cl =
        path == Path::Auto && m.compact ? m.compact->layer(n.name) : nullptr;
    // The fp32 weights: the graph's, or the compact form's (bf16 widened).
    Tensor weight = cl && cl->dtype == DType::BF16 ? compact::expand_weight(*m.compact, n.name)
                                                             : n.param("weight").clone();
    const FoldedLayer f = fold_batchnorm(weight, n.has_param("bias") ? &n.param("bias") : nullptr, bn);
    const compact::WeightGeom wg = compact::weight_geom(n.param("weight").shape());
    if (path == Path::Blas) {
      s.blas = std::make_unique<ConvBlas>(g, f.weight.data(), f.bias.data());
      s.info.kernel = "blas";
      return;
    }
    if (cl && cl->format == compact::Format::Bsr) {
      std::vector<int32_t> rp = cl->row_ptr, ci = cl->col_idx;
      if (cl->R != 8 || cl->C != 8) block_grid(f.weight.data(), wg.O, wg.kh * wg.kw, wg.I).to_csr(rp, ci);
      s.conv = std::make_unique<ConvF32>(g, pack_f32(f.weight.data(), wg, rp, ci, f.bias.data()));
      s.info.kernel = "bsr";
      return;
    }
    if (cl && cl->format == compact::Format::NM) {
      s.nm = std::make_unique<NmConvF32>(g, *cl, f.weight.data(), f.bias.data());
      s.info.kernel = "nm";
      return;
    }
    if (cl && cl->format == compact::Format::TW) {
      s.tw = std::make_unique<TwConvF32>(g, *cl, f.weight.data(), f.bias.data());
      s.info.kernel = "tw";
      return;
    }
    if (width_fold_pays(g)) {
      // dw = 1: the kernel reads the folded taps in place (conv_f32.hpp);
      // otherwise it runs on a width-folded copy of the input. So does a
      // stride taller than the window: the in-place layout keeps all sh row
      // phases of the padded input (the copy's phase planes only those read).
      const ConvGeom fg = width_folded(g);
      s.width_fold = g.dw != 1 || g.sh > g.dh * (g.kh - 1) + 1;
      s.conv = std::make_unique<ConvF32>(s.width_fold ? fg : g,
                                         pack_f32(f.weight.data(), {g.Cout, g.kh, 1, fg.C}, {}, {}, f.bias.data()));
    } else {
      s.conv = std::make_unique<ConvF32>(g, pack_f32(f.weight.data(), wg, {}, {}, f.bias.data()));
    }
    s.info.kernel = "dense";
  }

  Tensor forward(const Tensor& x, const std::function<void(size_t, double)>& on_step,
                 const std::function<void(size_t, const Tensor&)>& on_output, bool before_softmax = false) const {
    if (int8) return int8->forward(x, on_step, before_softmax);
    check_batch_input(m, x.shape());
    const int64_t N = x.dim(0);
    std::vector<Tensor> slot(m.nodes.size());
    for (size_t k = 0; k < steps.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      const Step& s = steps[k];
      const Node& n = m.nodes[s.node];
      if (before_softmax && n.op == Op::Softmax && s.node + 1 == m.nodes.size() && s.chain.size() == 1)
        return std::move(slot[s.in[0]]);
      if (s.conv || s.blas || s.nm || s.tw || s.depthwise) {
        // The activation rule: in place when this step is the input's last
        // reader (the runner owns its slots), else on a copy made in the
        // same pass (an earlier reader may have another rule or none). The
        // pass maps the zero units for the kernel to skip (act_skip.hpp):
        // bsp's own kernel (ConvF32: dense and bsr layers, dense layers)
        // skips them; OpenBLAS's sgemm (Path::Blas, bench's baseline) cannot
        // skip inside a GEMM, nor do the nm, tw and depthwise kernels: they
        // multiply the zeroed input.
        Tensor zeroed;
        bool copied = false;
        ActZeroMap zmap;
        const ActZeroMap* zeros = nullptr;
        if (s.act) {
          Tensor& src = slot[s.in[0]];
          const bool in_place = last_use[s.in[0]] == k && s.residual != static_cast<int64_t>(s.in[0]);
          copied = !in_place;
          if (copied) zeroed = take(src.shape());
          float* dst = in_place ? src.data() : zeroed.data();
          apply_act_rule(src.data(), dst, src.shape(), s.act->block, s.act->t(), zmap);
          act_stats[k].zero_blocks += zmap.zero_blocks;
          act_stats[k].blocks += zmap.blocks;
          // Below kMinSkipFraction of zero units the masks cost more than they save.
          const double min_fraction = s.is_dense_layer ? kMinSkipFractionDense : kMinSkipFraction;
          if (act_skip && s.conv && s.conv->can_skip() && !s.width_fold && zmap.unit_fraction() >= min_fraction)
            zeros = &zmap;
        }
        const Tensor& xin = copied ? zeroed : slot[s.in[0]];
        const ConvGeom& g = s.geom;
        Tensor y = s.is_dense_layer ? take({N, g.Cout}) : take({N, g.Ho, g.Wo, g.Cout});
        const float* z = s.residual >= 0 ? slot[static_cast<size_t>(s.residual)].data() : nullptr;
        if (s.conv && s.width_fold) {
          Tensor folded = take({N, g.H, g.Wo, g.kw * g.C});
          width_im2col(g, xin.data(), N, folded.data());
          s.conv->run(folded.data(), g.kw * g.C, N, y.data(), g.Cout, z, g.Cout, s.clamp);
          give(folded);
        } else if (s.conv)
          s.conv->run(xin.data(), g.C, N, y.data(), g.Cout, z, g.Cout, s.clamp, zeros);
        else if (s.blas)
          s.blas->run(xin.data(), N, y.data(), z, s.clamp);
        else if (s.depthwise)
          s.depthwise->run(xin.data(), N, y.data(), z, s.clamp);
        else if (s.nm)
          s.nm->run(xin.data(), N, y.data(), z, s.clamp);
        else
          s.tw->run(xin.data(), N, y.data(), z, s.clamp);
        if (copied) give(zeroed);
        slot[s.out] = std::move(y);
      } else if (s.pool) {
        const Tensor& xin = slot[s.in[0]];
        const ConvGeom& g = s.geom;
        const OpsF32 ops = ops_f32(active_isa());
        if (n.op == Op::GlobalAvgPool) {
          Tensor y = take({N, g.C});
          ops.global_avgpool(xin.data(), N, g.H * g.W, g.C, y.data());
          slot[s.out] = std::move(y);
        } else {
          Tensor y = take({N, g.Ho, g.Wo, g.C});
          if (n.op == Op::MaxPool)
            ops.maxpool(xin.data(), N, g, y.data());
          else
            ops.avgpool(xin.data(), N, g, s.count_include_pad, y.data());
          slot[s.out] = std::move(y);
        }
      } else if (n.op == Op::Input) {
        slot[s.out] = take(x.shape());
        std::copy(x.begin(), x.end(), slot[s.out].begin());
      } else {
        slot[s.out] = run_chain(s, slot);
      }
      if (on_output) on_output(s.out, slot[s.out]);
      for (size_t src : s.in)
        if (last_use[src] == k) give(slot[src]);
      if (s.residual >= 0 && last_use[static_cast<size_t>(s.residual)] == k) give(slot[static_cast<size_t>(s.residual)]);
      if (on_step)
        on_step(k, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return std::move(slot[m.nodes.size() - 1]);
  }
};

Runner::Runner(const Model& m, Path path, bool fuse_add) : impl_(std::make_unique<Impl>(m, path, fuse_add)) {}
Runner::~Runner() = default;
bool Runner::is_int8() const { return impl_->int8 != nullptr; }
void Runner::set_act_skip(bool on) {
  impl_->act_skip = on;
  if (impl_->int8) impl_->int8->set_act_skip(on);
}
const std::vector<ActStat>& Runner::act_stats() const {
  return impl_->int8 ? impl_->int8->act_stats() : impl_->act_stats;
}
void Runner::reset_act_stats() {
  if (impl_->int8) impl_->int8->reset_act_stats();
  impl_->act_stats.assign(impl_->steps.size(), {});
}
const std::vector<StepInfo>& Runner::steps() const { return impl_->int8 ? impl_->int8->steps() : impl_->infos; }
Tensor Runner::forward(const Tensor& x, const std::function<void(size_t, double)>& on_step,
                       const std::function<void(size_t, const Tensor&)>& on_output) const {
  return impl_->forward(x, on_step, on_output);
}

Tensor Runner::logits(const Tensor& x, const std::function<void(size_t, const Tensor&)>& on_output) const {
  return impl_->forward(x, {}, on_output, /*before_softmax=*/true);
}

Tensor fast_forward(const Model& m, const Tensor& x) { return Runner(m).forward(x); }

q8::CalibForward calibration_forward(const Model& m) {
  auto fast = std::make_shared<Runner>(m, Path::Dense, /*fuse_add=*/false);
  return [fast](const Tensor& x, const std::function<void(size_t, const Tensor&)>& observe) {
    fast->forward(x, {}, observe);
  };
}

}  // namespace bsp::kernels
