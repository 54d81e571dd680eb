#include "sparsity/mask.hpp"

namespace bsp {

Array<uint8_t> element_mask(const Node& n) {
  const Tensor& w = n.param("weight");
  Array<uint8_t> e(w.shape());
  if (!n.mask) {
    e.fill(1);
    return e;
  }
  const Mask& m = *n.mask;
  if (!m.is_block()) return m.bits.clone();
  // Weight viewed as [Cout, K, Cin] with K = kh * kw (1 for dense).
  const int64_t cout = w.dim(0), cin = w.shape().back();
  const int64_t k = static_cast<int64_t>(w.size()) / (cout * cin);
  const int64_t bcols = m.bits.dim(1);
#pragma omp parallel for if (e.size() > (1u << 16)) schedule(static)
  for (int64_t o = 0; o < cout; ++o) {
    const uint8_t* brow = m.bits.data() + (o / m.block_rows) * bcols;
    for (int64_t kk = 0; kk < k; ++kk) {
      uint8_t* out = e.data() + (o * k + kk) * cin;
      for (int64_t c = 0; c < cin; ++c) out[c] = brow[c / m.block_cols];
    }
  }
  return e;
}

int64_t apply_mask(Node& n) {
  if (!n.mask) return 0;
  Tensor& w = n.param("weight");
  Array<uint8_t> e = element_mask(n);
  int64_t changed = 0;
  const int64_t size = static_cast<int64_t>(w.size());
#pragma omp parallel for if (size > (1 << 16)) reduction(+ : changed) schedule(static)
  for (int64_t i = 0; i < size; ++i)
    if (!e[static_cast<size_t>(i)] && w[static_cast<size_t>(i)] != 0.0f) {
      w[static_cast<size_t>(i)] = 0.0f;
      ++changed;
    }
  return changed;
}

}  // namespace bsp
