// relu, clip, sigmoid, hardsigmoid, hardswish, mul, max/avg pooling, global
// average pooling, add, concat and flatten on channel-major activations
// (net.hpp), and the layers' shared helpers.
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/reference_ops.hpp"
#include "core/shapes.hpp"
#include "sparsity/mask.hpp"
#include "train/layers.hpp"

namespace bsp::train {

Array<uint8_t> held_mask(const Node& n) {
  if (!n.mask) return {};
  return element_mask(n);
}

Param* add_param(const LayerArgs& a, const std::string& key, bool decay) {
  std::vector<Param>& ps = *a.params;
  if (ps.size() == ps.capacity()) fail("internal: parameter list capacity exceeded");
  Param p;
  p.name = a.node->name + "." + key;
  p.node = a.node;
  p.key = key;
  p.value = &a.node->param(key);
  p.grad = Tensor(p.value->shape());
  p.momentum = Tensor(p.value->shape());
  p.decay = decay;
  ps.push_back(std::move(p));
  return &ps.back();
}

void store(float* dst, const float* src, int64_t n, bool add) {
  if (add) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  } else {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }
}

namespace {

// dx (=, or += with Add) dy where y > 0, else 0: the relu's backward.
template <bool Add>
void relu_backward(const float* y, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float g = relu_grad<true>(y[i], dy[i]);
    if constexpr (Add)
      dx[i] += g;
    else
      dx[i] = g;
  }
}

// ---- relu: y = max(x, 0); dx = dy where y > 0 ----
class ReluLayer : public BoundLayer {
 public:
  explicit ReluLayer(const LayerArgs& a) : BoundLayer(a) {}
  void forward(const Ctx& c) override {
    const int64_t n = out->C * out->plane(c.n);
    const float* x = in[0]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  }
  void backward(const Ctx& c) override {
    if (in[0]->grad.empty()) return;
    const int64_t n = out->C * out->plane(c.n);
    const float* y = out->act.data();
    const float* dy = out->grad.data();
    float* dx = in[0]->grad.data();
    if (in_add[0])
      relu_backward<true>(y, dy, dx, n);
    else
      relu_backward<false>(y, dy, dx, n);
  }
};

// ---- clip: y = min(max(x, lo), hi); the gradient passes where lo < x < hi ----
class ClipLayer : public BoundLayer {
 public:
  explicit ClipLayer(const LayerArgs& a)
      : BoundLayer(a), lo_(static_cast<float>(node->attrs.get_double("min"))),
        hi_(static_cast<float>(node->attrs.get_double("max"))) {}
  void forward(const Ctx& c) override {
    const int64_t n = out->C * out->plane(c.n);
    const float* x = in[0]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], lo_), hi_);
  }
  void backward(const Ctx& c) override {
    if (in[0]->grad.empty()) return;
    const int64_t n = out->C * out->plane(c.n);
    const float* y = out->act.data();
    const float* dy = out->grad.data();
    float* dx = in[0]->grad.data();
    const bool add = in_add[0];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float g = y[i] > lo_ && y[i] < hi_ ? dy[i] : 0.0f;
      dx[i] = add ? dx[i] + g : g;
    }
  }

 private:
  float lo_, hi_;
};

// ---- sigmoid, hardsigmoid, hardswish: y = f(x), dx = f'(x) dy ----
// F: static float f(x) and float grad(x, y) (from the input and the output).
template <typename F>
class UnaryLayer : public BoundLayer {
 public:
  explicit UnaryLayer(const LayerArgs& a) : BoundLayer(a), f_(*a.node) {}
  void forward(const Ctx& c) override {
    const int64_t n = out->C * out->plane(c.n);
    const float* x = in[0]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = f_(x[i]);
  }
  void backward(const Ctx& c) override {
    if (in[0]->grad.empty()) return;
    const int64_t n = out->C * out->plane(c.n);
    const float *x = in[0]->act.data(), *y = out->act.data(), *dy = out->grad.data();
    float* dx = in[0]->grad.data();
    const bool add = in_add[0];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float g = f_.grad(x[i], y[i]) * dy[i];
      dx[i] = add ? dx[i] + g : g;
    }
  }

 private:
  F f_;
};

