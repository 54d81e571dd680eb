// The activation rule of a conv2d or dense node (core/act_sparsity.hpp) in
// the trainer: a layer of its own before the node's, from the node's input
// value to a private copy that the node's layer reads. Forward zeroes every
// block whose values all have |v| < t (float32), exactly the reference rule
// on the channel-major layout (net.hpp); backward passes the gradient
// through the kept blocks only (a zeroed block's output does not depend on
// its input).
#include <cmath>

#include "core/act_sparsity.hpp"
#include "train/layers.hpp"

namespace bsp::train {

namespace {

class ActZeroLayer : public BoundLayer {
 public:
  ActZeroLayer(const LayerArgs& a, const ActRule& r) : BoundLayer(a), block_(r.block), t_(r.t()) {}

  void forward(const Ctx& c) override { visit(c.n, true); }

  void backward(const Ctx& c) override {
    if (in[0]->grad.empty()) return;
    visit(c.n, false);
  }

 private:
  // Over every block of every image: forward copies a kept block's values
  // (zeros for a small one) to out->act; backward writes (or adds) out's
  // gradient of a kept block to in's. A block was zeroed exactly when its
  // output is all zero: a kept block holds a value with |v| >= t > 0.
  void visit(int64_t n, bool fwd) {
    const Value& v = *in[0];
    const int64_t H = v.H, W = v.W, C = v.C, plane = v.plane(n);
    const int64_t bh = block_[0], bw = block_[1], bc = block_[2];
    const int64_t rows = (H + bh - 1) / bh;
    const float* x = fwd ? in[0]->act.data() : out->act.data();
    const bool add = !fwd && in_add[0];
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t by = 0; by < rows; ++by) {
        const int64_t y0 = by * bh, y1 = std::min(H, y0 + bh);
        for (int64_t x0 = 0; x0 < W; x0 += bw) {
          const int64_t x1 = std::min(W, x0 + bw);
          for (int64_t c0 = 0; c0 < C; c0 += bc) {
            const int64_t c1 = std::min(C, c0 + bc);
            bool small = true;  // forward: every |v| < t; backward: the output block all zero
            for (int64_t ch = c0; ch < c1 && small; ++ch)
              for (int64_t y = y0; y < y1 && small; ++y) {
                const float* p = x + ch * plane + (j * H + y) * W;
                for (int64_t xx = x0; xx < x1; ++xx)
                  small &= fwd ? std::fabs(p[xx]) < t_ : p[xx] == 0.0f;
              }
            for (int64_t ch = c0; ch < c1; ++ch)
              for (int64_t y = y0; y < y1; ++y) {
                const int64_t o = ch * plane + (j * H + y) * W;
                if (fwd) {
                  const float* src = in[0]->act.data() + o;
                  float* dst = out->act.data() + o;
                  for (int64_t xx = x0; xx < x1; ++xx) dst[xx] = small ? 0.0f : src[xx];
                } else {
                  const float* dy = out->grad.data() + o;
                  float* dx = in[0]->grad.data() + o;
                  for (int64_t xx = x0; xx < x1; ++xx) {
                    const float g = small ? 0.0f : dy[xx];
                    dx[xx] = add ? dx[xx] + g : g;
                  }
                }
              }
          }
        }
      }
  }

  std::array<int64_t, 3> block_;
  float t_;
};

}  // namespace

std::unique_ptr<Layer> make_act_zero(const LayerArgs& a, const ActRule& r) {
  return std::make_unique<ActZeroLayer>(a, r);
}

}  // namespace bsp::train
