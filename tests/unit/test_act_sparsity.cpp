// Activation block sparsity (core/act_sparsity.hpp): the rule itself, its
// validation, and every engine applying it exactly.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "aie2/lower.hpp"
#include "compact/compact.hpp"
#include "core/act_sparsity.hpp"
#include "core/reference_forward.hpp"
#include "kernels/runner.hpp"
#include "modelfile/model_file.hpp"
#include "sparse_helpers.hpp"
#include "train/evaluate.hpp"
#include "train/net.hpp"
#include "train_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

namespace {

// x [1, 2, 10, 11] filled with 1.0 except the blocks listed small (values in
// (-0.05, 0.05)); block [1, 4, 8]: per row, W blocks x 0..3, 4..7, 8..9 (edge,
// 2 wide), C blocks 0..7, 8..10 (edge, 3 deep).
Tensor block_tensor() {
  Tensor x({1, 2, 10, 11});
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0) ? -1.0f : 1.0f;
  return x;
}
void fill_block(Tensor& x, int64_t y, int64_t x0, int64_t x1, int64_t c0, int64_t c1, float v) {
  for (int64_t xx = x0; xx < x1; ++xx)
    for (int64_t c = c0; c < c1; ++c) x[static_cast<size_t>((y * 10 + xx) * 11 + c)] = v * ((xx + c) % 2 ? 1 : -1);
}
bool block_zero(const Tensor& x, int64_t y, int64_t x0, int64_t x1, int64_t c0, int64_t c1) {
  for (int64_t xx = x0; xx < x1; ++xx)
    for (int64_t c = c0; c < c1; ++c)
      if (x[static_cast<size_t>((y * 10 + xx) * 11 + c)] != 0.0f) return false;
  return true;
}

}  // namespace

TEST_CASE("zero_small_blocks zeroes exactly the blocks whose every value is below the threshold") {
  const std::array<int64_t, 3> blk{1, 4, 8};
  Tensor x = block_tensor();
  fill_block(x, 0, 0, 4, 0, 8, 0.04f);   // small: zeroed
  fill_block(x, 0, 8, 10, 8, 11, 0.01f);  // the corner edge block (2 x 3): zeroed
  fill_block(x, 1, 4, 8, 8, 11, 0.02f);   // an edge block in C: zeroed
  fill_block(x, 1, 0, 4, 0, 8, 0.03f);    // small but one value exactly at the threshold: kept (strictly below)
  x[static_cast<size_t>((1 * 10 + 2) * 11 + 5)] = 0.05f;
  fill_block(x, 1, 8, 10, 0, 8, 0.01f);   // small but one NaN: kept
  x[static_cast<size_t>((1 * 10 + 9) * 11 + 0)] = std::numeric_limits<float>::quiet_NaN();
  const Tensor y = zero_small_blocks(x, blk, 0.05f);
  CHECK(block_zero(y, 0, 0, 4, 0, 8));
  CHECK(block_zero(y, 0, 8, 10, 8, 11));
  CHECK(block_zero(y, 1, 4, 8, 8, 11));
  CHECK_FALSE(block_zero(y, 1, 0, 4, 0, 8));
  CHECK_FALSE(block_zero(y, 1, 8, 10, 0, 8));
  // Everything outside the three zeroed blocks is unchanged, bit for bit.
  int64_t changed = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0) ++changed;
  CHECK(changed == 4 * 8 + 2 * 3 + 4 * 3);
  // Blocks per image: 2 rows x 3 x 2 = 12; 3 zeroed.
  CHECK(act_blocks_per_image({2, 10, 11}, blk) == 12);
  CHECK(zero_block_fraction(x, blk, 0.05f) == Approx(3.0 / 12));
  CHECK(zero_block_fraction(y, blk, 0.0f) == Approx(3.0 / 12));  // t = 0: the blocks already zero

  // Threshold 0: nothing changes.
  Tensor z = x.clone();
  CHECK(zero_small_blocks_inplace(z.data(), z.shape(), blk, 0.0f) == 0);
  for (size_t i = 0; i < x.size(); ++i) CHECK(std::memcmp(&x[i], &z[i], sizeof(float)) == 0);

  // A vector [N, F] is [1, 1, F] per image: bc consecutive features.
  Tensor v({2, 10}, std::vector<float>(20, 1.0f));
  for (int i = 0; i < 8; ++i) v[static_cast<size_t>(10 + i)] = 0.001f;  // image 1, features 0..7
  v[8] = v[9] = 0.001f;                                                    // image 0, the edge block 8..9
  const Tensor w = zero_small_blocks(v, {1, 8, 8}, 0.01f);
  CHECK(w[8] == 0.0f);
  CHECK(w[9] == 0.0f);
  CHECK(w[0] == 1.0f);
  for (int i = 0; i < 8; ++i) CHECK(w[static_cast<size_t>(10 + i)] == 0.0f);
  CHECK(w[18] == 1.0f);
}

