// bsp explore's library (src/explore): threshold ladders, block counts, the
// greedy activation search and the density allocation on synthetic tables,
// the density file it writes, the evaluation log and the held-out draw.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <unistd.h>

#include "core/act_sparsity.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "explore/act_search.hpp"
#include "explore/eval_log.hpp"
#include "explore/evaluator.hpp"
#include "explore/weight_density.hpp"
#include "sparsity/prune.hpp"

using namespace bsp;
using namespace bsp::explore;

TEST_CASE("threshold ladders: quantiles of the nonzero block maxima, scale-free") {
  // 10 zero blocks, 100 nonzero ones with maxima 1..100, one NaN block.
  std::vector<float> mx(10, 0.0f);
  for (int i = 100; i >= 1; --i) mx.push_back(static_cast<float>(i));
  mx.push_back(std::numeric_limits<float>::infinity());
  const auto ladder = threshold_ladder(mx, {0.05, 0.1, 0.5, 0.999});
  REQUIRE(ladder.size() == 4);
  // q = 0.05: the 5 smallest nonzero blocks, 1..5: threshold just above 5.
  CHECK(ladder[0].threshold == static_cast<double>(std::nextafter(5.0f, 100.0f)));
  CHECK(ladder[0].fraction == Approx(15.0 / 111));
  CHECK(ladder[1].fraction == Approx(20.0 / 111));
  CHECK(ladder[2].fraction == Approx(60.0 / 111));
  CHECK(ladder[3].fraction == Approx(110.0 / 111));  // the NaN block is never zeroed
  // Scaled by 1000: the same fractions, thresholds scaled.
  std::vector<float> big;
  for (float v : mx) big.push_back(v * 1000.0f);
  const auto scaled = threshold_ladder(big, {0.05, 0.1, 0.5, 0.999});
  REQUIRE(scaled.size() == 4);
  for (size_t k = 0; k < 4; ++k) {
    CHECK(scaled[k].fraction == ladder[k].fraction);
    CHECK(scaled[k].threshold == Approx(ladder[k].threshold * 1000).epsilon(1e-6));
  }
  // Rungs that zero nothing more are dropped; all-zero inputs give none.
  CHECK(threshold_ladder(std::vector<float>{0, 0, 1, 1, 1, 1}, {0.1, 0.2, 0.9}).size() == 1);
  CHECK(threshold_ladder(std::vector<float>(8, 0.0f), {0.5}).empty());
}

TEST_CASE("count_zero_blocks agrees with zero_block_fraction, edge blocks and NaN included") {
  Rng rng(7);
  Tensor x({3, 5, 11, 13});  // W 11 and C 13: partial edge blocks for 1x8x8 and 2x4x8
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.uniform() - 0.5) * (i % 7 == 0 ? 4.0f : 0.3f);
  for (size_t i = 0; i < 200; ++i) x[i] = 0.0f;
  x[500] = std::numeric_limits<float>::quiet_NaN();
  for (const std::array<int64_t, 3> b : {std::array<int64_t, 3>{1, 8, 8}, {2, 4, 8}, {1, 1, 1}, {5, 11, 13}})
    for (float t : {0.0f, 0.05f, 0.14f, 0.3f, 5.0f}) {
      const BlockCount c = count_zero_blocks(x, b, t);
      CHECK(c.fraction() == zero_block_fraction(x, b, t));
      CHECK(c.values == static_cast<int64_t>(x.size()));
      // The values in zero blocks are exactly the ones the rule zeroes.
      const Tensor z = zero_small_blocks(x, b, t);
      int64_t zeroed = 0;
      for (size_t i = 0; i < z.size(); ++i) zeroed += z[i] == 0.0f;
      CHECK(c.zero_values <= zeroed);  // the rest: zeros inside kept blocks
      if (b == std::array<int64_t, 3>{1, 1, 1}) CHECK(c.zero_values == zeroed);
      CHECK(c.blocks == 3 * act_blocks_per_image({5, 11, 13}, b));
    }
  // Block maxima: one per block, in image order, whole images up to the cap.
  std::vector<float> mx;
  block_maxima(x, {1, 8, 8}, mx, 1);
  CHECK(static_cast<int64_t>(mx.size()) == act_blocks_per_image({5, 11, 13}, {1, 8, 8}));
  CHECK(mx[0] == 0.0f);
}

