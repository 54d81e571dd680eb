// bsp prune's library: every pattern on random layers and zoo models, checked
// against the invariants of man/bsp-prune.1 and reference scores.
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "modelfile/model_file.hpp"
#include "sparsity/mask.hpp"
#include "sparsity/prune.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

namespace {

// input 6x6xcin -> conv "first" 3x3 cin->cin -> conv "c" (cout, k x k) -> flatten -> dense "d" (dense_out)
Model small_model(int64_t cin, int64_t cout, int64_t k, int64_t dense_out, uint64_t seed) {
  GraphBuilder b("t", 6, 6, cin);
  std::string x = b.conv("first", "input", GraphBuilder::square(cin, 3, 1, 1));
  x = b.conv("c", x, GraphBuilder::square(cout, k, 1, k / 2));
  x = b.dense("d", b.flatten("f", x), dense_out);
  Model m = b.finish();
  uint64_t s = seed;
  for (auto& n : m.nodes)
    if (op_has_weight(n.op)) n.param("weight") = test::random_tensor(n.param("weight").shape(), s++);
  return m;
}

struct Dims {
  int64_t cout, window, cin;
};
Dims dims(const Node& n) {
  const Tensor& w = n.param("weight");
  const int64_t cout = w.dim(0), cin = w.shape().back();
  return {cout, static_cast<int64_t>(w.size()) / (cout * cin), cin};
}

// The reference block score (criterion of pattern.hpp), in double.
double ref_block_score(const Tensor& w, Dims d, int64_t r0, int64_t r1, int64_t c0, int64_t c1, Criterion crit) {
  double s = 0, q = 0, a = 0, n = 0;
  for (int64_t o = r0; o < r1; ++o)
    for (int64_t k = 0; k < d.window; ++k)
      for (int64_t c = c0; c < c1; ++c) {
        double v = w[static_cast<size_t>((o * d.window + k) * d.cin + c)];
        s += v, q += v * v, a += std::fabs(v), n += 1;
      }
  if (crit == Criterion::L2) return std::sqrt(q / n);
  if (crit == Criterion::L1) return a / n;
  return q / n - (s / n) * (s / n);
}

// Checks a block-masked layer against its weights before: every block all
// zero (pruned) or untouched (kept), and the kept blocks score highest.
// Returns {min kept score, max pruned score} for global checks.
std::pair<double, double> check_blocks(const Node& n, const Tensor& before, int64_t r, int64_t c, Criterion crit) {
  REQUIRE(n.mask);
  const Mask& mk = *n.mask;
  REQUIRE(mk.is_block());
  CHECK(mk.block_rows == r);
  CHECK(mk.block_cols == c);
  Dims d = dims(n);
  const Tensor& w = n.param("weight");
  double min_kept = 1e300, max_pruned = -1;
  int64_t kept = 0;
  for (int64_t br = 0; br * r < d.cout; ++br)
    for (int64_t bc = 0; bc * c < d.cin; ++bc) {
      const bool keep = mk.bits[static_cast<size_t>(br * mk.bits.dim(1) + bc)];
      const int64_t r1 = std::min(d.cout, (br + 1) * r), c1 = std::min(d.cin, (bc + 1) * c);
      for (int64_t o = br * r; o < r1; ++o)
        for (int64_t k = 0; k < d.window; ++k)
          for (int64_t ci = bc * c; ci < c1; ++ci) {
            size_t i = static_cast<size_t>((o * d.window + k) * d.cin + ci);
            if (keep)
              REQUIRE(w[i] == before[i]);
            else
              REQUIRE(w[i] == 0.0f);
          }
      double sc = ref_block_score(before, d, br * r, r1, bc * c, c1, crit);
      if (keep) {
        min_kept = std::min(min_kept, sc);
        kept += (r1 - br * r) * (c1 - bc * c) * d.window;
      } else {
        max_pruned = std::max(max_pruned, sc);
      }
    }
  CHECK(static_cast<double>(kept) / static_cast<double>(w.size()) == Approx(mk.density).margin(1e-12));
  return {min_kept, max_pruned};
}

bool subset(const Array<uint8_t>& a, const Array<uint8_t>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] && !b[i]) return false;
  return true;
}

int64_t kept_count(const Array<uint8_t>& bits) { return std::accumulate(bits.begin(), bits.end(), int64_t{0}); }