TEST_CASE("the int8 rule: |q| < T with T = ceil(t / s), and act_qthreshold") {
  CHECK(act_qthreshold(0.0, 0.1) == 0);
  CHECK(act_qthreshold(0.25, 0.1) == 3);  // |q| <= 2: |q| * 0.1 < 0.25
  CHECK(act_qthreshold(0.5, 0.25) == 2);  // exactly 2: |q| < 2
  CHECK(act_qthreshold(1e9, 1e-3) == 256);
  Array<int8_t> q({1, 1, 1, 16});
  for (int i = 0; i < 16; ++i) q[static_cast<size_t>(i)] = static_cast<int8_t>(i < 8 ? (i % 2 ? -2 : 2) : 3);
  q[15] = -128;
  CHECK(zero_small_blocks_inplace(q.data(), q.shape(), {1, 8, 8}, 3) == 1);
  for (int i = 0; i < 8; ++i) CHECK(q[static_cast<size_t>(i)] == 0);
  CHECK(q[8] == 3);
  CHECK(zero_small_blocks_inplace(q.data(), q.shape(), {1, 8, 8}, 256) == 2);  // |-128| < 256
  CHECK(q[15] == 0);
}

TEST_CASE("activation rules are validated with one error naming the node") {
  auto with = [](const std::function<void(Node&)>& edit, const char* node = "conv2.conv") {
    Model m = build_fmnist_cnn(10);
    init_weights(m, 1);
    edit(*m.find(node));
    return m;
  };
  CHECK_NOTHROW(with([](Node& n) { n.attrs.set("act_threshold", 0.5); }).validate());
  CHECK_NOTHROW(with([](Node& n) { n.attrs.set("act_threshold", 0.0); }).validate());
  CHECK_NOTHROW(with([](Node& n) { n.attrs.set("act_threshold", 0.5); }, "fc1").validate());
  CHECK_THROWS_WITH(with([](Node& n) { n.attrs.set("act_threshold", -0.5); }).validate(),
                    Catch::Contains("node 'conv2.conv': act_threshold -0.5 is not a finite number >= 0"));
  CHECK_THROWS_WITH(with([](Node& n) { n.attrs.set("act_threshold", std::nan("")); }).validate(),
                    Catch::Contains("node 'conv2.conv': act_threshold nan is not a finite number >= 0"));
  CHECK_THROWS_WITH(with([](Node& n) { n.attrs.set("act_threshold", std::numeric_limits<double>::infinity()); }).validate(),
                    Catch::Contains("is not a finite number >= 0"));
  CHECK_THROWS_WITH(with([](Node& n) { n.attrs.set("act_threshold", std::string("0.5")); }).validate(),
                    Catch::Contains("node 'conv2.conv': act_threshold must be a float64 scalar"));
  CHECK_THROWS_WITH(with([](Node& n) {
                      n.attrs.set("act_threshold", 0.5);
                      n.attrs.set("act_block", std::vector<int64_t>{1, 0, 8});
                    }).validate(),
                    Catch::Contains("node 'conv2.conv': act_block [1, 0, 8] has a size out of range"));
  CHECK_THROWS_WITH(with([](Node& n) {
                      n.attrs.set("act_threshold", 0.5);
                      n.attrs.set("act_block", std::vector<int64_t>{1, 8, (int64_t{1} << 24) + 1});
                    }).validate(),
                    Catch::Contains("has a size out of range: 1 to 16777216"));
  CHECK_THROWS_WITH(with([](Node& n) {
                      n.attrs.set("act_threshold", 0.5);
                      n.attrs.set("act_block", std::vector<int64_t>{8, 8});
                    }).validate(),
                    Catch::Contains("node 'conv2.conv': act_block must be three integers"));
  CHECK_THROWS_WITH(with([](Node& n) { n.attrs.set("act_block", std::vector<int64_t>{1, 8, 8}); }).validate(),
                    Catch::Contains("node 'conv2.conv': act_block without act_threshold"));
  CHECK_THROWS_WITH(with([](Node& n) { n.attrs.set("act_threshold", 0.5); }, "pool1").validate(),
                    Catch::Contains("node 'pool1': only conv2d and dense layers take an activation rule"));
}

