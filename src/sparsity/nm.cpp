#include "sparsity/nm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace bsp {

namespace {

constexpr int64_t kLanes = 16;  // inner positions handled together (vectorised ranking)

// Keeps the n best of the r <= m entries of one group at kLanes inner
// positions at once: s[j * kLanes + l] are the scores (-1 for
// non-candidates). Repeated arg-max (first maximum: equal magnitudes keep the
// lower index) or, when n is more than half of r, repeated arg-min dropping
// (last minimum); each step runs across the lanes, so it vectorises.
inline void select_group(const float* s, int64_t r, int64_t n, uint8_t* kept /*[r * kLanes]*/) {
  const int64_t nk = std::min(n, r);
  const bool pick = 2 * nk <= r;
  std::memset(kept, pick ? 0 : 1, static_cast<size_t>(r * kLanes));
  for (int64_t t = 0; t < (pick ? nk : r - nk); ++t) {
    float bs[kLanes];
    int32_t bj[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) bs[l] = pick ? -2.0f : std::numeric_limits<float>::infinity(), bj[l] = 0;
    for (int64_t j = 0; j < r; ++j)
      for (int64_t l = 0; l < kLanes; ++l) {
        const float v = s[j * kLanes + l];
        const bool better = pick ? (!kept[j * kLanes + l] && v > bs[l]) : (kept[j * kLanes + l] && v <= bs[l]);
        bs[l] = better ? v : bs[l];
        bj[l] = better ? static_cast<int32_t>(j) : bj[l];
      }
    for (int64_t l = 0; l < kLanes; ++l) kept[bj[l] * kLanes + l] = pick;
  }
  for (int64_t i = 0; i < r * kLanes; ++i) kept[i] = kept[i] && s[i] >= 0;
}

}  // namespace

void nm_mask(const float* w, int64_t outer, int64_t len, int64_t inner, int64_t n, int64_t m, const uint8_t* keep,
             uint8_t* out) {
  if (n < 1 || m < 1 || n > m || m > 256) fail("internal: nm_mask with N = {}, M = {} (1 <= N <= M <= 256)", n, m);
  const int64_t groups = (len + m - 1) / m;
  const int64_t work = outer * groups;
  if (inner == 1) {
    // Groups are contiguous (the Cin case). Top-N by repeated arg-max (the
    // first maximum: equal magnitudes keep the lower index), or, when N is
    // more than half the group, dropping the r - N smallest (the last
    // minimum): O(min(N, M - N) * M) per group.
#pragma omp parallel for if (outer * len > (1 << 16)) schedule(static)
    for (int64_t g = 0; g < work; ++g) {
      float s[256];
      uint8_t kept[256];
      const int64_t o = g / groups, start = (g % groups) * m;
      const size_t r = static_cast<size_t>(std::clamp<int64_t>(len - start, 1, std::min<int64_t>(m, 256)));
      const int64_t base = o * len + start;
      for (size_t j = 0; j < r; ++j) s[j] = keep && !keep[base + j] ? -1.0f : std::fabs(w[base + j]);
      const size_t nk = std::min(static_cast<size_t>(n), r);
      if (2 * nk <= r) {
        std::memset(kept, 0, r);
        for (size_t t = 0; t < nk; ++t) {
          size_t best = 0;
          float bs = -2.0f;  // below every score (-1 for non-candidates)
          for (size_t j = 0; j < r; ++j)
            if (!kept[j] && s[j] > bs) best = j, bs = s[j];
          kept[best] = 1;
        }
      } else {
        std::memset(kept, 1, r);
        for (size_t t = 0; t < r - nk; ++t) {
          size_t worst = 0;
          float ws = std::numeric_limits<float>::infinity();
          for (size_t j = 0; j < r; ++j)
            if (kept[j] && s[j] <= ws) worst = j, ws = s[j];
          kept[worst] = 0;
        }
      }
      for (size_t j = 0; j < r; ++j) out[base + j] = kept[j] && s[j] >= 0;
    }
    return;
  }
  // Strided groups (e.g. along Cout): rank kLanes inner positions at once.
  const int64_t lane_blocks = (inner + kLanes - 1) / kLanes;
#pragma omp parallel if (outer * len * inner > (1 << 16))
  {
    std::vector<float> s(static_cast<size_t>(m * kLanes), -1.0f);
    std::vector<uint8_t> kept(static_cast<size_t>(m * kLanes));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < work * lane_blocks; ++t) {
      const int64_t g = t / lane_blocks, i0 = (t % lane_blocks) * kLanes;
      const int64_t o = g / groups, start = (g % groups) * m;
      const int64_t r = std::min(m, len - start), lanes = std::min(kLanes, inner - i0);
      for (int64_t j = 0; j < r; ++j) {
        const int64_t base = (o * len + start + j) * inner + i0;
        for (int64_t l = 0; l < lanes; ++l)
          s[static_cast<size_t>(j * kLanes + l)] = keep && !keep[base + l] ? -1.0f : std::fabs(w[base + l]);
      }
      select_group(s.data(), r, n, kept.data());
      for (int64_t j = 0; j < r; ++j) {
        const int64_t base = (o * len + start + j) * inner + i0;
        for (int64_t l = 0; l < lanes; ++l) out[base + l] = kept[static_cast<size_t>(j * kLanes + l)];
      }
    }
  }
}

Array<uint8_t> nm_mask(const Tensor& w, size_t axis, int64_t n, int64_t m, const uint8_t* keep) {
  if (axis >= w.rank()) fail("internal: nm_mask axis {} of a rank-{} tensor", axis, w.rank());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= w.dim(d);
  for (size_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  Array<uint8_t> out(w.shape());
  nm_mask(w.data(), outer, w.dim(axis), inner, n, m, keep, out.data());
  return out;
}

}  // namespace bsp
