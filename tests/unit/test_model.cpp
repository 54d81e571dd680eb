#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <limits>
#include <vector>

#include "core/finite.hpp"
#include "core/shapes.hpp"
#include "zoo/builder.hpp"

using namespace bsp;

TEST_CASE("shape inference of windows: stride, padding, dilation") {
  GraphBuilder b("t", 9, 9, 4);
  GraphBuilder::ConvSpec s{8, 3, 3, 2, {1, 1, 1, 1}, 1, true};
  auto c = b.conv("c", "input", s);
  CHECK(b.shape(c) == Shape{5, 5, 8});
  GraphBuilder::ConvSpec asym{8, 1, 7, 1, {0, 3, 0, 3}, 1, false};
  CHECK(b.shape(b.conv("a", "input", asym)) == Shape{9, 9, 8});
  CHECK(b.shape(b.maxpool("p", "input", 3, 2)) == Shape{4, 4, 4});
  CHECK(b.shape(b.maxpool("p1", "input", 3, 2, 1)) == Shape{5, 5, 4});
  CHECK(b.shape(b.global_avgpool("g", c)) == Shape{8});
  CHECK(b.shape(b.flatten("f", c)) == Shape{200});
  CHECK(b.shape(b.concat("cat", {"input", "a"})) == Shape{9, 9, 12});
  Model m = b.finish();
  auto shapes = infer_shapes(m);
  CHECK(shapes.size() == m.nodes.size());
  CHECK(shapes[1] == Shape{5, 5, 8});
}

TEST_CASE("validation names the node at fault") {
  GraphBuilder b("t", 8, 8, 4);
  b.conv("c", "input", GraphBuilder::square(8, 3, 1, 1));
  Model m = b.finish();
  SECTION("weight with wrong input channels") {
    m.nodes[1].params["weight"] = Tensor({8, 3, 3, 5});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'c'"));
  }
  SECTION("unknown input") {
    m.nodes[1].inputs = {"nope"};
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("'nope'"));
  }
  SECTION("duplicate names") {
    m.nodes[1].name = "input";
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("two nodes are named 'input'"));
  }
  SECTION("mask of the wrong shape") {
    Mask mk;
    mk.pattern = "block:8x8";
    mk.block_rows = 8;
    mk.block_cols = 8;
    mk.bits = Array<uint8_t>({2, 2});
    m.nodes[1].mask = std::move(mk);
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("block mask has shape [2, 2], expected [1, 1]"));
  }
  SECTION("a window larger than the input") {
    m.nodes[1].params["weight"] = Tensor({8, 11, 11, 4});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("larger than the padded input"));
  }
  SECTION("add of mismatched shapes") {
    GraphBuilder b2("t", 8, 8, 4);
    b2.conv("c", "input", GraphBuilder::square(8, 3, 1, 1));
    CHECK_THROWS_WITH(b2.add("a", {"input", "c"}), Catch::Contains("add inputs differ in shape"));
  }
}

