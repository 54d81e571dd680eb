#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "core/rng.hpp"
#include "sparsity/nm.hpp"
#include "sparsity/select.hpp"
#include "test_helpers.hpp"

using namespace bsp;

namespace {

struct VecSpan {
  const std::vector<float>* s;
  const std::vector<int64_t>* w;
  std::vector<uint8_t>* out;
  int64_t size() const { return static_cast<int64_t>(s->size()); }
  float score(int64_t i) const { return (*s)[static_cast<size_t>(i)]; }
  int64_t weight(int64_t i) const { return (*w)[static_cast<size_t>(i)]; }
  void set(int64_t i, bool k) { (*out)[static_cast<size_t>(i)] = k; }
};

// The reference: a full sort by (score desc, span, index), then the walk.
std::vector<std::vector<uint8_t>> reference(const std::vector<std::vector<float>>& s,
                                            const std::vector<std::vector<int64_t>>& w, SelectOptions o) {
  std::vector<std::tuple<float, size_t, size_t>> all;
  std::vector<std::vector<uint8_t>> out;
  for (size_t a = 0; a < s.size(); ++a) {
    out.emplace_back(s[a].size(), 0);
    for (size_t i = 0; i < s[a].size(); ++i)
      if (s[a][i] >= 0) all.emplace_back(s[a][i], a, i);
  }
  std::stable_sort(all.begin(), all.end(), [](auto& x, auto& y) {
    if (std::get<0>(x) != std::get<0>(y)) return std::get<0>(x) > std::get<0>(y);
    return std::tie(std::get<1>(x), std::get<2>(x)) < std::tie(std::get<1>(y), std::get<2>(y));
  });
  double cum = 0;
  for (auto& [sc, a, i] : all) {
    double wt = static_cast<double>(w[a][i]);
    if (cum + wt >= o.target) {
      if ((cum == 0 && o.keep_at_least_one) || cum + wt - o.target <= o.target - cum) out[a][i] = 1;
      break;
    }
    out[a][i] = 1;
    cum += wt;
  }
  return out;
}

void check_against_reference(size_t spans, int64_t units, uint64_t seed, bool ties, bool weighted) {
  Rng rng(seed);
  std::vector<std::vector<float>> s(spans);
  std::vector<std::vector<int64_t>> w(spans);
  std::vector<std::vector<uint8_t>> out(spans);
  double total = 0;
  for (size_t a = 0; a < spans; ++a) {
    for (int64_t i = 0; i < units; ++i) {
      float v = ties ? static_cast<float>(rng.below(20)) * 0.125f : static_cast<float>(rng.uniform());
      if (rng.below(10) == 0) v = -1.0f;  // not a candidate
      s[a].push_back(v);
      w[a].push_back(weighted ? 1 + static_cast<int64_t>(rng.below(9)) : 1);
      if (v >= 0) total += static_cast<double>(w[a].back());
    }
    out[a].assign(static_cast<size_t>(units), 7);
  }
  for (double frac : {0.0001, 0.3, 0.5, 0.77, 1.0, 1.5}) {
    SelectOptions o{frac * total, frac < 0.001};
    std::vector<VecSpan> v;
    for (size_t a = 0; a < spans; ++a) v.push_back({&s[a], &w[a], &out[a]});
    int64_t kept = select_top(v, o);
    auto ref = reference(s, w, o);
    int64_t ref_kept = 0;
    for (size_t a = 0; a < spans; ++a)
      for (int64_t i = 0; i < units; ++i) ref_kept += ref[a][static_cast<size_t>(i)] * w[a][static_cast<size_t>(i)];
    INFO("spans " << spans << " units " << units << " ties " << ties << " weighted " << weighted << " frac " << frac);
    CHECK(kept == ref_kept);
    CHECK(out == ref);
  }
}

}  // namespace

TEST_CASE("select_top matches a full sort: small (sorting) path") {
  check_against_reference(3, 1000, 1, false, false);
  check_against_reference(3, 1000, 2, true, true);
  check_against_reference(1, 50, 3, false, true);
}

TEST_CASE("select_top matches a full sort: radix path, ties, weights, several spans") {
  check_against_reference(1, 100000, 4, false, false);
  check_against_reference(4, 30000, 5, true, false);
  check_against_reference(3, 40000, 6, false, true);
  check_against_reference(2, 50000, 7, true, true);
}