struct SigmoidF {
  explicit SigmoidF(const Node&) {}
  float operator()(float x) const { return ref::sigmoid(x); }
  float grad(float, float y) const { return y * (1.0f - y); }
};
struct HardSigmoidF {
  explicit HardSigmoidF(const Node& n)
      : alpha(static_cast<float>(n.attrs.get_double("alpha"))), beta(static_cast<float>(n.attrs.get_double("beta"))) {}
  float operator()(float x) const { return ref::hardsigmoid(x, alpha, beta); }
  float grad(float x, float) const {
    const float v = alpha * x + beta;
    return v > 0.0f && v < 1.0f ? alpha : 0.0f;
  }
  float alpha, beta;
};
struct HardSwishF {
  explicit HardSwishF(const Node&) {}
  float operator()(float x) const { return ref::hardswish(x); }
  // d/dx x h(x) = h(x) + x h'(x), h' = 1/6 inside (-3, 3)
  float grad(float x, float) const {
    const float v = x * (1.0f / 6.0f) + 0.5f;
    return v <= 0.0f ? 0.0f : v >= 1.0f ? 1.0f : v + x * (1.0f / 6.0f);
  }
};

// ---- mul: y = a * b, b the same shape or [C, n, 1, 1] broadcast over a's H, W ----
class MulLayer : public BoundLayer {
 public:
  explicit MulLayer(const LayerArgs& a) : BoundLayer(a) {}
  void forward(const Ctx& c) override {
    const int64_t rows = out->C * c.n, hw = span();
    const float *a = in[0]->act.data(), *b = in[1]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t p = 0; p < hw; ++p) y[r * hw + p] = a[r * hw + p] * b[hw_b() == 1 ? r : r * hw + p];
  }
  void backward(const Ctx& c) override {
    const int64_t rows = out->C * c.n, hw = span();
    const bool bcast = hw_b() == 1 && hw > 1;
    const float *a = in[0]->act.data(), *b = in[1]->act.data(), *dy = out->grad.data();
    if (!in[0]->grad.empty()) {  // da = dy * b
      float* da = in[0]->grad.data();
      const bool add = in_add[0];
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t p = 0; p < hw; ++p) {
          const float g = dy[r * hw + p] * b[bcast ? r : r * hw + p];
          da[r * hw + p] = add ? da[r * hw + p] + g : g;
        }
    }
    if (!in[1]->grad.empty()) {  // db = dy * a, summed over H, W when broadcast
      float* db = in[1]->grad.data();
      const bool add = in_add[1];
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        if (bcast) {
          float s = 0;
          for (int64_t p = 0; p < hw; ++p) s += dy[r * hw + p] * a[r * hw + p];
          db[r] = add ? db[r] + s : s;
        } else {
          for (int64_t p = 0; p < hw; ++p) {
            const float g = dy[r * hw + p] * a[r * hw + p];
            db[r * hw + p] = add ? db[r * hw + p] + g : g;
          }
        }
      }
    }
  }

 private:
  int64_t span() const { return in[0]->H * in[0]->W; }
  int64_t hw_b() const { return in[1]->H * in[1]->W; }
};