namespace {

// The first conv's input is the network input, so the rule can be checked
// against the same model without it on a hand-zeroed input: in [N, 28, 28, 1]
// with blocks [1, 8, 8] = 8 pixels of a row (the last one of each row 4
// wide). Large values have |v| in [0.5, 1], small ones |v| < 0.02.
struct HandZeroed {
  Tensor x, x_zeroed;
  int64_t zeroed_blocks = 0;
};
HandZeroed hand_zeroed(int64_t n) {
  HandZeroed h;
  h.x = Tensor({n, 28, 28, 1});
  h.x_zeroed = Tensor({n, 28, 28, 1});
  Rng rng(11);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < 28; ++y)
      for (int64_t x0 = 0; x0 < 28; x0 += 8) {
        const bool small = (b * 31 + y * 7 + x0) % 3 == 0;
        h.zeroed_blocks += small;
        for (int64_t x = x0; x < std::min<int64_t>(28, x0 + 8); ++x) {
          const float mag = static_cast<float>(small ? 0.019 * rng.uniform() : 0.5 + 0.5 * rng.uniform());
          const float v = rng.uniform() < 0.5 ? -mag : mag;
          const size_t i = static_cast<size_t>((b * 28 + y) * 28 + x);
          h.x[i] = v;
          h.x_zeroed[i] = small ? 0.0f : v;
        }
      }
  return h;
}

