// Checked arithmetic and the plausibility, memory and work bounds of an
// untrusted model file (bsp-format(5) and bsp-schedule(1), LIMITS).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "aie2/codegen.hpp"
#include "aie2/executor.hpp"
#include "aie2/hardware.hpp"
#include "aie2/schedule.hpp"
#include "core/checked.hpp"
#include "core/shapes.hpp"
#include "core/stats.hpp"
#include "core/reference_forward.hpp"
#include "kernels/phase_plan.hpp"
#include "kernels/runner.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

namespace {
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// A conv over a [h, w, c] input (stride s, pad p, k x k) with weights set.
Model conv_model(int64_t h, int64_t w, int64_t c, int64_t cout, int64_t k, int64_t s, int64_t p) {
  GraphBuilder b("t", h, w, c);
  b.conv("c", "input", GraphBuilder::square(cout, k, s, p));
  Model m = b.finish();
  init_weights(m, 1);
  return m;
}
}  // namespace

TEST_CASE("checked arithmetic throws instead of wrapping") {
  CHECK(checked_mul(1 << 20, 1 << 20, "x") == int64_t{1} << 40);
  CHECK(checked_add(kMax - 1, 1, "x") == kMax);
  CHECK_THROWS_WITH(checked_mul(int64_t{1} << 32, int64_t{1} << 31, "the MACs"),
                    Catch::Contains("the MACs overflows int64"));
  CHECK_THROWS_WITH(checked_add(kMax, 1, "the count"), Catch::Contains("the count overflows int64"));
  CHECK(checked_numel({3, 4, 5}, "s") == 60);
  CHECK(checked_numel({}, "s") == 1);
  CHECK_THROWS_WITH(checked_numel({int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31}, "shape"),
                    Catch::Contains("more elements than int64 holds"));
  CHECK_THROWS(checked_numel({2, -1}, "shape"));
  int64_t r = 0;
  CHECK_FALSE(mul_ok(kMax, 2, r));
  CHECK(mul_ok(-3, 4, r));
  CHECK(r == -12);
  CHECK(human_bytes(68.7e9) == "68.7 GB");
  CHECK(human_bytes(512) == "512 bytes");
}

TEST_CASE("window attributes and input dimensions are range-checked") {
  Model m = conv_model(12, 12, 3, 8, 3, 1, 1);
  Node& c = m.nodes[1];
  SECTION("a stride of 2^31") {
    c.attrs.set("stride", std::vector<int64_t>{int64_t{1} << 31, 1});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'c': stride 2147483648 is out of range: 1 to 16777216") &&
                                        Catch::Contains("LIMITS"));
  }
  SECTION("a dilation past the bound") {
    c.attrs.set("dilation", std::vector<int64_t>{1, (int64_t{1} << 24) + 1});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("dilation 16777217 is out of range"));
  }
  SECTION("a huge pad") {
    c.attrs.set("pad", std::vector<int64_t>{0, 0, kMax, 0});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("pad 9223372036854775807 is out of range: 0 to"));
  }
  SECTION("groups past the bound") {
    c.attrs.set("groups", int64_t{1} << 40);
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("groups 1099511627776 is out of range"));
  }
  SECTION("an input dimension near 2^31") {
    m.nodes[0].attrs.set("shape", std::vector<int64_t>{(int64_t{1} << 31) - 1, (int64_t{1} << 31) - 1, 3});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'input': input dimension 2147483647 is out of range"));
  }
  SECTION("a pool kernel past the bound") {
    GraphBuilder b("t", 8, 8, 3);
    b.maxpool("p", "input", 2, 2);
    Model q = b.finish();
    q.nodes[1].attrs.set("kernel", std::vector<int64_t>{int64_t{1} << 30, 2});
    CHECK_THROWS_WITH(q.validate(), Catch::Contains("node 'p': kernel height 1073741824 is out of range"));
  }
}

TEST_CASE("the memory bound says how much a file would need") {
  SECTION("an activation") {
    Model m = conv_model(16, 16, 3, 8, 3, 1, 1);
    m.nodes[0].attrs.set("shape", std::vector<int64_t>{1 << 24, 1 << 24, 3});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'input': output [16777216, 16777216, 3] needs 3.38 PB per "
                                                    "image, above bsp's limit of 4.29 GB (bsp-format(5), LIMITS)"));
  }
  SECTION("a conv output") {
    // (GraphBuilder::finish validates.) Input 2^28 elements: fine; output 2^31.
    CHECK_THROWS_WITH(conv_model(16384, 16384, 1, 8, 3, 1, 1),
                      Catch::Contains("node 'c': output [16384, 16384, 8] needs 8.59 GB per image"));
  }
  SECTION("a padded input") {
    Model m = conv_model(16, 16, 3, 8, 3, 1 << 24, 1);
    m.nodes[1].attrs.set("pad", std::vector<int64_t>{1 << 24, 1 << 24, 1 << 24, 1 << 24});
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'c': padded input [33554448, 33554448, 3] needs"));
  }
  SECTION("the multiply-accumulates") {
    // 32000x32000 outputs of a 511x511 window: 2.7e14 MACs, each tensor within its bound.
    CHECK_THROWS_WITH(conv_model(32000, 32000, 1, 1, 511, 1, 255), Catch::Contains("node 'c'") && Catch::Contains("multiply-accumulates per image") &&
                                        Catch::Contains("LIMITS"));
  }
  SECTION("models inside the bounds") {
    for (const char* arch : {"resnet50", "vgg16", "inception_v3", "fmnist-cnn", "fmnist-resnet"}) {
      const ArchInfo& a = find_arch(arch);
      const Model m = a.build(a.default_classes);
      CHECK_NOTHROW(m.validate());
    }
  }
}