// ---- maxpool / avgpool over each [H, W] plane of x [C, n, H, W] ----
class PoolLayer : public BoundLayer {
 public:
  explicit PoolLayer(const LayerArgs& a) : BoundLayer(a) {
    g_ = pool_geom(*node, Shape{in[0]->H, in[0]->W, in[0]->C});
    max_ = node->op == Op::MaxPool;
    include_pad_ = !max_ && node->attrs.get_int("count_include_pad", 1) != 0;
    max2x2_ = max_ && g_.kh == 2 && g_.kw == 2 && g_.sh == 2 && g_.sw == 2 && g_.pt == 0 && g_.pl == 0 &&
              g_.pb == 0 && g_.pr == 0 && g_.dh == 1 && g_.dw == 1;
  }
  void forward(const Ctx& c) override {
    if (max2x2_) return forward_max2x2(c);
    const int64_t planes = out->C * c.n, H = g_.H, W = g_.W, Ho = g_.Ho, Wo = g_.Wo;
    if (max_) argmax_.resize(static_cast<size_t>(planes * Ho * Wo));
    const float* x = in[0]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float* xp = x + pl * H * W;
      float* yp = y + pl * Ho * Wo;
      for (int64_t ho = 0; ho < Ho; ++ho)
        for (int64_t wo = 0; wo < Wo; ++wo) {
          const int64_t h0 = ho * g_.sh - g_.pt, w0 = wo * g_.sw - g_.pl;
          const int64_t ha = std::max<int64_t>(h0, 0), hb = std::min(h0 + g_.kh, H);
          const int64_t wa = std::max<int64_t>(w0, 0), wb = std::min(w0 + g_.kw, W);
          if (max_) {
            float m = -std::numeric_limits<float>::infinity();
            int32_t at = static_cast<int32_t>(ha * W + wa);
            for (int64_t h = ha; h < hb; ++h)
              for (int64_t w = wa; w < wb; ++w)
                if (xp[h * W + w] > m) {
                  m = xp[h * W + w];
                  at = static_cast<int32_t>(h * W + w);
                }
            yp[ho * Wo + wo] = m;
            if (!argmax_.empty()) argmax_[static_cast<size_t>((pl * Ho + ho) * Wo + wo)] = at;
          } else {
            float s = 0;
            for (int64_t h = ha; h < hb; ++h)
              for (int64_t w = wa; w < wb; ++w) s += xp[h * W + w];
            yp[ho * Wo + wo] = s / divisor(h0, w0, ha, hb, wa, wb);
          }
        }
    }
  }
  void backward(const Ctx& c) override {
    if (in[0]->grad.empty()) return;
    if (max2x2_) return backward_max2x2(c);
    const int64_t planes = out->C * c.n, H = g_.H, W = g_.W, Ho = g_.Ho, Wo = g_.Wo;
    const float* dy = out->grad.data();
    float* dx = in[0]->grad.data();
    const bool add = in_add[0];
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      float* dxp = dx + pl * H * W;
      const float* dyp = dy + pl * Ho * Wo;
      if (!add) std::fill(dxp, dxp + H * W, 0.0f);
      for (int64_t ho = 0; ho < Ho; ++ho)
        for (int64_t wo = 0; wo < Wo; ++wo) {
          const float g = dyp[ho * Wo + wo];
          if (max_) {
            dxp[argmax_[static_cast<size_t>((pl * Ho + ho) * Wo + wo)]] += g;
            continue;
          }
          const int64_t h0 = ho * g_.sh - g_.pt, w0 = wo * g_.sw - g_.pl;
          const int64_t ha = std::max<int64_t>(h0, 0), hb = std::min(h0 + g_.kh, H);
          const int64_t wa = std::max<int64_t>(w0, 0), wb = std::min(w0 + g_.kw, W);
          const float v = g / divisor(h0, w0, ha, hb, wa, wb);
          for (int64_t h = ha; h < hb; ++h)
            for (int64_t w = wa; w < wb; ++w) dxp[h * W + w] += v;
        }
    }
  }

 private:
  // avgpool: the window size clipped to the padded map (count_include_pad)
  // or to the real pixels.
  float divisor(int64_t h0, int64_t w0, int64_t ha, int64_t hb, int64_t wa, int64_t wb) const {
    if (!include_pad_) return static_cast<float>(std::max<int64_t>(1, (hb - ha) * (wb - wa)));
    const int64_t he = std::min(h0 + g_.kh, g_.H + g_.pb), we = std::min(w0 + g_.kw, g_.W + g_.pr);
    return static_cast<float>((he - h0) * (we - w0));
  }
  // 2x2 stride 2 max pooling, the common case: no index kept; backward
  // routes the gradient to the first element equal to the maximum, which is
  // the one forward picked.
  void forward_max2x2(const Ctx& c) {
    const int64_t rows = out->C * c.n * g_.Ho, W = g_.W, Wo = g_.Wo, H = g_.H, Ho = g_.Ho;
    const float* x = in[0]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t pl = r / Ho, ho = r % Ho;
      const float* a = x + (pl * H + 2 * ho) * W;
      const float* b = a + W;
      float* yr = y + r * Wo;
      for (int64_t wo = 0; wo < Wo; ++wo) {
        float m = a[2 * wo];
        m = a[2 * wo + 1] > m ? a[2 * wo + 1] : m;
        m = b[2 * wo] > m ? b[2 * wo] : m;
        m = b[2 * wo + 1] > m ? b[2 * wo + 1] : m;
        yr[wo] = m;
      }
    }
  }
  void backward_max2x2(const Ctx& c) {
    const int64_t rows = out->C * c.n * g_.Ho, W = g_.W, Wo = g_.Wo, H = g_.H, Ho = g_.Ho;
    const float* x = in[0]->act.data();
    const float* y = out->act.data();
    const float* dy = out->grad.data();
    float* dx = in[0]->grad.data();
    const bool add = in_add[0];
    if (!add && H != 2 * Ho) {
      // An odd last row is never a maximum.
      for (int64_t pl = 0; pl < out->C * c.n; ++pl) std::fill(dx + (pl * H + H - 1) * W, dx + (pl * H + H) * W, 0.0f);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t pl = r / Ho, ho = r % Ho;
      const float* a = x + (pl * H + 2 * ho) * W;
      const float* b = a + W;
      float* da = dx + (pl * H + 2 * ho) * W;
      float* db = da + W;
      const float* yr = y + r * Wo;
      const float* gr = dy + r * Wo;
      if (add)
        route_max2x2<true>(a, b, yr, gr, Wo, da, db);
      else
        route_max2x2<false>(a, b, yr, gr, Wo, da, db);
      if (!add && W != 2 * Wo) da[W - 1] = db[W - 1] = 0.0f;  // an odd last column is never a maximum
    }
  }
  // One output row of 2x2 max pooling backward: the gradient goes to the
  // first of a0, a1, b0, b1 that equals the maximum, through selects rather
  // than branches (which of the four wins is data-dependent: mispredicted).
  template <bool Add>
  static void route_max2x2(const float* a, const float* b, const float* yr, const float* gr, int64_t Wo, float* da,
                           float* db) {
    for (int64_t wo = 0; wo < Wo; ++wo) {
      // r: the gradient not yet routed; each match takes it and leaves 0.
      const float m = yr[wo];
      float r = gr[wo];
      const bool e0 = a[2 * wo] == m;
      const float v0 = e0 ? r : 0.0f;
      r = e0 ? 0.0f : r;
      const bool e1 = a[2 * wo + 1] == m;
      const float v1 = e1 ? r : 0.0f;
      r = e1 ? 0.0f : r;
      const bool e2 = b[2 * wo] == m;
      const float v2 = e2 ? r : 0.0f;
      const float v3 = e2 ? 0.0f : r;
      if constexpr (Add) {
        da[2 * wo] += v0;
        da[2 * wo + 1] += v1;
        db[2 * wo] += v2;
        db[2 * wo + 1] += v3;
      } else {
        da[2 * wo] = v0;
        da[2 * wo + 1] = v1;
        db[2 * wo] = v2;
        db[2 * wo + 1] = v3;
      }
    }
  }

  WindowGeom g_;
  bool max_ = true, include_pad_ = true, max2x2_ = false;
  std::vector<int32_t> argmax_;  // [C * n, Ho, Wo]: index in the input plane
};

