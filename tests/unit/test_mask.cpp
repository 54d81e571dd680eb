#include <catch2/catch.hpp>

#include <array>

#include "core/rng.hpp"

#include "sparsity/blocks.hpp"
#include "sparsity/mask.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"

using namespace bsp;

TEST_CASE("a block mask expands over the whole kernel window, edge blocks included") {
  GraphBuilder b("t", 4, 4, 12);
  b.conv("c", "input", GraphBuilder::square(10, 3, 1, 1));
  Model m = b.finish();
  Node& n = m.nodes[1];
  n.param("weight") = test::random_tensor({10, 3, 3, 12}, 1);
  Mask mk;
  mk.pattern = "block:8x8";
  mk.block_rows = mk.block_cols = 8;
  mk.bits = Array<uint8_t>({2, 2}, std::vector<uint8_t>{1, 0, 0, 1});  // blocks (0,0) and (1,1) kept
  n.mask = std::move(mk);
  Array<uint8_t> e = element_mask(n);
  REQUIRE(e.shape() == Shape{10, 3, 3, 12});
  for (int64_t o = 0; o < 10; ++o)
    for (int64_t k = 0; k < 9; ++k)
      for (int64_t c = 0; c < 12; ++c) {
        bool kept = (o < 8) == (c < 8);
        CHECK(e[static_cast<size_t>((o * 9 + k) * 12 + c)] == kept);
      }
  int64_t zeroed = apply_mask(n);
  CHECK(zeroed == 8 * 9 * 4 + 2 * 9 * 8);
  CHECK(apply_mask(n) == 0);  // idempotent
  const Tensor& w = n.param("weight");
  for (size_t i = 0; i < w.size(); ++i)
    if (!e[i]) CHECK(w[i] == 0.0f);
}

TEST_CASE("a layer without a mask keeps everything") {
  GraphBuilder b("t", 4, 4, 8);
  b.dense("d", b.flatten("f", "input"), 5);
  Model m = b.finish();
  Array<uint8_t> e = element_mask(m.nodes[2]);
  for (auto v : e) CHECK(v == 1);
  CHECK(apply_mask(m.nodes[2]) == 0);
}

TEST_CASE("block_grid: a block is set when any of its values over every tap is nonzero; CSR of the set blocks") {
  Rng rng(21);
  for (auto [O, taps, I, R, C] : {std::array<int64_t, 5>{19, 9, 13, 8, 8}, {8, 1, 8, 8, 8}, {17, 4, 30, 4, 16}}) {
    std::vector<float> v(static_cast<size_t>(O * taps * I), 0.0f);
    for (auto& x : v)
      if (rng.uniform() < 0.02)
        x = static_cast<float>(rng.uniform() - 0.5);
      else if (rng.uniform() < 0.1)
        x = -0.0f;  // zero: sets no block
    const BlockGrid g = block_grid(v.data(), O, taps, I, R, C);
    REQUIRE(g.rows == (O + R - 1) / R);
    REQUIRE(g.cols == (I + C - 1) / C);
    int64_t set = 0;
    for (int64_t r = 0; r < g.rows; ++r)
      for (int64_t c = 0; c < g.cols; ++c) {
        bool any = false;
        for (int64_t o = r * R; o < std::min(O, r * R + R); ++o)
          for (int64_t t = 0; t < taps; ++t)
            for (int64_t i = c * C; i < std::min(I, c * C + C); ++i) any |= v[static_cast<size_t>((o * taps + t) * I + i)] != 0;
        CHECK(g(r, c) == any);
        set += any;
      }
    CHECK(g.count == set);
    std::vector<int32_t> rp, ci;
    g.to_csr(rp, ci);
    REQUIRE(rp.size() == static_cast<size_t>(g.rows + 1));
    CHECK(static_cast<int64_t>(ci.size()) == set);
    for (int64_t r = 0; r < g.rows; ++r)
      for (int32_t j = rp[static_cast<size_t>(r)]; j < rp[static_cast<size_t>(r) + 1]; ++j) {
        CHECK(g(r, ci[static_cast<size_t>(j)]));
        if (j > rp[static_cast<size_t>(r)]) CHECK(ci[static_cast<size_t>(j)] > ci[static_cast<size_t>(j) - 1]);
      }
  }
  const BlockGrid all = full_block_grid(9, 17);
  CHECK((all.rows == 2 && all.cols == 3 && all.count == 6));
}
