// The tw kernels (kernels/tw.hpp), fp32 and int8, against the reference conv
// on every ISA and several thread counts: tiles from bsp prune (tw and tvw),
// all-or-nothing tiles, column blocks of every width (1-4 vectors, partial
// ones), rows over several chunks, pixel blocks split over column groups.
#include <catch2/catch.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "compact/int8.hpp"
#include "compact/weights.hpp"
#include "core/reference_ops.hpp"
#include "kernels/tw.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

constexpr Clamp kRelu{true, 0.0f, std::numeric_limits<float>::infinity()};

struct Case {
  int64_t N, H, W, C, Cout, k, stride, pad;
  double col_density, row_density;
  int64_t G = 8;
  bool tvw = false;
};

// A conv node with a tw (or tvw) mask; weights scaled by `scale`.
Model tw_model(const Case& c, uint64_t seed) {
  GraphBuilder b("t", c.H, c.W, c.C);
  b.conv("conv", "input", GraphBuilder::square(c.Cout, c.k, c.stride, c.pad, true));
  Model m = b.finish();
  Node& n = m.nodes[1];
  n.param("weight") = test::random_tensor({c.Cout, c.k, c.k, c.C}, seed, 0.2);
  n.param("bias") = test::random_tensor({c.Cout}, seed + 1);
  if (c.tvw) {
    Pattern p;
    p.family = PatternFamily::TVW;
    p.tile = c.G;
    prune_layer(n, p, c.col_density * c.row_density);
  } else {
    test::tw_prune(n, c.G, c.col_density, c.row_density, seed + 2);
  }
  return m;
}

const char* what(const Case& c) {
  static thread_local char buf[160];
  std::snprintf(buf, sizeof buf, "N%ld %ldx%ldx%ld -> %ld k%ld s%ld p%ld d %.2fx%.2f G%ld%s", static_cast<long>(c.N),
                static_cast<long>(c.H), static_cast<long>(c.W), static_cast<long>(c.C), static_cast<long>(c.Cout),
                static_cast<long>(c.k), static_cast<long>(c.stride), static_cast<long>(c.pad), c.col_density,
                c.row_density, static_cast<long>(c.G), c.tvw ? " tvw" : "");
  return buf;
}

void check_f32(const Case& c, uint64_t seed) {
  Model m = tw_model(c, seed);
  const Node& n = m.nodes[1];
  const Tensor& w = n.param("weight");
  const compact::CompactLayer l =
      compact::compress(w.data(), w.shape(), element_mask(n).data(), compact::spec_for(n, compact::Format::TW));
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  const Tensor x = test::random_tensor({c.N, c.H, c.W, c.C}, seed + 3);
  const Tensor ref = ref::conv2d(x, w, &n.param("bias"), g);
  const Tensor z = test::random_tensor(ref.shape(), seed + 4);
  const int before = omp_get_max_threads();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    INFO("isa " << isa_name(isa) << " " << what(c));
    const TwConvF32 conv(g, l, w.data(), n.param("bias").data());
    for (int t : {1, 2, 3}) {
      omp_set_num_threads(t);
      INFO("threads " << t);
      Tensor y(ref.shape());
      conv.run(x.data(), c.N, y.data(), nullptr, Clamp{});
      CHECK(test::max_abs_diff(y, ref) < 1e-4f);
      conv.run(x.data(), c.N, y.data(), z.data(), kRelu);
      float worst = 0;
      for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::abs(y[i] - std::max(0.0f, ref[i] + z[i])));
      CHECK(worst < 1e-4f);
    }
    omp_set_num_threads(before);
  }
  set_isa(detect_isa());
}

Array<int8_t> random_i8(Shape s, uint64_t seed, int lo = -128, int hi = 127) {
  Array<int8_t> a(std::move(s));
  Rng r(seed);
  for (auto& v : a) v = static_cast<int8_t>(lo + static_cast<int>(r.below(static_cast<uint64_t>(hi - lo + 1))));
  return a;
}

// Values only from the ends of [lo, hi]: the largest products (AVX2 pairs).
Array<int8_t> extreme_i8(Shape s, uint64_t seed, int lo, int hi) {
  Array<int8_t> a(std::move(s));
  Rng r(seed);
  for (auto& v : a) v = static_cast<int8_t>(r.below(2) ? lo : hi);
  return a;
}