// ---- global average pool: x [C, n, H, W] -> y [C, n] ----
class GlobalAvgPoolLayer : public BoundLayer {
 public:
  explicit GlobalAvgPoolLayer(const LayerArgs& a) : BoundLayer(a) {}
  void forward(const Ctx& c) override {
    const int64_t rows = out->C * c.n, hw = in[0]->H * in[0]->W;
    const float* x = in[0]->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      float s = 0;
      for (int64_t p = 0; p < hw; ++p) s += x[r * hw + p];
      y[r] = s / static_cast<float>(hw);
    }
  }
  void backward(const Ctx& c) override {
    if (in[0]->grad.empty()) return;
    const int64_t rows = out->C * c.n, hw = in[0]->H * in[0]->W;
    const float* dy = out->grad.data();
    float* dx = in[0]->grad.data();
    const bool add = in_add[0];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float v = dy[r] / static_cast<float>(hw);
      for (int64_t p = 0; p < hw; ++p) dx[r * hw + p] = add ? dx[r * hw + p] + v : v;
    }
  }
};

// ---- add: y = sum x_i; dx_i = dy (fused with a following relu: y = max(sum, 0), dx_i = dy where y > 0) ----
class AddLayer : public BoundLayer {
 public:
  AddLayer(const LayerArgs& a, bool relu) : BoundLayer(a), relu_(relu) {}
  void forward(const Ctx& c) override {
    const int64_t n = out->C * out->plane(c.n);
    float* y = out->act.data();
    const float* x0 = in[0]->act.data();
    const float* x1 = in.size() > 1 ? in[1]->act.data() : nullptr;
    const size_t k = in.size();
    if (k == 2 && relu_)
      sum2<true>(x0, x1, y, n);
    else if (k == 2)
      sum2<false>(x0, x1, y, n);
    else {
      // Any other count: accumulate input by input, then the relu.
      store(y, x0, n, false);
      for (size_t j = 1; j < k; ++j) store(y, in[j]->act.data(), n, true);
      if (relu_) {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; ++i) y[i] = std::max(y[i], 0.0f);
      }
    }
  }
  void backward(const Ctx& c) override {
    const int64_t n = out->C * out->plane(c.n);
    const float* dy = out->grad.data();
    const float* y = out->act.data();
    for (size_t j = 0; j < in.size(); ++j) {
      if (in[j]->grad.empty()) continue;
      float* dx = in[j]->grad.data();
      if (!relu_)
        store(dx, dy, n, in_add[j]);
      else if (in_add[j])
        relu_backward<true>(y, dy, dx, n);
      else
        relu_backward<false>(y, dy, dx, n);
    }
  }

 private:
  // y = x0 + x1 (then max(., 0))
  template <bool Relu>
  static void sum2(const float* x0, const float* x1, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float v = x0[i] + x1[i];
      y[i] = Relu ? std::max(v, 0.0f) : v;
    }
  }
  bool relu_ = false;
};

