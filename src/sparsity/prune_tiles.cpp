// Tile-wise (TW-2D) and tile-vector-wise (TVW) masks, after the tile-sparsity
// paper as shared/DESIGN.md section 2 states it. The weight is B[K, N] with
// K = kh*kw*Cin and N = Cout; column n of B is the weight's row n (OHWI), so
// columns are contiguous.
//
//   1. columns: score ||B[:,n]||_2 / K, keep the best to density sqrt(d)
//      (sparsity s' = 1 - sqrt(1 - s) with s = 1 - d);
//   2. cut the kept columns, in order, into tiles of G;
//   3. rows inside each tile: score ||B[k, tile]||_2 / |tile|, keep the best
//      until the layers reach density d (so the two steps multiply to d);
//      a tile left without rows loses its columns;
//   4. tvw only: 2:4 along K over each column's kept rows (TW ran at 2d).
// With global scope steps 1 and 3 each use one threshold over all layers.
// A layer whose mask is already tile-wise with the same G keeps its tiles:
// columns and rows only leave them.
#include <algorithm>
#include <cmath>

#include "sparsity/prune_impl.hpp"
#include "sparsity/select.hpp"

namespace bsp::prune_detail {

namespace {

struct ColumnSpan {
  const float* scores;
  uint8_t* out;
  int64_t k, n;
  int64_t size() const { return n; }
  float score(int64_t i) const { return scores[i]; }
  int64_t weight(int64_t) const { return k; }
  void set(int64_t i, bool keep) { out[i] = keep; }
};

struct RowSpan {  // units: (tile, row) pairs, tile-major
  const float* scores;
  uint8_t* out;
  const int64_t* tile_cols;  // columns in each tile
  int64_t k, n;
  int64_t size() const { return n; }
  float score(int64_t i) const { return scores[i]; }
  int64_t weight(int64_t i) const { return tile_cols[i / k]; }
  void set(int64_t i, bool keep) { out[i] = keep; }
};

// Selection per layer or global, at per-layer targets `targets` (weights).
template <class S>
void select(std::vector<S>& spans, const std::vector<double>& targets, Scope scope) {
  if (scope == Scope::Global) {
    double t = 0;
    for (double x : targets) t += x;
    select_top(spans, SelectOptions{t, false});
    return;
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    std::vector<S> one{spans[i]};
    select_top(one, SelectOptions{targets[i], true});
  }
}

// Per-layer state between the steps.
struct TileState {
  std::vector<float> col_scores;
  std::vector<uint8_t> col_keep;
  std::vector<int32_t> tile_of;               // [N], -1 = pruned
  std::vector<int32_t> old_tile_of_new;       // new tile -> old tile (incremental), else empty
  std::vector<std::vector<int64_t>> members;  // columns of each tile, increasing
  std::vector<int64_t> tile_cols;             // members[t].size()
  std::vector<float> row_scores;              // [tiles, K]
  std::vector<uint8_t> row_keep;              // [tiles, K]
};

void column_scores(const LayerWork& l, TileState& s) {
  const int64_t k = l.k();
  s.col_scores.assign(static_cast<size_t>(l.cout), 0.0f);
  const float* w = l.w->data();
#pragma omp parallel for if (l.numel() > (1 << 16)) schedule(static)
  for (int64_t n = 0; n < l.cout; ++n) {
    if (l.old && l.old->column_tile[static_cast<size_t>(n)] < 0) {
      s.col_scores[static_cast<size_t>(n)] = -1.0f;
      continue;
    }
    double q = 0;
    const float* col = w + n * k;
    for (int64_t r = 0; r < k; ++r) q += static_cast<double>(col[r]) * col[r];
    s.col_scores[static_cast<size_t>(n)] = static_cast<float>(std::sqrt(q) / static_cast<double>(k));
  }
}

// Step 2: tiles from the kept columns (fresh) or the old tiles minus the
// pruned columns (incremental).
void make_tiles(const LayerWork& l, int64_t g, TileState& s) {
  s.tile_of.assign(static_cast<size_t>(l.cout), -1);
  s.members.clear();
  s.old_tile_of_new.clear();
  if (l.old) {
    int32_t last_old = -1;
    for (int64_t n = 0; n < l.cout; ++n) {
      if (!s.col_keep[static_cast<size_t>(n)]) continue;
      const int32_t ot = l.old->column_tile[static_cast<size_t>(n)];
      if (ot != last_old) {
        s.members.emplace_back();
        s.old_tile_of_new.push_back(ot);
        last_old = ot;
      }
      s.members.back().push_back(n);
    }
  } else {
    for (int64_t n = 0; n < l.cout; ++n) {
      if (!s.col_keep[static_cast<size_t>(n)]) continue;
      if (s.members.empty() || static_cast<int64_t>(s.members.back().size()) == g) s.members.emplace_back();
      s.members.back().push_back(n);
    }
  }
  s.tile_cols.clear();
  for (size_t t = 0; t < s.members.size(); ++t) {
    s.tile_cols.push_back(static_cast<int64_t>(s.members[t].size()));
    for (int64_t n : s.members[t]) s.tile_of[static_cast<size_t>(n)] = static_cast<int32_t>(t);
  }
}

// Step 3's scores: ||B[k, tile]||_2 / |tile|; rows the old tile dropped are not candidates.
void row_scores(const LayerWork& l, TileState& s) {
  const int64_t k = l.k(), tiles = static_cast<int64_t>(s.members.size());
  constexpr int64_t kRowChunk = 1024;
  const int64_t chunks = (k + kRowChunk - 1) / kRowChunk;
  s.row_scores.assign(static_cast<size_t>(tiles * k), 0.0f);
  s.row_keep.assign(static_cast<size_t>(tiles * k), 0);
  const float* w = l.w->data();
#pragma omp parallel if (l.numel() > (1 << 16))
  {
    std::vector<double> acc(static_cast<size_t>(kRowChunk));
#pragma omp for schedule(dynamic)
    for (int64_t job = 0; job < tiles * chunks; ++job) {
      const int64_t t = job / chunks, r0 = (job % chunks) * kRowChunk, r1 = std::min(k, r0 + kRowChunk);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n : s.members[static_cast<size_t>(t)]) {
        const float* col = w + n * k;
        for (int64_t r = r0; r < r1; ++r) acc[static_cast<size_t>(r - r0)] += static_cast<double>(col[r]) * col[r];
      }
      const double size = static_cast<double>(s.tile_cols[static_cast<size_t>(t)]);
      const uint8_t* old_rows =
          l.old ? l.old->tile_rows.data() + s.old_tile_of_new[static_cast<size_t>(t)] * k : nullptr;
      for (int64_t r = r0; r < r1; ++r)
        s.row_scores[static_cast<size_t>(t * k + r)] =
            old_rows && !old_rows[r] ? -1.0f : static_cast<float>(std::sqrt(acc[static_cast<size_t>(r - r0)]) / size);
    }
  }
}

// Step 4 (tvw): in each column, groups of 4 consecutive kept rows of its tile
// keep their 2 largest magnitudes (among weights the old mask kept); a last
// group of fewer than 4 keeps at most 2.
void two_of_four(const LayerWork& l, const std::vector<int64_t>& rows, int64_t n, uint8_t* bits) {
  const float* col = l.w->data() + n * l.k();
  const uint8_t* old = l.old ? l.old->bits.data() + n * l.k() : nullptr;
  for (size_t g = 0; g < rows.size(); g += 4) {
    const size_t r = std::min<size_t>(4, rows.size() - g);
    float s[4];
    for (size_t j = 0; j < r; ++j) {
      const int64_t row = rows[g + j];
      s[j] = old && !old[row] ? -1.0f : std::fabs(col[row]);
    }
    for (size_t j = 0; j < r; ++j) {
      int rank = 0;
      for (size_t q = 0; q < r; ++q) rank += q != j && (s[q] > s[j] || (s[q] == s[j] && q < j));
      bits[rows[g + j]] = s[j] >= 0 && rank < 2;
    }
  }
}

// The element mask, tile structure and density of a layer after step 3.
void finish_layer(LayerWork& l, TileState& s, bool tvw) {
  const int64_t k = l.k();
  // Tiles without rows give up their columns; renumber the rest in order.
  std::vector<int32_t> renum(s.members.size(), -1);
  int32_t tiles = 0;
  for (size_t t = 0; t < s.members.size(); ++t) {
    const uint8_t* rows = s.row_keep.data() + t * static_cast<size_t>(k);
    if (std::find(rows, rows + k, uint8_t{1}) != rows + k) renum[t] = tiles++;
  }
  Mask& m = l.result;
  m.bits = Array<uint8_t>(l.w->shape());
  m.column_tile = Array<int32_t>({l.cout});
  m.tile_rows = Array<uint8_t>({static_cast<int64_t>(tiles), k});
  for (size_t t = 0; t < s.members.size(); ++t)
    if (renum[t] >= 0)
      std::copy_n(s.row_keep.data() + t * static_cast<size_t>(k), k, m.tile_rows.data() + renum[t] * k);
#pragma omp parallel if (l.numel() > (1 << 16))
  {
    std::vector<int64_t> rows;
#pragma omp for schedule(dynamic, 16)
    for (int64_t n = 0; n < l.cout; ++n) {
      const int32_t t0 = s.tile_of[static_cast<size_t>(n)];
      const int32_t t = t0 >= 0 ? renum[static_cast<size_t>(t0)] : -1;
      m.column_tile[static_cast<size_t>(n)] = t;
      if (t < 0) continue;
      const uint8_t* keep = m.tile_rows.data() + t * k;
      uint8_t* bits = m.bits.data() + n * k;
      const uint8_t* old = l.old ? l.old->bits.data() + n * k : nullptr;
      if (!tvw) {
        for (int64_t r = 0; r < k; ++r) bits[r] = keep[r] && (!old || old[r]);
      } else {
        rows.clear();
        for (int64_t r = 0; r < k; ++r)
          if (keep[r]) rows.push_back(r);
        two_of_four(l, rows, n, bits);
      }
    }
  }
  m.density = static_cast<double>(count_kept(m.bits)) / static_cast<double>(l.numel());
}

}  // namespace

