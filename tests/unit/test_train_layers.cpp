// The trainer's layers: forward against the reference ops (eval mode) and
// backward against central finite differences, op by op. Tolerances: the
// analytic and numeric derivatives of L = sum(out * R) agree to 2e-2
// relative (float forward passes, eps 1e-2, 1e-3 near kinks).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "core/reference_forward.hpp"
#include "sparsity/mask.hpp"
#include "train/net.hpp"
#include "train_helpers.hpp"

using namespace bsp;
using namespace bsp::train;

namespace {

struct Case {
  std::string what;
  Model m;
  int64_t n = 2;
  double eps = 1e-2;
};

Tensor net_forward(Net& net, const Tensor& x, int64_t n, Mode mode) {
  test::to_channel_major(x, net.input());
  net.forward(n, mode);
  return test::from_channel_major(net.output(), n, net.output().act.data());
}

// L = sum over the output rows of out * R (R fixed, channel-major).
double loss_of(Net& net, int64_t n, Mode mode, const std::vector<float>& R) {
  net.forward(n, mode);
  const Value& o = net.output();
  double s = 0;
  for (size_t i = 0; i < R.size(); ++i) s += static_cast<double>(o.act[i]) * R[i];
  return s;
}

void check_case(Case& c, Mode mode) {
  INFO(c.what << (mode == Mode::Train ? " (train mode)" : " (eval mode)"));
  Model& m = c.m;
  test::randomize(m, 7);
  const Shape in = m.input_shape();
  const int64_t n = c.n;
  Tensor x = test::random_tensor({n, in[0], in[1], in[2]}, 21);

  NetOptions o;
  o.max_batch = n;
  o.input_grad = true;
  Net net(m, o);

  if (mode == Mode::Eval) {
    // Forward: the reference ops on NHWC.
    Tensor want = reference_forward(m, x);
    Tensor got = net_forward(net, x, n, Mode::Eval);
    REQUIRE(got.shape() == want.shape());
    float scale = 1;
    for (float v : want) scale = std::max(scale, std::abs(v));
    CHECK(test::max_abs_diff(got, want) <= 1e-4f * scale);
  }

  // Backward: gradient of L w.r.t. the input and every parameter.
  Value& out = net.output();
  const size_t used = static_cast<size_t>(out.C * out.plane(n));
  Tensor r = test::random_tensor({static_cast<int64_t>(used)}, 33);
  std::vector<float> R(r.begin(), r.end());
  test::to_channel_major(x, net.input());
  loss_of(net, n, mode, R);
  std::copy(R.begin(), R.end(), out.grad.data());
  net.backward();

  auto numeric = [&](float* p, bool weights) {
    const float v = *p;
    *p = v + static_cast<float>(c.eps);
    if (weights) net.weights_changed();
    const double lp = loss_of(net, n, mode, R);
    *p = v - static_cast<float>(c.eps);
    if (weights) net.weights_changed();
    const double lm = loss_of(net, n, mode, R);
    *p = v;
    if (weights) net.weights_changed();
    return (lp - lm) / (2 * c.eps);
  };

  Value& xin = net.input();
  const int64_t xs = xin.C * xin.plane(n);
  for (int64_t i = 0; i < xs; i += std::max<int64_t>(1, xs / 25)) {
    const double a = xin.grad[static_cast<size_t>(i)];
    const double num = numeric(xin.act.data() + i, false);
    INFO("input element " << i << ": analytic " << a << " numeric " << num);
    CHECK(test::rel_err(a, num) < 2e-2f);
  }
  for (Param& p : net.params()) {
    const int64_t ps = static_cast<int64_t>(p.value->size());
    for (int64_t i = 0; i < ps; i += std::max<int64_t>(1, ps / 20)) {
      const double a = p.grad[static_cast<size_t>(i)];
      const double num = numeric(p.value->data() + i, true);
      INFO(p.name << " element " << i << ": analytic " << a << " numeric " << num);
      CHECK(test::rel_err(a, num) < 2e-2f);
    }
  }
}

using G = GraphBuilder;

Case conv_case(const std::string& what, int64_t H, int64_t W, int64_t C, G::ConvSpec spec,
               std::vector<int64_t> dilation = {1, 1}) {
  G b("t", H, W, C);
  b.conv("c", "input", spec);
  Case c{what, b.finish()};
  c.m.find("c")->attrs.set("dilation", dilation);
  c.m.validate();
  return c;
}

}  // namespace