// int8: bit-exact against the int8 reference node, with and without a fused
// add. w_lo: the smallest weight (-128 takes AVX2's plain C++ GEMM);
// extreme: weights and inputs only at the ends of their ranges.
void check_i8(const Case& c, uint64_t seed, int w_lo = -127, bool extreme = false) {
  Model m = tw_model(c, seed);
  Node& n = m.nodes[1];
  const Array<uint8_t> keep = element_mask(n);
  q8::QNode q;
  q.kind = q8::Kind::Conv;
  q.weight = extreme ? extreme_i8(n.param("weight").shape(), seed + 5, w_lo, 127)
                     : random_i8(n.param("weight").shape(), seed + 5, w_lo, 127);
  for (size_t i = 0; i < keep.size(); ++i)
    if (!keep[i]) q.weight[i] = 0;
  q.bias = Array<int32_t>({c.Cout});
  Rng r(seed + 6);
  for (auto& v : q.bias) v = static_cast<int32_t>(r.below(20001)) - 10000;
  for (int64_t o = 0; o < c.Cout; ++o)
    q.rq.push_back(q8::make_requant(std::ldexp(0.5 + r.uniform(), -static_cast<int>(8 + r.below(8)))));
  q.rq[0] = {1, 0};
  q.lo = seed % 2 ? 0 : -128;
  const compact::CompactLayer l =
      compact::compress(q.weight.data(), q.weight.shape(), keep.data(), compact::spec_for(n, compact::Format::TW));
  REQUIRE(tw_covers(l, q.weight.data()));
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  const Array<int8_t> x = extreme ? extreme_i8({c.N, c.H, c.W, c.C}, seed + 7, -128, 127)
                                  : random_i8({c.N, c.H, c.W, c.C}, seed + 7);
  const Array<int8_t> ref = q8::reference_node(n, q, {&x});
  const Array<int8_t> z = random_i8(ref.shape(), seed + 8);
  const q8::FusedAdd add = q8::FusedAdd::make(static_cast<int32_t>(r.below(1u << 31)),
                                              -static_cast<int32_t>(r.below(1u << 31)), 31, 0, 127);
  const int before = omp_get_max_threads();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    // AVX-512: with the VBMI2 gather (where the CPU has it) and without.
    for (bool vbmi2 : {true, false}) {
      if (!vbmi2 && isa != Isa::Avx512) continue;
      tw_allow_vbmi2(vbmi2);
      INFO("isa " << isa_name(isa) << " vbmi2 " << vbmi2 << " " << what(c));
      const TwConvI8 conv(g, l, q.weight.data(), q.bias.data(), q.rq, q.lo, q.hi);
      for (int t : {1, 2, 3}) {
        omp_set_num_threads(t);
        INFO("threads " << t);
        Array<int8_t> y(ref.shape());
        conv.run(x.data(), c.N, y.data());
        size_t diff = 0;
        for (size_t i = 0; i < y.size(); ++i) diff += y[i] != ref[i];
        CHECK(diff == 0);
        conv.run(x.data(), c.N, y.data(), z.data(), &add);
        diff = 0;
        for (size_t i = 0; i < y.size(); ++i) diff += y[i] != add.apply(ref[i], z[i]);
        CHECK(diff == 0);
      }
      omp_set_num_threads(before);
    }
  }
  tw_allow_vbmi2(true);
  set_isa(detect_isa());
}

const Case kCases[] = {
    {1, 7, 7, 16, 24, 3, 1, 1, 0.6, 0.6},            // padding, few columns
    {2, 9, 11, 32, 20, 3, 2, 1, 0.5, 0.5},           // stride 2, odd sizes
    {3, 5, 5, 64, 40, 1, 1, 0, 0.7, 0.7},            // 1x1
    {1, 6, 6, 96, 16, 3, 1, 1, 0.5, 0.8},            // K = 864: rows over several chunks
    {1, 4, 4, 8, 8, 3, 1, 1, 0.0, 0.0},              // nothing kept (bias only)
    {1, 4, 4, 8, 8, 3, 1, 1, 1.0, 1.0},              // everything kept
    {1, 9, 9, 40, 300, 1, 1, 0, 0.9, 0.5, 128},      // wide tiles: blocks of 4, 3, 2, 1 vectors
    {1, 14, 14, 24, 96, 3, 1, 1, 0.7, 0.5, 16},      // many tiles, groups split across threads
    {2, 8, 8, 19, 70, 3, 2, 0, 0.6, 0.6, 128},       // C not a multiple of 16
    {1, 7, 7, 32, 64, 3, 1, 1, 0.5, 0.5, 32, true},  // tvw: 2:4 inside the tiles
    {2, 5, 5, 48, 130, 1, 1, 0, 0.7, 0.6, 64, true},
};

}  // namespace

TEST_CASE("fp32 tw kernel matches the reference") {
  uint64_t seed = 100;
  for (const Case& c : kCases) check_f32(c, seed += 10);
}

TEST_CASE("int8 tw kernel is bit-exact with the int8 reference") {
  uint64_t seed = 700;
  for (const Case& c : kCases) check_i8(c, seed += 10);
}

TEST_CASE("int8 tw kernel at the ends of the int8 range") {
  const Case c{1, 8, 8, 64, 48, 3, 1, 1, 0.8, 0.8, 32};
  check_i8(c, 900, -127, true);
  check_i8(c, 910, -128, true);  // a weight of -128
  check_i8(c, 920, -128, false);
}

