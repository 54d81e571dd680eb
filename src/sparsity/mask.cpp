#include "sparsity/mask.hpp"

#include <algorithm>
#include <vector>

namespace bsp {

Array<uint8_t> element_mask(const Node& n) {
  return element_mask(n.mask ? &*n.mask : nullptr, n.param("weight").shape());
}

Array<uint8_t> element_mask(const Mask* mask, const Shape& shape) {
  Array<uint8_t> e(shape);
  if (!mask) {
    e.fill(1);
    return e;
  }
  const Mask& m = *mask;
  if (!m.is_block()) return m.bits.clone();
  // Weight viewed as [Cout, K, Cin] with K = kh * kw (1 for dense).
  const int64_t cout = shape[0], cin = shape.back();
  const int64_t k = static_cast<int64_t>(e.size()) / (cout * cin);
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

namespace {

// Zeroes p[i] where bits[i] == 0 for i < n; returns the count of nonzeros
// zeroed and adds the kept sum of squares to *sq.
// Eight independent partial sums let the loops vectorise without
// reordering any one sum (so results stay exact and reproducible).
inline double lanes_total(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

// Zeroes p[i] where bits[i] == 0 for i < n; returns the count of nonzeros
// zeroed and adds the kept sum of squares to *sq.
inline int64_t mask_span(float* p, const uint8_t* bits, int64_t n, double* sq) {
  int64_t changed = 0;
  double l[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const float v = bits[i + j] ? p[i + j] : 0.0f;
      changed += v != p[i + j];
      p[i + j] = v;
      l[j] += static_cast<double>(v) * v;
    }
  for (; i < n; ++i) {
    const float v = bits[i] ? p[i] : 0.0f;
    changed += v != p[i];
    p[i] = v;
    l[0] += static_cast<double>(v) * v;
  }
  *sq += lanes_total(l);
  return changed;
}

// Zeroes a whole span (a pruned block's row segment).
inline int64_t zero_span(float* p, int64_t n) {
  int64_t changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    changed += p[i] != 0.0f;
    p[i] = 0.0f;
  }
  return changed;
}

inline double sum_sq(const float* p, int64_t n) {
  double l[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) l[j] += static_cast<double>(p[i + j]) * p[i + j];
  for (; i < n; ++i) l[0] += static_cast<double>(p[i]) * p[i];
  return lanes_total(l);
}

}  // namespace

int64_t apply_mask(Node& n, double* kept_sq) {
  Tensor& w = n.param("weight");
  if (!n.mask) {
    if (kept_sq) *kept_sq = sum_sq(w.data(), static_cast<int64_t>(w.size()));
    return 0;
  }
  const Mask& m = *n.mask;
  // Weight viewed as rows [Cout, K, Cin] with K = kh * kw (1 for dense); one
  // partial sum per output channel, added in order.
  const int64_t cout = w.dim(0), cin = w.shape().back();
  const int64_t k = static_cast<int64_t>(w.size()) / (cout * cin);
  std::vector<double> sq(static_cast<size_t>(cout), 0.0);
  int64_t changed = 0;
#pragma omp parallel for if (w.size() > (1u << 16)) reduction(+ : changed) schedule(static)
  for (int64_t o = 0; o < cout; ++o) {
    double* s = &sq[static_cast<size_t>(o)];
    float* orow = w.data() + o * k * cin;
    if (!m.is_block()) {
      changed += mask_span(orow, m.bits.data() + o * k * cin, k * cin, s);
      continue;
    }
    const int64_t bc_n = m.bits.dim(1), bcw = m.block_cols;
    const uint8_t* brow = m.bits.data() + (o / m.block_rows) * bc_n;
    for (int64_t kk = 0; kk < k; ++kk) {
      float* row = orow + kk * cin;
      for (int64_t bc = 0; bc < bc_n; ++bc) {
        const int64_t c0 = bc * bcw, len = std::min(cin, c0 + bcw) - c0;
        if (brow[bc])
          *s += sum_sq(row + c0, len);
        else
          changed += zero_span(row + c0, len);
      }
    }
  }
  if (kept_sq) {
    *kept_sq = 0;
    for (double v : sq) *kept_sq += v;
  }
  return changed;
}

}  // namespace bsp
