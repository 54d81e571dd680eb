#include "data/source.hpp"

namespace bsp {

void reserve_batch(const BatchSource& src, int64_t n, Batch& b) {
  const size_t need = static_cast<size_t>(n * src.h() * src.w() * src.c());
  if (b.x.size() < need) b.x.resize(need);
  if (b.labels.size() < static_cast<size_t>(n)) {
    b.labels.resize(static_cast<size_t>(n));
    b.index.resize(static_cast<size_t>(n));
  }
}

void ImageSetSource::fill(const BatchRequest& r, Batch& out) const {
  reserve_batch(*this, r.n, out);
  assemble_batch(s_, r.idx, r.n, norm_, r.train ? aug_ : Augmentation{}, r.key, out.x.data(), BatchLayout::NHWC, r.j0);
  for (int64_t j = 0; j < r.n; ++j) {
    out.index[static_cast<size_t>(j)] = r.idx[j];
    out.labels[static_cast<size_t>(j)] = s_.labels[static_cast<size_t>(r.idx[j])];
  }
  out.n = r.n;
}

void to_channel_major(const Batch& b, int64_t h, int64_t w, int64_t c, float* out) {
  to_channel_major(b.x.data(), b.n, h, w, c, out);
}

void to_channel_major(const float* x, int64_t n, int64_t h, int64_t w, int64_t c, float* out) {
  const int64_t hw = h * w;
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    const float* src = x + j * hw * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      float* o = out + (ch * n + j) * hw;
      for (int64_t p = 0; p < hw; ++p) o[p] = src[p * c + ch];
    }
  }
}

}  // namespace bsp
