// Each reference op against small hand-computed cases.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/reference_forward.hpp"
#include "core/reference_ops.hpp"
#include "zoo/builder.hpp"

using namespace bsp;

namespace {
Tensor T(Shape s, std::vector<float> v) { return Tensor(std::move(s), v); }
std::vector<float> vals(const Tensor& t) { return std::vector<float>(t.begin(), t.end()); }

ConvGeom geom(int64_t H, int64_t W, int64_t C, int64_t Cout, int64_t kh, int64_t kw, int64_t s, int64_t p,
              int64_t d = 1, int64_t groups = 1) {
  ConvGeom g;
  g.H = H, g.W = W, g.C = C, g.Cout = Cout, g.kh = kh, g.kw = kw, g.sh = g.sw = s;
  g.pt = g.pl = g.pb = g.pr = p;
  g.dh = g.dw = d;
  g.groups = groups;
  g.Ho = (H + 2 * p - d * (kh - 1) - 1) / s + 1;
  g.Wo = (W + 2 * p - d * (kw - 1) - 1) / s + 1;
  return g;
}
const Tensor x33 = T({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
}  // namespace

TEST_CASE("conv2d: valid, padded + strided, dilated") {
  Tensor ones22 = T({1, 2, 2, 1}, {1, 1, 1, 1});
  CHECK(vals(ref::conv2d(x33, ones22, nullptr, geom(3, 3, 1, 1, 2, 2, 1, 0))) == std::vector<float>{12, 16, 24, 28});
  Tensor ones33 = T({1, 3, 3, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  // 3x3 windows at stride 2 over the input padded by 1: corners of 2x2 each.
  CHECK(vals(ref::conv2d(x33, ones33, nullptr, geom(3, 3, 1, 1, 3, 3, 2, 1))) == std::vector<float>{12, 16, 24, 28});
  // A 2x2 kernel dilated by 2 touches the four corners: 1 + 3 + 7 + 9.
  CHECK(vals(ref::conv2d(x33, ones22, nullptr, geom(3, 3, 1, 1, 2, 2, 1, 0, 2))) == std::vector<float>{20});
}

TEST_CASE("conv2d: OHWI layout, bias, several channels") {
  Tensor x = T({1, 1, 1, 2}, {1, 10});
  Tensor w = T({2, 1, 1, 2}, {2, 3, -1, 0.5f});  // out0 = 2*1 + 3*10, out1 = -1 + 5
  Tensor b = T({2}, {0.5f, -1});
  CHECK(vals(ref::conv2d(x, w, &b, geom(1, 1, 2, 2, 1, 1, 1, 0))) == std::vector<float>{32.5f, 3});
  // Kernel position matters: w[0, kh=0, kw=1, 0] picks the right neighbour.
  Tensor x12 = T({1, 1, 2, 1}, {5, 7});
  Tensor w12 = T({1, 1, 2, 1}, {0, 1});
  CHECK(vals(ref::conv2d(x12, w12, nullptr, geom(1, 2, 1, 1, 1, 2, 1, 0))) == std::vector<float>{7});
}

TEST_CASE("conv2d: groups and depthwise") {
  Tensor x = T({1, 1, 1, 4}, {1, 2, 3, 4});
  Tensor w = T({2, 1, 1, 2}, {1, 1, 1, -1});  // group 0 sums ch 0-1, group 1 subtracts ch 3 from ch 2
  CHECK(vals(ref::conv2d(x, w, nullptr, geom(1, 1, 4, 2, 1, 1, 1, 0, 1, 2))) == std::vector<float>{3, -1});
  Tensor dw = T({4, 1, 1, 1}, {1, 2, 3, 4});
  CHECK(vals(ref::conv2d(x, dw, nullptr, geom(1, 1, 4, 4, 1, 1, 1, 0, 1, 4))) == std::vector<float>{1, 4, 9, 16});
}

TEST_CASE("dense") {
  Tensor x = T({2, 2}, {1, 2, 0, 1});
  Tensor w = T({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor b = T({3}, {0.5f, 0, -1});
  CHECK(vals(ref::dense(x, w, &b)) == std::vector<float>{5.5f, 11, 16, 2.5f, 4, 5});
}

TEST_CASE("batchnorm, relu") {
  Tensor x = T({1, 1, 1, 2}, {3, -1});
  Node bn;
  bn.name = "bn";
  bn.op = Op::BatchNorm;
  bn.attrs.set("eps", 0.0);
  bn.params["gamma"] = T({2}, {2, 1});
  bn.params["beta"] = T({2}, {1, 0});
  bn.params["mean"] = T({2}, {1, 0});
  bn.params["var"] = T({2}, {4, 1});
  auto y = ref::batchnorm(x, batchnorm_affine(bn));
  CHECK(y[0] == Approx(3.0f));  // 2 * (3 - 1) / 2 + 1
  CHECK(y[1] == Approx(-1.0f));
  CHECK(vals(ref::relu(T({4}, {-1, 0, 2, -0.5f}))) == std::vector<float>{0, 0, 2, 0});
}

TEST_CASE("pools: padding never wins a max; average with and without padding") {
  WindowGeom g;
  g.H = g.W = 2, g.C = 1, g.kh = g.kw = 3, g.sh = g.sw = 1, g.pt = g.pl = g.pb = g.pr = 1, g.Ho = g.Wo = 2;
  Tensor neg = T({1, 2, 2, 1}, {-1, -2, -3, -4});
  CHECK(vals(ref::maxpool(neg, g)) == std::vector<float>{-1, -1, -1, -1});
  Tensor x = T({1, 2, 2, 1}, {1, 2, 3, 4});
  for (float v : ref::avgpool(x, g, true)) CHECK(v == Approx(10.0f / 9.0f));
  for (float v : ref::avgpool(x, g, false)) CHECK(v == Approx(2.5f));
  WindowGeom s;
  s.H = s.W = 4, s.C = 1, s.kh = s.kw = 2, s.sh = s.sw = 2, s.Ho = s.Wo = 2;
  Tensor x4 = T({1, 4, 4, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  CHECK(vals(ref::maxpool(x4, s)) == std::vector<float>{6, 8, 14, 16});
  CHECK(vals(ref::avgpool(x4, s, true)) == std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f});
}

TEST_CASE("global average pool, add, concat, flatten, softmax") {
  Tensor x = T({1, 2, 1, 2}, {1, 10, 3, 20});
  CHECK(vals(ref::global_avgpool(x)) == std::vector<float>{2, 15});
  Tensor a = T({1, 2}, {1, 2}), b = T({1, 2}, {10, 20});
  CHECK(vals(ref::add({&a, &b, &a})) == std::vector<float>{12, 24});
  Tensor c = T({1, 1, 2, 1}, {5, 6}), d = T({1, 1, 2, 2}, {1, 2, 3, 4});
  auto cat = ref::concat({&c, &d});
  CHECK(cat.shape() == Shape{1, 1, 2, 3});
  CHECK(vals(cat) == std::vector<float>{5, 1, 2, 6, 3, 4});
  auto f = ref::flatten(d);
  CHECK(f.shape() == Shape{1, 4});
  auto sm = ref::softmax(T({1, 2}, {0, std::log(2.0f)}));
  CHECK(sm[0] == Approx(1.0 / 3));
  CHECK(sm[1] == Approx(2.0 / 3));
  auto big = ref::softmax(T({1, 2}, {1000, 1000}));
  CHECK(big[0] == Approx(0.5));
}
