#include "aie2/lower.hpp"

#include <map>

#include "core/act_sparsity.hpp"
#include "core/error.hpp"
#include "core/fusion.hpp"
#include "core/op_table.hpp"
#include "core/shapes.hpp"

namespace bsp::aie2 {

const char* stage_kind_name(StageKind k) {
  switch (k) {
    case StageKind::Conv: return "conv";
    case StageKind::Pool: return "pool";
    case StageKind::Eltwise: return "eltwise";
    case StageKind::Softmax: return "softmax";
  }
  return "?";
}

int64_t Stage::macs() const {
  if (kind != StageKind::Conv) return 0;
  return Ho * Wo * Cout * kh * kw * (Cin / groups);
}

namespace {

// [H, W, C] of a node's value; vectors [F] are [1, 1, F].
void hwc(const Shape& s, int64_t& H, int64_t& W, int64_t& C) {
  if (s.size() == 3) {
    H = s[0], W = s[1], C = s[2];
  } else if (s.size() == 1) {
    H = 1, W = 1, C = s[0];
  } else {
    fail("internal: unexpected value rank {}", s.size());
  }
}

class Lowerer {
 public:
  explicit Lowerer(const Model& m) : m_(m), shapes_(infer_shapes(m)), fusion_(fuse(m)) {
    const size_t n = m.nodes.size();
    consumers_.resize(n);
    for (size_t i = 0; i < n; ++i)
      for (const auto& src : m.nodes[i].inputs) consumers_[m.index_of(src)].push_back(i);
    value_.resize(n);
    has_value_.assign(n, false);
    slot_.resize(n);
  }

  Lowered run() {
    place_concats();
    for (const FusedGroup& g : fusion_.groups) visit(g);
    const size_t last = m_.nodes.size() - 1;
    if (!has_value_[last]) fail("internal: the output node has no value");
    const View& o = value_[last];
    if (o.c0 != 0 || o.C * o.H * o.W != L_.storages[o.storage].elements())
      fail("node '{}': the network output is part of a concat, which the AIE2 back end cannot return",
           m_.nodes[last].name);
    L_.output_storage = o.storage;
    L_.storages[o.storage].is_output = true;
    // Lifetimes.
    for (size_t s = 0; s < L_.stages.size(); ++s) {
      Stage& st = L_.stages[s];
      auto use = [&](const View& v) {
        Storage& sto = L_.storages[v.storage];
        sto.last_stage = std::max(sto.last_stage, static_cast<int>(s));
      };
      for (const View& v : st.in) use(v);
      if (st.add) use(*st.add);
      Storage& out = L_.storages[st.out.storage];
      if (out.first_stage < 0 || out.first_stage > static_cast<int>(s)) out.first_stage = static_cast<int>(s);
      out.last_stage = std::max(out.last_stage, static_cast<int>(s));
    }
    L_.storages[L_.output_storage].last_stage = static_cast<int>(L_.stages.size());
    return std::move(L_);
  }

 private:
  struct Slot {  // where a node's value must be written: a channel slice of a concat storage
    bool placed = false;
    int storage = -1;
    int64_t c0 = 0;
    int parent = -1, input = 0;  // the concat node it is input `input` of (-1: a root concat)
  };

  // The concats a value written at slot_[i] passes through, innermost first.
  std::vector<std::pair<int, int>> concat_path(size_t i) const {
    std::vector<std::pair<int, int>> path;
    for (int j = static_cast<int>(i); j >= 0 && slot_[static_cast<size_t>(j)].parent >= 0;) {
      const Slot& s = slot_[static_cast<size_t>(j)];
      path.push_back({s.parent, s.input});
      j = s.parent;
    }
    return path;
  }

  int new_storage(const std::string& name, const Shape& s) {
    Storage st;
    st.name = name;
    hwc(s, st.H, st.W, st.C);
    L_.storages.push_back(st);
    return static_cast<int>(L_.storages.size()) - 1;
  }

  View full_view(int storage) const {
    const Storage& s = L_.storages[storage];
    return View{storage, s.H, s.W, s.C, 0, false};
  }

  // The view a stage producing node i's value writes to.
  View output_view(size_t i) {
    const Slot& p = slot_[i];
    int64_t H, W, C;
    hwc(shapes_[i], H, W, C);
    if (p.placed) return View{p.storage, H, W, C, p.c0, false};
    return full_view(new_storage(m_.nodes[i].name, shapes_[i]));
  }

