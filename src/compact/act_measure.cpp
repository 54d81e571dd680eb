// Zero-block fractions of activation rules measured on data (act_measure.hpp).
#include "compact/act_measure.hpp"

#include <algorithm>
#include <numeric>

#include "compact/compact.hpp"
#include "compact/int8.hpp"
#include "core/error.hpp"
#include "core/reference_forward.hpp"

namespace bsp {

std::vector<LayerActStats> measure_act_fractions(const Model& m, const ImageSet& images, const Normalization& norm,
                                                 int64_t limit, const ActMeasureOptions& opt) {
  std::vector<LayerActStats> stats;
  // The ruled layers, and for every producer the layers that read it.
  std::vector<std::vector<size_t>> readers(m.nodes.size());
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const std::optional<ActRule> r = act_rule(m.nodes[i]);
    if (!r) continue;
    LayerActStats s;
    s.node = i;
    s.name = m.nodes[i].name;
    s.rule = *r;
    readers[m.index_of(m.nodes[i].inputs.at(0))].push_back(stats.size());
    stats.push_back(s);
  }
  if (stats.empty()) return stats;
  const bool int8 = opt.engine == ActMeasureEngine::Int8;
  const q8::QModel* q = nullptr;
  if (int8) {
    if (!(m.compact && m.compact->int8))
      fail("measuring the int8 zero-block fractions needs the model's int8 program: run 'bsp compact --dtype int8' first");
    q = &*m.compact->int8;
    for (LayerActStats& s : stats) s.tq = q->nodes.at(s.node).act_q;
  }
  const Shape in = m.input_shape();
  if (images.h != in.at(0) || images.w != in.at(1) || images.c != in.at(2))
    fail("the images are {}x{}x{}, the model takes {}x{}x{}", images.h, images.w, images.c, in[0], in[1], in[2]);
  const int64_t n = limit > 0 ? std::min(limit, images.n) : images.n;
  if (n < 1) fail("no images to measure the zero-block fractions on");
  const int64_t batch = std::max<int64_t>(1, opt.batch);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t nb = std::min(batch, n - b0);
    Tensor x({nb, images.h, images.w, images.c});
    assemble_batch(images, idx.data() + b0, nb, norm, Augmentation{}, 0, x.data(), BatchLayout::NHWC);
    // A producer's output seen as it is made: the blocks of each reader's
    // rule that are all small (|v| < t; int8 |q| < T, T >= 1) -- those the
    // rule leaves zero, already-zero blocks included.
    auto count = [&](size_t node, const Shape& shape, auto zero_copy) {
      for (size_t k : readers[node]) {
        LayerActStats& s = stats[k];
        s.blocks += shape.at(0) * act_blocks_per_image(act_image_shape(shape), s.rule.block);
        s.zero_blocks += zero_copy(s);
      }
    };
    if (int8) {
      q8::reference_forward(m, *q, x, [&](size_t node, const Array<int8_t>& out) {
        count(node, out.shape(), [&](const LayerActStats& s) {
          Array<int8_t> c = out.clone();
          return zero_small_blocks_inplace(c.data(), c.shape(), s.rule.block, s.tq);
        });
      });
    } else {
      reference_forward(m, x, [&](size_t node, const Tensor& out) {
        count(node, out.shape(), [&](const LayerActStats& s) {
          Tensor c = out.clone();
          return zero_small_blocks_inplace(c.data(), c.shape(), s.rule.block, s.rule.t());
        });
      });
    }
  }
  for (const LayerActStats& s : stats)
    if (s.blocks == 0) fail("internal: layer '{}': its input was never seen", s.name);
  return stats;
}

}  // namespace bsp