// TW/TVW structure (bsp-format.5): validate() checks tiles against bits; here
// also: tiles of at most G columns, TW columns keep exactly their tile's rows
// (less earlier zeros), TVW at most 2 of every 4 kept rows of a tile.
void check_tiles(const Node& n, int64_t g, bool tvw) {
  REQUIRE(n.mask);
  const Mask& mk = *n.mask;
  REQUIRE(mk.is_tiled());
  Dims d = dims(n);
  const int64_t k = d.window * d.cin;
  std::vector<int64_t> cols(static_cast<size_t>(mk.tiles()), 0);
  for (int64_t c = 0; c < d.cout; ++c) {
    const int32_t t = mk.column_tile[static_cast<size_t>(c)];
    const uint8_t* bits = mk.bits.data() + c * k;
    if (t < 0) {
      for (int64_t r = 0; r < k; ++r) REQUIRE(bits[r] == 0);
      continue;
    }
    ++cols[static_cast<size_t>(t)];
    const uint8_t* rows = mk.tile_rows.data() + t * k;
    if (!tvw) {
      for (int64_t r = 0; r < k; ++r) REQUIRE(bits[r] == rows[r]);
    } else {
      int in_group = 0, ones = 0;
      for (int64_t r = 0; r < k; ++r) {
        if (!rows[r]) {
          REQUIRE(bits[r] == 0);
          continue;
        }
        ones += bits[r];
        if (++in_group == 4) {
          REQUIRE(ones <= 2);
          in_group = ones = 0;
        }
      }
      REQUIRE(ones <= 2);
    }
  }
  for (int64_t t = 0; t < mk.tiles(); ++t) {
    CHECK(cols[static_cast<size_t>(t)] >= 1);
    CHECK(cols[static_cast<size_t>(t)] <= g);
    const uint8_t* rows = mk.tile_rows.data() + t * k;
    CHECK(std::count(rows, rows + k, uint8_t{1}) >= 1);
  }
}

void prune_one(Node& n, const char* pattern, double d, Criterion c = Criterion::L2, bool force = false) {
  prune_layer(n, parse_pattern(pattern), d, c, force);
}

}  // namespace

TEST_CASE("block: every block zero or untouched, the best kept, density within one block") {
  struct Case {
    int64_t cin, cout, k, dense_out;
    const char* pattern;
    int64_t r, c;
  };
  for (auto cs : {Case{16, 32, 3, 16, "block:8x8", 8, 8}, Case{12, 10, 3, 13, "block:8x8", 8, 8},
                  Case{20, 24, 1, 7, "block:4x2", 4, 2}, Case{24, 40, 3, 20, "block:16x16", 16, 16},
                  Case{9, 17, 5, 3, "block:1x1", 1, 1}}) {
    for (Criterion crit : {Criterion::L2, Criterion::L1, Criterion::Variance})
      for (double d : {0.9, 0.5, 0.13}) {
        Model m = small_model(cs.cin, cs.cout, cs.k, cs.dense_out, 7);
        for (size_t i : {size_t{2}, size_t{4}}) {
          Node& n = m.nodes[i];
          Tensor before = n.param("weight").clone();
          INFO(cs.pattern << " layer " << n.name << " density " << d << " criterion " << criterion_name(crit));
          LayerPruneResult r = prune_layer(n, parse_pattern(cs.pattern), d, crit);
          auto [min_kept, max_pruned] = check_blocks(n, before, cs.r, cs.c, crit);
          CHECK(min_kept >= max_pruned - 1e-6);
          Dims dm = dims(n);
          CHECK(std::fabs(r.density - d) * static_cast<double>(before.size()) <=
                static_cast<double>(cs.r * cs.c * dm.window));
          CHECK(r.density == n.mask->density);
          CHECK(r.pattern == cs.pattern);
          CHECK(r.l2_kept > 0);
          CHECK(r.l2_kept <= 1);
          CHECK(apply_mask(n) == 0);
        }
      }
  }
}

TEST_CASE("block: the L2 kept fraction is the norm ratio, and high density keeps more") {
  Model m = small_model(16, 32, 3, 8, 3);
  Node& n = m.nodes[2];
  Tensor before = n.param("weight").clone();
  LayerPruneResult r = prune_layer(n, parse_pattern("block:8x8"), 0.5);
  double a = 0, b = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    a += double(n.param("weight")[i]) * n.param("weight")[i];
    b += double(before[i]) * before[i];
  }
  CHECK(r.l2_kept == Approx(std::sqrt(a / b)).epsilon(1e-9));
  CHECK(r.kept == kept_count(element_mask(n)));
  CHECK(r.weights == static_cast<int64_t>(before.size()));
}