  const View& input_value(size_t consumer, size_t k) {
    size_t j = m_.index_of(m_.nodes[consumer].inputs.at(k));
    if (!has_value_[j]) fail("internal: node '{}' has no value for '{}'", m_.nodes[j].name, m_.nodes[consumer].name);
    return value_[j];
  }

  void set_value(size_t i, const View& v) {
    value_[i] = v;
    has_value_[i] = true;
  }

  // Every concat input that can be, is written in place into its slice of the
  // outermost concat's storage. Inputs that cannot (the network input, a value
  // with other consumers) are copied in by an eltwise stage.
  void place_concats() {
    for (size_t i = m_.nodes.size(); i-- > 0;) {
      const Node& n = m_.nodes[i];
      if (n.op != Op::Concat) continue;
      Slot base = slot_[i];
      if (!base.placed) {
        base.placed = true;
        base.storage = new_storage(n.name, shapes_[i]);
        base.c0 = 0;
        slot_[i] = base;
      }
      int64_t off = 0;
      int input = 0;
      for (const auto& src : n.inputs) {
        size_t j = m_.index_of(src);
        int64_t H, W, C;
        hwc(shapes_[j], H, W, C);
        bool only_here = consumers_[j].size() == 1;
        Op op = m_.nodes[j].op;
        if (only_here && op != Op::Input && op != Op::Flatten && !slot_[j].placed) {
          slot_[j] = Slot{true, base.storage, base.c0 + off, static_cast<int>(i), input};
        } else {
          copies_[i].push_back({j, off, input});
        }
        off += C;
        ++input;
      }
    }
  }

  // One group of the fusion pass (core/fusion.hpp): a stage, or a place
  // in memory (input, concat, flatten).
  void visit(const FusedGroup& g) {
    const size_t i = g.head;
    const Node& n = m_.nodes[i];
    require_backend(n, Backend::Aie2, i + 1 == m_.nodes.size());
    switch (n.op) {
      case Op::Input: {
        int s = new_storage(n.name, shapes_[i]);
        L_.storages[s].is_input = true;
        L_.input_storage = s;
        set_value(i, full_view(s));
        return;
      }
      case Op::Conv2d:
      case Op::Dense:
        return conv_stage(g);
      case Op::MaxPool:
      case Op::AvgPool:
      case Op::GlobalAvgPool:
        return pool_stage(i);
      case Op::Add:
      case Op::Relu:
      case Op::Clip:
      case Op::Sigmoid:
      case Op::HardSigmoid:
      case Op::HardSwish:
      case Op::Mul:
        return eltwise_stage(g);
      case Op::BatchNorm:  // a batchnorm the fusion pass did not fold
        return affine_stage(g);
      case Op::Concat:
        return concat(i);
      case Op::Flatten:
        return flatten(i);
      case Op::Softmax:
        return softmax_stage(i);
      default:  // an op the table says this back end does not run (require_backend refused it)
        fail_unsupported(n, Backend::Aie2);
    }
  }

  void geometry(Stage& st, const View& in, size_t i) {
    st.H = in.H, st.W = in.W, st.Cin = in.C;
    int64_t H, W, C;
    hwc(shapes_[i], H, W, C);
    st.Ho = H, st.Wo = W, st.Cout = C;
  }

