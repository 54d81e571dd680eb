#include <catch2/catch.hpp>

#include "compact/compact.hpp"
#include "core/reference_forward.hpp"
#include "kernels/isa.hpp"
#include "kernels/runner.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

// A net with every op the runner handles: residual adds (fused and not;
// after a conv with a relu, after a dense layer without), depthwise convs
// (with a batchnorm and relu6, with a residual add and a clip), concat,
// pools, an unfoldable batchnorm, dense layers and a softmax.
Model mixed_net() {
  GraphBuilder b("mixed", 12, 12, 3);
  std::string x = b.relu("stem.relu", b.batchnorm("stem.bn", b.conv("stem", "input", GraphBuilder::square(16, 3, 1, 1))));
  std::string a = b.relu("a.relu", b.batchnorm("a.bn", b.conv("a", x, GraphBuilder::square(16, 3, 1, 1))));
  std::string a2 = b.batchnorm("a2.bn", b.conv("a2", a, GraphBuilder::square(16, 3, 1, 1)));
  x = b.relu("res.relu", b.add("res", {a2, x}));
  GraphBuilder::ConvSpec dw = GraphBuilder::square(16, 3, 1, 1), dw2 = GraphBuilder::square(16, 5, 1, 2, true);
  dw.groups = dw2.groups = 16;
  std::string d = b.clip("dw.clip", b.batchnorm("dw.bn", b.conv("dw", x, dw)), 0, 6);
  x = b.clip("dw2.clip", b.add("dw2.res", {b.conv("dw2", d, dw2), x}), -1, 1.5);
  std::string p = b.maxpool("pool", x, 3, 2, 1);
  std::string c1 = b.relu("c1.relu", b.conv("c1", p, GraphBuilder::square(24, 1, 1, 0, true)));
  std::string c2 = b.conv("c2", p, GraphBuilder::square(16, 3, 1, 1, true));
  std::string ap = b.avgpool("ap", p, 3, 1, 1, false);
  std::string cat = b.concat("cat", {c1, c2, ap});
  std::string bn = b.batchnorm("cat.bn", cat);  // follows a concat: not foldable
  std::string g = b.global_avgpool("gap", b.relu("cat.relu", bn));
  std::string f = b.relu("fc1.relu", b.dense("fc1", g, 20));
  f = b.add("fc.res", {b.dense("fc1b", f, 20), f});  // dense -> add, no relu
  b.softmax("prob", b.dense("fc2", f, 10));
  return b.finish();
}

void prune_all(Model& m, int variant) {
  int i = variant;
  for (Node& n : m.nodes) {
    if (!op_has_weight(n.op) || n.name == "stem" || n.name == "stem.conv" || n.name == "conv1.conv") continue;
    switch (i++ % 3) {
      case 0: test::block_prune(n, 8, 8, 0.5, static_cast<uint64_t>(i)); break;
      case 1:
        if (n.param("weight").shape().back() % 4 == 0) test::nm_prune(n, 2, 4);
        break;
      default: test::tw_prune(n, 8, 0.8, 0.6, static_cast<uint64_t>(i)); break;
    }
  }
}

Tensor images(const Model& m, int64_t n, uint64_t seed) {
  Shape s = m.input_shape();
  return test::random_tensor({n, s[0], s[1], s[2]}, seed);
}

float rel_err(const Tensor& a, const Tensor& b) {
  float range = 1e-6f;
  for (float v : b) range = std::max(range, std::abs(v));
  return test::max_abs_diff(a, b) / range;
}

}  // namespace

TEST_CASE("the fp32 runner matches the reference forward on every path and ISA") {
  for (int arch = 0; arch < 3; ++arch) {
    Model m = arch == 0 ? mixed_net() : find_arch(arch == 1 ? "fmnist-resnet" : "fmnist-cnn").build(10);
    init_weights(m, 3);
    test::randomise_batchnorms(m, 4);
    prune_all(m, arch);
    m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, {}));
    const Tensor x = images(m, 3, 5);
    const Tensor ref = reference_forward(m, x);
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      set_isa(isa);
      for (Path p : {Path::Auto, Path::Dense, Path::Blas}) {
        Runner r(m, p);
        INFO(m.arch << " " << isa_name(isa) << " " << path_name(p));
        const Tensor y1 = r.forward(x);
        CHECK(rel_err(y1, ref) < 2e-5f);
        // Buffers are reused by the next pass: same input, same bits; a
        // different batch size still works.
        const Tensor y2 = r.forward(x);
        CHECK(std::equal(y1.begin(), y1.end(), y2.begin()));
        CHECK(rel_err(r.forward(images(m, 1, 6)), reference_forward(m, images(m, 1, 6))) < 2e-5f);
        if (p == Path::Auto) {
          int sparse = 0;
          for (const auto& s : r.steps()) sparse += s.kernel == "bsr" || s.kernel == "nm" || s.kernel == "tw";
          CHECK(sparse >= 2);
        }
      }
    }
    set_isa(detect_isa());
  }
}