namespace {

// A synthetic model: layer l at rung r drops the accuracy by drop[l][r]
// points, additively; each rung's zero fraction is fraction[l][r].
struct Synthetic {
  std::vector<ActLayer> layers;
  double base = 0.9;
  int64_t n = 100000;
  int calls = 0;
  Measurement measure(const Rungs& r) {
    ++calls;
    double drop = 0, saved = 0, macs = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const ActLayer& L = layers[l];
      const double f = r[l] < 0 ? L.base_fraction : L.ladder[static_cast<size_t>(r[l])].fraction;
      saved += f * static_cast<double>(L.macs);
      macs += static_cast<double>(L.macs);
      if (r[l] >= 0) drop += truth[l][static_cast<size_t>(r[l])];
    }
    Measurement m;
    m.n = n;
    m.correct = std::llround((base - drop / 100) * static_cast<double>(n));
    m.macs_saved_fraction = saved / macs;
    return m;
  }
  std::vector<std::vector<double>> truth;
};

Synthetic three_layers() {
  Synthetic s;
  auto layer = [](const char* name, int64_t macs) {
    ActLayer L;
    L.name = name;
    L.macs = macs;
    L.ladder = {{0.1, 0.1}, {0.2, 0.2}, {0.3, 0.3}, {0.4, 0.4}};
    return L;
  };
  s.layers = {layer("a", 1000), layer("b", 1000), layer("c", 4000)};
  // a: expensive; b: nearly free; c: cheap per MAC (4x the MACs of a).
  s.truth = {{0.4, 0.9, 2.0, 3.0}, {0.0, 0.03, 0.1, 5.0}, {0.2, 0.4, 0.7, 1.5}};
  return s;
}

}  // namespace

TEST_CASE("activation search: sensitivity stops past the budget, greedy takes the cheapest layer") {
  Synthetic s = three_layers();
  Measure m = [&](const Rungs& r) { return s.measure(r); };
  const Measurement base = s.measure(Rungs(3, -1));
  measure_sensitivity(s.layers, base, 1.0, m);
  CHECK(s.layers[0].drop.size() == 3);  // 0.4, 0.9, 2.0 > 1: stops there
  CHECK(s.layers[1].drop.size() == 4);  // 5.0 is the last rung anyway
  CHECK(s.layers[2].drop.size() == 4);
  CHECK(s.layers[0].drop[1] == Approx(0.9));

  std::vector<SearchStep> steps;
  const SearchResult r = greedy_search(s.layers, base, 1.0, m, [&](const SearchStep& st) { steps.push_back(st); });
  // By hand (cost = envelope rise / MACs added; a rung adds 100 MACs on a
  // and b, 400 on c): b0 (0), b1 (0.0003), c0 (0.0005), c1 (0.0005), b2
  // (0.0007), c2 (0.00075), then c3 (drop 1.6), a0 (1.2) and b3 (5.7) are
  // over the budget and stop their layers.
  std::vector<int> kept;
  for (const SearchStep& st : r.front) kept.push_back(st.layer);
  CHECK(kept == std::vector<int>{-1, 1, 1, 2, 2, 1, 2});
  REQUIRE(r.rejected.size() == 3);
  CHECK(r.rejected[0].layer == 2);
  CHECK(r.rejected[1].layer == 0);
  CHECK(r.rejected[2].layer == 1);
  for (const SearchStep& st : r.rejected) CHECK_FALSE(st.within_budget);
  CHECK(r.best == Rungs{-1, 2, 2});
  CHECK(steps.size() == r.front.size() + r.rejected.size());
  // Every kept step is within the budget and saves more MACs than the one before.
  for (size_t i = 1; i < r.front.size(); ++i) {
    CHECK(drop_points(base.accuracy(), r.front[i].m.accuracy()) <= 1.0 + 1e-9);
    CHECK(r.front[i].m.macs_saved_fraction > r.front[i - 1].m.macs_saved_fraction);
  }
  CHECK(drop_points(base.accuracy(), r.front.back().m.accuracy()) == Approx(0.8));

  // Deterministic: the same inputs give the same search.
  const SearchResult again = greedy_search(s.layers, base, 1.0, m);
  REQUIRE(again.front.size() == r.front.size());
  for (size_t i = 0; i < r.front.size(); ++i) CHECK(again.front[i].rungs == r.front[i].rungs);

  // A budget of 0: only free steps are kept.
  const SearchResult none = greedy_search(s.layers, base, 0.0, m);
  CHECK(none.best == Rungs{-1, 0, -1});
}

