#include "train/sparsity_schedule.hpp"

#include <cmath>
#include <cstring>

#include "sparsity/mask.hpp"
#include "sparsity/nm.hpp"
#include "sparsity/prune.hpp"

namespace bsp::train {

// ---- gradual pruning ----

GradualPruner::GradualPruner(Model& m, const GradualConfig& c, int64_t total_steps) : c_(c) {
  if (c.pattern.implied_density())
    fail_usage("--gradual needs a pattern whose density can change step by step; {} fixes it at {}",
               c.pattern.str(), *c.pattern.implied_density());
  if (!(c.to > 0.0 && c.to <= 1.0)) fail_usage("--to {} is not in (0, 1]", c.to);
  if (c.to > c.pattern.max_density())
    fail_usage("--to {} is above {}, the most {} keeps", c.to, c.pattern.max_density(), c.pattern.str());
  if (c.every < 1) fail_usage("--prune-every must be at least 1");
  if (!(c.end > 0.0 && c.end <= 1.0)) fail_usage("--prune-end {} is not in (0, 1]", c.end);
  for (size_t i : select_layers(m, LayerSelection{})) {
    Node& n = m.nodes[i];
    layers_.push_back(&n);
    start_.push_back(n.mask ? n.mask->density : 1.0);
  }
  t1_ = std::max<int64_t>(1, static_cast<int64_t>(std::llround(c.end * static_cast<double>(total_steps))));
}

bool GradualPruner::after_step(int64_t done) {
  if (done > t1_ || (done % c_.every != 0 && done != t1_)) return false;
  const double p = std::min(1.0, static_cast<double>(done) / static_cast<double>(t1_));
  const double f = std::pow(1.0 - p, 3.0);
  std::vector<std::pair<Node*, double>> want;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const double d0 = start_[i];
    const double d = std::min(d0, c_.to + (d0 - c_.to) * f);
    const double now = layers_[i]->mask ? layers_[i]->mask->density : 1.0;
    if (d < now - 1e-12) want.emplace_back(layers_[i], d);
  }
  if (want.empty()) return false;
  PruneSettings s;
  s.pattern = c_.pattern;
  prune_nodes(want, s);
  return true;
}

double GradualPruner::density() const {
  double kept = 0, total = 0;
  for (const Node* n : layers_) {
    const double w = static_cast<double>(n->param("weight").size());
    kept += (n->mask ? n->mask->density : 1.0) * w;
    total += w;
  }
  return total > 0 ? kept / total : 1.0;
}

// ---- BDWP ----

namespace {
// The weight as [outer, len, inner] for N:M groups along Cin (forward) or
// Cout (data gradient). Conv OHWI [Cout, kh, kw, Cin]; dense [out, in].
void views(const Tensor& w, int64_t& cout, int64_t& cin, int64_t& taps) {
  cout = w.dim(0);
  cin = w.shape().back();
  taps = static_cast<int64_t>(w.size()) / (cout * cin);
}
}  // namespace

Bdwp::Bdwp(Model& m, const BdwpConfig& c) : c_(c) {
  if (c.shared < 1) fail_usage("--bdwp-shared must be at least 1");
  if (c.every < 1) fail_usage("--bdwp-every must be at least 1");
  if (c.grad_every < 1) fail_usage("--bdwp-grad-every must be at least 1");
  for (Node& n : m.nodes) {
    if (!op_has_weight(n.op) || !n.mask) continue;
    auto fam = family_of(n.mask->pattern);
    if (!fam || *fam != PatternFamily::NM) continue;
    const Pattern p = parse_pattern(n.mask->pattern);
    Layer l{&n, p.n, p.m, p.str(), {}, n.op == Op::Conv2d};
    const Shape& s = n.param("weight").shape();
    l.masks.fwd = Array<uint8_t>(s);
    l.masks.bwd = Array<uint8_t>(s);
    // Per-channel choices leave almost no entry unkept by all 8 rows of a
    // block: rebuilding the K lists every step would cost more than it saves.
    l.masks.compact = c.shared > 1 || c.grad_every > 1;
    layers_.push_back(std::move(l));
  }
  if (layers_.empty())
    fail_usage("--bdwp needs a model with nm:N:M masks (e.g. bsp prune --pattern nm:2:8)");
  update_masks();
}

bool Bdwp::contains(const Node* n) const {
  for (const Layer& l : layers_)
    if (l.node == n) return true;
  return false;
}

const DualMask* Bdwp::masks(const Node* n) const {
  for (const Layer& l : layers_)
    if (l.node == n) return &l.masks;
  return nullptr;
}

void Bdwp::before_step(int64_t step) {
  const bool dense = step % c_.grad_every == 0;
  for (Layer& l : layers_) l.masks.dense_wgrad = dense || !l.conv;
}