TEST_CASE("a stride past the padded input is clamped without changing the output") {
  Model m = conv_model(12, 12, 3, 16, 3, 4096, 1);
  const ConvGeom g = conv_geom(m.nodes[1], {12, 12, 3});
  CHECK(g.Ho == 1);
  CHECK(g.Wo == 1);
  CHECK(g.sh == 14);  // the padded input's height
  CHECK(g.sw == 14);
  const ConvGeom s2 = conv_geom(conv_model(12, 12, 3, 16, 3, 2, 1).nodes[1], {12, 12, 3});
  CHECK(s2.sh == 2);  // a real stride is kept
  CHECK(s2.Ho == 6);
  const int64_t macs = model_stats(m).macs;
  CHECK(macs == 16 * 3 * 3 * 3);
}

TEST_CASE("the fp32 kernels run a stride far past the input as the reference does") {
  // 3 input channels and a 3x3 window: the width-folded stem path.
  const Model small = conv_model(12, 12, 3, 16, 3, 14, 1);
  const Tensor x = test::random_tensor({2, 12, 12, 3}, 5);
  const Tensor want = kernels::fast_forward(small, x);
  for (int64_t s : {int64_t{4096}, int64_t{1} << 20, int64_t{1} << 24}) {
    Model m = conv_model(12, 12, 3, 16, 3, 1, 1);
    m.nodes[1].attrs.set("stride", std::vector<int64_t>{s, s});
    m.nodes[1].param("weight") = small.nodes[1].param("weight").clone();
    m.validate();
    const Tensor got = kernels::fast_forward(m, x);
    REQUIRE(got.shape() == want.shape());
    CHECK(std::equal(got.begin(), got.end(), want.begin()));
    const Tensor ref = reference_forward(m, x);
    for (size_t i = 0; i < ref.size(); ++i) CHECK(std::abs(ref[i] - got[i]) < 1e-4f);
  }
}

TEST_CASE("the kernels' phase layout is sized by the output, not the stride") {
  ConvGeom g;  // unclamped, as a caller could build it
  g.H = g.W = 12;
  g.C = 3;
  g.kh = g.kw = 3;
  g.sh = g.sw = int64_t{1} << 30;
  g.pt = g.pl = g.pb = g.pr = 1;
  g.Ho = g.Wo = 1;
  g.Cout = 8;
  const kernels::PhasePlan pp(g);  // a table of sh*sw phases would not fit in memory
  CHECK(pp.phases == 9);            // one per tap: each reads its own phase
  CHECK(pp.image_elems() < 1000);
}

TEST_CASE("the AIE2 scheduler's work bound") {
  // Ten 16-channel convs over 4096x4096 maps: each stage within the bound,
  // together more than 65,536 loop iterations per core on 16 cores.
  auto chain = [](int64_t size, int layers) {
    GraphBuilder b("t", size, size, 16);
    std::string x = "input";
    for (int i = 0; i < layers; ++i) x = b.conv("c" + std::to_string(i), x, GraphBuilder::square(16, 3, 1, 1));
    Model m = b.finish();
    init_weights(m, 1);
    return m;
  };
  const aie2::Hardware hw = aie2::load_target("npu1");
  CHECK_THROWS_WITH(aie2::make_schedule(chain(4096, 10), hw, DType::FP32),
                    Catch::Contains("the schedule needs more than 65536 loop iterations per core") &&
                        Catch::Contains("bsp-schedule(1), LIMITS"));
  CHECK_NOTHROW(aie2::make_schedule(chain(512, 10), hw, DType::FP32));
}

TEST_CASE("a program that loops too long is stopped by the executor's work bound") {
  Model m = conv_model(4, 4, 8, 8, 3, 1, 1);  // one tile per core: no loop to nest in
  const aie2::Schedule S = aie2::make_schedule(m, aie2::load_target("npu1"), DType::FP32);
  aie2::Program p = aie2::generate_program(S);
  CHECK_NOTHROW(aie2::run_stage(p, p.stages[0], nullptr));
  // As a lying /program could: a queue repeats its last COMP (its locks
  // held) 2^31 - 1 times.
  bool edited = false;
  for (auto& q : p.stages[0].queues) {
    auto comp = std::find_if(q.code.rbegin(), q.code.rend(), [](const aie2::Instr& in) { return in.op == aie2::Opc::Comp; });
    if (edited || comp == q.code.rend()) continue;
    q.code.insert(comp.base() - 1, aie2::make(aie2::Opc::Loop, {std::numeric_limits<int32_t>::max(), 1}));
    edited = true;
  }
  REQUIRE(edited);
  CHECK_THROWS_WITH(aie2::run_stage(p, p.stages[0], nullptr),
                    Catch::Contains("instructions executed, above bsp's work limit (bsp-schedule(1), LIMITS)"));
}
