#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "core/stats.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

namespace {
int64_t params_of(const Model& m) { return model_stats(m).params; }
int64_t count_op(const Model& m, Op op) {
  int64_t n = 0;
  for (const auto& node : m.nodes) n += node.op == op;
  return n;
}
}  // namespace

// torchvision's trainable parameter counts (BN running statistics excluded).
TEST_CASE("zoo parameter counts equal torchvision's") {
  CHECK(params_of(build_resnet50(1000)) == 25'557'032);
  CHECK(params_of(build_vgg16(1000)) == 138'357'544);
  CHECK(params_of(build_inception_v3(1000)) == 23'834'568);
}

TEST_CASE("zoo layer structure") {
  Model r = build_resnet50(1000);
  CHECK(count_op(r, Op::Conv2d) == 53);  // 49 + 4 downsample convs
  CHECK(count_op(r, Op::Dense) == 1);
  CHECK(count_op(r, Op::Add) == 16);
  Model v = build_vgg16(1000);
  CHECK(count_op(v, Op::Conv2d) == 13);
  CHECK(count_op(v, Op::Dense) == 3);
  Model i = build_inception_v3(1000);
  CHECK(count_op(i, Op::Conv2d) == 94);
  CHECK(i.input_shape() == Shape{299, 299, 3});
}

TEST_CASE("MACs per image (conv2d and dense layers)") {
  // Counted as Ho*Wo*Cout*kh*kw*Cin/groups per conv plus in*out per dense.
  CHECK(model_stats(build_resnet50(1000)).macs == 4'089'184'256);
  CHECK(model_stats(build_vgg16(1000)).macs == 15'470'264'320);
  CHECK(model_stats(build_inception_v3(1000)).macs == 5'713'216'096);
  CHECK(model_stats(build_fmnist_cnn(10)).macs == 19'094'528);
}

TEST_CASE("the Fashion-MNIST networks") {
  Model c = build_fmnist_cnn(10);
  CHECK(params_of(c) == 870'826);
  CHECK(c.input_shape() == Shape{28, 28, 1});
  Model r = build_fmnist_resnet(10);
  int64_t p = params_of(r);
  CHECK(p > 300'000);
  CHECK(p < 1'000'000);
  for (const auto& n : r.nodes)
    if (n.op == Op::Conv2d && n.name != "stem.conv") {
      CHECK(n.param("weight").dim(0) % 8 == 0);
      CHECK(n.param("weight").dim(3) % 8 == 0);
    }
}

TEST_CASE("--classes changes the classifier only") {
  Model a = build_resnet50(1000), b = build_resnet50(17);
  CHECK(params_of(a) - params_of(b) == (1000 - 17) * (2048 + 1));
  CHECK(b.find("fc")->param("weight").shape() == Shape{17, 2048});
}

TEST_CASE("He initialisation is deterministic and has the right scale") {
  Model a = build_fmnist_resnet(10), b = build_fmnist_resnet(10), c = build_fmnist_resnet(10);
  init_weights(a, 42);
  init_weights(b, 42);
  init_weights(c, 43);
  const Tensor& wa = a.find("stage3.1.b.conv")->param("weight");
  const Tensor& wb = b.find("stage3.1.b.conv")->param("weight");
  const Tensor& wc = c.find("stage3.1.b.conv")->param("weight");
  CHECK(std::memcmp(wa.data(), wb.data(), wa.size() * 4) == 0);
  CHECK(std::memcmp(wa.data(), wc.data(), wa.size() * 4) != 0);
  double sum = 0, sq = 0;
  for (float v : wa) {
    sum += v;
    sq += double(v) * v;
  }
  double n = static_cast<double>(wa.size()), mean = sum / n, var = sq / n - mean * mean;
  double want = 2.0 / (3 * 3 * 128);  // fan_in = kh * kw * Cin
  CHECK(std::abs(mean) < 0.01);
  CHECK(var == Approx(want).epsilon(0.03));
  const Node& bn = *a.find("stage3.1.b.bn");
  CHECK(bn.param("gamma")[5] == 1.0f);
  CHECK(bn.param("var")[5] == 1.0f);
  CHECK(bn.param("beta")[5] == 0.0f);
  CHECK(bn.param("mean")[5] == 0.0f);
}

TEST_CASE("unknown architectures are usage errors listing the known ones") {
  CHECK_THROWS_AS(find_arch("resnet18"), UsageError);
  CHECK_THROWS_WITH(find_arch("resnet18"), Catch::Contains("known: resnet50, inception_v3, vgg16"));
}
