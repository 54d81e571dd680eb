#include "train/net.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/finite.hpp"
#include "core/fusion.hpp"
#include "core/op_table.hpp"
#include "core/shapes.hpp"
#include "train/layers.hpp"

namespace bsp::train {

void set_conv_dual_mask(Layer* l, const DualMask* d);   // conv_layer.cpp
void set_dense_dual_mask(Layer* l, const DualMask* d);  // dense_layer.cpp

double Net::value_bytes() const {
  double b = 0;
  for (const auto* vs : {&values_, &act_values_})
    for (const auto& v : *vs) b += static_cast<double>(v->act.size() + v->grad.size()) * sizeof(float);
  return b;
}

float* Scratch::get(int slot, size_t floats) {
  if (bufs_.size() <= static_cast<size_t>(slot)) bufs_.resize(static_cast<size_t>(slot) + 1);
  Tensor& b = bufs_[static_cast<size_t>(slot)];
  if (b.size() < floats) b = Tensor({static_cast<int64_t>(floats)});
  return b.data();
}

Net::Net(Model& m, const NetOptions& opt) : model_(m), opt_(opt), k_(&train::kernels()) {
  const std::vector<Shape> shapes = infer_shapes(m);
  size_t count = m.nodes.size();
  for (size_t i = 0; i < count; ++i) require_backend(m.nodes[i], Backend::Trainer, i + 1 == count);
  if (count >= 2 && m.nodes.back().op == Op::Softmax) --count;  // the loss takes the logits

  int64_t nparams = 0;
  for (size_t i = 0; i < count; ++i)
    for (const char* k : {"weight", "bias", "gamma", "beta"}) nparams += m.nodes[i].has_param(k);
  params_.reserve(static_cast<size_t>(nparams));

  // Which values receive a gradient: everything after the input (and the
  // input itself when asked).
  std::map<std::string, Value*> by_name;
  for (size_t i = 0; i < count; ++i) {
    const Node& nd = m.nodes[i];
    auto v = std::make_unique<Value>();
    const Shape& s = shapes[i];
    if (s.size() == 3) {
      v->H = s[0];
      v->W = s[1];
      v->C = s[2];
      v->is_map = true;
    } else {
      v->C = s.at(0);
    }
    const int64_t rows = round8(v->C), cols = v->plane(opt.max_batch);
    v->act = Tensor({rows, cols});
    if (opt.training && (i > 0 || opt.input_grad)) v->grad = Tensor({rows, cols});
    by_name[nd.name] = v.get();
    values_.push_back(std::move(v));
  }

  // Batchnorm trains unfolded: the fusion pass only joins a batchnorm or an
  // add with the relu that alone reads it (core/fusion.hpp).
  const Fusion fu = fuse(m, {.fold_layers = false, .fuse_add = false, .join_clip = false});
  for (const FusedGroup& g : fu.groups) {
    if (g.head == 0 || g.head >= count) continue;  // the input; the final softmax
    Node& nd = m.nodes[g.head];
    LayerArgs a{&nd, {}, values_[g.head].get(), &params_, opt.training, opt.conv_path};
    for (const auto& name : nd.inputs) a.in.push_back(by_name.at(name));
    if (const std::optional<ActRule> r = act_rule(nd)) {
      // The node's input with its small blocks zeroed, in a value of its own
      // (the input may have other readers): one more layer before the node's.
      const Value& src = *a.in.at(0);
      auto v = std::make_unique<Value>();
      v->C = src.C, v->H = src.H, v->W = src.W, v->is_map = src.is_map;
      const int64_t rows = round8(v->C), cols = v->plane(opt.max_batch);
      v->act = Tensor({rows, cols});
      if (opt.training) v->grad = Tensor({rows, cols});
      LayerArgs z{&nd, {a.in[0]}, v.get(), &params_, opt.training, opt.conv_path};
      layers_.push_back(make_act_zero(z, *r));
      layers_.back()->in_add.assign(1, false);
      a.in[0] = v.get();
      act_values_.push_back(std::move(v));
    }
    const bool with_relu = g.act >= 0;
    if (with_relu) {
      // The relu's value is the output; the head's own is never used.
      a.out = values_[g.out].get();
      values_[g.head]->act = Tensor();
      values_[g.head]->grad = Tensor();
    }
    std::unique_ptr<Layer> l = make_layer(nd.op, a, with_relu);
    l->in_add.assign(l->in.size(), false);
    layers_.push_back(std::move(l));
  }
  profile_ = std::getenv("BSP_PROFILE") != nullptr;
  fwd_s_.assign(layers_.size(), 0.0);
  bwd_s_.assign(layers_.size(), 0.0);
  // Backward runs in reverse order: the first layer there to reach a value
  // writes its gradient, later ones add to it.
  std::set<const Value*> seen;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    Layer& l = **it;
    for (size_t s = 0; s < l.in.size(); ++s) {
      l.in_add[s] = seen.count(l.in[s]) != 0;
      seen.insert(l.in[s]);
    }
  }
}

