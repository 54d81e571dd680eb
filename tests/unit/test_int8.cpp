#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "compact/compact.hpp"
#include "core/h5.hpp"
#include "core/reference_forward.hpp"
#include "core/reference_ops.hpp"
#include "kernels/runner.hpp"
#include "modelfile/model_file.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

TEST_CASE("requantisation: round half up, saturate, golden values") {
  using q8::Requant;
  CHECK(q8::rescale(5, Requant{1, 1}) == 3);
  CHECK(q8::rescale(-5, Requant{1, 1}) == -2);
  CHECK(q8::rescale(-6, Requant{1, 1}) == -3);
  CHECK(q8::rescale(7, Requant{3, 0}) == 21);
  CHECK(q8::requantize(1000, Requant{1, 2}, -128, 127) == 127);
  CHECK(q8::requantize(-1000, Requant{1, 2}, -128, 127) == -128);
  CHECK(q8::requantize(-1000, Requant{1, 2}, 0, 127) == 0);

  auto r = q8::make_requant(0.5);
  CHECK((r.mult == 1 && r.shift == 1));
  r = q8::make_requant(4.0);
  CHECK((r.mult == 4 && r.shift == 0));
  r = q8::make_requant(3.0);
  CHECK((r.mult == 1610612736 && r.shift == 29));
  r = q8::make_requant(0.1);
  CHECK(r.mult >= (1 << 30));
  CHECK(std::ldexp(static_cast<double>(r.mult), -r.shift) == Approx(0.1).epsilon(1e-9));
  r = q8::make_requant(1e-30);
  CHECK((r.mult == 0 && r.shift == 62));
  CHECK_THROWS(q8::make_requant(0.0));

  CHECK(q8::quant_scale(127.0, false) == 1.0);
  CHECK(q8::quant_scale(100.0, true) == 1.0);
  CHECK(q8::quant_scale(130.0, true) == 2.0);
  CHECK(q8::quant_scale(0.0, false) == 1.0);
  CHECK(q8::quantize_value(2.5f, 1.0) == 2);  // half to even
  CHECK(q8::quantize_value(3.5f, 1.0) == 4);
  CHECK(q8::quantize_value(-1000.f, 1.0) == -128);
  CHECK(q8::quantize_value(std::nanf(""), 1.0) == 0);
  CHECK(q8::quantize_value(std::numeric_limits<float>::infinity(), 1.0) == 127);
  CHECK(q8::quantize_value(-2.5f, 1.0) == -2);
  CHECK(q8::quantize_value(-3.5f, 1.0) == -4);
  CHECK(q8::quantize_value(126.5f, 1.0) == 126);
  CHECK(q8::quantize_value(-127.5f, 1.0) == -128);
  // The rule is nearbyint (half to even) and a clamp, on halves, near-halves
  // and every scale: compared with the library's nearbyint.
  Rng rng(5);
  int64_t bad = 0;
  for (int i = 0; i < 200000; ++i) {
    // Every third value an exact tie: a power-of-two scale keeps x / scale = k + 0.5.
    const bool tie = i % 3 == 0;
    const double scale = tie ? std::ldexp(1.0, -static_cast<int>(rng.below(12)))
                             : std::ldexp(0.5 + rng.uniform(), -static_cast<int>(rng.below(12)));
    const float x = tie ? static_cast<float>((static_cast<int>(rng.below(400)) - 200 + 0.5) * scale)
                        : static_cast<float>((rng.uniform() * 400 - 200) * scale);
    const double v = std::nearbyint(static_cast<double>(x) / scale);
    const int8_t want = static_cast<int8_t>(v < -128 ? -128 : v > 127 ? 127 : v);
    bad += q8::quantize_value(x, scale) != want;
  }
  CHECK(bad == 0);
}