TEST_CASE("tw kernels on random shapes") {
  Rng r(77);
  for (int i = 0; i < 16; ++i) {
    const test::ConvCase rc = test::random_conv_case(r);
    Case c{rc.N, rc.H, rc.W, rc.C, rc.Cout, rc.k, rc.stride, rc.pad, 0.3 + 0.7 * r.uniform(), 0.3 + 0.7 * r.uniform()};
    c.G = 1 + static_cast<int64_t>(r.below(40));
    check_f32(c, 5000 + static_cast<uint64_t>(i) * 10);
    check_i8(c, 6000 + static_cast<uint64_t>(i) * 10);
  }
}

TEST_CASE("tw tiles with output channels out of order run as one column group") {
  // Tiles whose columns interleave (a file not written by bsp): the plan is
  // not ascending, every work item writes all channels; still exact.
  Case c{1, 6, 6, 16, 32, 3, 1, 1, 1.0, 0.6};
  Model m = tw_model(c, 42);
  Node& n = m.nodes[1];
  const Tensor& w = n.param("weight");
  compact::CompactLayer l =
      compact::compress(w.data(), w.shape(), element_mask(n).data(), compact::spec_for(n, compact::Format::TW));
  // Re-cut: tile 0 takes the even columns, tile 1 the odd ones, every row each.
  const int64_t K = l.geom().K();
  l.tile_row_ptr = {0, static_cast<int32_t>(K), static_cast<int32_t>(2 * K)};
  l.tile_rows.clear();
  for (int t = 0; t < 2; ++t)
    for (int64_t k = 0; k < K; ++k) l.tile_rows.push_back(static_cast<int32_t>(k));
  l.tile_cols.clear();
  for (int t = 0; t < 2; ++t)
    for (int32_t o = t; o < c.Cout; o += 2) l.tile_cols.push_back(o);
  l.tile_col_ptr = {0, static_cast<int32_t>(c.Cout / 2), static_cast<int32_t>(c.Cout)};
  const TwPlan plan = tw_plan(conv_geom(n, {c.H, c.W, c.C}), l);
  CHECK_FALSE(plan.ascending);
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  const Tensor x = test::random_tensor({c.N, c.H, c.W, c.C}, 43);
  const Tensor ref = ref::conv2d(x, w, &n.param("bias"), g);
  const int before = omp_get_max_threads();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    const TwConvF32 conv(g, l, w.data(), n.param("bias").data());
    omp_set_num_threads(2);
    Tensor y(ref.shape());
    conv.run(x.data(), c.N, y.data(), nullptr, Clamp{});
    CHECK(test::max_abs_diff(y, ref) < 1e-4f);
    omp_set_num_threads(before);
  }
  // int8 on the same tiles (every weight inside one), with a fused add.
  q8::QNode q;
  q.kind = q8::Kind::Conv;
  q.weight = random_i8(w.shape(), 44, -127, 127);
  q.bias = Array<int32_t>({c.Cout});
  for (int64_t o = 0; o < c.Cout; ++o) q.bias[static_cast<size_t>(o)] = static_cast<int32_t>(o * 37 % 200) - 100;
  for (int64_t o = 0; o < c.Cout; ++o) q.rq.push_back(q8::make_requant(std::ldexp(1.0 + 0.01 * static_cast<double>(o), -10)));
  const Array<int8_t> xq = random_i8({c.N, c.H, c.W, c.C}, 46);
  const Array<int8_t> refq = q8::reference_node(n, q, {&xq});
  const Array<int8_t> z = random_i8(refq.shape(), 47);
  const q8::FusedAdd add = q8::FusedAdd::make(1 << 20, -(3 << 19), 21, -128, 127);
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    INFO("int8 isa " << isa_name(isa));
    const TwConvI8 conv(g, l, q.weight.data(), q.bias.data(), q.rq, q.lo, q.hi);
    omp_set_num_threads(2);
    Array<int8_t> y(refq.shape());
    conv.run(xq.data(), c.N, y.data(), z.data(), &add);
    size_t diff = 0;
    for (size_t i = 0; i < y.size(); ++i) diff += y[i] != add.apply(refq[i], z[i]);
    CHECK(diff == 0);
    omp_set_num_threads(before);
  }
  set_isa(detect_isa());
}

TEST_CASE("tw_covers finds a nonzero int8 weight outside the tiles") {
  Case c{1, 5, 5, 16, 16, 1, 1, 0, 0.5, 0.5};
  Model m = tw_model(c, 9);
  Node& n = m.nodes[1];
  const Array<uint8_t> keep = element_mask(n);
  Array<int8_t> w = random_i8(n.param("weight").shape(), 10, -127, 127);
  size_t outside = keep.size();
  for (size_t i = 0; i < keep.size(); ++i)
    if (!keep[i]) w[i] = 0, outside = i;
  const compact::CompactLayer l = compact::compress(w.data(), w.shape(), keep.data(), compact::spec_for(n, compact::Format::TW));
  CHECK(tw_covers(l, w.data()));
  REQUIRE(outside < keep.size());
  w[outside] = 3;
  CHECK_FALSE(tw_covers(l, w.data()));
}
