#include "compact/compact.hpp"

#include "core/fold.hpp"
#include "sparsity/mask.hpp"

namespace bsp::compact {

Format layer_format(const Node& n, const std::optional<Format>& forced) {
  if (!forced || !n.mask) return auto_format(n);
  spec_for(n, *forced);  // throws when the layer cannot take it
  return *forced;
}

CompactModel compact_model(const Model& m, const CompactOptions& opt, const Tensor* calib) {
  CompactModel c;
  c.dtype = opt.dtype;
  c.source_hash = content_hash(m);
  if (opt.dtype == DType::Int8) {
    if (!calib) fail("int8 needs calibration images");
    q8::QuantOptions qo;
    qo.pow2 = opt.pow2;
    qo.forward = opt.calib_forward;
    c.int8 = q8::quantize(m, *calib, qo);
  }
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    if (!op_has_weight(n.op)) continue;
    const Format f = layer_format(n, opt.format);
    const CompressSpec spec = spec_for(n, f);
    Array<uint8_t> keep;
    if (n.mask) keep = element_mask(n);
    const uint8_t* k = n.mask ? keep.data() : nullptr;
    const Tensor& w = n.param("weight");
    try {
      switch (opt.dtype) {
        case DType::FP32:
          c.layers.emplace(n.name, compress(w.data(), w.shape(), k, spec));
          break;
        case DType::BF16: {
          std::vector<uint16_t> b(w.size());
          int64_t inf = 0;
          for (size_t j = 0; j < w.size(); ++j) {
            b[j] = to_bf16(w[j]);
            inf += (b[j] & 0x7f80u) == 0x7f80u;
          }
          // Finite weights above bf16's largest value (about 3.39e38) round to infinity.
          if (inf)
            for (size_t j = 0; j < w.size(); ++j)
              if ((b[j] & 0x7f80u) == 0x7f80u) fail("weight {} at index {} overflows bf16", w[j], j);
          c.layers.emplace(n.name, compress(b.data(), w.shape(), k, spec));
          break;
        }
        case DType::Int8:
          c.layers.emplace(n.name, compress(c.int8->nodes[i].weight.data(), w.shape(), k, spec));
          break;
      }
    } catch (const Error& e) {
      fail("layer '{}': {}", n.name, e.what());
    }
  }
  return c;
}

Tensor expand_weight(const CompactModel& c, const std::string& name) {
  const CompactLayer* l = c.layer(name);
  if (!l) fail("layer '{}' has no compact weights", name);
  Tensor t(l->weight_shape);
  if (l->dtype == DType::FP32) {
    auto w = expand<float>(*l);
    std::copy(w.begin(), w.end(), t.data());
  } else if (l->dtype == DType::BF16) {
    auto w = expand<uint16_t>(*l);
    for (size_t i = 0; i < w.size(); ++i) t[i] = from_bf16(w[i]);
  } else {
    fail("layer '{}' is int8: its weights are quantised and folded, not the graph's", name);
  }
  return t;
}

bool holds_values(const CompactLayer& l) { return !(l.format == Format::Dense && l.dtype == DType::FP32); }

Tensor rebuild_weight(const Model& m, const CompactModel& c, const std::string& name) {
  const CompactLayer* l = c.layer(name);
  if (!l) fail("layer '{}' has no compact weights", name);
  if (l->dtype != DType::Int8) return expand_weight(c, name);
  const size_t i = m.index_of(name);
  if (!c.int8 || c.int8->nodes.size() != m.nodes.size()) fail("internal: no int8 program for layer '{}'", name);
  const q8::QNode& q = c.int8->nodes[i];
  const std::vector<int8_t> w = expand<int8_t>(*l);
  const int64_t O = l->weight_shape.at(0), K = static_cast<int64_t>(w.size()) / O;
  if (static_cast<int64_t>(q.w_scale.size()) != O) fail("internal: layer '{}' has no weight scales", name);
  // The batchnorm folded into this layer, if any (int8.hpp: an identity fused into it).
  std::vector<double> g;
  for (size_t j = 0; j < m.nodes.size(); ++j)
    if (m.nodes[j].op == Op::BatchNorm && c.int8->nodes[j].kind == q8::Kind::Identity &&
        c.int8->nodes[j].fused_into == name)
      g = batchnorm_gain(m.nodes[j]);
  Tensor t(l->weight_shape);
  for (int64_t o = 0; o < O; ++o) {
    const float gf = g.empty() ? 1.0f : static_cast<float>(g[static_cast<size_t>(o)]);
    for (int64_t k = 0; k < K; ++k) {
      const size_t e = static_cast<size_t>(o * K + k);
      const float v = static_cast<float>(w[e] * q.w_scale[static_cast<size_t>(o)]);
      t[e] = gf == 0.0f ? 0.0f : v / gf;
    }
  }
  return t;
}

LayerBytes layer_bytes(const Model& m, const std::string& name) {
  LayerBytes b;
  const Node* n = m.find(name);
  if (!n || !op_has_weight(n->op)) return b;
  b.dense = static_cast<int64_t>(n->param("weight").size() * sizeof(float));
  const CompactLayer* l = m.compact ? m.compact->layer(name) : nullptr;
  b.compact = l ? l->bytes() : b.dense;
  return b;
}

}  // namespace bsp::compact