TEST_CASE("int8 conv golden: int32 accumulation, bias, per-channel requantisation, fused relu") {
  GraphBuilder b("t", 1, 2, 2);
  b.conv("c", "input", GraphBuilder::ConvSpec{2, 1, 2, 1, {0, 0, 0, 0}, 1, false});
  Model m = b.finish();
  q8::QNode q;
  q.kind = q8::Kind::Conv;
  q.weight = Array<int8_t>({2, 1, 2, 2}, std::vector<int8_t>{1, 2, 3, 4, -1, -1, -1, -1});
  q.bias = Array<int32_t>({2}, std::vector<int32_t>{10, 0});
  q.rq = {{1, 2}, {1, 0}};
  q.lo = 0;
  Array<int8_t> x({1, 1, 2, 2}, std::vector<int8_t>{5, -6, 7, 8});
  auto y = q8::reference_node(m.nodes[1], q, {&x});
  // o0: 10 + 5 - 12 + 21 + 32 = 56 -> (56 + 2) >> 2 = 14; o1: -14 -> relu 0.
  REQUIRE(y.shape() == Shape{1, 1, 1, 2});
  CHECK(y[0] == 14);
  CHECK(y[1] == 0);
}

namespace {

Tensor images(int64_t n, const Model& m, uint64_t seed) {
  Shape s = m.input_shape();
  return test::random_tensor({n, s[0], s[1], s[2]}, seed);
}

// Relative error of the int8 output against the fp32 reference, over the
// output's range.
double relative_error(const Model& m, const q8::QModel& q, const Tensor& x) {
  Tensor ref = reference_forward(m, x);
  Tensor got = q8::reference_forward(m, q, x);
  REQUIRE(got.shape() == ref.shape());
  double range = 0, err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    range = std::max(range, static_cast<double>(std::abs(ref[i])));
    err = std::max(err, static_cast<double>(std::abs(ref[i] - got[i])));
  }
  return err / range;
}

}  // namespace

TEST_CASE("int8 forward tracks the fp32 reference on the fmnist nets") {
  for (const char* arch : {"fmnist-cnn", "fmnist-resnet"}) {
    Model m = find_arch(arch).build(10);
    init_weights(m, 1);
    test::randomise_batchnorms(m, 2);
    for (Node& n : m.nodes)
      if (n.op == Op::Conv2d && n.name != "conv1.conv" && n.name != "stem.conv") test::block_prune(n, 8, 8, 0.5, 7);
    Tensor calib = images(16, m, 3);
    for (bool pow2 : {false, true}) {
      q8::QuantOptions qo;
      qo.pow2 = pow2;
      q8::QModel q = q8::quantize(m, calib, qo);
      // Every batchnorm here follows a conv: all folded; every relu fused.
      for (size_t i = 0; i < m.nodes.size(); ++i) {
        if (m.nodes[i].op == Op::BatchNorm || m.nodes[i].op == Op::Relu)
          CHECK(q.nodes[i].kind == q8::Kind::Identity);
        if (pow2 && q.nodes[i].kind != q8::Kind::Identity) {
          int e;
          CHECK(std::frexp(q.nodes[i].scale, &e) == 0.5);
        }
      }
      INFO(arch << (pow2 ? " pow2" : ""));
      const double err = relative_error(m, q, images(4, m, 9));
      CHECK(err < (pow2 ? 0.12 : 0.06));
    }
  }
}

TEST_CASE("unfoldable batchnorms become affine nodes, shared relus stay") {
  GraphBuilder b("t", 6, 6, 8);
  std::string c = b.conv("c", "input", GraphBuilder::square(8, 3, 1, 1));
  std::string bn = b.batchnorm("bn", c);
  std::string r = b.relu("r", bn);
  std::string bn2 = b.batchnorm("bn2", r);  // input is a relu: affine
  std::string sum = b.add("sum", {bn2, c});  // c has two consumers: bn not foldable
  b.relu("r2", sum);
  Model m = b.finish();
  init_weights(m, 3);
  test::randomise_batchnorms(m, 4);
  q8::QModel q = q8::quantize(m, images(8, m, 1), {});
  CHECK(q.nodes[2].kind == q8::Kind::Affine);    // bn: the conv feeds the add too
  CHECK(q.nodes[3].kind == q8::Kind::Identity);  // relu fused into the affine
  CHECK(q.nodes[2].lo == 0);
  CHECK(q.nodes[4].kind == q8::Kind::Affine);
  CHECK(q.nodes[6].kind == q8::Kind::Identity);  // relu after the add
  CHECK(q.nodes[5].lo == 0);
  CHECK(relative_error(m, q, images(2, m, 5)) < 0.06);
}