TEST_CASE("unstructured: exact count, largest magnitudes; channel: whole output channels") {
  Model m = small_model(16, 30, 3, 11, 5);
  Node& n = m.nodes[2];
  Tensor before = n.param("weight").clone();
  prune_one(n, "unstructured", 0.3);
  const Tensor& w = n.param("weight");
  CHECK(kept_count(n.mask->bits) == std::llround(0.3 * static_cast<double>(w.size())));
  float min_kept = 1e30f, max_pruned = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (n.mask->bits[i]) {
      CHECK(w[i] == before[i]);
      min_kept = std::min(min_kept, std::fabs(before[i]));
    } else {
      CHECK(w[i] == 0.0f);
      max_pruned = std::max(max_pruned, std::fabs(before[i]));
    }
  }
  CHECK(min_kept >= max_pruned);

  Node& c = m.nodes[4];
  Tensor cb = c.param("weight").clone();
  prune_one(c, "channel", 0.4, Criterion::L1);
  Dims d = dims(c);
  const int64_t k = d.window * d.cin;
  int64_t channels = 0;
  double min_kept_s = 1e300, max_pruned_s = -1;
  for (int64_t o = 0; o < d.cout; ++o) {
    const uint8_t* row = c.mask->bits.data() + o * k;
    const int64_t ones = std::count(row, row + k, uint8_t{1});
    REQUIRE((ones == 0 || ones == k));
    double sc = ref_block_score(cb, d, o, o + 1, 0, d.cin, Criterion::L1);
    if (ones) {
      ++channels;
      min_kept_s = std::min(min_kept_s, sc);
    } else {
      max_pruned_s = std::max(max_pruned_s, sc);
    }
  }
  CHECK(channels == std::llround(0.4 * static_cast<double>(d.cout)));
  CHECK(min_kept_s >= max_pruned_s);
}

TEST_CASE("nm: at most N per group of M along Cin, the largest kept; Cin not a multiple is left alone") {
  Model m = small_model(16, 24, 3, 8, 9);
  Node& n = m.nodes[2];
  Tensor before = n.param("weight").clone();
  LayerPruneResult r = prune_layer(n, parse_pattern("nm:2:8"), 0.25);
  CHECK(r.density == Approx(0.25));
  CHECK(n.mask->pattern == "nm:2:8");
  CHECK(!n.mask->is_block());
  const Tensor& w = n.param("weight");
  for (size_t g = 0; g < w.size(); g += 8) {
    int kept = 0;
    float min_kept = 1e30f, max_pruned = 0;
    for (size_t j = g; j < g + 8; ++j) {
      kept += n.mask->bits[j];
      if (n.mask->bits[j])
        min_kept = std::min(min_kept, std::fabs(before[j]));
      else
        max_pruned = std::max(max_pruned, std::fabs(before[j]));
      CHECK(w[j] == (n.mask->bits[j] ? before[j] : 0.0f));
    }
    CHECK(kept == 2);
    CHECK(min_kept >= max_pruned);
  }
  // The dense layer's input (6*6*8 = 288) is a multiple of 4; a 3-channel conv is not.
  Model m2 = small_model(3, 8, 3, 4, 1);
  std::vector<std::pair<size_t, double>> plan{{1, 0.5}, {4, 0.5}};
  PruneResult res = prune_layers(m2, plan, PruneSettings{parse_pattern("nm:2:4")});
  CHECK(!m2.nodes[1].mask);
  CHECK(!res.layers[0].pruned);
  CHECK_THAT(res.layers[0].note, Catch::Contains("not a multiple of 4"));
  REQUIRE(res.warnings.size() == 1);
  CHECK_THAT(res.warnings[0], Catch::Contains("layer 'first'"));
  CHECK(m2.nodes[4].mask);
  CHECK(res.weights == static_cast<int64_t>(m2.nodes[4].param("weight").size()));
}

