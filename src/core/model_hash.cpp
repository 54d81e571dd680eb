// content_hash(): a fingerprint of a model's graph and parameters, used to
// tell whether stored derived data (the compact weights) still matches them.
#include <cstring>
#include <type_traits>

#include "core/model.hpp"
#include "core/rng.hpp"

namespace bsp {

namespace {

class Hasher {
 public:
  void add(uint64_t v) { h_ = mix64(h_ ^ v) + 0x9e3779b97f4a7c15ULL; }
  void add(std::string_view s) {
    add(static_cast<uint64_t>(s.size()));
    add(hash_name(s));
  }
  // Bytes, in four independent lanes so the multiplies overlap.
  void add_bytes(const void* p, size_t n) {
    add(static_cast<uint64_t>(n));
    const auto* b = static_cast<const unsigned char*>(p);
    uint64_t lane[4] = {1, 2, 3, 4};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
      for (int k = 0; k < 4; ++k) {
        uint64_t w;
        std::memcpy(&w, b + i + 8 * k, 8);
        lane[k] = mix64(lane[k] ^ w);
      }
    for (int k = 0; k < 4; ++k) add(lane[k]);
    uint64_t tail = 0;
    for (size_t j = i; j < n; ++j) tail = (tail << 8) | b[j];
    add(tail);
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0x6a09e667f3bcc908ULL;
};

}  // namespace

uint64_t content_hash(const Model& m) {
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
    for (const auto& [k, t] : n.params) {
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
