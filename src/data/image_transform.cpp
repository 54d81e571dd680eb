#include "data/image_transform.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace bsp {

Region random_resized_crop(int64_t h, int64_t w, Rng& rng, double scale_lo, double scale_hi) {
  const double area = static_cast<double>(h * w);
  const double lr0 = std::log(3.0 / 4.0), lr1 = std::log(4.0 / 3.0);
  Region r;
  int64_t ch = 0, cw = 0, top = 0, left = 0;
  bool found = false;
  for (int t = 0; t < 10 && !found; ++t) {
    const double target = area * (scale_lo + (scale_hi - scale_lo) * rng.uniform());
    const double aspect = std::exp(lr0 + (lr1 - lr0) * rng.uniform());
    // Python's round(): halves to even, as std::nearbyint in the default mode.
    cw = static_cast<int64_t>(std::nearbyint(std::sqrt(target * aspect)));
    ch = static_cast<int64_t>(std::nearbyint(std::sqrt(target / aspect)));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(h - ch + 1)));
      left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(w - cw + 1)));
      found = true;
    }
  }
  if (!found) {  // the central crop of the nearest allowed aspect ratio
    const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
    cw = w;
    ch = h;
    if (in_ratio < 3.0 / 4.0) ch = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / (3.0 / 4.0)));
    else if (in_ratio > 4.0 / 3.0) cw = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * (4.0 / 3.0)));
    top = (h - ch) / 2;
    left = (w - cw) / 2;
  }
  r.y0 = static_cast<double>(top);
  r.x0 = static_cast<double>(left);
  r.h = static_cast<double>(ch);
  r.w = static_cast<double>(cw);
  r.clip_y0 = top;
  r.clip_x0 = left;
  r.clip_y1 = top + ch;
  r.clip_x1 = left + cw;
  return r;
}

Region resize_center_crop(int64_t h, int64_t w, int64_t out_h, int64_t out_w, double fraction) {
  // The shorter side goes to the larger crop side over the fraction, so the
  // crop always fits (square inputs, the usual case, are torchvision's rule).
  const int64_t size = static_cast<int64_t>(std::floor(static_cast<double>(std::max(out_h, out_w)) / fraction + 1e-9));
  int64_t rh = 0, rw = 0;  // the resized image
  if (w <= h) {
    rw = size;
    rh = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(h) / static_cast<double>(w));
  } else {
    rh = size;
    rw = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(w) / static_cast<double>(h));
  }
  const double top = std::nearbyint(static_cast<double>(rh - out_h) / 2.0);
  const double left = std::nearbyint(static_cast<double>(rw - out_w) / 2.0);
  const double sy = static_cast<double>(h) / static_cast<double>(rh), sx = static_cast<double>(w) / static_cast<double>(rw);
  Region r;
  r.y0 = top * sy;
  r.x0 = left * sx;
  r.h = static_cast<double>(out_h) * sy;
  r.w = static_cast<double>(out_w) * sx;
  r.clip_y1 = h;
  r.clip_x1 = w;
  return r;
}

namespace {

// PIL's precompute_coeffs for the bilinear (triangle) filter: output pixel i
// reads source pixels first[i] .. first[i] + count[i] - 1 of the clip range
// with the normalised weights weight[i * span ...].
struct Axis {
  std::vector<int64_t> first, count;
  std::vector<float> weight;
  int64_t span = 0;
};

Axis axis_coeffs(double box0, double box_len, int64_t clip0, int64_t clip1, int64_t out) {
  Axis a;
  const double scale = box_len / static_cast<double>(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = filterscale;  // the triangle's support is 1
  a.span = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.first.resize(static_cast<size_t>(out));
  a.count.resize(static_cast<size_t>(out));
  a.weight.assign(static_cast<size_t>(out * a.span), 0.0f);
  const int64_t in = clip1 - clip0;
  std::vector<double> k(static_cast<size_t>(a.span));
  for (int64_t i = 0; i < out; ++i) {
    const double center = box0 - static_cast<double>(clip0) + (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    const int64_t n = std::min(std::max<int64_t>(hi - lo, 0), a.span);
    double total = 0;
    for (int64_t x = 0; x < n; ++x) {
      const double t = std::fabs((static_cast<double>(x + lo) - center + 0.5) / filterscale);
      k[static_cast<size_t>(x)] = t < 1.0 ? 1.0 - t : 0.0;
      total += k[static_cast<size_t>(x)];
    }
    for (int64_t x = 0; x < n; ++x)
      a.weight[static_cast<size_t>(i * a.span + x)] = static_cast<float>(total > 0 ? k[static_cast<size_t>(x)] / total : 0.0);
    a.first[static_cast<size_t>(i)] = clip0 + lo;
    a.count[static_cast<size_t>(i)] = n;
  }
  return a;
}

}  // namespace

void resample(const Image8& img, const Region& r, int64_t out_h, int64_t out_w, float* out) {
  const int64_t C = img.c;
  const Axis ay = axis_coeffs(r.y0, r.h, r.clip_y0, r.clip_y1, out_h);
  const Axis ax = axis_coeffs(r.x0, r.w, r.clip_x0, r.clip_x1, out_w);
  // Horizontal pass over the source rows the vertical pass reads.
  int64_t row0 = img.h, row1 = 0;
  for (int64_t y = 0; y < out_h; ++y) {
    row0 = std::min(row0, ay.first[static_cast<size_t>(y)]);
    row1 = std::max(row1, ay.first[static_cast<size_t>(y)] + ay.count[static_cast<size_t>(y)]);
  }
  if (row1 <= row0) row1 = row0;
  std::vector<float> tmp(static_cast<size_t>((row1 - row0) * out_w * C));  // [rows, out_w, C]
  for (int64_t sy = row0; sy < row1; ++sy) {
    const uint8_t* src = img.px.data() + sy * img.w * C;
    float* t = tmp.data() + (sy - row0) * out_w * C;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t f = ax.first[static_cast<size_t>(x)], n = ax.count[static_cast<size_t>(x)];
      const float* k = ax.weight.data() + x * ax.span;
      for (int64_t c = 0; c < C; ++c) {
        float s = 0;
        for (int64_t i = 0; i < n; ++i) s += k[i] * static_cast<float>(src[(f + i) * C + c]);
        t[x * C + c] = s;
      }
    }
  }
  for (int64_t y = 0; y < out_h; ++y) {
    const int64_t f = ay.first[static_cast<size_t>(y)], n = ay.count[static_cast<size_t>(y)];
    const float* k = ay.weight.data() + y * ay.span;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t ox = r.flip ? out_w - 1 - x : x;
      for (int64_t c = 0; c < C; ++c) {
        float s = 0;
        for (int64_t i = 0; i < n; ++i) s += k[i] * tmp[static_cast<size_t>(((f + i - row0) * out_w + x) * C + c)];
        out[(y * out_w + ox) * C + c] = s;
      }
    }
  }
}

}  // namespace bsp
