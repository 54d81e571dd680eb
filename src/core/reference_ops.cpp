#include "core/reference_ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace bsp::ref {

namespace {
void need_rank(const Tensor& x, size_t r, const char* op) {
  if (x.rank() != r) fail("{}: expected a rank-{} input, got {}", op, r, shape_str(x.shape()));
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) {
  need_rank(x, 4, "conv2d");
  const int64_t N = x.dim(0);
  if (x.dim(1) != g.H || x.dim(2) != g.W || x.dim(3) != g.C) fail("conv2d: input does not match the geometry");
  Tensor y({N, g.Ho, g.Wo, g.Cout});
  const int64_t cpg = g.cin_per_group(), opg = g.cout_per_group();
  const float* X = x.data();
  const float* Wt = w.data();
  float* Y = y.data();
#pragma omp parallel for collapse(3) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        float* yp = Y + ((n * g.Ho + oh) * g.Wo + ow) * g.Cout;
        for (int64_t co = 0; co < g.Cout; ++co) {
          const int64_t grp = co / opg;
          float acc = bias ? (*bias)[static_cast<size_t>(co)] : 0.0f;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw < 0 || iw >= g.W) continue;
              const float* xp = X + ((n * g.H + ih) * g.W + iw) * g.C + grp * cpg;
              const float* wp = Wt + ((co * g.kh + i) * g.kw + j) * cpg;
              float s = 0.0f;
#pragma omp simd reduction(+ : s)
              for (int64_t c = 0; c < cpg; ++c) s += xp[c] * wp[c];
              acc += s;
            }
          }
          yp[co] = acc;
        }
      }
  return y;
}

Tensor dense(const Tensor& x, const Tensor& w, const Tensor* bias) {
  need_rank(x, 2, "dense");
  const int64_t N = x.dim(0), F = x.dim(1), O = w.dim(0);
  if (w.dim(1) != F) fail("dense: weight takes {} inputs, input has {}", w.dim(1), F);
  Tensor y({N, O});
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      const float* xp = x.data() + n * F;
      const float* wp = w.data() + o * F;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int64_t f = 0; f < F; ++f) s += xp[f] * wp[f];
      y[static_cast<size_t>(n * O + o)] = s + (bias ? (*bias)[static_cast<size_t>(o)] : 0.0f);
    }
  return y;
}

Tensor batchnorm(const Tensor& x, const ChannelAffine& a) {
  const int64_t C = x.shape().back();
  if (a.scale.size() != static_cast<size_t>(C)) fail("batchnorm: {} channels, the affine has {}", C, a.scale.size());
  const float* scale = a.scale.data();
  const float* shift = a.shift.data();
  Tensor y(x.shape());
  const int64_t rows = static_cast<int64_t>(x.size()) / C;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      size_t i = static_cast<size_t>(r * C + c);
      y[i] = x[i] * scale[c] + shift[c];
    }
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y(x.shape());
  const int64_t n = static_cast<int64_t>(x.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = std::max(x[static_cast<size_t>(i)], 0.0f);
  return y;
}

Tensor clip(const Tensor& x, double lo, double hi) {
  const float l = static_cast<float>(lo), h = static_cast<float>(hi);
  Tensor y(x.shape());
  const int64_t n = static_cast<int64_t>(x.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = std::min(std::max(x[static_cast<size_t>(i)], l), h);
  return y;
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float hardsigmoid(float x, float alpha, float beta) { return std::min(std::max(alpha * x + beta, 0.0f), 1.0f); }
float hardswish(float x) { return x * hardsigmoid(x, 1.0f / 6.0f, 0.5f); }

namespace {
template <typename F>
Tensor unary(const Tensor& x, F f) {
  Tensor y(x.shape());
  const int64_t n = static_cast<int64_t>(x.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = f(x[static_cast<size_t>(i)]);
  return y;
}
}  // namespace

Tensor sigmoid(const Tensor& x) { return unary(x, [](float v) { return sigmoid(v); }); }
Tensor hardsigmoid(const Tensor& x, double alpha, double beta) {
  const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
  return unary(x, [=](float v) { return hardsigmoid(v, a, b); });
}
Tensor hardswish(const Tensor& x) { return unary(x, [](float v) { return hardswish(v); }); }

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y(a.shape());
  if (b.shape() == a.shape()) {
    const int64_t n = static_cast<int64_t>(a.size());
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = a[static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
    return y;
  }
  if (a.rank() != 4 || b.rank() != 4 || b.dim(0) != a.dim(0) || b.dim(1) != 1 || b.dim(2) != 1 || b.dim(3) != a.dim(3))
    fail("mul: cannot broadcast {} over {}", shape_str(b.shape()), shape_str(a.shape()));
  const int64_t N = a.dim(0), HW = a.dim(1) * a.dim(2), C = a.dim(3);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const size_t i = static_cast<size_t>((n * HW + p) * C + c);
        y[i] = a[i] * b[static_cast<size_t>(n * C + c)];
      }
  return y;
}

namespace {
template <typename Reduce>
Tensor pool(const Tensor& x, const WindowGeom& g, Reduce reduce) {
  need_rank(x, 4, "pool");
  const int64_t N = x.dim(0);
  Tensor y({N, g.Ho, g.Wo, g.C});
#pragma omp parallel for collapse(3) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const int64_t h0 = oh * g.sh - g.pt, w0 = ow * g.sw - g.pl;
        float* yp = y.data() + ((n * g.Ho + oh) * g.Wo + ow) * g.C;
        reduce(x.data() + n * g.H * g.W * g.C, h0, w0, yp);
      }
  return y;
}
}  // namespace

Tensor maxpool(const Tensor& x, const WindowGeom& g) {
  return pool(x, g, [&](const float* X, int64_t h0, int64_t w0, float* yp) {
    for (int64_t c = 0; c < g.C; ++c) yp[c] = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = h0 + i * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = w0 + j * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        const float* xp = X + (ih * g.W + iw) * g.C;
        for (int64_t c = 0; c < g.C; ++c) yp[c] = std::max(yp[c], xp[c]);
      }
    }
  });
}