TEST_CASE("pools, concat and softmax in int8") {
  GraphBuilder b("t", 9, 9, 8);
  std::string c = b.relu("r", b.conv("c", "input", GraphBuilder::square(16, 3, 1, 1, true)));
  std::string a = b.avgpool("ap", c, 3, 2, 1, false);
  std::string mp = b.maxpool("mp", c, 3, 2, 1);
  std::string cat = b.concat("cat", {a, mp});
  std::string g = b.global_avgpool("gap", cat);
  b.softmax("sm", b.dense("fc", g, 5));
  Model m = b.finish();
  init_weights(m, 5);
  q8::QModel q = q8::quantize(m, images(8, m, 1), {});
  Tensor x = images(3, m, 2);
  Tensor ref = reference_forward(m, x), got = q8::reference_forward(m, q, x);
  for (size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == Approx(ref[i]).margin(0.03));
}

TEST_CASE("int8 compaction stores the program; a reloaded model runs bit-identically") {
  test::TempDir dir;
  Model m = build_fmnist_resnet(10);
  init_weights(m, 5);
  test::randomise_batchnorms(m, 6);
  for (Node& n : m.nodes)
    if (n.op == Op::Conv2d && n.name != "stem.conv") test::block_prune(n, 8, 8, 0.5, 3);
  Tensor calib = images(8, m, 1);
  compact::CompactOptions o;
  o.dtype = DType::Int8;
  o.calib_forward = kernels::calibration_forward(m);
  m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, o, &calib));
  save_model(m, dir.file("q.h5"));
  Model back = load_model(dir.file("q.h5"), "q.h5");
  REQUIRE(back.compact);
  REQUIRE(back.compact->int8);
  const auto& q0 = *m.compact->int8;
  const auto& q1 = *back.compact->int8;
  for (size_t i = 0; i < q0.nodes.size(); ++i) {
    CHECK(q0.nodes[i].kind == q1.nodes[i].kind);
    CHECK(q0.nodes[i].scale == q1.nodes[i].scale);
    if (q0.nodes[i].has_weight())
      CHECK(std::equal(q0.nodes[i].weight.begin(), q0.nodes[i].weight.end(), q1.nodes[i].weight.begin()));
  }
  CHECK(back.compact->layer("stage2.0.a.conv")->format == compact::Format::Bsr);
  CHECK(back.compact->layer("stage2.0.a.conv")->dtype == DType::Int8);
  Tensor x = images(2, m, 7);
  std::vector<Array<int8_t>> outs0, outs1;
  Tensor y0 = q8::reference_forward(m, q0, x, [&](size_t, const Array<int8_t>& t) { outs0.push_back(t.clone()); });
  Tensor y1 = q8::reference_forward(back, q1, x, [&](size_t, const Array<int8_t>& t) { outs1.push_back(t.clone()); });
  REQUIRE(outs0.size() == outs1.size());
  for (size_t i = 0; i < outs0.size(); ++i)
    CHECK(std::equal(outs0[i].begin(), outs0[i].end(), outs1[i].begin()));
  CHECK(std::equal(y0.begin(), y0.end(), y1.begin()));
}

TEST_CASE("a stored int8 program that folds the graph otherwise is refused when read") {
  test::TempDir dir;
  Model m = build_fmnist_resnet(10);
  init_weights(m, 5);
  Tensor calib = images(4, m, 1);
  compact::CompactOptions o;
  o.dtype = DType::Int8;
  m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, o, &calib));
  CHECK_NOTHROW(q8::check_folding(m, *m.compact->int8));
  save_model(m, dir.file("q.h5"));
  // The stem's relu, fused into its conv, claims to run on its own.
  const std::string relu = m.nodes[3].name;
  REQUIRE(m.compact->int8->nodes[3].kind == q8::Kind::Identity);
  {
    h5::Handle f = h5::open_file_readwrite(dir.file("q.h5"));
    h5::Handle g = h5::open_group(f, "compact/int8/" + relu);
    H5Adelete(g, "kind");
    h5::write_attr(g, "kind", std::string("relu"));
  }
  CHECK_THROWS_WITH(load_model(dir.file("q.h5"), "q.h5"),
                    Catch::Contains("node '" + relu + "' is relu in the int8 program, identity in the graph's folding"));
  // In memory too: a clamp that is not the folding's.
  q8::QModel q = q8::quantize(m, calib, {});
  q.nodes[1].lo = -128;
  CHECK_THROWS_WITH(q8::check_folding(m, q), Catch::Contains("clamps to [-128, 127] in the int8 program, [0, 127]"));
}

