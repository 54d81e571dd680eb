// Mask choosers for the patterns whose units are scored once and selected
// once: blocks, channels, single weights; and N:M, which needs no selection.
#include <algorithm>
#include <cmath>

#include "sparsity/nm.hpp"
#include "sparsity/prune_impl.hpp"
#include "sparsity/select.hpp"

namespace bsp::prune_detail {

namespace {

// Runs the selection per layer (each at its own target, keeping at least its
// best unit) or once over all layers (the budget is the sum of the targets).
template <class S>
void run_selection(std::vector<S>& spans, const std::vector<LayerWork>& layers, Scope scope) {
  if (scope == Scope::Global) {
    double target = 0;
    for (const auto& l : layers) target += l.density * static_cast<double>(l.numel());
    select_top(spans, SelectOptions{target, false});
    return;
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    std::vector<S> one{spans[i]};
    select_top(one, SelectOptions{layers[i].density * static_cast<double>(layers[i].numel()), true});
  }
}

struct BlockSpan {
  const float* scores;
  uint8_t* out;
  int64_t bcols, r, c, cout, cin, window, n;
  int64_t size() const { return n; }
  float score(int64_t i) const { return scores[i]; }
  int64_t weight(int64_t i) const {
    const int64_t br = i / bcols, bc = i % bcols;
    return std::min(r, cout - br * r) * std::min(c, cin - bc * c) * window;
  }
  void set(int64_t i, bool keep) { out[i] = keep; }
};

struct ElementSpan {
  const float* w;
  const uint8_t* old;  // null: every weight is a candidate
  uint8_t* out;
  int64_t n;
  int64_t size() const { return n; }
  float score(int64_t i) const { return old && !old[i] ? -1.0f : std::fabs(w[i]); }
  int64_t weight(int64_t) const { return 1; }
  void set(int64_t i, bool keep) { out[i] = keep; }
};

// Element count of the kept blocks of a block mask over a [cout, window, cin] weight.
int64_t kept_block_weights(const Array<uint8_t>& bits, int64_t r, int64_t c, int64_t cout, int64_t cin,
                           int64_t window) {
  const int64_t bcols = bits.dim(1);
  int64_t kept = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(bits.size()); ++i)
    if (bits[static_cast<size_t>(i)]) {
      const int64_t br = i / bcols, bc = i % bcols;
      kept += std::min(r, cout - br * r) * std::min(c, cin - bc * c) * window;
    }
  return kept;
}

}  // namespace

int64_t count_kept(const Array<uint8_t>& bits) {
  int64_t kept = 0;
  const int64_t n = static_cast<int64_t>(bits.size());
  const uint8_t* b = bits.data();
#pragma omp parallel for if (n > (1 << 16)) reduction(+ : kept) schedule(static)
  for (int64_t i = 0; i < n; ++i) kept += b[i] != 0;
  return kept;
}

void block_scores(const LayerWork& l, int64_t r, int64_t c, Criterion crit, std::vector<float>& scores) {
  const int64_t brows = (l.cout + r - 1) / r, bcols = (l.cin + c - 1) / c;
  scores.assign(static_cast<size_t>(brows * bcols), 0.0f);
  const float* w = l.w->data();
  const int64_t window = l.window, cin = l.cin, cout = l.cout;
#pragma omp parallel if (l.numel() > (1 << 16))
  {
    // Per block column: sum, sum of squares, sum of magnitudes (double: a
    // block of a large layer sums up to ~10^5 terms).
    std::vector<double> sum(static_cast<size_t>(bcols)), sq(static_cast<size_t>(bcols)), ab(static_cast<size_t>(bcols));
#pragma omp for schedule(dynamic)
    for (int64_t br = 0; br < brows; ++br) {
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(sq.begin(), sq.end(), 0.0);
      std::fill(ab.begin(), ab.end(), 0.0);
      const int64_t o1 = std::min(cout, (br + 1) * r);
      for (int64_t o = br * r; o < o1; ++o)
        for (int64_t kk = 0; kk < window; ++kk) {
          const float* row = w + (o * window + kk) * cin;
          for (int64_t bc = 0; bc < bcols; ++bc) {
            float s = 0, q = 0, a = 0;
            const int64_t c1 = std::min(cin, (bc + 1) * c);
            for (int64_t ci = bc * c; ci < c1; ++ci) {
              s += row[ci];
              q += row[ci] * row[ci];
              a += std::fabs(row[ci]);
            }
            sum[static_cast<size_t>(bc)] += s;
            sq[static_cast<size_t>(bc)] += q;
            ab[static_cast<size_t>(bc)] += a;
          }
        }
      for (int64_t bc = 0; bc < bcols; ++bc) {
        const double n = static_cast<double>((o1 - br * r) * (std::min(cin, (bc + 1) * c) - bc * c) * window);
        const size_t j = static_cast<size_t>(bc);
        double v = 0;
        switch (crit) {
          case Criterion::L2:
            v = std::sqrt(sq[j] / n);
            break;
          case Criterion::L1:
            v = ab[j] / n;
            break;
          case Criterion::Variance: {
            const double mean = sum[j] / n;
            v = std::max(0.0, sq[j] / n - mean * mean);
            break;
          }
        }
        scores[static_cast<size_t>(br * bcols + bc)] = static_cast<float>(v);
      }
    }
  }
}

