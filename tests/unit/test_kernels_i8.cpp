#include <catch2/catch.hpp>

#include <omp.h>

#include <algorithm>
#include <limits>

#include "compact/int8.hpp"
#include "compact/weights.hpp"
#include "kernels/conv_i8.hpp"
#include "kernels/ops_i8.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

using Case = test::ConvCase;

Array<int8_t> random_i8(Shape s, uint64_t seed, int lo = -128, int hi = 127) {
  Array<int8_t> a(std::move(s));
  Rng r(seed);
  for (auto& v : a) v = static_cast<int8_t>(lo + static_cast<int>(r.below(static_cast<uint64_t>(hi - lo + 1))));
  return a;
}

// Values drawn only from the ends of the int8 range {lo, lo+1, hi-1, hi}:
// the largest products the pairwise 16-bit sums of the AVX2 kernel meet.
Array<int8_t> extreme_i8(Shape s, uint64_t seed, int lo, int hi) {
  Array<int8_t> a(std::move(s));
  Rng r(seed);
  const int ends[4] = {lo, lo + 1, hi - 1, hi};
  for (auto& v : a) v = static_cast<int8_t>(ends[r.below(4)]);
  return a;
}

// What the weights and inputs of a case are drawn from.
struct Values {
  int w_lo = -127;       // -128 sends the AVX2 kernel to its scalar fallback
  bool extreme = false;  // only the ends of the range (extreme_i8)
  int add_shift = -1;    // >= 0: the fused add's shift, with the largest multipliers +-2^31
  int rq_shift = -1;     // >= 0: every channel's requantisation shift (else random, channel 0 shift 0)
  int hi = 127;          // the conv's and the fused add's upper clamp (a clip's, below 127)
};

// The int8 kernel must equal the int8 reference conv exactly.
void check(const Case& c, uint64_t seed, Values vals = {}) {
  GraphBuilder b("t", c.H, c.W, c.C);
  b.conv("conv", "input", GraphBuilder::square(c.Cout, c.k, c.stride, c.pad));
  Model m = b.finish();
  Node& n = m.nodes[1];
  // Block structure from a float mask, int8 values within it.
  n.param("weight") = test::random_tensor({c.Cout, c.k, c.k, c.C}, seed);
  test::block_prune(n, 8, 8, c.density, seed + 1);
  Array<uint8_t> keep = element_mask(n);
  q8::QNode q;
  q.kind = q8::Kind::Conv;
  q.weight = vals.extreme ? extreme_i8(n.param("weight").shape(), seed + 2, vals.w_lo, 127)
                          : random_i8(n.param("weight").shape(), seed + 2, vals.w_lo, 127);
  for (size_t i = 0; i < keep.size(); ++i)
    if (!keep[i]) q.weight[i] = 0;
  q.bias = Array<int32_t>({c.Cout});
  Rng r(seed + 3);
  for (auto& v : q.bias) v = static_cast<int32_t>(r.below(20001)) - 10000;
  for (int64_t o = 0; o < c.Cout; ++o)
    q.rq.push_back(q8::make_requant(vals.rq_shift >= 0 ? std::ldexp(0.5 + 0.49 * r.uniform(), 31 - vals.rq_shift)
                                                       : std::ldexp(0.5 + r.uniform(), -static_cast<int>(8 + r.below(8)))));
  if (vals.rq_shift < 0) q.rq[0] = {1, 0};  // a shift of 0: no rounding term
  for (const q8::Requant& rq : q.rq) REQUIRE((vals.rq_shift < 0 || rq.shift == vals.rq_shift));
  q.lo = c.density > 0.55 ? 0 : -128;
  q.hi = vals.hi;
  compact::CompactLayer l = compact::compress(q.weight.data(), q.weight.shape(), keep.data(),
                                              compact::spec_for(n, compact::Format::Bsr));
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  Array<int8_t> x = vals.extreme ? extreme_i8({c.N, c.H, c.W, c.C}, seed + 4, -128, 127)
                                 : random_i8({c.N, c.H, c.W, c.C}, seed + 4);
  Array<int8_t> ref = q8::reference_node(n, q, {&x});
  const int threads = omp_get_max_threads();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    INFO("isa " << isa_name(isa) << " N" << c.N << " " << c.H << "x" << c.W << "x" << c.C << " -> " << c.Cout << " k"
                << c.k << " s" << c.stride << " d" << c.density);
    for (bool sparse : {true, false}) {
      ConvI8 conv(g, q.weight.data(), sparse ? l.row_ptr : std::vector<int32_t>{},
                  sparse ? l.col_idx : std::vector<int32_t>{}, q.bias.data(), q.rq, q.lo, q.hi);
      // Work items group block rows by the thread count: any count gives the same bytes.
      for (int t : {1, 2, 3}) {
        omp_set_num_threads(t);
        Array<int8_t> y(ref.shape());
        conv.run(x.data(), c.N, y.data());
        size_t diff = 0;
        for (size_t i = 0; i < y.size(); ++i) diff += y[i] != ref[i];
        CHECK(diff == 0);
      }
      omp_set_num_threads(threads);
      // With a fused residual add: the add rule of compact/int8.hpp on the
      // conv's int8 output and an addend (any multipliers below 2^31, shift
      // 0 or more, with and without a relu's lo = 0).
      const Array<int8_t> z = vals.extreme ? extreme_i8(ref.shape(), seed + 5, -128, 127) : random_i8(ref.shape(), seed + 5);
      int32_t m0 = static_cast<int32_t>(r.below(1u << 31)), m1 = static_cast<int32_t>(r.below(1u << 31));
      int32_t shift = sparse ? static_cast<int32_t>(r.below(40)) : 0;
      const int32_t lo = r.below(2) ? 0 : -128;
      if (vals.add_shift >= 0) {  // the sums at the bounds of the kernel's 32-bit paths
        shift = vals.add_shift;
        m0 = m1 = sparse ? INT32_MIN : INT32_MAX;
      }
      const q8::FusedAdd add = q8::FusedAdd::make(m0, m1, shift, lo, vals.hi);
      Array<int8_t> ya(ref.shape());
      conv.run(x.data(), c.N, ya.data(), z.data(), &add);
      const int64_t round = shift > 0 ? int64_t{1} << (shift - 1) : 0;
      size_t diff = 0;
      for (size_t i = 0; i < ya.size(); ++i) {
        const int64_t v = (int64_t{ref[i]} * m0 + int64_t{z[i]} * m1 + round) >> shift;
        diff += ya[i] != static_cast<int8_t>(std::clamp<int64_t>(v, lo, vals.hi));
      }
      CHECK(diff == 0);
    }
  }
  set_isa(detect_isa());
}

}  // namespace