  // A conv2d or dense layer with the batchnorm, residual add and relu its
  // group folds into the epilogue.
  void conv_stage(const FusedGroup& g) {
    const size_t i = g.head;
    const Node& n = m_.nodes[i];
    Stage st;
    st.kind = StageKind::Conv;
    st.name = n.name;
    st.nodes.push_back(n.name);
    st.conv_node = static_cast<int>(i);
    st.act = act_rule(n);
    View in = input_value(i, 0);
    if (n.op == Op::Dense) {
      if (in.H != 1 || in.W != 1) fail("internal: dense input is not a vector");
      st.in.push_back(in);
      geometry(st, in, i);
    } else {
      if (in.flat) fail("node '{}': a convolution of a flattened value is not supported", n.name);
      ConvGeom geo = conv_geom(n, {in.H, in.W, in.C});
      st.groups = geo.groups;
      st.in.push_back(in);
      geometry(st, in, i);
      st.kh = geo.kh, st.kw = geo.kw, st.sh = geo.sh, st.sw = geo.sw, st.dh = geo.dh, st.dw = geo.dw;
      st.pt = geo.pt, st.pl = geo.pl, st.pb = geo.pb, st.pr = geo.pr;
    }
    size_t cur = i;
    if (g.norm >= 0) {
      st.bn_node = static_cast<int>(g.norm);
      st.nodes.push_back(m_.nodes[static_cast<size_t>(g.norm)].name);
      cur = static_cast<size_t>(g.norm);
    }
    if (g.add >= 0 && value_[g.addend].flat) {
      // A flattened operand cannot be read as the epilogue's residual: the
      // add (and its relu) become an eltwise stage after this one.
      finish(st, cur);
      return eltwise_stage(m_.nodes[static_cast<size_t>(g.add)], g);
    }
    if (g.add >= 0) {
      st.add = value_[g.addend];
      st.add_node = static_cast<int>(g.add);
      st.add_self = g.add_self;
      st.nodes.push_back(m_.nodes[static_cast<size_t>(g.add)].name);
    }
    if (g.act >= 0) activation(st, m_.nodes[static_cast<size_t>(g.act)]);
    finish(st, g.out);
  }

  // The relu or clip that ends a stage's epilogue.
  static void activation(Stage& st, const Node& act) {
    if (act.op == Op::Clip) {
      st.clip = true;
      st.clip_lo = act.attrs.get_double("min");
      st.clip_hi = act.attrs.get_double("max");
    } else {
      st.relu = true;
    }
    if (st.nodes.empty() || st.nodes.front() != act.name) st.nodes.push_back(act.name);
  }

  // A batchnorm heading its own group (after a concat, say) with the relu or
  // clip that ends it: a 1x1 depthwise conv stage (Stage::affine).
  void affine_stage(const FusedGroup& g) {
    const size_t i = g.head;
    const Node& n = m_.nodes[i];
    Stage st;
    st.kind = StageKind::Conv;
    st.name = n.name;
    st.nodes.push_back(n.name);
    st.conv_node = st.bn_node = static_cast<int>(i);
    st.affine = true;
    View in = input_value(i, 0);
    if (in.flat) fail("node '{}': a batchnorm of a flattened value is not supported", n.name);
    st.in.push_back(in);
    geometry(st, in, i);
    st.groups = st.Cin;
    if (g.act >= 0) activation(st, m_.nodes[static_cast<size_t>(g.act)]);
    finish(st, g.out);
  }

  // The stage's output: where node `cur`'s value goes.
  void finish(Stage& st, size_t cur) {
    st.out = output_view(cur);
    st.out_node = static_cast<int>(cur);
    st.concat_path = concat_path(cur);
    set_value(cur, st.out);
    L_.stages.push_back(std::move(st));
  }

  void pool_stage(size_t i) {
    const Node& n = m_.nodes[i];
    Stage st;
    st.kind = StageKind::Pool;
    st.name = n.name;
    st.nodes.push_back(n.name);
    View in = input_value(i, 0);
    if (in.flat) fail("node '{}': pooling a flattened value is not supported", n.name);
    st.in.push_back(in);
    geometry(st, in, i);
    if (n.op == Op::GlobalAvgPool) {
      st.kh = in.H, st.kw = in.W;
      st.pool_max = false;
      st.count_include_pad = true;
    } else {
      WindowGeom g = pool_geom(n, {in.H, in.W, in.C});
      st.kh = g.kh, st.kw = g.kw, st.sh = g.sh, st.sw = g.sw, st.dh = g.dh, st.dw = g.dw;
      st.pt = g.pt, st.pl = g.pl, st.pb = g.pb, st.pr = g.pr;
      st.pool_max = n.op == Op::MaxPool;
      st.count_include_pad = n.op == Op::AvgPool && n.attrs.get_int("count_include_pad", 1) != 0;
    }
    finish(st, i);
  }

