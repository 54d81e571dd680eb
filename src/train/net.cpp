#include "train/net.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/shapes.hpp"
#include "train/layers.hpp"

namespace bsp::train {

void set_conv_dual_mask(Layer* l, const DualMask* d);   // conv_layer.cpp
void set_dense_dual_mask(Layer* l, const DualMask* d);  // dense_layer.cpp

float* Scratch::get(int slot, size_t floats) {
  if (bufs_.size() <= static_cast<size_t>(slot)) bufs_.resize(static_cast<size_t>(slot) + 1);
  Tensor& b = bufs_[static_cast<size_t>(slot)];
  if (b.size() < floats) b = Tensor({static_cast<int64_t>(floats)});
  return b.data();
}

Net::Net(Model& m, const NetOptions& opt) : model_(m), opt_(opt), k_(&train::kernels()) {
  const std::vector<Shape> shapes = infer_shapes(m);
  size_t count = m.nodes.size();
  if (count >= 2 && m.nodes.back().op == Op::Softmax) --count;  // the loss takes the logits
  for (size_t i = 0; i < count; ++i)
    if (m.nodes[i].op == Op::Softmax)
      fail("node '{}': softmax is only supported as the last node", m.nodes[i].name);

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

  // Consumers of each value, to fuse a batchnorm or an add with the relu that
  // alone reads it.
  std::map<std::string, std::vector<size_t>> consumers;
  for (size_t i = 1; i < count; ++i)
    for (const auto& name : m.nodes[i].inputs) consumers[name].push_back(i);
  std::vector<bool> fused(count, false);

  for (size_t i = 1; i < count; ++i) {
    if (fused[i]) continue;
    Node& nd = m.nodes[i];
    LayerArgs a{&nd, {}, values_[i].get(), &params_, opt.training, opt.conv_path};
    for (const auto& name : nd.inputs) a.in.push_back(by_name.at(name));
    std::unique_ptr<Layer> l;
    switch (nd.op) {
      case Op::Conv2d: l = make_conv(a); break;
      case Op::Dense: l = make_dense(a); break;
      case Op::BatchNorm:
      case Op::Add: {
        // A batchnorm or add whose only consumer is a relu runs with it.
        const std::vector<size_t>& cs = consumers[nd.name];
        const bool fuse = cs.size() == 1 && m.nodes[cs[0]].op == Op::Relu;
        if (fuse) {
          // The relu's value is the output; this node's own is never used.
          fused[cs[0]] = true;
          a.out = values_[cs[0]].get();
          values_[i]->act = Tensor();
          values_[i]->grad = Tensor();
        }
        if (nd.op == Op::BatchNorm)
          l = fuse ? make_batchnorm_relu(a) : make_batchnorm(a);
        else
          l = fuse ? make_add_relu(a) : make_add(a);
        break;
      }
      case Op::Relu: l = make_relu(a); break;
      case Op::MaxPool:
      case Op::AvgPool: l = make_pool(a); break;
      case Op::GlobalAvgPool: l = make_global_avgpool(a); break;
      case Op::Concat: l = make_concat(a); break;
      case Op::Flatten: l = make_flatten(a); break;
      default: fail("node '{}': op '{}' cannot be trained", nd.name, op_name(nd.op));
    }
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

void Net::forward(int64_t n, Mode mode) {
  if (n < 1 || n > opt_.max_batch) fail("internal: batch of {} images (at most {})", n, opt_.max_batch);
  if (n != n_) {
    for (auto& l : layers_) l->batch_changed(n);
    n_ = n;
  }
  mode_ = mode;
  Ctx c{n, mode, k_, &scratch_};
  if (!profile_) {
    for (auto& l : layers_) l->forward(c);
    return;
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    const double t = now_s();
    layers_[i]->forward(c);
    fwd_s_[i] += now_s() - t;
  }
}

void Net::backward() {
  if (!opt_.training) fail("internal: backward on an inference network");
  Ctx c{n_, mode_, k_, &scratch_};
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
