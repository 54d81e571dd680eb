#include "explore/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/act_sparsity.hpp"
#include "core/finite.hpp"
#include "core/shapes.hpp"
#include "kernels/runner.hpp"

namespace bsp::explore {

std::vector<int64_t> holdout_indices(int64_t total, int64_t n, uint64_t seed, bool first) {
  std::vector<int64_t> idx;
  if (n >= total || n <= 0) n = total;
  if (first) {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  const std::vector<int64_t> order = shuffled_order(total, seed, 0);
  idx.assign(order.begin(), order.begin() + n);
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<LayerInfo> weighted_layers(const Model& m) {
  const std::vector<Shape> shapes = infer_shapes(m);
  std::vector<LayerInfo> out;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& n = m.nodes[i];
    if (!op_has_weight(n.op)) continue;
    LayerInfo l;
    l.node = i;
    l.name = n.name;
    l.macs = node_macs(n, shapes[i]);
    const Shape& in = shapes[m.index_of(n.inputs.at(0))];  // per image: [H, W, C] or [F]
    l.hwc = in.size() == 3 ? std::array<int64_t, 3>{in[0], in[1], in[2]} : std::array<int64_t, 3>{1, 1, in.at(0)};
    out.push_back(std::move(l));
  }
  return out;
}

namespace {

// f(block max magnitude, values in the block) for every block of one
// [H, W, C] image, in the order of act_sparsity.cpp: block row, block
// column, channel block. A NaN counts as +infinity (it keeps its block).
template <typename F>
void for_each_block(const float* img, const std::array<int64_t, 3>& hwc, const std::array<int64_t, 3>& block, F&& f) {
  const int64_t H = hwc[0], W = hwc[1], C = hwc[2];
  const int64_t bh = block[0], bw = block[1], bc = block[2];
  for (int64_t y0 = 0; y0 < H; y0 += bh) {
    const int64_t y1 = std::min(H, y0 + bh);
    for (int64_t x0 = 0; x0 < W; x0 += bw) {
      const int64_t x1 = std::min(W, x0 + bw);
      for (int64_t c0 = 0; c0 < C; c0 += bc) {
        const int64_t c1 = std::min(C, c0 + bc);
        float mx = 0;
        bool nan = false;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t xx = x0; xx < x1; ++xx) {
            const float* p = img + (y * W + xx) * C;
            for (int64_t c = c0; c < c1; ++c) {
              const float a = std::fabs(p[c]);
              nan |= std::isnan(a);
              mx = a > mx ? a : mx;
            }
          }
        f(nan ? std::numeric_limits<float>::infinity() : mx, (y1 - y0) * (x1 - x0) * (c1 - c0));
      }
    }
  }
}

}  // namespace

BlockCount count_zero_blocks(const Tensor& x, const std::array<int64_t, 3>& block, float t) {
  const std::array<int64_t, 3> hwc = act_image_shape(x.shape());
  const int64_t N = x.dim(0), per = hwc[0] * hwc[1] * hwc[2];
  int64_t blocks = 0, zero_blocks = 0, values = 0, zero_values = 0;
#pragma omp parallel for reduction(+ : blocks, zero_blocks, values, zero_values) schedule(static) if (N * per > (int64_t{1} << 16))
  for (int64_t n = 0; n < N; ++n)
    for_each_block(x.data() + n * per, hwc, block, [&](float mx, int64_t v) {
      ++blocks;
      values += v;
      if (mx < t || mx == 0.0f) ++zero_blocks, zero_values += v;
    });
  return {blocks, zero_blocks, values, zero_values};
}

void block_maxima(const Tensor& x, const std::array<int64_t, 3>& block, std::vector<float>& out, size_t cap) {
  // Whole images only, so that the sample does not depend on where a batch ends.
  const std::array<int64_t, 3> hwc = act_image_shape(x.shape());
  const int64_t N = x.dim(0), per = hwc[0] * hwc[1] * hwc[2];
  for (int64_t n = 0; n < N && out.size() < cap; ++n)
    for_each_block(x.data() + n * per, hwc, block, [&](float mx, int64_t) { out.push_back(mx); });
}

HoldoutEval::HoldoutEval(const ImageSet& s, std::vector<int64_t> idx, Normalization norm, int64_t batch)
    : s_(s), idx_(std::move(idx)), norm_(std::move(norm)), batch_(std::max<int64_t>(1, batch)) {}

EvalOutcome HoldoutEval::run(const Model& m, const std::vector<LayerInfo>& layers,
                             const std::function<void(size_t, const Tensor&)>& on_input) const {
  const kernels::Runner runner(m, kernels::Path::Dense);
  // The slot (node index) each watched layer reads: the runner shows every
  // step's output by the last node of its fused chain, which is the node a
  // consumer names.
  std::vector<std::vector<size_t>> readers(m.nodes.size());
  for (size_t k = 0; k < layers.size(); ++k) readers[m.index_of(m.nodes[layers[k].node].inputs.at(0))].push_back(k);
  auto observe = [&](size_t node, const Tensor& t) {
    if (!on_input) return;
    for (size_t k : readers[node]) on_input(k, t);
  };
  EvalOutcome r;
  const int64_t total = images();
  Tensor x;
  for (int64_t i0 = 0; i0 < total; i0 += batch_) {
    const int64_t n = std::min(batch_, total - i0);
    if (x.empty() || x.dim(0) != n) x = Tensor({n, s_.h, s_.w, s_.c});
    assemble_batch(s_, idx_.data() + i0, n, norm_, Augmentation{}, 0, x.data(), BatchLayout::NHWC);
    const Tensor y = runner.logits(x, observe);
    const int64_t K = static_cast<int64_t>(y.size()) / n;
    if (const int64_t e = first_nonfinite(y.data(), n * K); e < n * K)
      fail("the forward pass is not finite: the logits of held-out image {} are {} (the model overflows float32)",
           idx_[static_cast<size_t>(i0 + e / K)], nonfinite_word(y.data()[e]));
    for (int64_t j = 0; j < n; ++j) {
      const float* row = y.data() + j * K;
      const int64_t pred = std::max_element(row, row + K) - row;
      r.correct += pred == s_.labels[static_cast<size_t>(idx_[static_cast<size_t>(i0 + j)])];
    }
    r.n += n;
  }
  return r;
}

}  // namespace bsp::explore