// ---- concat along channels: the inputs' rows one after the other ----
class ConcatLayer : public BoundLayer {
 public:
  explicit ConcatLayer(const LayerArgs& a) : BoundLayer(a) {}
  void forward(const Ctx& c) override {
    const int64_t plane = out->plane(c.n);
    int64_t row = 0;
    for (Value* x : in) {
      store(out->act.data() + row * plane, x->act.data(), x->C * plane, false);
      row += x->C;
    }
  }
  void backward(const Ctx& c) override {
    const int64_t plane = out->plane(c.n);
    int64_t row = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i]->grad.empty()) store(in[i]->grad.data(), out->grad.data() + row * plane, in[i]->C * plane, in_add[i]);
      row += in[i]->C;
    }
  }
};

// ---- flatten: x [C, n, H, W] -> y [H * W * C, n], feature (h * W + w) * C + c (HWC order) ----
class FlattenLayer : public BoundLayer {
 public:
  explicit FlattenLayer(const LayerArgs& a) : BoundLayer(a) {}
  void forward(const Ctx& c) override {
    const Value* x = in[0];
    const int64_t n = c.n, C = x->C, hw = x->H * x->W;
    const float* src = x->act.data();
    float* y = out->act.data();
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t ch = 0; ch < C; ++ch) {
        float* yr = y + (p * C + ch) * n;
        const float* xr = src + ch * n * hw + p;
        for (int64_t j = 0; j < n; ++j) yr[j] = xr[j * hw];
      }
  }
  void backward(const Ctx& c) override {
    Value* x = in[0];
    if (x->grad.empty()) return;
    const int64_t n = c.n, C = x->C, hw = x->H * x->W;
    const float* dy = out->grad.data();
    float* dx = x->grad.data();
    const bool add = in_add[0];
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t j = 0; j < n; ++j) {
        float* d = dx + (ch * n + j) * hw;
        for (int64_t p = 0; p < hw; ++p) {
          const float v = dy[(p * C + ch) * n + j];
          d[p] = add ? d[p] + v : v;
        }
      }
  }
};

}  // namespace

std::unique_ptr<Layer> make_relu(const LayerArgs& a) { return std::make_unique<ReluLayer>(a); }
std::unique_ptr<Layer> make_clip(const LayerArgs& a) { return std::make_unique<ClipLayer>(a); }
std::unique_ptr<Layer> make_sigmoid(const LayerArgs& a) { return std::make_unique<UnaryLayer<SigmoidF>>(a); }
std::unique_ptr<Layer> make_hardsigmoid(const LayerArgs& a) { return std::make_unique<UnaryLayer<HardSigmoidF>>(a); }
std::unique_ptr<Layer> make_hardswish(const LayerArgs& a) { return std::make_unique<UnaryLayer<HardSwishF>>(a); }
std::unique_ptr<Layer> make_mul(const LayerArgs& a) { return std::make_unique<MulLayer>(a); }
std::unique_ptr<Layer> make_pool(const LayerArgs& a) { return std::make_unique<PoolLayer>(a); }
std::unique_ptr<Layer> make_global_avgpool(const LayerArgs& a) { return std::make_unique<GlobalAvgPoolLayer>(a); }
std::unique_ptr<Layer> make_add(const LayerArgs& a) { return std::make_unique<AddLayer>(a, false); }
std::unique_ptr<Layer> make_add_relu(const LayerArgs& a) { return std::make_unique<AddLayer>(a, true); }
std::unique_ptr<Layer> make_concat(const LayerArgs& a) { return std::make_unique<ConcatLayer>(a); }
std::unique_ptr<Layer> make_flatten(const LayerArgs& a) { return std::make_unique<FlattenLayer>(a); }

}  // namespace bsp::train