TEST_CASE("tw: exact tile structure, s' split, global thresholds over all layers") {
  GraphBuilder b("t", 4, 4, 24);
  std::string x = b.conv("a", "input", GraphBuilder::square(200, 3, 1, 1));
  x = b.conv("b", x, GraphBuilder::square(72, 1, 1, 0));
  x = b.dense("d", b.flatten("f", x), 50);
  Model m = b.finish();
  uint64_t seed = 21;
  for (auto& n : m.nodes)
    if (op_has_weight(n.op)) {
      n.param("weight") = test::random_tensor(n.param("weight").shape(), seed++);
      // Uneven columns so that column pruning has something to find.
      Tensor& w = n.param("weight");
      const int64_t cols = w.dim(0), k = static_cast<int64_t>(w.size()) / cols;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < k; ++r) w[static_cast<size_t>(c * k + r)] *= 0.5f + static_cast<float>(c % 7) / 4;
    }
  std::vector<Tensor> before;
  for (size_t i : {1, 2, 4}) before.push_back(m.nodes[i].param("weight").clone());
  const double d = 0.36;
  const int64_t g = 32;
  PruneResult r = prune_layers(m, {{1, d}, {2, d}, {4, d}}, PruneSettings{parse_pattern("tw:32"), Criterion::L2, Scope::Global});
  m.validate();
  int64_t total = 0, kept = 0, col_weights = 0;
  double min_kept_col = 1e300, max_pruned_col = -1, min_kept_row = 1e300, max_pruned_row = -1;
  size_t li = 0;
  for (size_t i : {1, 2, 4}) {
    const Node& n = m.nodes[i];
    check_tiles(n, g, false);
    const Tensor& w0 = before[li++];
    const Mask& mk = *n.mask;
    Dims dm = dims(n);
    const int64_t k = dm.window * dm.cin;
    total += static_cast<int64_t>(w0.size());
    kept += kept_count(mk.bits);
    for (int64_t c = 0; c < dm.cout; ++c) {
      double q = 0;
      for (int64_t rr = 0; rr < k; ++rr) q += double(w0[static_cast<size_t>(c * k + rr)]) * w0[static_cast<size_t>(c * k + rr)];
      const double sc = std::sqrt(q) / static_cast<double>(k);
      if (mk.column_tile[static_cast<size_t>(c)] >= 0) {
        min_kept_col = std::min(min_kept_col, sc);
        col_weights += k;
      } else {
        max_pruned_col = std::max(max_pruned_col, sc);
      }
    }
    // Row scores inside the surviving tiles.
    for (int64_t t = 0; t < mk.tiles(); ++t) {
      std::vector<int64_t> members;
      for (int64_t c = 0; c < dm.cout; ++c)
        if (mk.column_tile[static_cast<size_t>(c)] == t) members.push_back(c);
      for (int64_t rr = 0; rr < k; ++rr) {
        double q = 0;
        for (int64_t c : members) q += double(w0[static_cast<size_t>(c * k + rr)]) * w0[static_cast<size_t>(c * k + rr)];
        const double sc = std::sqrt(q) / static_cast<double>(members.size());
        if (mk.tile_rows[static_cast<size_t>(t * k + rr)])
          min_kept_row = std::min(min_kept_row, sc);
        else
          max_pruned_row = std::max(max_pruned_row, sc);
      }
    }
    // Untouched kept weights, zero pruned ones.
    for (size_t j = 0; j < w0.size(); ++j) REQUIRE(n.param("weight")[j] == (mk.bits[j] ? w0[j] : 0.0f));
  }
  // One global threshold per step: kept scores above pruned ones, across layers.
  CHECK(min_kept_col >= max_pruned_col - 1e-7);
  CHECK(min_kept_row >= max_pruned_row - 1e-7);
  // Step 1 keeps sqrt(d) of the weights (within a column, at most K = 1152
  // weights); the total reaches d (within a tile row).
  CHECK(std::fabs(static_cast<double>(col_weights) - std::sqrt(d) * static_cast<double>(total)) <= 1152);
  CHECK(std::fabs(static_cast<double>(kept) - d * static_cast<double>(total)) <= g);
  CHECK(r.density == Approx(static_cast<double>(kept) / static_cast<double>(total)));
}

TEST_CASE("tw with layer scope: every layer near its own density; tvw: 2:4 inside the tiles") {
  for (const char* pat : {"tw:16", "tvw:16", "tw:1", "tvw:500"}) {
    const bool tvw = pat[1] == 'v';
    Model m = small_model(16, 40, 3, 30, 13);
    const double d = 0.3;
    PruneResult r = prune_layers(m, {{1, d}, {2, d}, {4, d}}, PruneSettings{parse_pattern(pat), Criterion::L2, Scope::Layer});
    m.validate();
    const int64_t g = parse_pattern(pat).tile;
    for (size_t i : {1, 2, 4}) {
      INFO(pat << " layer " << m.nodes[i].name);
      check_tiles(m.nodes[i], g, tvw);
      const double numel = static_cast<double>(m.nodes[i].param("weight").size());
      const double cols = static_cast<double>(m.nodes[i].param("weight").dim(0));
      const double tile_row = std::min(static_cast<double>(g), cols);
      if (!tvw)
        CHECK(std::fabs(m.nodes[i].mask->density - d) * numel <= tile_row);
      else  // 2:4 of the TW part at 2d; short groups may keep a little more
        CHECK(std::fabs(m.nodes[i].mask->density - d) <= 0.05);
    }
    CHECK(r.layers.size() == 3);
  }
}