  // An add (with the relu its group ends with), a relu or clip alone, a
  // sigmoid, hardsigmoid, hardswish or mul. `n` is the group's head, or the
  // add of a layer's group that could not take it.
  void eltwise_stage(const Node& n, const FusedGroup& g) {
    const size_t i = m_.index_of(n.name);
    Stage st;
    st.kind = StageKind::Eltwise;
    st.name = n.name;
    st.nodes.push_back(n.name);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      View v = input_value(i, k);
      st.in.push_back(v);
    }
    geometry(st, st.in[0], i);
    if (n.op == Op::Mul) {
      st.fn = EltFn::Mul;
      const View& s = st.in.at(1);
      // The squeeze-excitation scale: [1, 1, C] against a map (the op
      // table's shape rule allows it second only).
      st.bcast = s.H == 1 && s.W == 1 && s.C == st.Cout && (st.Ho != 1 || st.Wo != 1);
      if (st.bcast && s.flat) fail("node '{}': a flattened value as a broadcast scale is not supported", n.name);
    }
    for (size_t k = 0; k < st.in.size(); ++k) {
      const View& v = st.in[k];
      if (k == 1 && st.bcast) continue;
      if (v.H != st.Ho || v.W != st.Wo || v.C != st.Cout)
        fail("node '{}': elementwise inputs of different shapes are not supported", n.name);
    }
    if (n.op == Op::Sigmoid) st.fn = EltFn::Sigmoid;
    if (n.op == Op::HardSwish) st.fn = EltFn::HardSwish;
    if (n.op == Op::HardSigmoid) {
      st.fn = EltFn::HardSigmoid;
      st.alpha = n.attrs.get_double("alpha");
      st.beta = n.attrs.get_double("beta");
    }
    if (n.op == Op::Add) st.add_node = static_cast<int>(i);
    if (n.op == Op::Relu || n.op == Op::Clip) activation(st, n);
    if (n.op == Op::Add && g.act >= 0) activation(st, m_.nodes[static_cast<size_t>(g.act)]);
    finish(st, g.out);
  }
  void eltwise_stage(const FusedGroup& g) { eltwise_stage(m_.nodes[g.head], g); }

  // A copy stage: an eltwise stage with one input and no relu.
  void copy_stage(const std::string& name, const View& from, const View& to) {
    Stage st;
    st.kind = StageKind::Eltwise;
    st.name = name;
    st.in.push_back(from);
    st.H = from.H, st.W = from.W, st.Cin = from.C;
    st.Ho = to.H, st.Wo = to.W, st.Cout = to.C;
    st.out = to;
    L_.stages.push_back(std::move(st));
  }

  void concat(size_t i) {
    const Node& n = m_.nodes[i];
    const Slot& p = slot_[i];
    int64_t H, W, C;
    hwc(shapes_[i], H, W, C);
    View v{p.storage, H, W, C, p.c0, false};
    for (const Copy& cp : copies_[i]) {
      const View& from = value_[cp.node];
      if (from.flat) fail("node '{}': concatenating a flattened value is not supported", n.name);
      copy_stage(n.name + ".copy." + m_.nodes[cp.node].name, from, View{p.storage, from.H, from.W, from.C, p.c0 + cp.off});
      auto path = concat_path(i);
      path.insert(path.begin(), {static_cast<int>(i), cp.input});
      L_.stages.back().concat_path = path;
    }
    set_value(i, v);
  }

  void flatten(size_t i) {
    const Node& n = m_.nodes[i];
    View in = input_value(i, 0);
    const Storage& s = L_.storages[in.storage];
    if (in.c0 != 0 || in.C != s.C) {
      // A slice of a concat is not contiguous: copy it out first.
      View to = full_view(new_storage(n.name, {in.H, in.W, in.C}));
      copy_stage(n.name + ".copy", in, to);
      in = to;
    }
    const Storage& t = L_.storages[in.storage];
    set_value(i, View{in.storage, 1, 1, t.elements(), 0, true});
  }

  void softmax_stage(size_t i) {
    const Node& n = m_.nodes[i];
    Stage st;
    st.kind = StageKind::Softmax;
    st.name = n.name;
    st.nodes.push_back(n.name);
    View in = input_value(i, 0);
    st.in.push_back(in);
    geometry(st, in, i);
    finish(st, i);
  }

  const Model& m_;
  std::vector<Shape> shapes_;
  Fusion fusion_;
  std::vector<std::vector<size_t>> consumers_;
  std::vector<View> value_;
  std::vector<bool> has_value_;
  std::vector<Slot> slot_;
  struct Copy {
    size_t node;
    int64_t off;
    int input;
  };
  std::map<size_t, std::vector<Copy>> copies_;
  Lowered L_;
};

}  // namespace

Lowered lower(const Model& m) {
  m.input();
  return Lowerer(m).run();
}

}  // namespace bsp::aie2
