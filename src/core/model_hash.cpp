// content_hash(): a fingerprint of a model's graph and parameters, used to
// tell whether stored derived data (the compact weights) still matches them.
#include <cstring>
#include <type_traits>

#include "core/model.hpp"
#include "core/hasher.hpp"

namespace bsp {

uint64_t content_hash(const Model& m) {
  const uint64_t h = graph_hash(m);
  return m.rebuilt && h == m.rebuilt->as_loaded ? m.rebuilt->source : h;
}

uint64_t graph_hash(const Model& m, const std::map<std::string, Tensor>* weights) {
  Hasher h;
  h.add(static_cast<uint64_t>(m.nodes.size()));
  for (const Node& n : m.nodes) {
    h.add(std::string_view(n.name));
    h.add(static_cast<uint64_t>(n.op));
    for (const auto& s : n.inputs) h.add(std::string_view(s));
    for (const auto& [k, v] : n.attrs.all()) {
      h.add(std::string_view(k));
      std::visit(
          [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
              h.add(std::string_view(x));
            } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
              h.add_bytes(&x, sizeof x);
            } else {
              h.add_bytes(x.data(), x.size() * sizeof(x[0]));
            }
          },
          v);
    }
    const Tensor* over = nullptr;
    if (weights) {
      auto it = weights->find(n.name);
      if (it != weights->end()) over = &it->second;
    }
    for (const auto& [k, p] : n.params) {
      const Tensor& t = over && k == "weight" ? *over : p;
      h.add(std::string_view(k));
      h.add_bytes(t.shape().data(), t.shape().size() * sizeof(int64_t));
      h.add_bytes(t.data(), t.size() * sizeof(float));
    }
    if (n.mask) {
      h.add(std::string_view(n.mask->pattern));
      h.add_bytes(&n.mask->density, sizeof(double));
      h.add(static_cast<uint64_t>(n.mask->block_rows));
      h.add(static_cast<uint64_t>(n.mask->block_cols));
      h.add_bytes(n.mask->bits.data(), n.mask->bits.size());
    }
  }
  return h.value();
}

}  // namespace bsp
