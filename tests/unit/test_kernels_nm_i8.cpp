// The int8 N:M kernel (kernels/nm_i8.hpp) against the int8 reference conv,
// bit for bit, on every ISA path.
#include <catch2/catch.hpp>

#include <omp.h>

#include <algorithm>

#include "compact/int8.hpp"
#include "kernels/nm_i8.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

struct NmCase {
  int64_t N, H, W, C, Cout, k, stride, pad;
  int64_t n, m;
  bool dense_layer = false;
};

// Weights: the N:M mask of a random float weight, int8 values inside it
// (about one kept weight in 8 drawn as 0: the kernel's filler slots), the
// full int8 range including -128; input likewise.
void check(const NmCase& c, uint64_t seed) {
  GraphBuilder b("t", c.H, c.W, c.C);
  b.conv("conv", "input", GraphBuilder::square(c.Cout, c.k, c.stride, c.pad));
  Model m = b.finish();
  Node& n = m.nodes[1];
  n.param("weight") = test::random_tensor({c.Cout, c.k, c.k, c.C}, seed);
  test::nm_prune(n, c.n, c.m);
  const Array<uint8_t> keep = element_mask(n);
  Rng r(seed + 1);
  q8::QNode q;
  q.kind = q8::Kind::Conv;
  q.weight = Array<int8_t>(n.param("weight").shape());
  for (size_t i = 0; i < keep.size(); ++i)
    q.weight[i] = keep[i] && r.below(8) ? static_cast<int8_t>(static_cast<int>(r.below(256)) - 128) : 0;
  q.bias = Array<int32_t>({c.Cout});
  for (auto& v : q.bias) v = static_cast<int32_t>(r.below(20001)) - 10000;
  for (int64_t o = 0; o < c.Cout; ++o)
    q.rq.push_back(q8::make_requant(std::ldexp(0.5 + r.uniform(), -static_cast<int>(8 + r.below(8)))));
  q.rq[0] = {1, 0};  // a shift of 0: no rounding term
  q.lo = r.below(2) ? 0 : -128;
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  Array<int8_t> x({c.N, c.H, c.W, c.C});
  for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(r.below(256)) - 128);
  const Array<int8_t> ref = q8::reference_node(n, q, {&x});
  Array<int8_t> z(ref.shape());
  for (auto& v : z) v = static_cast<int8_t>(static_cast<int>(r.below(256)) - 128);
  const q8::FusedAdd add = q8::FusedAdd::make(static_cast<int32_t>(r.below(1u << 31)),
                                              static_cast<int32_t>(r.below(1u << 31)), static_cast<int32_t>(r.below(40)),
                                              r.below(2) ? 0 : -128, 127);
  const int threads = omp_get_max_threads();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    INFO("isa " << isa_name(isa) << " " << c.n << ":" << c.m << " N" << c.N << " " << c.H << "x" << c.W << "x" << c.C
                << " -> " << c.Cout << " k" << c.k << " s" << c.stride << " p" << c.pad);
    REQUIRE(NmConvI8::span_for(c.n, c.m, c.C) > 0);
    const NmConvI8 conv(g, c.n, c.m, q.weight.data(), q.bias.data(), q.rq, q.lo, q.hi);
    CHECK(conv.vnni() == (isa == Isa::Avx512));
    for (int t : {1, 2, 3}) {
      omp_set_num_threads(t);
      Array<int8_t> y(ref.shape());
      conv.run(x.data(), c.N, y.data());
      size_t diff = 0;
      for (size_t i = 0; i < y.size(); ++i) diff += y[i] != ref[i];
      CHECK(diff == 0);
      Array<int8_t> ya(ref.shape());
      conv.run(x.data(), c.N, ya.data(), z.data(), &add);
      diff = 0;
      for (size_t i = 0; i < ya.size(); ++i) diff += ya[i] != add.apply(ref[i], z[i]);
      CHECK(diff == 0);
    }
    omp_set_num_threads(threads);
  }
  set_isa(detect_isa());
}

}  // namespace

TEST_CASE("int8 nm kernel is bit-exact with the int8 reference") {
  // Spans of 8 (2:4, 4:8, 1:2) and 16 (2:8, 1:4); partial pixel tiles;
  // output channels not a multiple of 16 (and under 8); padding, stride 2,
  // batch > 1; 1x1 and 3x3; many channels with few pixels (block groups
  // split across threads).
  const NmCase cases[] = {
      {1, 7, 7, 16, 24, 3, 1, 1, 2, 4},   {2, 9, 11, 32, 40, 3, 2, 1, 2, 8}, {1, 5, 5, 64, 5, 1, 1, 0, 2, 4},
      {3, 4, 4, 48, 17, 3, 1, 1, 1, 4},   {1, 6, 6, 24, 32, 3, 1, 0, 4, 8},  {1, 3, 3, 128, 256, 1, 1, 0, 2, 8},
      {1, 14, 14, 32, 16, 1, 2, 0, 1, 2}, {1, 7, 7, 256, 64, 3, 1, 1, 2, 4},
  };
  uint64_t seed = 40;
  for (const NmCase& c : cases) check(c, seed += 10);
}

TEST_CASE("int8 nm kernel takes the N:M patterns whose kept weights fill whole dwords") {
  CHECK(NmConvI8::span_for(2, 4, 64) == 8);
  CHECK(NmConvI8::span_for(2, 8, 64) == 16);
  CHECK(NmConvI8::span_for(1, 4, 32) == 16);
  CHECK(NmConvI8::span_for(4, 8, 8) == 8);
  CHECK(NmConvI8::span_for(2, 8, 8) == 0);   // 8 channels: no whole span of 16
  CHECK(NmConvI8::span_for(3, 4, 64) == 0);  // 3 kept per group: dwords would cut a group
  CHECK(NmConvI8::span_for(1, 8, 64) == 0);  // a span of 32 does not fit a 128-bit lane
  // takes(): the weights must hold the N:M structure.
  ConvGeom g;
  g.H = g.W = g.Ho = g.Wo = 4;
  g.C = 16, g.Cout = 2;
  std::vector<int8_t> w(2 * 16, 0);
  w[0] = 1, w[3] = -2, w[20] = 5, w[22] = 7;  // 2 of 4 in groups 0 and 5
  CHECK(NmConvI8::takes(g, 2, 4, w.data()));
  CHECK(NmConvI8::takes(g, 2, 8, w.data()));
  w[21] = 1;  // group 5: 3 of 4
  CHECK_FALSE(NmConvI8::takes(g, 2, 4, w.data()));
  CHECK(NmConvI8::takes(g, 4, 8, w.data()));
  g.groups = 2;
  CHECK_FALSE(NmConvI8::takes(g, 4, 8, w.data()));
}
