// Activation block sparsity: the rule of act_sparsity.hpp.
#include "core/act_sparsity.hpp"

#include <cmath>
#include <cstdlib>

#include "core/checked.hpp"
#include "core/error.hpp"
#include "core/op_table.hpp"

namespace bsp {

namespace {

bool takes_rule(Op op) { return op_entry(op).act_rule; }

// Visits every block of every image: f(image base pointer, y0, y1, x0, x1,
// c0, c1) over [H, W, C] images. Returns the number of blocks for which
// `small` held and which were zeroed (zero = true) or only counted.
template <typename T, typename Small>
int64_t for_small_blocks(T* x, const Shape& shape, const std::array<int64_t, 3>& block, bool zero, Small small) {
  const std::array<int64_t, 3> hwc = act_image_shape(shape);
  const int64_t N = shape.at(0), H = hwc[0], W = hwc[1], C = hwc[2];
  const int64_t bh = block[0], bw = block[1], bc = block[2];
  const int64_t rows = (H + bh - 1) / bh;
  int64_t zeroed = 0;
#pragma omp parallel for collapse(2) reduction(+ : zeroed) schedule(static) if (N * H * W * C > (int64_t{1} << 16))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t by = 0; by < rows; ++by) {
      T* img = x + n * H * W * C;
      const int64_t y0 = by * bh, y1 = std::min(H, y0 + bh);
      for (int64_t x0 = 0; x0 < W; x0 += bw) {
        const int64_t x1 = std::min(W, x0 + bw);
        for (int64_t c0 = 0; c0 < C; c0 += bc) {
          const int64_t c1 = std::min(C, c0 + bc), len = c1 - c0;
          bool all = true;
          for (int64_t y = y0; y < y1 && all; ++y)
            for (int64_t xx = x0; xx < x1 && all; ++xx) {
              const T* p = img + (y * W + xx) * C + c0;
              int64_t big = 0;  // counted, not branched: the inner loop vectorises
              for (int64_t c = 0; c < len; ++c) big += !small(p[c]);
              all = big == 0;
            }
          if (!all) continue;
          ++zeroed;
          if (zero)
            for (int64_t y = y0; y < y1; ++y)
              for (int64_t xx = x0; xx < x1; ++xx) std::fill_n(img + (y * W + xx) * C + c0, len, T{0});
        }
      }
    }
  return zeroed;
}

}  // namespace

std::array<int64_t, 3> act_image_shape(const Shape& x) {
  if (x.size() == 4) return {x[1], x[2], x[3]};
  if (x.size() == 2) return {1, 1, x[1]};
  fail("internal: an activation rule on a tensor of shape {}", shape_str(x));
}

void check_act_rule(const Node& n) {
  const auto& all = n.attrs.all();
  const auto t = all.find("act_threshold");
  const auto b = all.find("act_block");
  if (t == all.end() && b == all.end()) return;
  if (!takes_rule(n.op))
    fail("node '{}': only conv2d and dense layers take an activation rule ({} on {})", n.name,
         t != all.end() ? "act_threshold" : "act_block", op_name(n.op));
  if (t == all.end()) fail("node '{}': act_block without act_threshold", n.name);
  const double* v = std::get_if<double>(&t->second);
  if (!v) fail("node '{}': act_threshold must be a float64 scalar", n.name);
  if (!std::isfinite(*v) || *v < 0)
    fail("node '{}': act_threshold {} is not a finite number >= 0", n.name, *v);
  if (b != all.end()) {
    const auto* blk = std::get_if<std::vector<int64_t>>(&b->second);
    if (!blk || blk->size() != 3)
      fail("node '{}': act_block must be three integers [bh, bw, bc]", n.name);
    for (int64_t d : *blk)
      if (d < 1 || d > limits::kMaxDim)
        fail("node '{}': act_block [{}, {}, {}] has a size out of range: 1 to {} (bsp-format(5), ACTIVATION SPARSITY)",
             n.name, (*blk)[0], (*blk)[1], (*blk)[2], limits::kMaxDim);
  }
}

std::optional<ActRule> act_rule(const Node& n) {
  if (!takes_rule(n.op) || !n.attrs.has("act_threshold")) return std::nullopt;
  ActRule r;
  r.threshold = n.attrs.get_double("act_threshold");
  if (!(r.threshold > 0)) return std::nullopt;
  if (n.attrs.has("act_block")) {
    const auto b = n.attrs.get_ints("act_block");
    r.block = {b.at(0), b.at(1), b.at(2)};
  }
  return r;
}

bool has_act_rules(const Model& m) {
  for (const Node& n : m.nodes)
    if (act_rule(n)) return true;
  return false;
}

void set_act_rule(Node& n, double threshold, const std::array<int64_t, 3>& block) {
  if (!takes_rule(n.op)) fail("node '{}': only conv2d and dense layers take an activation rule", n.name);
  Attrs a;
  for (const auto& [k, v] : n.attrs.all())
    if (k != "act_threshold" && k != "act_block") a.set(k, v);
  if (threshold > 0) {
    a.set("act_threshold", threshold);
    a.set("act_block", std::vector<int64_t>(block.begin(), block.end()));
  }
  n.attrs = std::move(a);
  check_act_rule(n);
}

int64_t zero_small_blocks_inplace(float* x, const Shape& shape, const std::array<int64_t, 3>& block, float t) {
  return for_small_blocks(x, shape, block, true, [t](float v) { return std::fabs(v) < t; });
}

Tensor zero_small_blocks(const Tensor& x, const std::array<int64_t, 3>& block, float t) {
  Tensor y = x.clone();
  zero_small_blocks_inplace(y.data(), y.shape(), block, t);
  return y;
}

int64_t zero_small_blocks_inplace(int8_t* x, const Shape& shape, const std::array<int64_t, 3>& block, int32_t tq) {
  return for_small_blocks(x, shape, block, true, [tq](int8_t v) { return std::abs(int32_t{v}) < tq; });
}

int64_t act_blocks_per_image(const std::array<int64_t, 3>& hwc, const std::array<int64_t, 3>& block) {
  int64_t total = 1;
  for (int k = 0; k < 3; ++k) total *= (hwc[static_cast<size_t>(k)] + block[static_cast<size_t>(k)] - 1) / block[static_cast<size_t>(k)];
  return total;
}

double zero_block_fraction(const Tensor& x, const std::array<int64_t, 3>& block, float t) {
  const int64_t blocks = x.dim(0) * act_blocks_per_image(act_image_shape(x.shape()), block);
  if (blocks == 0) return 0;
  // Counting only: the const_cast is never written through (zero = false).
  const int64_t zero = for_small_blocks(const_cast<float*>(x.data()), x.shape(), block, false,
                                        [t](float v) { return std::fabs(v) < t || v == 0.0f; });
  return static_cast<double>(zero) / static_cast<double>(blocks);
}

int32_t act_qthreshold(double threshold, double s) {
  if (!(threshold > 0)) return 0;
  const double r = std::ceil(threshold / s);
  return r >= 256 ? 256 : static_cast<int32_t>(r);
}

}  // namespace bsp