void Bdwp::after_backward(std::vector<Param>& params) const {
  if (c_.grad_every == 1) return;
  for (const Layer& l : layers_) {
    if (!l.conv) continue;
    for (Param& p : params) {
      if (p.node != l.node || p.key != "weight") continue;
      const float scale = l.masks.dense_wgrad ? static_cast<float>(c_.grad_every) : 0.0f;
      const uint8_t* m = l.masks.fwd.data();
      float* g = p.grad.data();
      const int64_t n = static_cast<int64_t>(p.grad.size());
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t e = 0; e < n; ++e) g[e] = m[e] ? g[e] : g[e] * scale;
    }
  }
}

bool Bdwp::after_step(int64_t done) {
  if (done % c_.every != 0) return false;
  update_masks();
  return true;
}

void Bdwp::update_masks() {
  const int64_t S = c_.shared;
  for (Layer& l : layers_) {
    const Tensor& w = l.node->param("weight");
    int64_t cout, cin, taps;
    views(w, cout, cin, taps);
    ++l.masks.version;
    if (S == 1) {
      nm_mask(w.data(), cout * taps, cin, 1, l.n, l.m, nullptr, l.masks.fwd.data());  // along Cin
      nm_mask(w.data(), 1, cout, taps * cin, l.n, l.m, nullptr, l.masks.bwd.data());  // along Cout
      continue;
    }
    const float* W = w.data();
    const int64_t ob = (cout + S - 1) / S, ib = (cin + S - 1) / S;
    // Forward: score [ob, taps, cin] = sum over the S output channels of a
    // block of |W|; its N:M mask along cin, given to every row of the block.
    score_.assign(static_cast<size_t>(ob * taps * cin), 0.0f);
    smask_.resize(score_.size());
    float* sc = score_.data();
#pragma omp parallel for schedule(static) if (cout * taps * cin > (1 << 16))
    for (int64_t b = 0; b < ob; ++b)
      for (int64_t co = b * S; co < std::min(cout, b * S + S); ++co) {
        const float* wr = W + co * taps * cin;
        float* sr = sc + b * taps * cin;
        for (int64_t e = 0; e < taps * cin; ++e) sr[e] += std::fabs(wr[e]);
      }
    nm_mask(sc, ob * taps, cin, 1, l.n, l.m, nullptr, smask_.data());
    uint8_t* mf = l.masks.fwd.data();
#pragma omp parallel for schedule(static) if (cout * taps * cin > (1 << 16))
    for (int64_t co = 0; co < cout; ++co)
      std::memcpy(mf + co * taps * cin, smask_.data() + (co / S) * taps * cin, static_cast<size_t>(taps * cin));
    // Data gradient: score [cout, taps, ib] = sum over the S input channels
    // of a block of |W|; its N:M mask along cout, given to every input
    // channel of the block.
    score_.assign(static_cast<size_t>(cout * taps * ib), 0.0f);
    smask_.resize(score_.size());
    sc = score_.data();
#pragma omp parallel for schedule(static) if (cout * taps * cin > (1 << 16))
    for (int64_t r = 0; r < cout * taps; ++r)
      for (int64_t ci = 0; ci < cin; ++ci) sc[r * ib + ci / S] += std::fabs(W[r * cin + ci]);
    nm_mask(sc, 1, cout, taps * ib, l.n, l.m, nullptr, smask_.data());
    uint8_t* mb = l.masks.bwd.data();
#pragma omp parallel for schedule(static) if (cout * taps * cin > (1 << 16))
    for (int64_t r = 0; r < cout * taps; ++r)
      for (int64_t ci = 0; ci < cin; ++ci) mb[r * cin + ci] = smask_[static_cast<size_t>(r * ib + ci / S)];
  }
}

void Bdwp::attach(Net& net, std::vector<ParamRule>& rules, const std::vector<Param>& params) const {
  for (const Layer& l : layers_) {
    net.set_dual_mask(l.node, &l.masks);
    for (size_t i = 0; i < params.size(); ++i)
      if (params[i].node == l.node && params[i].key == "weight") {
        rules[i].hold = nullptr;
        rules[i].srste = l.masks.fwd.data();
      }
  }
}

std::map<std::string, Tensor> Bdwp::export_masked() {
  std::map<std::string, Tensor> dense;
  for (Layer& l : layers_) {
    Tensor& w = l.node->param("weight");
    dense.emplace(l.node->name, w.clone());
    int64_t kept = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      if (!l.masks.fwd[i]) w[i] = 0.0f;
      kept += l.masks.fwd[i];
    }
    Mask mk;
    mk.pattern = l.pattern;
    mk.bits = l.masks.fwd.clone();
    mk.density = static_cast<double>(kept) / static_cast<double>(w.size());
    l.node->mask = std::move(mk);
  }
  return dense;
}

void Bdwp::restore_dense(std::map<std::string, Tensor>& dense) {
  for (Layer& l : layers_) {
    auto it = dense.find(l.node->name);
    if (it == dense.end()) fail("internal: no dense weights for '{}'", l.node->name);
    l.node->param("weight") = std::move(it->second);
  }
}

}  // namespace bsp::train
