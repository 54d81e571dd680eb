#include <catch2/catch.hpp>

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