TEST_CASE("validation checks a mask's pattern against the mask") {
  GraphBuilder b("t", 8, 8, 4);
  b.conv("c", "input", GraphBuilder::square(8, 3, 1, 1));  // weight [8, 3, 3, 4]
  Model m = b.finish();
  Node& n = m.nodes[1];
  // An element mask keeping entry i where keep(i), with the pruned weights zeroed.
  auto element = [&](const std::string& pattern, auto keep) {
    Mask mk;
    mk.pattern = pattern;
    mk.bits = Array<uint8_t>(n.param("weight").shape());
    for (size_t i = 0; i < mk.bits.size(); ++i) {
      mk.bits[i] = keep(static_cast<int64_t>(i)) ? 1 : 0;
      if (!mk.bits[i]) n.param("weight")[i] = 0.0f;
    }
    n.mask = std::move(mk);
  };
  auto block = [&](const std::string& pattern, int64_t r, int64_t c) {
    Mask mk;
    mk.pattern = pattern;
    mk.block_rows = r, mk.block_cols = c;
    mk.bits = Array<uint8_t>({(8 + r - 1) / r, (4 + c - 1) / c});
    mk.bits.fill(1);
    n.mask = std::move(mk);
  };
  SECTION("a block pattern on a block mask of its size") {
    block("block:8x4", 8, 4);
    CHECK_NOTHROW(m.validate());
  }
  SECTION("an unknown pattern") {
    element("hexagon:3", [](int64_t) { return true; });
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'c': mask pattern: unknown pattern 'hexagon:3'"));
  }
  SECTION("a block pattern whose block differs from the mask's") {
    block("block:4x4", 8, 4);
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("mask pattern 'block:4x4' but its block is [8, 4]"));
  }
  SECTION("a block pattern on an element mask") {
    element("block:8x8", [](int64_t) { return true; });
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("'block:8x8' needs a block mask"));
  }
  SECTION("an element pattern on a block mask") {
    block("nm:2:4", 8, 4);
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("mask pattern 'nm:2:4' on a block mask"));
  }
  SECTION("nm:2:4 keeping 2 of every 4 input channels") {
    element("nm:2:4", [](int64_t i) { return i % 4 == (i / 4) % 4 || i % 4 == 3 - (i / 4) % 4; });
    CHECK_NOTHROW(m.validate());
  }
  SECTION("nm:2:4 with a group of 3") {
    element("nm:2:4", [](int64_t i) { return i % 4 < 2 || i == 42; });
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("group of 4 input channels at index 40 keeps 3"));
  }
  SECTION("nm:N:M on a layer whose input channels are not a multiple of M") {
    element("nm:1:3", [](int64_t i) { return i % 4 == 0; });
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("4 input channels, not a multiple of M = 3"));
  }
  SECTION("channel keeping whole output channels") {
    element("channel", [](int64_t i) { return i / 36 % 2 == 0; });
    CHECK_NOTHROW(m.validate());
  }
  SECTION("channel with a channel partly kept") {
    element("channel", [](int64_t i) { return i / 36 % 2 == 0 && i != 77; });
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("output channel 2 is only partly kept (index 77)"));
  }
  SECTION("tiles with a pattern other than tw or tvw") {
    element("unstructured", [](int64_t) { return true; });
    n.mask->column_tile = Array<int32_t>({8});
    n.mask->tile_rows = Array<uint8_t>({1, 36});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("only tw:G and tvw:G do"));
  }
}

TEST_CASE("validation checks attribute types and parameter shapes exactly") {
  GraphBuilder b("t", 8, 8, 3);
  auto c = b.conv("c", "input", GraphBuilder::square(4, 3, 1, 1));
  auto bn = b.batchnorm("bn", c);
  auto p = b.avgpool("p", bn, 2, 2);
  b.dense("fc", b.flatten("f", p), 5);
  Model m = b.finish();
  REQUIRE_NOTHROW(m.validate());
  Node& pool = *m.find("p");
  SECTION("avgpool count_include_pad 0 and 1 only, as an integer") {
    pool.attrs.set("count_include_pad", int64_t{0});
    CHECK_NOTHROW(m.validate());
    pool.attrs.set("count_include_pad", int64_t{2});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'p': avgpool count_include_pad is 2, not 0 or 1"));
    pool.attrs.set("count_include_pad", std::string("yes"));
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'p': avgpool count_include_pad must be the integer 0 or 1"));
  }
  SECTION("a batchnorm parameter of shape [1, C]") {
    m.find("bn")->param("gamma").reshape({1, 4});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'bn': 'gamma' has shape [1, 4], expected [4]"));
  }
  SECTION("a bias of shape [1, Cout]") {
    m.find("c")->params["bias"] = Tensor({1, 4});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'c': bias has shape [1, 4], expected [4]"));
    m.find("c")->params["bias"] = Tensor({4});
    CHECK_NOTHROW(m.validate());
    m.find("fc")->param("bias").reshape({5, 1});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'fc': bias has shape [5, 1], expected [5]"));
  }
  SECTION("the input's norm_mean and norm_std") {
    Node& in = m.nodes[0];
    in.attrs.set("norm_mean", std::vector<double>{0.5, 0.5, 0.5});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("attribute 'norm_mean' without 'norm_std'"));
    in.attrs.set("norm_std", std::vector<double>{0.25, 0.25, 0.25});
    CHECK_NOTHROW(m.validate());
    in.attrs.set("norm_std", std::vector<double>{0.25, 0.25});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("'norm_std' has 2 entries for 3 channels"));
    in.attrs.set("norm_std", std::vector<double>{0.25, 0.0, 0.25});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("'norm_std' holds 0 for channel 1 (must be finite and positive)"));
    in.attrs.set("norm_std", std::vector<double>{0.25, 0.25, 0.25});
    in.attrs.set("norm_mean", std::vector<double>{0.5, std::numeric_limits<double>::quiet_NaN(), 0.5});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("'norm_mean' holds nan for channel 1 (must be finite)"));
    in.attrs.set("norm_mean", std::vector<int64_t>{0, 0, 0});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("'norm_mean' must be a float64 list"));
  }
}

