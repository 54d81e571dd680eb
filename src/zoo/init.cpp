#include <cmath>

#include "core/rng.hpp"
#include "zoo/zoo.hpp"

namespace bsp {

void init_weights(Model& m, uint64_t seed) {
  for (Node& n : m.nodes) {
    uint64_t key = mix64(seed ^ hash_name(n.name));
    for (auto& [k, t] : n.params) {
      if (k == "weight") {
        // fan_in: kh * kw * Cin/groups for OHWI conv weights, in for dense.
        int64_t fan_in = static_cast<int64_t>(t.size()) / t.dim(0);
        fill_normal(t.data(), t.size(), std::sqrt(2.0 / static_cast<double>(fan_in)), key);
      } else if (k == "gamma" || k == "var") {
        t.fill(1.0f);
      } else {
        t.fill(0.0f);
      }
    }
  }
}

}  // namespace bsp