void check_same(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("a stored threshold gives every engine the output of the same model on hand-zeroed input blocks") {
  Model plain = build_fmnist_cnn(10);
  init_weights(plain, 3);
  test::randomise_batchnorms(plain, 4);
  Model ruled = build_fmnist_cnn(10);
  init_weights(ruled, 3);
  test::randomise_batchnorms(ruled, 4);
  set_act_rule(*ruled.find("conv1.conv"), 0.05, {1, 8, 8});
  ruled.validate();
  const HandZeroed h = hand_zeroed(6);
  REQUIRE(h.zeroed_blocks > 20);
  CHECK(zero_block_fraction(h.x, {1, 8, 8}, 0.05f) == Approx(static_cast<double>(h.zeroed_blocks) / (6 * 28 * 4)));

  SECTION("reference forward") { check_same(reference_forward(ruled, h.x), reference_forward(plain, h.x_zeroed)); }
  SECTION("fp32 runner, dense and blas paths") {
    for (auto path : {kernels::Path::Dense, kernels::Path::Blas})
      check_same(kernels::Runner(ruled, path).forward(h.x), kernels::Runner(plain, path).forward(h.x_zeroed));
  }
  SECTION("bsp eval's engines: the trainer's network and the runner") {
    for (const char* engine : {"net", "runner"}) {
      setenv("BSP_EVAL_ENGINE", engine, 1);
      auto pr = train::make_predictor(ruled, 6), pp = train::make_predictor(plain, 6);
      std::vector<float> a(60), b(60);
      pr->run(h.x.data(), 6, a.data());
      pp->run(h.x_zeroed.data(), 6, b.data());
      CHECK(a == b);
    }
    unsetenv("BSP_EVAL_ENGINE");
  }
  SECTION("int8: reference and runner") {
    // Both calibrated on the hand-zeroed images, so the scales are equal and
    // the programs differ only in the rule.
    compact::CompactOptions o;
    o.dtype = DType::Int8;
    ruled.compact = std::make_shared<compact::CompactModel>(compact::compact_model(ruled, o, &h.x_zeroed));
    plain.compact = std::make_shared<compact::CompactModel>(compact::compact_model(plain, o, &h.x_zeroed));
    const q8::QModel &qr = *ruled.compact->int8, &qp = *plain.compact->int8;
    REQUIRE(qr.nodes[ruled.index_of("conv1.conv")].act_q == act_qthreshold(0.05, qr.nodes[0].scale));
    REQUIRE(qr.nodes[ruled.index_of("conv1.conv")].act_q > 1);
    const Tensor ref = q8::reference_forward(plain, qp, h.x_zeroed);
    check_same(q8::reference_forward(ruled, qr, h.x), ref);
    check_same(kernels::Runner(ruled).forward(h.x), ref);
  }
}

TEST_CASE("rules on inner layers: the engines agree, int8 bit for bit, and a residual's readers differ") {
  test::TempDir dir;
  Model m = build_fmnist_resnet(10);
  init_weights(m, 5);
  test::randomise_batchnorms(m, 6);
  // Every conv and dense layer but the stem, with one block shape here and another there.
  int k = 0;
  for (Node& n : m.nodes)
    if ((n.op == Op::Conv2d || n.op == Op::Dense) && n.name != "stem.conv")
      set_act_rule(n, 2.5, k++ % 2 ? std::array<int64_t, 3>{1, 8, 8} : std::array<int64_t, 3>{2, 1, 3});
  m.validate();
  Tensor x = test::random_tensor({4, 28, 28, 1}, 7);

  // The reference zeroes a nontrivial part of the layers' inputs.
  const Wiring w = wiring(m);
  double fraction_sum = 0;
  int layers = 0;
  reference_forward(m, x, [&](size_t i, const Tensor& out) {
    for (size_t j = i + 1; j < m.nodes.size(); ++j)
      if (const auto r = act_rule(m.nodes[j]); r && w.inputs[j].at(0) == i) {
        fraction_sum += zero_block_fraction(out, r->block, r->t());
        ++layers;
      }
  });
  REQUIRE(layers > 5);
  const double mean = fraction_sum / layers;
  INFO("mean zero-block fraction " << mean);
  CHECK(mean > 0.02);
  CHECK(mean < 0.98);

  // fp32: the runner and the trainer's network against the reference.
  Model plain = build_fmnist_resnet(10);
  init_weights(plain, 5);
  test::randomise_batchnorms(plain, 6);
  const Tensor ref = reference_forward(m, x), ref_plain = reference_forward(plain, x);
  CHECK(test::max_abs_diff(ref, ref_plain) > 1e-3);  // the rules change the output
  const Tensor fast = kernels::Runner(m).forward(x);
  CHECK(test::max_abs_diff(fast, ref) < 1e-3);
  setenv("BSP_EVAL_ENGINE", "net", 1);
  auto net = train::make_predictor(m, 4);
  unsetenv("BSP_EVAL_ENGINE");
  std::vector<float> logits(40);
  net->run(x.data(), 4, logits.data());
  // (the model ends in dense logits: no softmax)
  for (size_t i = 0; i < 40; ++i) CHECK(logits[i] == Approx(ref[i]).margin(1e-3));

  // int8: the runner bit for bit with the int8 reference, also after a reload.
  compact::CompactOptions o;
  o.dtype = DType::Int8;
  o.calib_forward = kernels::calibration_forward(m);
  m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, o, &x));
  int ruled = 0;
  for (const q8::QNode& q : m.compact->int8->nodes) ruled += q.act_q > 0;
  CHECK(ruled == k);
  const Tensor qref = q8::reference_forward(m, *m.compact->int8, x);
  check_same(kernels::Runner(m).forward(x), qref);
  save_model(m, dir.file("q.h5"));
  Model back = load_model(dir.file("q.h5"), "q.h5");
  REQUIRE(back.compact);
  for (size_t i = 0; i < m.nodes.size(); ++i) CHECK(back.compact->int8->nodes[i].act_q == m.compact->int8->nodes[i].act_q);
  check_same(kernels::Runner(back).forward(x), qref);
  // ... and it differs from the program without the rules.
  plain.compact = std::make_shared<compact::CompactModel>(compact::compact_model(plain, o, &x));
  CHECK(test::max_abs_diff(q8::reference_forward(plain, *plain.compact->int8, x), qref) > 0);
}