void choose_blocks(std::vector<LayerWork>& layers, const Pattern& p, Criterion crit, Scope scope) {
  const int64_t r = p.block_rows, c = p.block_cols;
  std::vector<std::vector<float>> scores(layers.size());
  std::vector<BlockSpan> spans;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerWork& l = layers[i];
    block_scores(l, r, c, crit, scores[i]);
    const int64_t brows = (l.cout + r - 1) / r, bcols = (l.cin + c - 1) / c;
    if (l.old) {
      // The old block grid is this one or coarser (prune.cpp checks): a block
      // is a candidate when the old block holding it was kept.
      const int64_t fr = l.old->block_rows / r, fc = l.old->block_cols / c, obcols = l.old->bits.dim(1);
      for (int64_t br = 0; br < brows; ++br)
        for (int64_t bc = 0; bc < bcols; ++bc)
          if (!l.old->bits[static_cast<size_t>((br / fr) * obcols + bc / fc)])
            scores[i][static_cast<size_t>(br * bcols + bc)] = -1.0f;
    }
    l.result.block_rows = r;
    l.result.block_cols = c;
    l.result.bits = Array<uint8_t>({brows, bcols});
    spans.push_back({scores[i].data(), l.result.bits.data(), bcols, r, c, l.cout, l.cin, l.window, brows * bcols});
  }
  run_selection(spans, layers, scope);
  for (auto& l : layers)
    l.result.density = static_cast<double>(kept_block_weights(l.result.bits, r, c, l.cout, l.cin, l.window)) /
                       static_cast<double>(l.numel());
}

void choose_channels(std::vector<LayerWork>& layers, Criterion crit, Scope scope) {
  std::vector<std::vector<float>> scores(layers.size());
  std::vector<std::vector<uint8_t>> keep(layers.size());
  std::vector<BlockSpan> spans;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerWork& l = layers[i];
    block_scores(l, 1, l.cin, crit, scores[i]);  // one block per output channel
    const int64_t k = l.k();
    if (l.old)
      for (int64_t o = 0; o < l.cout; ++o) {
        const uint8_t* row = l.old->bits.data() + o * k;
        if (std::find(row, row + k, uint8_t{1}) == row + k) scores[i][static_cast<size_t>(o)] = -1.0f;
      }
    keep[i].assign(static_cast<size_t>(l.cout), 0);
    spans.push_back({scores[i].data(), keep[i].data(), 1, 1, l.cin, l.cout, l.cin, l.window, l.cout});
  }
  run_selection(spans, layers, scope);
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerWork& l = layers[i];
    l.result.bits = Array<uint8_t>(l.w->shape());
    const int64_t k = l.k();
    int64_t kept = 0;
    for (int64_t o = 0; o < l.cout; ++o)
      if (keep[i][static_cast<size_t>(o)]) {
        std::fill(l.result.bits.data() + o * k, l.result.bits.data() + (o + 1) * k, uint8_t{1});
        kept += k;
      }
    l.result.density = static_cast<double>(kept) / static_cast<double>(l.numel());
  }
}

void choose_unstructured(std::vector<LayerWork>& layers, Scope scope) {
  std::vector<ElementSpan> spans;
  for (auto& l : layers) {
    l.result.bits = Array<uint8_t>(l.w->shape());
    spans.push_back({l.w->data(), l.old ? l.old->bits.data() : nullptr, l.result.bits.data(), l.numel()});
  }
  run_selection(spans, layers, scope);
  for (auto& l : layers)
    l.result.density = static_cast<double>(count_kept(l.result.bits)) / static_cast<double>(l.numel());
}

void choose_nm(std::vector<LayerWork>& layers, const Pattern& p) {
  for (auto& l : layers) {
    l.result.bits = Array<uint8_t>(l.w->shape());
    nm_mask(l.w->data(), l.cout * l.window, l.cin, 1, p.n, p.m, l.old ? l.old->bits.data() : nullptr,
            l.result.bits.data());
    l.result.density = static_cast<double>(count_kept(l.result.bits)) / static_cast<double>(l.numel());
  }
}

}  // namespace bsp::prune_detail