void choose_tiles(std::vector<LayerWork>& layers, const Pattern& p, Scope scope) {
  const bool tvw = p.family == PatternFamily::TVW;
  std::vector<TileState> st(layers.size());
  // TW's own density: tvw's 2:4 halves what TW keeps.
  std::vector<double> col_targets, row_targets;
  for (const auto& l : layers) {
    const double d = tvw ? std::min(1.0, 2.0 * l.density) : l.density;
    col_targets.push_back(std::sqrt(d) * static_cast<double>(l.numel()));
    row_targets.push_back(d * static_cast<double>(l.numel()));
  }
  // Step 1: columns.
  std::vector<ColumnSpan> cols;
  for (size_t i = 0; i < layers.size(); ++i) {
    column_scores(layers[i], st[i]);
    st[i].col_keep.assign(static_cast<size_t>(layers[i].cout), 0);
    cols.push_back({st[i].col_scores.data(), st[i].col_keep.data(), layers[i].k(), layers[i].cout});
  }
  select(cols, col_targets, scope);
  // Steps 2 and 3: tiles, rows.
  std::vector<RowSpan> rows;
  for (size_t i = 0; i < layers.size(); ++i) {
    make_tiles(layers[i], p.tile, st[i]);
    row_scores(layers[i], st[i]);
    rows.push_back({st[i].row_scores.data(), st[i].row_keep.data(), st[i].tile_cols.data(), layers[i].k(),
                    static_cast<int64_t>(st[i].row_scores.size())});
  }
  select(rows, row_targets, scope);
  for (size_t i = 0; i < layers.size(); ++i) finish_layer(layers[i], st[i], tvw);
}

}  // namespace bsp::prune_detail