TEST_CASE("op names round trip") {
  for (Op op : {Op::Input, Op::Conv2d, Op::Dense, Op::BatchNorm, Op::Relu, Op::MaxPool, Op::AvgPool,
                Op::GlobalAvgPool, Op::Add, Op::Concat, Op::Flatten, Op::Softmax})
    CHECK(op_from_name(op_name(op)) == op);
  CHECK_FALSE(op_from_name("conv3d"));
}

TEST_CASE("validation refuses non-finite parameters and impossible batchnorm statistics") {
  GraphBuilder b("t", 8, 8, 4);
  b.conv("c", "input", GraphBuilder::square(8, 3, 1, 1));
  b.batchnorm("bn", "c");
  Model m = b.finish();
  REQUIRE_NOTHROW(m.validate());
  SECTION("nan in a weight") {
    m.nodes[1].params["weight"][200] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'c': parameter 'weight' holds nan at index 200"));
  }
  SECTION("infinity far into a tensor big enough to be checked on every core") {
    GraphBuilder big("t", 4, 4, 512);
    big.conv("c", "input", GraphBuilder::square(512, 3, 1, 1));  // 2.4 M weights
    Model mb = big.finish();
    REQUIRE_NOTHROW(mb.validate());
    mb.nodes[1].params["weight"][2000001] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(mb.validate(), Catch::Contains("node 'c': parameter 'weight' holds inf at index 2000001"));
  }
  SECTION("infinity in a batchnorm shift") {
    m.nodes[2].params["beta"][3] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'bn': parameter 'beta' holds -inf at index 3"));
  }
  SECTION("negative variance") {
    m.nodes[2].params["var"][1] = -0.5f;
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("batchnorm variance -0.5 of channel 1 is negative"));
  }
  SECTION("zero variance is a constant channel: allowed") {
    m.nodes[2].params["var"][1] = 0.0f;
    CHECK_NOTHROW(m.validate());
  }
  SECTION("eps") {
    for (double eps : {0.0, -1e-5, std::numeric_limits<double>::quiet_NaN()}) {
      m.nodes[2].attrs.set("eps", eps);
      CHECK_THROWS_WITH(m.validate(), Catch::Contains("is not a positive number"));
    }
  }
}

TEST_CASE("the finiteness scan finds one bad value anywhere, on every instruction set") {
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), std::bit_cast<float>(0xff800001u)};
  const float good_values[] = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::denorm_min(), -0.0f, 1.0f};
  for (ScanIsa isa : {ScanIsa::Scalar, ScanIsa::Avx2, ScanIsa::Avx512}) {
    if (!any_nonfinite_serial(nullptr, 0, isa)) continue;  // not on this machine
    CAPTURE(static_cast<int>(isa));
    for (int64_t n : {1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 127, 128, 200}) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float g : good_values) {
        std::fill(v.begin(), v.end(), g);
        CHECK(*any_nonfinite_serial(v.data(), n, isa) == false);
      }
      for (int64_t at = 0; at < n; ++at)
        for (float b : bad_values) {
          std::fill(v.begin(), v.end(), 0.5f);
          v[static_cast<size_t>(at)] = b;
          CAPTURE(n, at, b);
          CHECK(*any_nonfinite_serial(v.data(), n, isa) == true);
        }
    }
  }
  // The dispatcher and the parallel scan over large arrays, at both ends.
  std::vector<float> big(size_t{3} << 20, 1.0f);
  CHECK_FALSE(any_nonfinite(big.data(), static_cast<int64_t>(big.size())));
  for (size_t at : {size_t{0}, big.size() - 1}) {
    big[at] = std::numeric_limits<float>::infinity();
    CHECK(first_nonfinite(big.data(), static_cast<int64_t>(big.size())) == static_cast<int64_t>(at));
    big[at] = 1.0f;
  }
}
