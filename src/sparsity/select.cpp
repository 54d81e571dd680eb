#include "sparsity/select.hpp"

#include "core/error.hpp"

namespace bsp::select_detail {

int find_bin(const std::vector<int64_t>& hist, double target, double& acc) {
  for (int b = static_cast<int>(hist.size()) - 1; b >= 0; --b) {
    const double w = static_cast<double>(hist[static_cast<size_t>(b)]);
    if (w > 0 && acc + w >= target) return b;
    acc += w;
  }
  throw Error("internal: selection target beyond the candidates");
}

}  // namespace bsp::select_detail