Tensor avgpool(const Tensor& x, const WindowGeom& g, bool count_include_pad) {
  return pool(x, g, [&](const float* X, int64_t h0, int64_t w0, float* yp) {
    for (int64_t c = 0; c < g.C; ++c) yp[c] = 0.0f;
    int64_t count = 0;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = h0 + i * g.dh;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = w0 + j * g.dw;
        // A window position counts when it lies in the padded input.
        bool in_padded = ih >= -g.pt && ih < g.H + g.pb && iw >= -g.pl && iw < g.W + g.pr;
        bool in_real = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
        if (count_include_pad ? in_padded : in_real) ++count;
        if (!in_real) continue;
        const float* xp = X + (ih * g.W + iw) * g.C;
        for (int64_t c = 0; c < g.C; ++c) yp[c] += xp[c];
      }
    }
    const float inv = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;
    for (int64_t c = 0; c < g.C; ++c) yp[c] *= inv;
  });
}

Tensor global_avgpool(const Tensor& x) {
  need_rank(x, 4, "global_avgpool");
  const int64_t N = x.dim(0), HW = x.dim(1) * x.dim(2), C = x.dim(3);
  Tensor y({N, C});
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> acc(static_cast<size_t>(C), 0.0);
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) acc[static_cast<size_t>(c)] += x[static_cast<size_t>((n * HW + p) * C + c)];
    for (int64_t c = 0; c < C; ++c)
      y[static_cast<size_t>(n * C + c)] = static_cast<float>(acc[static_cast<size_t>(c)] / static_cast<double>(HW));
  }
  return y;
}

Tensor add(const std::vector<const Tensor*>& xs) {
  Tensor y = xs.at(0)->clone();
  for (size_t k = 1; k < xs.size(); ++k) {
    if (xs[k]->shape() != y.shape()) fail("add: shapes differ");
    const int64_t n = static_cast<int64_t>(y.size());
    const float* xp = xs[k]->data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] += xp[i];
  }
  return y;
}

Tensor concat(const std::vector<const Tensor*>& xs) {
  Shape s = xs.at(0)->shape();
  const int64_t rows = static_cast<int64_t>(xs[0]->size()) / s.back();
  int64_t total = 0;
  for (auto* x : xs) total += x->shape().back();
  s.back() = total;
  Tensor y(s);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;
    for (auto* x : xs) {
      const int64_t c = x->shape().back();
      std::copy_n(x->data() + r * c, c, y.data() + r * total + off);
      off += c;
    }
  }
  return y;
}

Tensor flatten(const Tensor& x) {
  Tensor y = x.clone();
  y.reshape({x.dim(0), static_cast<int64_t>(x.size()) / x.dim(0)});
  return y;
}

Tensor softmax(const Tensor& x) {
  const int64_t C = x.shape().back(), rows = static_cast<int64_t>(x.size()) / C;
  Tensor y(x.shape());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xp = x.data() + r * C;
    float* yp = y.data() + r * C;
    float mx = *std::max_element(xp, xp + C);
    double sum = 0.0;
    for (int64_t c = 0; c < C; ++c) sum += (yp[c] = std::exp(xp[c] - mx));
    for (int64_t c = 0; c < C; ++c) yp[c] = static_cast<float>(yp[c] / sum);
  }
  return y;
}

}  // namespace bsp::ref
