#include "core/stats.hpp"

#include "core/checked.hpp"
#include "core/shapes.hpp"

namespace bsp {

namespace {
int64_t count_nonzero(const Tensor& t) {
  int64_t nz = 0;
  const int64_t n = static_cast<int64_t>(t.size());
  const float* p = t.data();
#pragma omp parallel for reduction(+ : nz) schedule(static)
  for (int64_t i = 0; i < n; ++i) nz += p[i] != 0.0f;
  return nz;
}
}  // namespace

ModelStats model_stats(const Model& m) {
  ModelStats s;
  auto shapes = infer_shapes(m);
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    LayerStats l;
    l.name = n.name;
    l.op = n.op;
    l.output_shape = shapes[i];
    for (const auto& [k, t] : n.params) {
      l.bytes += static_cast<int64_t>(t.size() * sizeof(float));
      if (k == "mean" || k == "var") continue;
      l.params += static_cast<int64_t>(t.size());
      // Only weights are pruned; biases and BN parameters always count.
      l.nonzero_params += k == "weight" ? count_nonzero(t) : static_cast<int64_t>(t.size());
    }
    l.macs = node_macs(n, shapes[i]);  // checked; the model's validation bounded the total
    if (op_has_weight(n.op)) {
      const Tensor& w = n.param("weight");
      if (n.mask) {
        l.density = n.mask->density;
        l.pattern = n.mask->pattern;
      } else {
        l.density = static_cast<double>(count_nonzero(w)) / static_cast<double>(w.size());
      }
    }
    s.params = checked_add(s.params, l.params, "the parameter count");
    s.nonzero_params += l.nonzero_params;  // <= params
    s.macs = checked_add(s.macs, l.macs, "the MAC count");
    s.bytes = checked_add(s.bytes, l.bytes, "the parameter bytes");
    s.layers.push_back(std::move(l));
  }
  return s;
}

}  // namespace bsp