TEST_CASE("conv2d forward and gradients, fast and generic paths") {
  std::vector<Case> cases;
  cases.push_back(conv_case("3x3 stride 1 pad 1, 16 -> 12 channels, bias", 6, 5, 16, G::square(12, 3, 1, 1, true)));
  cases.push_back(conv_case("3x3 stride 2 pad 1", 7, 6, 8, G::square(8, 3, 2, 1)));
  cases.push_back(conv_case("1x1 stride 1 pad 0", 4, 4, 8, G::square(16, 1, 1, 0, true)));
  cases.push_back(conv_case("1x1 stride 2", 6, 6, 8, G::square(8, 1, 2, 0)));
  cases.push_back(conv_case("5x5 pad 2, 3 input channels", 6, 7, 3, G::square(8, 5, 1, 2)));
  cases.push_back(conv_case("3x3 dilation 2 pad 2", 7, 7, 8, G::square(8, 3, 1, 2), {2, 2}));
  cases.push_back(conv_case("1x3 asymmetric padding", 5, 6, 8, G::ConvSpec{8, 1, 3, 1, {0, 1, 0, 1}}));
  cases.push_back(conv_case("3x1 no padding (valid)", 6, 5, 8, G::ConvSpec{9, 3, 1, 1, {0, 0, 0, 0}}));
  cases.push_back(conv_case("grouped, 2 groups", 5, 5, 8, G::ConvSpec{12, 3, 3, 1, {1, 1, 1, 1}, 2, true}));
  cases.push_back(conv_case("depthwise", 5, 5, 8, G::ConvSpec{8, 3, 3, 1, {1, 1, 1, 1}, 8}));
  cases.push_back(conv_case("7x7 stride 2 pad 3", 9, 9, 3, G::square(8, 7, 2, 3)));
  cases.push_back(conv_case("3x3 stride 2 dilation 2 pad 2", 9, 8, 8, G::square(8, 3, 2, 2), {2, 2}));
  cases.push_back(conv_case("3x3 stride 3, no padding", 10, 8, 8, G::ConvSpec{8, 3, 3, 3, {0, 0, 0, 0}}));
  // The fast path's padded plane is sized by the window's extent: a 1x1
  // kernel dilated by 2^24 is one tap (it once asked for 2^24 rows, GBs),
  // and a dilated window as wide as the padded map reaches past a row.
  cases.push_back(conv_case("1x1 dilation 2^24", 4, 4, 8, G::square(8, 1, 1, 0), {1 << 24, 1 << 24}));
  cases.push_back(conv_case("3x3 dilation 3 pad 3 on a 3x3 map", 3, 3, 8, G::square(8, 3, 1, 3), {3, 3}));
  for (Case& c : cases) {
    check_case(c, Mode::Eval);
  }
}