TEST_CASE("activation search: a step that saves no MACs is not kept") {
  Synthetic s = three_layers();
  Measure m = [&](const Rungs& r) {
    Measurement x = s.measure(r);
    if (r[1] >= 1) x.macs_saved_fraction = 0;  // b's second rung: downstream zeros lost
    return x;
  };
  const Measurement base = s.measure(Rungs(3, -1));
  measure_sensitivity(s.layers, base, 1.0, m);
  const SearchResult r = greedy_search(s.layers, base, 1.0, m);
  REQUIRE(!r.rejected.empty());
  CHECK(r.rejected[0].layer == 1);
  CHECK(r.rejected[0].within_budget);
  CHECK_FALSE(r.rejected[0].accepted);
  CHECK(r.best[1] == 0);
}

TEST_CASE("density allocation: exact overall density, insensitive layers first") {
  auto layer = [](const char* name, int64_t w, std::vector<double> drops) {
    DensityLayer L;
    L.name = name;
    L.weights = w;
    L.densities = {0.75, 0.5, 0.25, 0.125};
    L.drops = std::move(drops);
    return L;
  };
  // s: sensitive; f: flat until 0.25; big: 3x the weights, in between.
  const std::vector<DensityLayer> layers = {layer("s", 1000, {1.0, 4.0, 10.0, 20.0}),
                                            layer("f", 1000, {0.0, 0.0, 0.1, 3.0}),
                                            layer("big", 3000, {0.2, 0.5, 2.0, 6.0})};
  for (double X : {0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.125}) {
    const DensityPlan p = allocate_densities(layers, X);
    double kept = 0;
    for (size_t l = 0; l < 3; ++l) kept += p.density[l] * static_cast<double>(layers[l].weights);
    CHECK(kept / 5000 == Approx(X).margin(1e-12));
    CHECK(p.overall == Approx(X).margin(1e-12));
    for (size_t l = 0; l < 3; ++l) {
      CHECK(p.density[l] <= 1.0);
      CHECK(p.density[l] >= 0.125 - 1e-12);
    }
    // The insensitive layer is never denser than the sensitive one.
    CHECK(p.density[1] <= p.density[0] + 1e-12);
  }
  // X = 0.9 removes 500 weights: all from f, which is free down to 0.5.
  const DensityPlan p9 = allocate_densities(layers, 0.9);
  CHECK(p9.density[0] == 1.0);
  CHECK(p9.density[1] == Approx(0.5));
  CHECK(p9.density[2] == 1.0);
  CHECK(p9.predicted_drop == Approx(0.0));
  // predicted drop: linear between the measured points.
  CHECK(predicted_drop(layers[2], 0.625) == Approx(0.35));
  CHECK(predicted_drop(layers[0], 1.0) == 0.0);
  // Out of reach, or nothing to do.
  CHECK_THROWS_AS(allocate_densities(layers, 0.1), UsageError);
  CHECK_THROWS_AS(allocate_densities(layers, 1.0), UsageError);
  // Noisy curves (a negative drop, a dip) are made non-decreasing first.
  DensityLayer noisy = layer("n", 1000, {-0.3, 0.5, 0.2, 1.0});
  CHECK(predicted_drop(noisy, 0.75) == 0.0);
  CHECK(predicted_drop(noisy, 0.25) == Approx(0.5));
}