TEST_CASE("select_top lands within one unit of the target and keeps the best one when asked") {
  std::vector<float> s{0.5f, 0.1f, 0.9f};
  std::vector<int64_t> w{4, 4, 4};
  std::vector<uint8_t> out(3);
  std::vector<VecSpan> v{{&s, &w, &out}};
  CHECK(select_top(v, {1.0, false}) == 0);
  CHECK(select_top(v, {1.0, true}) == 4);
  CHECK(out == std::vector<uint8_t>{0, 0, 1});
  CHECK(select_top(v, {6.0, false}) == 8);  // 6 is as close to 8 as to 4: ties keep
  CHECK(out == std::vector<uint8_t>{1, 0, 1});
  CHECK(select_top(v, {5.9, false}) == 4);
}

TEST_CASE("select_top does not depend on the thread count") {
  std::vector<float> s(200000);
  std::vector<int64_t> w(s.size(), 1);
  Rng rng(9);
  for (auto& x : s) x = static_cast<float>(rng.below(1000));  // many ties
  std::vector<uint8_t> a(s.size()), b(s.size());
  std::vector<VecSpan> va{{&s, &w, &a}}, vb{{&s, &w, &b}};
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  select_top(va, {77777.0, false});
  omp_set_num_threads(std::max(2, threads));
  select_top(vb, {77777.0, false});
  omp_set_num_threads(threads);
  CHECK(a == b);
  CHECK(std::accumulate(a.begin(), a.end(), int64_t{0}) == 77777);
}

namespace {
// Reference N:M along an axis, by sorting each group.
Array<uint8_t> nm_reference(const Tensor& w, size_t axis, int64_t n, int64_t m, const uint8_t* keep) {
  int64_t outer = 1, inner = 1, len = w.dim(axis);
  for (size_t d = 0; d < axis; ++d) outer *= w.dim(d);
  for (size_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  Array<uint8_t> out(w.shape());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      for (int64_t g = 0; g < len; g += m) {
        std::vector<std::pair<float, int64_t>> grp;
        for (int64_t j = g; j < std::min(len, g + m); ++j) {
          int64_t idx = (o * len + j) * inner + i;
          if (!keep || keep[idx]) grp.emplace_back(-std::fabs(w[static_cast<size_t>(idx)]), idx);
        }
        std::sort(grp.begin(), grp.end());
        for (size_t q = 0; q < grp.size() && static_cast<int64_t>(q) < n; ++q) out[static_cast<size_t>(grp[q].second)] = 1;
      }
  return out;
}
}  // namespace

TEST_CASE("N:M masks along Cin and along Cout match the reference and hold the pattern") {
  Tensor w = test::random_tensor({24, 3, 3, 20}, 11);
  // Some exact ties and zeros.
  for (size_t i = 0; i < w.size(); i += 7) w[i] = 0.0f;
  for (size_t i = 3; i < w.size(); i += 11) w[i] = 0.5f;
  for (auto [n, m] : {std::pair<int64_t, int64_t>{2, 4}, {2, 8}, {1, 4}, {3, 8}, {4, 4}, {2, 6}}) {
    for (size_t axis : {size_t{3}, size_t{0}, size_t{1}}) {
      Array<uint8_t> got = nm_mask(w, axis, n, m);
      Array<uint8_t> ref = nm_reference(w, axis, n, m, nullptr);
      INFO("nm " << n << ":" << m << " axis " << axis);
      CHECK(std::equal(got.begin(), got.end(), ref.begin()));
      // Restricted to an earlier mask: a subset of it.
      Array<uint8_t> keep = nm_mask(w, 3, 3, 4);
      Array<uint8_t> sub = nm_mask(w, axis, n, m, keep.data());
      Array<uint8_t> sub_ref = nm_reference(w, axis, n, m, keep.data());
      CHECK(std::equal(sub.begin(), sub.end(), sub_ref.begin()));
      for (size_t i = 0; i < sub.size(); ++i)
        if (sub[i]) CHECK(keep[i]);
    }
  }
  // Every group of 4 along Cin (20 = 5 groups) has exactly 2.
  Array<uint8_t> mk = nm_mask(w, 3, 2, 4);
  for (size_t g = 0; g < mk.size(); g += 4) CHECK(mk[g] + mk[g + 1] + mk[g + 2] + mk[g + 3] == 2);
}

TEST_CASE("N:M: a short last group keeps at most N") {
  Tensor w = test::random_tensor({2, 10}, 3);  // groups of 8: 8 + 2
  Array<uint8_t> mk = nm_mask(w, 1, 3, 8);
  for (int64_t r = 0; r < 2; ++r) {
    int first = 0, last = 0;
    for (int64_t c = 0; c < 8; ++c) first += mk[static_cast<size_t>(r * 10 + c)];
    for (int64_t c = 8; c < 10; ++c) last += mk[static_cast<size_t>(r * 10 + c)];
    CHECK(first == 3);
    CHECK(last == 2);
  }
}