TEST_CASE("dense, batchnorm, relu and the shape ops: forward and gradients") {
  std::vector<Case> cases;
  {
    G b("t", 3, 3, 4);
    b.dense("fc", b.flatten("f", "input"), 10);
    cases.push_back({"flatten + dense with bias", b.finish()});
  }
  {
    G b("t", 4, 3, 5);
    b.batchnorm("bn", "input");
    cases.push_back({"batchnorm", b.finish(), 3});
  }
  {
    G b("t", 4, 4, 3);
    b.relu("r", b.conv("c", "input", G::square(8, 3, 1, 1)));
    cases.push_back({"conv + relu", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 7, 6, 3);
    b.maxpool("p", "input", 3, 2, 1);
    cases.push_back({"maxpool 3x3 stride 2 pad 1", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 6, 6, 3);
    b.maxpool("p", "input", 2, 2);
    cases.push_back({"maxpool 2x2", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 7, 5, 3);
    b.maxpool("p", "input", 2, 2);
    cases.push_back({"maxpool 2x2, odd height and width", b.finish(), 2, 1e-3});
  }
  {
    // The second pool adds its gradient to the first's.
    G b("t", 6, 7, 3);
    b.add("a", {b.maxpool("p1", "input", 2, 2), b.maxpool("p2", "input", 2, 2)});
    cases.push_back({"two maxpools 2x2 of one input", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 5, 4, 6);
    b.relu("r", b.batchnorm("bn", "input"));
    cases.push_back({"batchnorm + relu (fused)", b.finish(), 3, 1e-3});
  }
  {
    G b("t", 5, 4, 6);
    b.add("a", {b.relu("r", b.batchnorm("bn", "input")), "input"});
    cases.push_back({"batchnorm + relu beside a residual", b.finish(), 3, 1e-3});
  }
  {
    G b("t", 7, 6, 3);
    b.avgpool("p", "input", 3, 2, 1, true);
    cases.push_back({"avgpool 3x3 stride 2 pad 1, padding counted", b.finish()});
  }
  {
    G b("t", 7, 6, 3);
    b.avgpool("p", "input", 3, 2, 1, false);
    cases.push_back({"avgpool 3x3 stride 2 pad 1, padding not counted", b.finish()});
  }
  {
    G b("t", 5, 4, 6);
    b.global_avgpool("g", "input");
    cases.push_back({"global average pool", b.finish()});
  }
  {
    G b("t", 4, 4, 8);
    auto c = b.conv("c", "input", G::square(8, 3, 1, 1));
    auto r = b.relu("r", c);
    b.add("a", {c, r, "input"});
    cases.push_back({"add (a value used three times)", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 4, 4, 8);
    auto c = b.conv("c", "input", G::square(8, 3, 1, 1));
    b.relu("r", b.add("a", {c, "input"}));
    cases.push_back({"add + relu (fused)", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 4, 4, 3);
    auto c = b.conv("c", "input", G::square(5, 1, 1, 0));
    b.concat("cat", {c, "input", c});
    cases.push_back({"concat", b.finish()});
  }
  for (Case& c : cases) check_case(c, Mode::Eval);
}

TEST_CASE("sigmoid, hardsigmoid, hardswish and mul: forward and gradients") {
  std::vector<Case> cases;
  {
    G b("t", 4, 4, 6);
    b.node("s", Op::Sigmoid, {"input"});
    cases.push_back({"sigmoid", b.finish()});
  }
  {
    G b("t", 4, 4, 6);
    Attrs a;
    a.set("alpha", 0.3);
    a.set("beta", 0.45);
    b.node("h", Op::HardSigmoid, {"input"}, a);
    cases.push_back({"hardsigmoid", b.finish(), 2, 1e-3});
  }
  {
    G b("t", 4, 4, 6);
    b.node("h", Op::HardSwish, {b.conv("c", "input", G::square(8, 3, 1, 1))});  // values beyond +-3 too
    cases.push_back({"conv + hardswish", b.finish(), 2, 1e-3});
  }
  {
    // x * sigmoid(x): both factors read the same value (gradients add).
    G b("t", 4, 3, 5);
    b.node("m", Op::Mul, {"input", b.node("s", Op::Sigmoid, {"input"})});
    cases.push_back({"mul of the same shape (a SiLU)", b.finish()});
  }
  {
    // Squeeze-excitation: a [1, 1, C] scale broadcast over H, W (its
    // gradient sums over them), from the map itself.
    G b("t", 4, 4, 8);
    const std::string c = b.conv("c", "input", G::square(8, 3, 1, 1, true));
    const std::string p = b.avgpool("p", c, 4, 1);
    Attrs a;
    a.set("alpha", 1.0 / 6);
    a.set("beta", 0.5);
    const std::string s = b.node("hs", Op::HardSigmoid, {b.conv("fc", p, G::square(8, 1, 1, 0, true))}, a);
    b.node("m", Op::Mul, {c, s});
    cases.push_back({"mul broadcast (squeeze-excitation)", b.finish(), 2, 1e-3});
  }
  for (Case& c : cases) check_case(c, Mode::Eval);
}

TEST_CASE("train-mode batchnorm: batch statistics and their gradient") {
  G b("t", 4, 3, 5);
  b.batchnorm("bn", b.conv("c", "input", G::square(8, 3, 1, 1)));
  Case c{"conv + batchnorm (batch statistics)", b.finish(), 3};
  check_case(c, Mode::Train);

  // The normalised output has mean beta and variance gamma^2 per channel.
  Model& m = c.m;
  NetOptions o;
  o.max_batch = 4;
  Net net(m, o);
  Tensor x = test::random_tensor({4, 4, 3, 5}, 3, 2.0);
  test::to_channel_major(x, net.input());
  const Tensor before_mean = m.find("bn")->param("mean").clone();
  net.forward(4, Mode::Train);
  const Value& out = net.output();
  const int64_t M = out.plane(4);
  const Node& bn = *m.find("bn");
  for (int64_t ch = 0; ch < 8; ++ch) {
    double s = 0, s2 = 0;
    for (int64_t p = 0; p < M; ++p) s += out.act[static_cast<size_t>(ch * M + p)];
    const double mean = s / static_cast<double>(M);
    for (int64_t p = 0; p < M; ++p) s2 += std::pow(out.act[static_cast<size_t>(ch * M + p)] - mean, 2);
    CHECK(mean == Approx(bn.param("beta")[static_cast<size_t>(ch)]).margin(1e-4));
    CHECK(s2 / static_cast<double>(M) == Approx(std::pow(bn.param("gamma")[static_cast<size_t>(ch)], 2)).epsilon(1e-3));
  }
  // The running mean moved by momentum 0.1 towards the batch mean.
  CHECK(test::max_abs_diff(before_mean, m.find("bn")->param("mean")) > 0.0f);
}

TEST_CASE("a whole fmnist-resnet: trainer forward equals the reference forward") {
  Model m = build_fmnist_resnet(10);
  test::randomize(m, 3);
  NetOptions o;
  o.max_batch = 3;
  o.training = false;
  Net net(m, o);
  Tensor x = test::random_tensor({3, 28, 28, 1}, 4);
  Tensor want = reference_forward(m, x);
  Tensor got = net_forward(net, x, 3, Mode::Eval);
  float scale = 1;
  for (float v : want) scale = std::max(scale, std::abs(v));
  CHECK(test::max_abs_diff(got, want) <= 1e-4f * scale);
}

TEST_CASE("skipping zero 8x8 blocks gives the dense results on the kept weights") {
  for (bool im2col : {false, true}) {
    INFO((im2col ? "im2col path" : "flat path"));
    auto build = [] {
      G b("t", 6, 6, 16);
      auto c = b.conv("c", "input", G::square(24, 3, 1, 1));
      b.dense("fc", b.flatten("f", c), 20);
      return b.finish();
    };
    Model masked = build();
    test::randomize(masked, 4);
    // Block masks: conv 24 x 16 channels = 3 x 2 blocks, dense 20 x 864 = 3 x 108.
    Node& c = *masked.find("c");
    Mask mc;
    mc.pattern = "block:8x8";
    mc.block_rows = mc.block_cols = 8;
    mc.bits = Array<uint8_t>({3, 2}, {1, 0, 0, 1, 1, 1});
    c.mask = std::move(mc);
    Node& fc = *masked.find("fc");
    Mask mf;
    mf.pattern = "block:8x8";
    mf.block_rows = mf.block_cols = 8;
    mf.bits = Array<uint8_t>({3, 108});
    for (size_t i = 0; i < mf.bits.size(); ++i) mf.bits[i] = (i * 7) % 3 != 0;
    fc.mask = std::move(mf);
    apply_mask(c);
    apply_mask(fc);
    Model plain = build();
    for (const char* name : {"c", "fc"})
      for (auto& [k, t] : plain.find(name)->params) t = masked.find(name)->param(k).clone();

    NetOptions o;
    o.max_batch = 3;
    o.input_grad = true;
    o.conv_path = im2col ? ConvPath::Im2col : ConvPath::Auto;
    Net a(masked, o), b(plain, o);
    Tensor x = test::random_tensor({3, 6, 6, 16}, 5);
    Tensor dy = test::random_tensor({static_cast<int64_t>(a.output().act.size())}, 6);
    for (Net* n : {&a, &b}) {
      test::to_channel_major(x, n->input());
      n->forward(3, Mode::Train);
      std::copy(dy.begin(), dy.end(), n->output().grad.data());
      n->backward();
    }
    auto max_diff = [](const float* p, const float* q, size_t count) {
      float d = 0;
      for (size_t i = 0; i < count; ++i) d = std::max(d, std::abs(p[i] - q[i]));
      return d;
    };
    CHECK(max_diff(a.output().act.data(), b.output().act.data(), 20 * 3) < 1e-4f);
    CHECK(max_diff(a.input().grad.data(), b.input().grad.data(), 16 * 3 * 36) < 1e-4f);
    for (const char* name : {"c.weight", "fc.weight"}) {
      const Param* pa = a.find_param(name);
      const Param* pb = b.find_param(name);
      Array<uint8_t> e = element_mask(*pa->node);
      float d = 0;
      int64_t kept = 0;
      for (size_t i = 0; i < e.size(); ++i)
        if (e[i]) {
          d = std::max(d, std::abs(pa->grad[i] - pb->grad[i]));
          ++kept;
        } else {
          REQUIRE(pa->grad[i] == 0.0f);  // skipped blocks get no gradient
        }
      INFO(name);
      CHECK(kept > 0);
      CHECK(d < 1e-3f);
    }
  }
}
