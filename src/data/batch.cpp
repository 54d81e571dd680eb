#include "data/batch.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace bsp {

Normalization channel_stats(const ImageSet& s) {
  const int64_t C = s.c, per_image = s.h * s.w;
  std::vector<double> sum(static_cast<size_t>(C), 0.0), sq(static_cast<size_t>(C), 0.0);
  // Per-image partial sums in double, then a fixed-order total: the same
  // result for any thread count.
  std::vector<double> part(static_cast<size_t>(s.n * C * 2));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < s.n; ++i) {
    for (int64_t c = 0; c < C; ++c) {
      double a = 0, b = 0;
      for (int64_t p = 0; p < per_image; ++p) {
        size_t e = static_cast<size_t>((i * per_image + p) * C + c);
        double v = s.is_u8() ? s.u8[e] / 255.0 : static_cast<double>(s.f32[e]);
        a += v;
        b += v * v;
      }
      part[static_cast<size_t>((i * C + c) * 2)] = a;
      part[static_cast<size_t>((i * C + c) * 2 + 1)] = b;
    }
  }
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t c = 0; c < C; ++c) {
      sum[static_cast<size_t>(c)] += part[static_cast<size_t>((i * C + c) * 2)];
      sq[static_cast<size_t>(c)] += part[static_cast<size_t>((i * C + c) * 2 + 1)];
    }
  return normalization_from_sums(sum, sq, static_cast<double>(s.n * per_image));
}

Normalization normalization_from_sums(const std::vector<double>& sum, const std::vector<double>& sq, double count) {
  Normalization nm;
  for (size_t c = 0; c < sum.size(); ++c) {
    double m = sum[c] / count;
    double var = std::max(0.0, sq[c] / count - m * m);
    double sd = std::sqrt(var);
    nm.mean.push_back(m);
    nm.std.push_back(sd > 1e-12 ? sd : 1.0);  // a constant channel is only centred
  }
  return nm;
}

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  Rng rng(mix64(seed ^ 0x5368756666ULL) ^ mix64(static_cast<uint64_t>(epoch) + 1));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i + 1))]);
  return order;
}

void assemble_batch(const ImageSet& s, const int64_t* idx, int64_t nb, const Normalization& norm,
                    const Augmentation& aug, uint64_t key, float* out, BatchLayout layout, int64_t j0) {
  const int64_t H = s.h, W = s.w, C = s.c;
  if (static_cast<int64_t>(norm.mean.size()) != C) fail("internal: normalisation has the wrong channel count");
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    // (v * unit - mean) / std = v * scale + shift
    const double unit = s.is_u8() ? 1.0 / 255.0 : 1.0;
    scale[static_cast<size_t>(c)] = static_cast<float>(unit / norm.std[static_cast<size_t>(c)]);
    shift[static_cast<size_t>(c)] = static_cast<float>(-norm.mean[static_cast<size_t>(c)] / norm.std[static_cast<size_t>(c)]);
  }
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < nb; ++j) {
    const int64_t img = idx[j];
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (aug.pad > 0 || aug.flip) {
      const uint64_t u = mix64(key ^ mix64(static_cast<uint64_t>(j0 + j) + 0x9e37ULL));
      const uint64_t span = static_cast<uint64_t>(2 * aug.pad + 1);
      if (aug.pad > 0) {
        dy = static_cast<int64_t>((u & 0xffff) % span) - aug.pad;
        dx = static_cast<int64_t>(((u >> 16) & 0xffff) % span) - aug.pad;
      }
      flip = aug.flip && ((u >> 40) & 1);
    }
    const size_t base = static_cast<size_t>(img * H * W * C);
    for (int64_t c = 0; c < C; ++c) {
      // element (y, x) of this channel and image at o[(y * W + x) * step]
      const bool cm = layout == BatchLayout::ChannelMajor;
      float* o = cm ? out + ((c * nb + j) * H) * W : out + j * H * W * C + c;
      const int64_t step = cm ? 1 : C;
      const float sc = scale[static_cast<size_t>(c)], sh = shift[static_cast<size_t>(c)];
      for (int64_t y = 0; y < H; ++y) {
        const int64_t sy = y + dy;
        for (int64_t x = 0; x < W; ++x) {
          const int64_t sx0 = flip ? W - 1 - x : x;
          const int64_t sx = sx0 + dx;
          float v = 0.0f;  // padding: a zero pixel
          if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
            size_t e = base + static_cast<size_t>((sy * W + sx) * C + c);
            v = s.is_u8() ? static_cast<float>(s.u8[e]) : s.f32[e];
          }
          o[(y * W + x) * step] = v * sc + sh;
        }
      }
    }
  }
}

}  // namespace bsp