Net::~Net() = default;

// The trainer's column of the op table: a layer per op (with_relu: the
// group's relu runs in it, for the heads the fusion pass gives one).
std::unique_ptr<Layer> make_layer(Op op, const LayerArgs& a, bool with_relu) {
  switch (op) {
    case Op::Conv2d: return make_conv(a);
    case Op::Dense: return make_dense(a);
    case Op::BatchNorm: return with_relu ? make_batchnorm_relu(a) : make_batchnorm(a);
    case Op::Add: return with_relu ? make_add_relu(a) : make_add(a);
    case Op::Relu: return make_relu(a);
    case Op::Clip: return make_clip(a);
    case Op::Sigmoid: return make_sigmoid(a);
    case Op::HardSigmoid: return make_hardsigmoid(a);
    case Op::HardSwish: return make_hardswish(a);
    case Op::Mul: return make_mul(a);
    case Op::MaxPool:
    case Op::AvgPool: return make_pool(a);
    case Op::GlobalAvgPool: return make_global_avgpool(a);
    case Op::Concat: return make_concat(a);
    case Op::Flatten: return make_flatten(a);
    default: break;  // input and softmax have no layer; other ops the table says the trainer does not run
  }
  fail_unsupported(*a.node, Backend::Trainer);
}

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string Net::profile_report() const {
  std::vector<size_t> order(layers_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return fwd_s_[a] + bwd_s_[a] > fwd_s_[b] + bwd_s_[b]; });
  double tf = 0, tb = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    tf += fwd_s_[i];
    tb += bwd_s_[i];
  }
  std::string r = fmt::format("{:<28} {:<14} {:>10} {:>10}\n", "layer", "op", "forward s", "backward s");
  for (size_t i : order)
    r += fmt::format("{:<28} {:<14} {:>10.3f} {:>10.3f}\n", layers_[i]->node->name, op_name(layers_[i]->node->op),
                     fwd_s_[i], bwd_s_[i]);
  r += fmt::format("{:<28} {:<14} {:>10.3f} {:>10.3f}\n", "total", "", tf, tb);
  return r;
}

void Net::forward(int64_t n, Mode mode, bool check_finite) {
  if (n < 1 || n > opt_.max_batch) fail("internal: batch of {} images (at most {})", n, opt_.max_batch);
  if (n != n_) {
    for (auto& l : layers_) l->batch_changed(n);
    n_ = n;
  }
  mode_ = mode;
  Ctx c{n, mode, k_, &scratch_, opt_.comm};
  nonfinite_ = nullptr;
  if (!profile_ && !check_finite) {
    for (auto& l : layers_) l->forward(c);
    return;
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    const double t = profile_ ? now_s() : 0;
    layers_[i]->forward(c);
    if (profile_) fwd_s_[i] += now_s() - t;
    // Right after the layer, while its output is still in cache. Rows
    // beyond C are padding of the 8-row kernels: not looked at.
    const Value& v = *layers_[i]->out;
    if (check_finite && !nonfinite_ && any_nonfinite(v.act.data(), v.C * v.plane(n))) nonfinite_ = layers_[i]->node;
  }
}

void Net::backward() {
  if (!opt_.training) fail("internal: backward on an inference network");
  Ctx c{n_, mode_, k_, &scratch_, opt_.comm};
  for (size_t i = layers_.size(); i-- > 0;) {
    const double t = profile_ ? now_s() : 0;
    layers_[i]->backward(c);
    if (profile_) bwd_s_[i] += now_s() - t;
  }
}

Param* Net::find_param(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void Net::weights_changed() {
  for (auto& l : layers_) l->weights_changed();
}

void Net::masks_changed() {
  for (auto& l : layers_) l->mask_changed();
}

void Net::set_dual_mask(const Node* n, const DualMask* m) {
  for (auto& l : layers_) {
    if (l->node != n) continue;
    bool act_zero = false;  // the node's activation rule layer (its own node too): not the conv
    for (const auto& v : act_values_) act_zero |= l->out == v.get();
    if (act_zero) continue;
    if (n->op == Op::Conv2d)
      set_conv_dual_mask(l.get(), m);
    else if (n->op == Op::Dense)
      set_dense_dual_mask(l.get(), m);
    else
      fail("internal: dual mask on node '{}' ({})", n->name, op_name(n->op));
    return;
  }
  fail("internal: no layer for node '{}'", n->name);
}

}  // namespace bsp::train