TEST_CASE("int8 bsr conv is bit-exact with the int8 reference") {
  const Case cases[] = {
      {1, 7, 7, 16, 16, 3, 1, 1, 0.5},   {2, 9, 11, 24, 40, 3, 2, 1, 0.5}, {1, 8, 8, 13, 11, 3, 1, 1, 0.6},
      {3, 6, 6, 32, 24, 1, 1, 0, 0.5},   {2, 10, 10, 16, 16, 1, 2, 0, 0.5}, {1, 5, 5, 8, 8, 3, 1, 1, 0.0},
      {1, 5, 5, 16, 16, 3, 1, 1, 1.0},   {1, 12, 12, 3, 16, 7, 2, 3, 1.0},  {2, 9, 9, 16, 8, 3, 1, 0, 0.7},
      {1, 8, 8, 64, 64, 5, 1, 2, 0.3},   {1, 3, 3, 256, 72, 3, 1, 1, 0.9},
      // The AVX-512 packing's 8 x 8 transposes: 10 blocks (8, then 2 by
      // masked loads), rows of 8 pixels and a remainder, strides 2 and 1.
      {1, 10, 19, 80, 16, 3, 2, 1, 0.5}, {2, 4, 20, 84, 8, 1, 1, 0, 0.5},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_CASE("int8 kernel on random shapes") {
  Rng r(77);
  for (int i = 0; i < 12; ++i) {
    const Case c = test::random_conv_case(r);
    check(c, 3000 + static_cast<uint64_t>(i));
  }
}

TEST_CASE("int8 kernel at the ends of the int8 range") {
  const Case cases[] = {
      {1, 7, 7, 16, 16, 3, 1, 1, 0.5}, {2, 9, 11, 24, 40, 3, 2, 1, 1.0}, {1, 8, 8, 64, 64, 1, 1, 0, 0.5},
      {1, 6, 6, 13, 11, 3, 1, 1, 0.8},
  };
  uint64_t seed = 500;
  for (const Case& c : cases) {
    check(c, seed += 10, {-127, true});  // x = -128 against w = +-127: the largest pair sums
    check(c, seed += 10, {-128, true});  // a weight of -128: the scalar fallback
    check(c, seed += 10, {-128, false});
  }
  // The fused add's shift at each bound of the AVX2 kernel's paths (general
  // below 9, 32-bit low words from 9, high words from 32), the multipliers
  // at the ends of int32.
  for (int shift : {0, 1, 8, 9, 10, 15, 16, 31, 32, 33, 40})
    check({1, 6, 6, 16, 16, 1, 1, 0, 0.5}, 900 + static_cast<uint64_t>(shift), {-127, true, shift});
  // Every requantisation shift at the bounds of the VNNI kernel's paths (64-bit
  // below 33, the high words from 33), the accumulators small enough to
  // land inside [lo, hi] as well as saturating.
  for (int shift : {20, 31, 32, 33, 34, 45})
    check({1, 9, 9, 16, 24, 1, 1, 0, 0.5}, 950 + static_cast<uint64_t>(shift), {-127, false, -1, shift});
  // An upper clamp below 127 (a clip): the kernels cannot leave it to the
  // saturation of the int8 conversion.
  for (int shift : {-1, 34, 45})
    check({2, 7, 9, 24, 16, 3, 1, 1, 0.6}, 980 + static_cast<uint64_t>(shift + 1), {-127, false, -1, shift, 60});
}

TEST_CASE("int8 input quantisation of every ISA equals quantize_value") {
  std::vector<float> x = {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()};
  // Ties and their neighbours across the whole range and past its ends.
  for (int k = -131; k <= 130; ++k)
    for (float d : {0.5f, 0.49999997f, 0.50000006f, 0.0f}) x.push_back(static_cast<float>(k) + d);
  Rng r(5);
  for (int i = 0; i < 5000; ++i) x.push_back(static_cast<float>((r.uniform() - 0.5) * 300.0));
  for (double scale : {1.0, 0.5, 1.0 / 127.0, 0.0123, 3e-5, 1e30}) {
    std::vector<float> xs(x.size());
    for (size_t i = 0; i < x.size(); ++i) xs[i] = static_cast<float>(x[i] * (scale < 1e20 ? scale : 1.0));
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      INFO("isa " << isa_name(isa) << " scale " << scale);
      std::vector<int8_t> y(xs.size());
      ops_i8(isa).quantize(xs.data(), static_cast<int64_t>(xs.size()), scale, y.data());
      size_t diff = 0;
      for (size_t i = 0; i < xs.size(); ++i) diff += y[i] != q8::quantize_value(xs[i], scale);
      CHECK(diff == 0);
    }
  }
}

TEST_CASE("int8 depthwise op is bit-exact with the int8 reference") {
  Rng r(31);
  int checked = 0;
  for (int i = 0; i < 30; ++i) {
    const int64_t C = std::array<int64_t, 5>{16, 32, 3, 72, 96}[r.below(5)];
    const int64_t k = std::array<int64_t, 3>{3, 5, 1}[r.below(3)];
    const int64_t stride = 1 + static_cast<int64_t>(r.below(2)), pad = static_cast<int64_t>(r.below(3));
    const int64_t H = 1 + static_cast<int64_t>(r.below(12)), W = 1 + static_cast<int64_t>(r.below(12));
    if (H + 2 * pad < k || W + 2 * pad < k) continue;
    GraphBuilder b("t", H, W, C);
    GraphBuilder::ConvSpec spec = GraphBuilder::square(C, k, stride, pad);
    spec.groups = C;
    b.conv("dw", "input", spec);
    Model m = b.finish();
    const Node& n = m.nodes[1];
    const uint64_t seed = 700 + static_cast<uint64_t>(i) * 11;
    q8::QNode q;
    q.kind = q8::Kind::Conv;
    q.weight = random_i8({C, k, k, 1}, seed, -127, 127);
    q.bias = Array<int32_t>({C});
    for (auto& v : q.bias) v = static_cast<int32_t>(r.below(20001)) - 10000;
    for (int64_t o = 0; o < C; ++o)
      q.rq.push_back(q8::make_requant(std::ldexp(0.5 + r.uniform(), -static_cast<int>(4 + r.below(8)))));
    q.rq[0] = {1, 0};
    q.lo = static_cast<int32_t>(r.below(2)) ? 0 : -128;
    q.hi = static_cast<int32_t>(r.below(2)) ? 100 : 127;  // a clip's bound
    const int64_t N = 1 + static_cast<int64_t>(r.below(2));
    const Array<int8_t> x = random_i8({N, H, W, C}, seed + 1);
    const Array<int8_t> ref = q8::reference_node(n, q, {&x});
    const ConvGeom g = conv_geom(n, {H, W, C});
    REQUIRE(g.depthwise());
    std::vector<int8_t> wt(static_cast<size_t>(k * k * C));  // [tap, C]
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < k * k; ++t) wt[static_cast<size_t>(t * C + c)] = q.weight[static_cast<size_t>(c * k * k + t)];
    const Array<int8_t> z = random_i8(ref.shape(), seed + 2);
    const q8::FusedAdd add = q8::FusedAdd::make(static_cast<int32_t>(r.below(1u << 20)),
                                                static_cast<int32_t>(r.below(1u << 20)), 20, -128, 127);
    INFO("N" << N << " " << H << "x" << W << "x" << C << " k" << k << " s" << stride << " p" << pad);
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      INFO("isa " << isa_name(isa));
      Array<int8_t> y(ref.shape()), ya(ref.shape());
      ops_i8(isa).depthwise(x.data(), N, g, wt.data(), q.bias.data(), q.rq.data(), q.lo, q.hi, nullptr, nullptr,
                            y.data());
      ops_i8(isa).depthwise(x.data(), N, g, wt.data(), q.bias.data(), q.rq.data(), q.lo, q.hi, z.data(), &add,
                            ya.data());
      size_t diff = 0, diff_add = 0;
      for (size_t j = 0; j < y.size(); ++j) {
        diff += y[j] != ref[j];
        diff_add += ya[j] != add.apply(ref[j], z[j]);
      }
      CHECK(diff == 0);
      CHECK(diff_add == 0);
      ++checked;
    }
  }
  CHECK(checked > 30);
}