TEST_CASE("the runner fuses batchnorm, residual add and relu or clip into the layer") {
  Model m = mixed_net();
  init_weights(m, 1);
  Runner r(m, Path::Dense);
  bool found = false;
  for (const auto& s : r.steps())
    if (s.name == "a2") {
      found = true;
      CHECK(s.fused == std::vector<std::string>{"a2.bn", "res", "res.relu"});
      CHECK(s.kernel == "dense");
    }
  CHECK(found);
  // Depthwise convs run on their kernel with the same epilogue.
  int depthwise = 0;
  for (const auto& s : r.steps()) {
    depthwise += s.name == "dw" && s.kernel == "depthwise" && s.fused == std::vector<std::string>{"dw.bn", "dw.clip"};
    depthwise += s.name == "dw2" && s.kernel == "depthwise" && s.fused == std::vector<std::string>{"dw2.res", "dw2.clip"};
  }
  CHECK(depthwise == 2);
  // A batchnorm after a concat stays a step of its own.
  bool bn_step = false;
  for (const auto& s : r.steps()) bn_step |= s.name == "cat.bn" && s.kernel == "ref";
  CHECK(bn_step);
}

TEST_CASE("the int8 runner is bit-identical to the int8 reference forward") {
  for (int arch = 0; arch < 2; ++arch) {
    Model m = arch == 0 ? mixed_net() : build_fmnist_resnet(10);
    init_weights(m, 7);
    test::randomise_batchnorms(m, 8);
    prune_all(m, arch);
    const Tensor calib = images(m, 8, 1);
    compact::CompactOptions o;
    o.dtype = DType::Int8;
    o.calib_forward = calibration_forward(m);
    m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, o, &calib));
    const Tensor x = images(m, 2, 9);
    const Tensor ref = q8::reference_forward(m, *m.compact->int8, x);
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      set_isa(isa);
      Runner r(m);
      REQUIRE(r.is_int8());
      int tw = 0;  // tw layers run on the int8 tile-wise kernel
      for (const auto& s : r.steps()) tw += s.kernel == "int8-tw";
      CHECK(tw >= 1);
      if (arch == 0) {
        // The residual add (and its relu) runs in the epilogue of the conv it follows.
        int fused = 0;
        for (const auto& s : r.steps()) {
          fused += s.name == "a2" && s.fused == std::vector<std::string>{"a2.bn", "res", "res.relu"};
          fused += s.name == "fc1b" && s.fused == std::vector<std::string>{"fc.res"};
        }
        CHECK(fused == 2);
        int depthwise = 0;
        for (const auto& s : r.steps()) depthwise += s.kernel == "int8-depthwise";
        CHECK(depthwise == 2);
      }
      // nm layers run on the int8 nm kernel, except on AVX2 (8x8 blocks there).
      int nm = 0, nm_blocks = 0;
      for (const auto& s : r.steps()) nm += s.kernel == "int8-nm", nm_blocks += s.kernel == "int8-nm-as-bsr";
      CHECK((isa == Isa::Avx2 ? nm == 0 && nm_blocks >= 1 : nm >= 1));
      const Tensor y = r.forward(x);
      INFO(m.arch << " " << isa_name(isa));
      REQUIRE(y.shape() == ref.shape());
      CHECK(std::equal(y.begin(), y.end(), ref.begin()));
      // Again on the pooled buffers, then another batch size.
      const Tensor y2 = r.forward(x);
      CHECK(std::equal(y2.begin(), y2.end(), ref.begin()));
      const Tensor x1 = images(m, 1, 10);
      const Tensor ref1 = q8::reference_forward(m, *m.compact->int8, x1);
      const Tensor y1 = r.forward(x1);
      REQUIRE(y1.shape() == ref1.shape());
      CHECK(std::equal(y1.begin(), y1.end(), ref1.begin()));
    }
    set_isa(detect_isa());
  }
}

TEST_CASE("the runner refuses an input of the wrong shape") {
  Model m = build_fmnist_cnn(10);
  init_weights(m, 1);
  Runner r(m);
  CHECK_THROWS_WITH(r.forward(Tensor({1, 28, 27, 1})), Catch::Contains("the model takes [N, 28, 28, 1]"));
}