TEST_CASE("calibrating on the fast kernels sees every int8 tensor the reference sees") {
  Model m = build_fmnist_resnet(10);
  init_weights(m, 11);
  test::randomise_batchnorms(m, 12);
  const Tensor calib = images(6, m, 13);
  const q8::QModel ref = q8::quantize(m, calib, {});
  compact::CompactOptions o;
  o.dtype = DType::Int8;
  o.calib_forward = kernels::calibration_forward(m);
  const compact::CompactModel c = compact::compact_model(m, o, &calib);
  CHECK(o.calib_forward);
  REQUIRE(c.int8->nodes.size() == ref.nodes.size());
  for (size_t i = 0; i < ref.nodes.size(); ++i) {
    INFO(m.nodes[i].name);
    CHECK(c.int8->nodes[i].kind == ref.nodes[i].kind);
    CHECK(c.int8->nodes[i].scale == Approx(ref.nodes[i].scale).epsilon(1e-5));
  }
}

TEST_CASE("lookup tables and mul in int8: the rules of int8.hpp, stored and checked when read") {
  test::TempDir dir;
  // conv -> hardswish; a squeeze-excitation over the whole 46x46 map (2116
  // divisors: datasets, not attributes) -> hardsigmoid -> mul; x * sigmoid(x).
  GraphBuilder b("t", 46, 46, 8);
  const std::string c = b.node("hs", Op::HardSwish, {b.conv("c", "input", GraphBuilder::square(8, 3, 1, 1, true))});
  const std::string p = b.avgpool("pool", c, 46, 1);
  Attrs a;
  a.set("alpha", 1.0 / 6);
  a.set("beta", 0.5);
  const std::string s = b.node("hsig", Op::HardSigmoid, {b.conv("fc", p, GraphBuilder::square(8, 1, 1, 0, true))}, a);
  const std::string se = b.node("se", Op::Mul, {c, s});
  const std::string y = b.node("silu", Op::Mul, {se, b.node("sig", Op::Sigmoid, {se})});
  b.dense("logits", b.global_avgpool("gap", y), 5);
  Model m = b.finish();
  init_weights(m, 5);
  Tensor calib = images(4, m, 1);
  compact::CompactOptions o;
  o.dtype = DType::Int8;
  m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, o, &calib));
  const q8::QModel& q = *m.compact->int8;
  auto qn = [&](const char* name) -> const q8::QNode& { return q.nodes[m.index_of(name)]; };
  auto scale = [&](const char* name) { return qn(name).scale; };

  // table[v + 128] = quantize_value(f(float(v * s_in)), s_out).
  REQUIRE(qn("hs").kind == q8::Kind::Lut);
  REQUIRE(qn("hs").table.size() == 256);
  for (int v = -128; v <= 127; v += 5) {
    const float x = static_cast<float>(v * scale("c"));
    CHECK(qn("hs").table[static_cast<size_t>(v + 128)] == q8::quantize_value(ref::hardswish(x), scale("hs")));
    CHECK(qn("sig").table[static_cast<size_t>(v + 128)] ==
          q8::quantize_value(ref::sigmoid(static_cast<float>(v * scale("se"))), scale("sig")));
  }
  // mul: clamp(rescale(x0 * x1, rq), -128, 127), rq for s0 * s1 / s_out; the scale broadcast per channel.
  REQUIRE(qn("se").kind == q8::Kind::Mul);
  const q8::Requant rq = q8::make_requant(scale("hs") * scale("hsig") / scale("se"));
  CHECK(qn("se").prod_rq.mult == rq.mult);
  CHECK(qn("se").prod_rq.shift == rq.shift);
  Array<int8_t> x0({1, 2, 2, 3}), x1({1, 1, 1, 3});
  for (size_t i = 0; i < x0.size(); ++i) x0[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 256) - 128);
  x1[0] = 127, x1[1] = -128, x1[2] = 5;
  const Array<int8_t> prod = q8::reference_node(m.nodes[m.index_of("se")], qn("se"), {&x0, &x1});
  for (size_t i = 0; i < x0.size(); ++i)
    CHECK(prod[i] == q8::requantize(int64_t{x0[i]} * x1[i % 3], rq, -128, 127));

  // Stored and read back: the same program, bit for bit; the pool's 2116
  // divisors as datasets.
  save_model(m, dir.file("q.h5"));
  {
    h5::Handle f = h5::open_file_readwrite(dir.file("q.h5"));
    h5::Handle g = h5::open_group(f, "compact/int8/pool");
    CHECK_FALSE(h5::has_attr(g, "count_rq_mult"));
    CHECK(h5::exists(g, "count_rq_mult"));
  }
  Model back = load_model(dir.file("q.h5"), "q.h5");
  const q8::QModel& q1 = *back.compact->int8;
  CHECK(q1.nodes[m.index_of("hs")].table == qn("hs").table);
  CHECK(q1.nodes[m.index_of("pool")].count_rq.size() == 46 * 46);
  const Tensor x = images(2, m, 7);
  const Tensor ya = q8::reference_forward(m, q, x), yb = q8::reference_forward(back, q1, x);
  CHECK(std::equal(ya.begin(), ya.end(), yb.begin()));
  // A table that is not 256 entries is refused.
  {
    h5::Handle f = h5::open_file_readwrite(dir.file("q.h5"));
    h5::Handle g = h5::open_group(f, "compact/int8/sig");
    H5Ldelete(g, "table", H5P_DEFAULT);
    h5::write_array(g, "table", Array<int8_t>({255}));
  }
  CHECK_THROWS_WITH(load_model(dir.file("q.h5"), "q.h5"),
                    Catch::Contains("int8 node 'sig': lookup table has 255 entries, not 256"));
}

