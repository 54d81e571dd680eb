#include "plot/mask_svg.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "compact/weights.hpp"
#include "plot/svg.hpp"

namespace bsp::plot {

namespace {

constexpr int64_t kBlock = 8;  // the grid's block: 8 outputs x 8 inputs
constexpr int kShades = 8;     // kept fractions drawn in this many steps

// [ceil(O/8), ceil(I/8)] kept fractions of a weight: from its mask when it
// has one (block or element), else from its nonzero weights.
std::vector<double> block_fractions(const Node& n, const compact::WeightGeom& g, int64_t& rows, int64_t& cols) {
  rows = (g.O + kBlock - 1) / kBlock;
  cols = (g.I + kBlock - 1) / kBlock;
  std::vector<double> kept(static_cast<size_t>(rows * cols), 0.0), total(kept.size(), 0.0);
  const Tensor& w = n.param("weight");
  const Mask* mk = n.mask ? &*n.mask : nullptr;
  const int64_t taps = g.kh * g.kw;
  for (int64_t o = 0; o < g.O; ++o)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t i = 0; i < g.I; ++i) {
        const int64_t e = (o * taps + t) * g.I + i;  // OHWI (dense: [O, I])
        bool on;
        if (mk && mk->is_block())
          on = mk->bits.data()[(o / mk->block_rows) * mk->bits.dim(1) + i / mk->block_cols] != 0;
        else if (mk)
          on = mk->bits.data()[e] != 0;
        else
          on = w.data()[e] != 0.0f;
        const size_t b = static_cast<size_t>((o / kBlock) * cols + i / kBlock);
        kept[b] += on ? 1.0 : 0.0;
        total[b] += 1.0;
      }
  for (size_t b = 0; b < kept.size(); ++b) kept[b] = total[b] > 0 ? kept[b] / total[b] : 0.0;
  return kept;
}

// Pruned blocks light grey; kept fractions from light to dark blue.
std::string shade(int level) {
  if (level == 0) return "#ececec";
  const double f = static_cast<double>(level) / kShades;
  const int r = static_cast<int>(std::lround(198 + (8 - 198) * f));
  const int gch = static_cast<int>(std::lround(219 + (48 - 219) * f));
  const int b = static_cast<int>(std::lround(239 + (107 - 239) * f));
  return fmt::format("#{:02x}{:02x}{:02x}", r, gch, b);
}

}  // namespace

void write_mask_svg(const Model& m, const std::string& path) {
  constexpr double kWidth = 960, kLeft = 12, kGridW = 900, kGridH = 360, kMaxCell = 10;
  Svg svg(kWidth, 100);
  double y = 10;
  svg.text(kLeft, y + 14, fmt::format("{}: block masks (8x8 channel blocks; across: output channels, down: input "
                                      "channels)", m.arch.empty() ? std::string("model") : m.arch),
           14);
  // The legend: the shades of the kept fraction.
  y += 26;
  for (int l = 0; l <= kShades; ++l) svg.rect(kLeft + 24.0 * l, y, 22, 10, shade(l));
  svg.text(kLeft + 24.0 * (kShades + 1) + 6, y + 9, "kept fraction of the block: 0 ... 1", 10);
  y += 24;
  for (const Node& n : m.nodes) {
    if (!op_has_weight(n.op) || !n.has_param("weight")) continue;
    const compact::WeightGeom g = compact::weight_geom(n.param("weight").shape());
    int64_t rows = 0, cols = 0;
    const std::vector<double> frac = block_fractions(n, g, rows, cols);
    // Output blocks across, input blocks down: one cell per 8x8 block.
    const double cell = std::min({kMaxCell, kGridW / static_cast<double>(std::max<int64_t>(rows, 1)),
                                  kGridH / static_cast<double>(std::max<int64_t>(cols, 1))});
    double kept = 0;
    for (double f : frac) kept += f;
    svg.text(kLeft, y + 11,
             fmt::format("{}  {}  Cout {} x Cin {}{}  {}", n.name, op_name(n.op), g.O, g.I,
                         g.kh * g.kw > 1 ? fmt::format(" x {}x{}", g.kh, g.kw) : std::string(),
                         n.mask ? fmt::format("{} density {:.3f}", n.mask->pattern, n.mask->density)
                                : std::string("no mask")),
             11);
    y += 16;
    // Each input-block row as runs of equal shade: one rect per run.
    for (int64_t ci = 0; ci < cols; ++ci) {
      int64_t start = 0;
      int level = -1;
      auto flush = [&](int64_t end) {
        if (level < 0 || end <= start) return;
        svg.rect(kLeft + cell * static_cast<double>(start), y + cell * static_cast<double>(ci),
                 cell * static_cast<double>(end - start), cell, shade(level));
      };
      for (int64_t co = 0; co < rows; ++co) {
        const double f = frac[static_cast<size_t>(co * cols + ci)];
        const int l = f <= 0 ? 0 : std::max(1, static_cast<int>(std::lround(f * kShades)));
        if (l != level) {
          flush(co);
          start = co;
          level = l;
        }
      }
      flush(rows);
    }
    y += cell * static_cast<double>(cols) + 14;
  }
  svg.set_height(y);
  svg.write(path);
}

}  // namespace bsp::plot
