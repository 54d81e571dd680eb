#include <catch2/catch.hpp>

#include <cstring>

#include "core/reference_forward.hpp"
#include "core/reference_ops.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

namespace {
// The i-th image of a batch as a batch of one.
Tensor slice(const Tensor& x, int64_t i) {
  Shape s = x.shape();
  s[0] = 1;
  Tensor y(s);
  std::memcpy(y.data(), x.data() + i * static_cast<int64_t>(y.size()), y.size() * sizeof(float));
  return y;
}
}  // namespace

TEST_CASE("a graph forward equals the ops applied by hand") {
  GraphBuilder b("t", 6, 6, 3);
  auto c = b.conv("c", "input", GraphBuilder::square(8, 3, 1, 1, true));
  auto r = b.relu("r", b.batchnorm("bn", c));
  auto s = b.conv("s", r, GraphBuilder::square(8, 1, 1, 0));
  auto a = b.add("a", {r, s});
  auto cat = b.concat("cat", {a, r});
  auto p = b.maxpool("p", cat, 2, 2);
  auto f = b.dense("fc", b.flatten("f", p), 5);
  b.softmax("sm", f);
  Model m = b.finish();
  init_weights(m, 3);
  m.find("bn")->param("mean").fill(0.1f);

  Tensor x = test::random_tensor({2, 6, 6, 3}, 11);
  std::vector<Tensor> seen;
  Tensor y = reference_forward(m, x, [&](size_t, const Tensor& t) { seen.push_back(t.clone()); });
  REQUIRE(seen.size() == m.nodes.size());
  REQUIRE(y.shape() == Shape{2, 5});

  const Node& cn = *m.find("c");
  Tensor t1 = ref::conv2d(x, cn.param("weight"), &cn.param("bias"), conv_geom(cn, {6, 6, 3}));
  CHECK(test::max_abs_diff(t1, seen[1]) == 0.0f);
  double total = 0;
  for (float v : y) total += v;
  CHECK(total == Approx(2.0));  // two softmax rows
}

TEST_CASE("each image of a batch is computed independently") {
  Model m = build_fmnist_resnet(10);
  init_weights(m, 5);
  Tensor x = test::random_tensor({3, 28, 28, 1}, 9);
  Tensor y = reference_forward(m, x);
  REQUIRE(y.shape() == Shape{3, 10});
  for (int64_t i = 0; i < 3; ++i) {
    Tensor yi = reference_forward(m, slice(x, i));
    for (int64_t k = 0; k < 10; ++k) CHECK(yi[static_cast<size_t>(k)] == Approx(y[static_cast<size_t>(i * 10 + k)]).margin(1e-5));
  }
}

TEST_CASE("the forward pass refuses an input of the wrong shape") {
  Model m = build_fmnist_cnn(10);
  CHECK_THROWS_WITH(reference_forward(m, Tensor({1, 32, 32, 1})), Catch::Contains("the model takes [N, 28, 28, 1]"));
}