TEST_CASE("the AIE2 back end carries a node's activation rule on its conv stage") {
  Model m = build_fmnist_cnn(10);
  init_weights(m, 1);
  set_act_rule(*m.find("conv3.conv"), 0.1, {1, 4, 16});
  const aie2::Lowered g = aie2::lower(m);
  int ruled = 0;
  for (const aie2::Stage& st : g.stages) {
    if (!st.act) continue;
    ++ruled;
    CHECK(st.name == "conv3.conv");
    CHECK(st.act->threshold == 0.1);
    CHECK(st.act->block == std::array<int64_t, 3>{1, 4, 16});
  }
  CHECK(ruled == 1);
  set_act_rule(*m.find("conv3.conv"), 0.0, kDefaultActBlock);  // removed: lowered as before
  for (const aie2::Stage& st : aie2::lower(m).stages) CHECK(!st.act);
}

TEST_CASE("the trainer trains with the rule: no gradient reaches a zeroed block, the rest as on hand-zeroed input") {
  Model plain = build_fmnist_cnn(10), ruled = build_fmnist_cnn(10);
  for (Model* m : {&plain, &ruled}) {
    init_weights(*m, 3);
    test::randomise_batchnorms(*m, 4);
  }
  set_act_rule(*ruled.find("conv1.conv"), 0.05, {1, 8, 8});
  const HandZeroed h = hand_zeroed(4);
  train::NetOptions o;
  o.max_batch = 4;
  o.input_grad = true;
  train::Net np(plain, o), nr(ruled, o);
  test::to_channel_major(h.x_zeroed, np.input());
  test::to_channel_major(h.x, nr.input());
  np.forward(4, train::Mode::Train);
  nr.forward(4, train::Mode::Train);
  const train::Value &op = np.output(), &orr = nr.output();
  const size_t used = static_cast<size_t>(op.C * op.plane(4));
  REQUIRE(std::memcmp(op.act.data(), orr.act.data(), used * sizeof(float)) == 0);
  const Tensor r = test::random_tensor({static_cast<int64_t>(used)}, 9);
  std::copy(r.begin(), r.end(), np.output().grad.data());
  std::copy(r.begin(), r.end(), nr.output().grad.data());
  np.backward();
  nr.backward();
  // The input gradient: [1, 4 * 28 * 28] channel-major (C = 1), i.e. NHWC order here.
  const float* gp = np.input().grad.data();
  const float* gr = nr.input().grad.data();
  int64_t zero_blocked = 0, passed = 0;
  for (size_t i = 0; i < h.x.size(); ++i) {
    if (h.x_zeroed[i] == 0.0f) {
      CHECK(gr[i] == 0.0f);
      zero_blocked += gp[i] != 0.0f;  // the plain model does send a gradient there
    } else {
      CHECK(gr[i] == gp[i]);
      ++passed;
    }
  }
  CHECK(zero_blocked > 50);
  CHECK(passed > 1000);
  for (size_t k = 0; k < np.params().size(); ++k) {
    const Tensor &a = np.params()[k].grad, &b = nr.params()[k].grad;
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }
}