TEST_CASE("global scope: one threshold over all layers reaches the overall density") {
  Model m = small_model(16, 32, 3, 20, 17);
  // Make the layers differ in scale so global differs from per-layer.
  for (auto& x : m.nodes[4].param("weight")) x *= 3.0f;
  std::vector<Tensor> before;
  for (size_t i : {1, 2, 4}) before.push_back(m.nodes[i].param("weight").clone());
  PruneResult r =
      prune_layers(m, {{1, 0.4}, {2, 0.4}, {4, 0.4}}, PruneSettings{parse_pattern("block:8x8"), Criterion::L2, Scope::Global});
  CHECK(std::fabs(static_cast<double>(r.kept) - 0.4 * static_cast<double>(r.weights)) <= 8 * 8 * 9);
  double min_kept = 1e300, max_pruned = -1;
  size_t li = 0;
  for (size_t i : {1, 2, 4}) {
    auto [mk, mp] = check_blocks(m.nodes[i], before[li++], 8, 8, Criterion::L2);
    min_kept = std::min(min_kept, mk);
    max_pruned = std::max(max_pruned, mp);
  }
  CHECK(min_kept >= max_pruned - 1e-6);
  // The scaled-up dense layer (23,040 of 29,952 weights) takes the whole
  // budget: the convs are pruned entirely, with a warning.
  CHECK(r.layers[2].density == Approx(0.4 * 29952 / 23040).margin(64.0 / 23040));
  CHECK(r.layers[0].density == 0.0);
  CHECK(r.layers[1].density == 0.0);
  REQUIRE(r.warnings.size() == 2);
  CHECK_THAT(r.warnings[0], Catch::Contains("layer 'first' is pruned entirely"));

  Model u = small_model(16, 32, 3, 20, 17);
  PruneResult ru =
      prune_layers(u, {{1, 0.25}, {2, 0.25}, {4, 0.25}}, PruneSettings{parse_pattern("unstructured"), Criterion::L2, Scope::Global});
  CHECK(ru.kept == std::llround(0.25 * static_cast<double>(ru.weights)));
}

TEST_CASE("masks only shrink, for every family; a higher density changes nothing") {
  for (const char* pat : {"block:8x8", "nm:2:4", "tw:8", "tvw:8", "unstructured", "channel"}) {
    INFO(pat);
    Pattern p = parse_pattern(pat);
    const double hi = p.family == PatternFamily::TVW ? 0.45 : 0.6, lo = 0.2;
    Model m = small_model(16, 32, 3, 12, 23);
    Node& n = m.nodes[2];
    prune_layer(n, p, p.family == PatternFamily::NM ? 0.5 : hi);
    Array<uint8_t> first = element_mask(n);
    Tensor w1 = n.param("weight").clone();
    // Same density again, then higher: nothing changes.
    prune_layer(n, p, p.family == PatternFamily::NM ? 0.5 : hi);
    CHECK(std::equal(first.begin(), first.end(), element_mask(n).begin()));
    if (p.family != PatternFamily::NM) {
      prune_layer(n, p, p.max_density());
      CHECK(std::equal(first.begin(), first.end(), element_mask(n).begin()));
      CHECK(test::max_abs_diff(w1, n.param("weight")) == 0.0f);
    }
    // Lower: a subset, and the weights it keeps are untouched.
    Pattern lower = p.family == PatternFamily::NM ? parse_pattern("nm:1:4") : p;
    prune_layer(n, lower, lo);
    Array<uint8_t> second = element_mask(n);
    CHECK(subset(second, first));
    CHECK(kept_count(second) < kept_count(first));
    for (size_t i = 0; i < second.size(); ++i) CHECK(n.param("weight")[i] == (second[i] ? w1[i] : 0.0f));
    m.validate();
    if (p.family == PatternFamily::TW || p.family == PatternFamily::TVW) check_tiles(n, 8, p.family == PatternFamily::TVW);
  }
}

TEST_CASE("tw keeps its tiles when pruned again") {
  Model m = small_model(8, 64, 3, 8, 29);
  Node& n = m.nodes[2];
  prune_one(n, "tw:16", 0.7);
  Array<int32_t> t1 = n.mask->column_tile.clone();
  prune_one(n, "tw:16", 0.3);
  const Array<int32_t>& t2 = n.mask->column_tile;
  for (size_t a = 0; a < t1.size(); ++a) {
    if (t1[a] < 0) CHECK(t2[a] < 0);
    for (size_t b = 0; b < t1.size(); ++b)
      if (t2[a] >= 0 && t2[a] == t2[b]) CHECK(t1[a] == t1[b]);
  }
}