TEST_CASE("density files written by explore parse back as bsp prune reads them") {
  std::vector<DensityLayer> layers(3);
  layers[0].name = "conv2.conv", layers[0].weights = 9216;
  layers[1].name = "fc1", layers[1].weights = 802816;
  layers[2].name = "fc2", layers[2].weights = 2560;
  for (auto& L : layers) L.densities = {0.75, 0.5, 0.25}, L.drops = {0.1, 0.2, 0.3};
  layers[0].drops = {5, 10, 20};
  layers[2].drops = {5, 10, 20};
  const DensityPlan p = allocate_densities(layers, 0.5);
  const std::string text = density_file_text(layers, p, {"made by a test", "second line"});
  CHECK(text.rfind("# made by a test\n# second line\n", 0) == 0);
  const auto parsed = parse_density_file(text, "t.dens");
  REQUIRE(parsed.size() == 1);  // conv2.conv and fc2 stay dense: comment only
  CHECK(parsed[0].first == "fc1");
  CHECK(parsed[0].second == Approx(p.density[1]).margin(5e-7));
  CHECK(text.find("# left as they are: conv2.conv fc2\n") != std::string::npos);
}

namespace {
std::string temp_name(const char* tag) {
  return std::string("/tmp/bsp-test-explore-") + tag + "-" + std::to_string(getpid());
}
std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("evaluation log: results come back exactly, another header is refused") {
  const std::string path = temp_name("log");
  Json h = Json::object();
  h["bsp_explore_log"] = 1;
  h["model"] = "00ff";
  h["holdout"] = 200;
  Json r = Json::object();
  r["correct"] = 181;
  r["zero_block_fraction"] = 0.1 + 0.2;  // not a short decimal
  {
    EvalLog log(h, "", path);
    CHECK(log.find("a") == nullptr);
    log.record("act 0 -1", r);
    log.record("act 1 -1", r);
  }
  // An interrupted write: a cut last line is dropped.
  {
    std::FILE* f = std::fopen(path.c_str(), "ab");
    std::fputs("{\"key\": \"act 2", f);
    std::fclose(f);
  }
  {
    EvalLog log(h, path, path);
    CHECK(log.resumed() == 2);
    const Json* got = log.find("act 0 -1");
    REQUIRE(got);
    CHECK(got->at("zero_block_fraction").as_double() == 0.1 + 0.2);
    CHECK(log.reused() == 1);
    log.record("act 2 -1", r);
  }
  const std::string text = slurp(path);
  CHECK(text.find("act 2\n") == std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);  // header + 3
  Json other = h;
  other["holdout"] = 300;
  try {
    EvalLog log(other, path, "");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("it was made with holdout 200, not 300"));
  }
  Json model = h;
  model["model"] = "0100";
  CHECK_THROWS_WITH(EvalLog(model, path, ""), Catch::Contains("another model"));
  std::remove(path.c_str());
  CHECK_THROWS_WITH(EvalLog(h, path, ""), Catch::Contains("cannot resume from"));
}

TEST_CASE("held-out draw: seeded, sorted, distinct; or the first images") {
  const auto a = holdout_indices(10000, 500, 3, false);
  const auto b = holdout_indices(10000, 500, 3, false);
  const auto c = holdout_indices(10000, 500, 4, false);
  CHECK(a == b);
  CHECK(a != c);
  REQUIRE(a.size() == 500);
  CHECK(std::is_sorted(a.begin(), a.end()));
  CHECK(std::set<int64_t>(a.begin(), a.end()).size() == 500);
  CHECK(a.back() < 10000);
  CHECK(a.back() > 5000);  // drawn from the whole split
  const auto f = holdout_indices(10000, 5, 3, true);
  CHECK(f == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(holdout_indices(10, 50, 0, false).size() == 10);
}
