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

}  // namespace bsp::train