TEST_CASE("block grids nest only in coarser ones; other changes need force") {
  Model m = small_model(16, 32, 3, 12, 31);
  Node& n = m.nodes[2];
  prune_one(n, "block:8x8", 0.6);
  Array<uint8_t> e8 = element_mask(n);
  prune_one(n, "block:4x4", 0.4);
  CHECK(n.mask->block_rows == 4);
  CHECK(subset(element_mask(n), e8));
  Tensor w = n.param("weight").clone();
  CHECK_THROWS_WITH(prune_one(n, "block:8x8", 0.3),
                    Catch::Contains("layer 'c' has a block:4x4 mask: block:8x8 cannot nest in it (use --force"));
  CHECK_THROWS_AS(prune_one(n, "nm:2:4", 0.5), UsageError);
  CHECK_THROWS_AS(prune_one(n, "tw:8", 0.3), UsageError);
  CHECK(n.mask->pattern == "block:4x4");  // untouched by the failures
  CHECK(test::max_abs_diff(w, n.param("weight")) == 0.0f);
  Array<uint8_t> before_force = element_mask(n);
  prune_one(n, "nm:2:4", 0.5, Criterion::L2, /*force=*/true);
  CHECK(n.mask->pattern == "nm:2:4");
  // The old zeros stay zero.
  for (size_t i = 0; i < w.size(); ++i)
    if (!before_force[i]) CHECK(n.param("weight")[i] == 0.0f);
  prune_one(n, "tw:8", 0.3, Criterion::L2, true);
  CHECK_THROWS_AS(prune_one(n, "tw:16", 0.2), UsageError);  // another tile size
  prune_one(n, "tw:8", 0.2);
  m.validate();
}