TEST_CASE("int8 never quantises a NaN or an infinity") {
  // No scale comes from a non-finite magnitude (it used to be 1).
  CHECK_THROWS_WITH(q8::quant_scale(std::numeric_limits<double>::infinity(), false), Catch::Contains("no int8 scale"));
  CHECK_THROWS_WITH(q8::quant_scale(std::nan(""), true), Catch::Contains("no int8 scale"));

  auto make = [] {
    GraphBuilder b("q", 4, 4, 2);
    auto x = b.relu("r1", b.batchnorm("bn1", b.conv("c1", "input", GraphBuilder::square(8, 3, 1, 1))));
    b.dense("fc", b.flatten("f", x), 3);
    Model m = b.finish();
    init_weights(m, 7);
    return m;
  };
  Model m = make();
  Tensor calib({4, 4, 4, 2});
  for (size_t i = 0; i < calib.size(); ++i) calib[i] = static_cast<float>(i % 7) * 0.1f;

  // Non-finite calibration images.
  Tensor bad = calib.clone();
  bad[40] = std::nanf("");
  CHECK_THROWS_WITH(q8::quantize(m, bad, {}), Catch::Contains("calibration image 1 holds nan"));

  // A NaN inside the forward (std::max used to drop it from the maximum):
  // the node that produced it is named.
  q8::QuantOptions nan_forward;
  nan_forward.forward = [&](const Tensor& in, const std::function<void(size_t, const Tensor&)>& observe) {
    reference_forward(m, in, [&](size_t i, const Tensor& t) {
      Tensor c = t.clone();
      if (m.nodes[i].name == "r1") c[3] = std::nanf("");
      observe(i, c);
    });
  };
  CHECK_THROWS_WITH(q8::quantize(m, calib, nan_forward),
                    Catch::Contains("calibration: node 'r1' outputs nan or infinite values on calibration images 0 to 3"));

  // Finite parameters whose batchnorm folding overflows float32 (here the
  // calibration forward is a stub that sees finite values everywhere).
  Model big = make();
  big.find("bn1")->param("gamma")[2] = 1e30f;
  big.find("c1")->param("weight")[2 * 18 + 4] = 1e30f;
  q8::QuantOptions finite_forward;
  finite_forward.forward = [&](const Tensor&, const std::function<void(size_t, const Tensor&)>& observe) {
    for (size_t i = 0; i < big.nodes.size(); ++i) observe(i, Tensor({1}));
  };
  CHECK_THROWS_WITH(q8::quantize(big, calib, finite_forward),
                    Catch::Contains("layer 'c1': folded weight 40 of output channel 2 is infinite"));
}
