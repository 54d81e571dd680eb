#include "train/plan.hpp"

namespace bsp::train {

void PassPlan::reset(int64_t rows_, int64_t row_stride_) {
  rows = rows_;
  row_stride = row_stride_;
  start.assign(1, 0);
  kidx.clear();
  off.clear();
  A.clear();
}

void PassPlan::pack(const float* W, const uint8_t* mask) {
  A.resize(static_cast<size_t>(entries()) * 8);
  const int64_t nb = blocks();
#pragma omp parallel for schedule(static)
  for (int64_t rb = 0; rb < nb; ++rb) {
    const int64_t r_end = block_rows(rb);
    for (int64_t t = start[static_cast<size_t>(rb)]; t < start[static_cast<size_t>(rb) + 1]; ++t) {
      float* a = A.data() + t * 8;
      for (int64_t r = 0; r < 8; ++r) {
        if (r >= r_end) {
          a[r] = 0.0f;
          continue;
        }
        const int64_t e = (rb * 8 + r) * row_stride + kidx[static_cast<size_t>(t)];
        a[r] = mask && !mask[e] ? 0.0f : W[e];
      }
    }
  }
}

BlockKeep block_keep(const uint8_t* m, int64_t rows, int64_t taps, int64_t cols) {
  BlockKeep k;
  k.ob = (rows + 7) / 8;
  k.ib = (cols + 7) / 8;
  k.keep.assign(static_cast<size_t>(k.ob * k.ib), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c = 0; c < cols; ++c)
        if (m[(r * taps + t) * cols + c]) k.keep[static_cast<size_t>((r / 8) * k.ib + c / 8)] = 1;
  for (uint8_t v : k.keep) k.kept += v;
  return k;
}

BlockKeep block_keep_all(int64_t rows, int64_t cols) {
  BlockKeep k;
  k.ob = (rows + 7) / 8;
  k.ib = (cols + 7) / 8;
  k.keep.assign(static_cast<size_t>(k.ob * k.ib), 1);
  k.kept = k.ob * k.ib;
  return k;
}

}  // namespace bsp::train