TEST_CASE("prune_layers checks everything before touching any layer") {
  Model m = small_model(16, 32, 3, 12, 37);
  prune_one(m.nodes[4], "channel", 0.5);
  Tensor w2 = m.nodes[2].param("weight").clone();
  CHECK_THROWS_AS(prune_layers(m, {{2, 0.5}, {4, 0.5}}, PruneSettings{parse_pattern("block:8x8")}), UsageError);
  CHECK(!m.nodes[2].mask);
  CHECK(test::max_abs_diff(w2, m.nodes[2].param("weight")) == 0.0f);
  CHECK_THROWS_WITH(prune_layers(m, {{2, 0.0}}, PruneSettings{parse_pattern("block:8x8")}),
                    Catch::Contains("density 0 is not in (0, 1]"));
  CHECK_THROWS_AS(prune_layers(m, {{2, 1.01}}, PruneSettings{parse_pattern("block:8x8")}), UsageError);
  CHECK_THROWS_WITH(prune_layers(m, {{2, 0.6}}, PruneSettings{parse_pattern("tvw:8")}), Catch::Contains("above 0.5"));
  CHECK_THROWS_WITH(prune_layers(m, {{2, 0.5}}, PruneSettings{parse_pattern("unstructured"), Criterion::Variance}),
                    Catch::Contains("applies to block and channel patterns only"));
  CHECK_THROWS_WITH(prune_layers(m, {{2, 0.5}}, PruneSettings{parse_pattern("nm:2:4"), Criterion::L2, Scope::Global}),
                    Catch::Contains("no global scope"));
  CHECK_THROWS_AS(prune_layers(m, {{3, 0.5}}, PruneSettings{parse_pattern("block:8x8")}), UsageError);  // flatten
  m.nodes[2].param("weight")[5] = std::nanf("");
  try {
    prune_layers(m, {{2, 0.5}}, PruneSettings{parse_pattern("block:8x8")});
    FAIL("no error for NaN weights");
  } catch (const UsageError&) {
    FAIL("NaN weights are a runtime error, not a usage error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("layer 'c' has non-finite weights"));
  }
}

TEST_CASE("layer selection: first conv, regexes, density files") {
  Model m = small_model(16, 32, 3, 12, 41);
  using Opt = std::optional<std::string>;
  auto sel = [](const Model& mm, bool first, Opt layers = {}, Opt exclude = {}, bool depthwise = false) {
    return select_layers(mm, LayerSelection{first, depthwise, std::move(layers), std::move(exclude)});
  };
  CHECK(sel(m, false) == std::vector<size_t>{2, 4});
  CHECK(sel(m, true) == std::vector<size_t>{1, 2, 4});
  CHECK(sel(m, true, std::string("^(c|d)$")) == std::vector<size_t>{2, 4});
  CHECK(sel(m, false, {}, std::string("^d")) == std::vector<size_t>{2});
  CHECK_THROWS_WITH(sel(m, false, std::string("nomatch")),
                    Catch::Contains("--layers 'nomatch' selects no conv2d or dense layer"));
  CHECK_THROWS_WITH(sel(m, false, std::string("first")),
                    Catch::Contains("selects only the first conv 'first', which stays dense without --include-first"));
  CHECK_THROWS_WITH(sel(m, false, {}, std::string(".")), Catch::Contains("leaves no layer to prune"));
  CHECK_THROWS_WITH(sel(m, false, std::string("((")), Catch::Contains("bad --layers regex '(('"));
  GraphBuilder b("t", 4, 4, 3);
  b.relu("r", "input");
  Model none = b.finish();
  try {
    sel(none, true);
    FAIL("no error");
  } catch (const UsageError&) {
    FAIL("no prunable layer is a runtime error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("no conv2d or dense layer"));
  }

  // Depthwise convs (one input channel per group) stay dense unless asked;
  // a grouped conv with several input channels per group is pruned.
  GraphBuilder g("dw", 8, 8, 16);
  auto grouped = [](int64_t groups) {
    GraphBuilder::ConvSpec s = GraphBuilder::square(16, 3, 1, 1);
    s.groups = groups;
    return s;
  };
  g.conv("stem", "input", grouped(1));
  g.conv("dw", "stem", grouped(16));
  g.conv("grouped", "dw", grouped(2));
  g.conv("pw", "grouped", GraphBuilder::square(16, 1, 1, 0));
  Model mdw = g.finish();
  CHECK(is_depthwise(mdw.nodes[2]));
  CHECK_FALSE(is_depthwise(mdw.nodes[3]));
  CHECK(sel(mdw, false) == std::vector<size_t>{3, 4});
  CHECK(sel(mdw, false, {}, {}, true) == std::vector<size_t>{2, 3, 4});
  CHECK_THROWS_WITH(sel(mdw, false, std::string("^dw$")),
                    Catch::Contains("selects only depthwise convs, which stay dense without --include-depthwise"));
  PruneOptions o;
  o.pattern = parse_pattern("block:8x8");
  o.density_file = {{"d", 0.2}, {"first", 0.5}};
  o.density_file_name = "f.txt";
  std::vector<std::string> warn;
  auto plan = plan_layers(m, o, Scope::Layer, warn);
  CHECK(plan == std::vector<std::pair<size_t, double>>{{4, 0.2}});  // "c" has no density
  REQUIRE(warn.size() == 1);
  CHECK_THAT(warn[0], Catch::Contains("'first', which is not selected"));
  o.density = 0.7;
  warn.clear();
  plan = plan_layers(m, o, Scope::Layer, warn);
  CHECK(plan == std::vector<std::pair<size_t, double>>{{2, 0.7}, {4, 0.2}});
  CHECK_THROWS_WITH(plan_layers(m, o, Scope::Global, warn), Catch::Contains("needs --scope layer"));
  o.density_file = {{"f", 0.2}};
  CHECK_THROWS_WITH(plan_layers(m, o, Scope::Layer, warn),
                    Catch::Contains("names 'f', which is not a conv2d or dense layer"));
  o.density_file = {{"nosuch", 0.2}};
  CHECK_THROWS_AS(plan_layers(m, o, Scope::Layer, warn), UsageError);
  o.density_file.clear();
  o.pattern = parse_pattern("nm:2:4");
  o.density = 0.3;
  CHECK_THROWS_WITH(plan_layers(m, o, Scope::Layer, warn), Catch::Contains("--density 0.3 contradicts nm:2:4"));
  o.density = 0.5;
  CHECK(plan_layers(m, o, Scope::Layer, warn).size() == 2);
  o.pattern = parse_pattern("block:8x8");
  o.density.reset();
  CHECK_THROWS_WITH(plan_layers(m, o, Scope::Layer, warn), Catch::Contains("--density is required"));
  o.density = 2.0;
  CHECK_THROWS_WITH(plan_layers(m, o, Scope::Layer, warn), Catch::Contains("--density 2 is not in (0, 1]"));
  PruneOptions tw;
  tw.pattern = parse_pattern("tw");
  CHECK(effective_scope(tw) == Scope::Global);
  tw.density_file = {{"c", 0.5}};
  CHECK(effective_scope(tw) == Scope::Layer);  // a density file implies layer scope
  tw.scope = Scope::Global;
  CHECK(effective_scope(tw) == Scope::Global);
  PruneOptions block;
  CHECK(effective_scope(block) == Scope::Layer);
}

TEST_CASE("zoo models: every pattern, both scopes, deterministic, thread-independent, file round trip") {
  Model base = build_fmnist_resnet(10);
  init_weights(base, 3);
  test::TempDir dir;
  for (const char* pat : {"block:8x8", "block:4x4", "nm:2:4", "nm:2:8", "tw:32", "tvw:32", "unstructured", "channel"})
    for (Scope scope : {Scope::Layer, Scope::Global}) {
      Pattern p = parse_pattern(pat);
      if (p.family == PatternFamily::NM && scope == Scope::Global) continue;
      INFO(pat << " " << scope_name(scope));
      PruneOptions o;
      o.pattern = p;
      o.scope = scope;
      if (!p.implied_density()) o.density = p.family == PatternFamily::TVW ? 0.4 : 0.5;
      const double d = o.density.value_or(*p.implied_density());
      std::vector<Model> runs;
      for (int threads : {1, 2}) {
        Model m = load_model([&] {
          std::string f = dir.file("base.h5");
          save_model(base, f);
          return f;
        }(), "base");
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        PruneResult r = prune_model(m, o);
        omp_set_num_threads(saved);
        m.validate();
        // Overall density: within a unit per layer (layer scope) or one unit (global).
        const double unit = p.family == PatternFamily::Channel ? 9 * 128.0 : p.family == PatternFamily::Block ? 8 * 8 * 9 : 32;
        CHECK(std::fabs(static_cast<double>(r.kept) - d * static_cast<double>(r.weights)) <=
              unit * static_cast<double>(r.layers.size()) + 0.02 * static_cast<double>(r.weights) *
                                                                (p.family == PatternFamily::TVW));
        CHECK(r.l2_kept > 0.3);
        CHECK(r.l2_kept < 1.0);
        for (const auto& l : r.layers) {
          CHECK(l.pattern == p.str());
          CHECK(l.name != "stem.conv");  // the first conv stays dense
        }
        runs.push_back(std::move(m));
      }
      // Same masks and weights with 1 and 2 threads.
      for (size_t i = 0; i < runs[0].nodes.size(); ++i) {
        const Node& a = runs[0].nodes[i];
        const Node& b = runs[1].nodes[i];
        REQUIRE(a.mask.has_value() == b.mask.has_value());
        if (!a.mask) continue;
        CHECK(std::equal(a.mask->bits.begin(), a.mask->bits.end(), b.mask->bits.begin()));
        CHECK(test::max_abs_diff(a.param("weight"), b.param("weight")) == 0.0f);
      }
      // The mask, its tiles and the zeros survive a file round trip.
      save_model(runs[0], dir.file("p.h5"));
      Model back = load_model(dir.file("p.h5"), "p");
      for (size_t i = 0; i < back.nodes.size(); ++i) {
        const Node& a = runs[0].nodes[i];
        const Node& b = back.nodes[i];
        REQUIRE(a.mask.has_value() == b.mask.has_value());
        if (!a.mask) continue;
        CHECK(b.mask->pattern == a.mask->pattern);
        CHECK(b.mask->density == a.mask->density);
        CHECK(b.mask->block_rows == a.mask->block_rows);
        CHECK(std::equal(a.mask->bits.begin(), a.mask->bits.end(), b.mask->bits.begin()));
        CHECK(std::equal(a.mask->column_tile.begin(), a.mask->column_tile.end(), b.mask->column_tile.begin(),
                         b.mask->column_tile.end()));
        CHECK(std::equal(a.mask->tile_rows.begin(), a.mask->tile_rows.end(), b.mask->tile_rows.begin(),
                         b.mask->tile_rows.end()));
        CHECK(apply_mask(const_cast<Node&>(b)) == 0);
      }
    }
}

TEST_CASE("resnet50: 8x8 blocks at 0.5 per layer, the paper's recipe") {
  Model m = build_resnet50(1000);
  init_weights(m, 0);
  PruneOptions o;
  o.density = 0.5;
  PruneResult r = prune_model(m, o);
  CHECK(r.layers.size() == 53);  // 52 convs + fc, minus conv1
  for (const auto& l : r.layers) {
    INFO(l.name);
    const Node& n = *m.find(l.name);
    Dims d = dims(n);
    CHECK(std::fabs(l.density - 0.5) * static_cast<double>(l.weights) <= 64.0 * d.window);
  }
  CHECK(!m.find("conv1")->mask);
  CHECK(r.density == Approx(0.5).margin(1e-4));
}
