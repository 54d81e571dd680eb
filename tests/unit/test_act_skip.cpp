// Kernels that skip zero activation blocks (kernels/act_skip.hpp): the rule
// pass equals the reference rule and maps the right units; every skipping
// kernel equals its reference on the input with the same blocks zeroed
// (fp32 within tolerance, int8 bit for bit) on each ISA, at zero fractions
// 0, partial and 1, with edge blocks and batches; and the kernels do skip.
#include <catch2/catch.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "compact/int8.hpp"
#include "compact/weights.hpp"
#include "core/act_sparsity.hpp"
#include "core/reference_ops.hpp"
#include "core/rng.hpp"
#include "kernels/act_skip.hpp"
#include "kernels/conv_f32.hpp"
#include "kernels/conv_i8.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

using Case = test::ConvCase;
using Block = std::array<int64_t, 3>;

// Zeroes each rule block of x ([N, H, W, C]) with probability p.
template <class T>
void zero_random_blocks(T* x, const Shape& s, const Block& blk, double p, uint64_t seed) {
  Rng r(seed);
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h0 = 0; h0 < H; h0 += blk[0])
      for (int64_t w0 = 0; w0 < W; w0 += blk[1])
        for (int64_t c0 = 0; c0 < C; c0 += blk[2]) {
          if (!(r.uniform() < p)) continue;
          for (int64_t h = h0; h < std::min(H, h0 + blk[0]); ++h)
            for (int64_t w = w0; w < std::min(W, w0 + blk[1]); ++w)
              for (int64_t c = c0; c < std::min(C, c0 + blk[2]); ++c) x[((n * H + h) * W + w) * C + c] = T(0);
        }
}

// The map's definition, brute force: unit (n, h, u, cu) is set when every
// rule block it touches was zeroed (all its values below t).
template <class T, class Small>
void check_map(const T* x, const Shape& s, const Block& blk, Small small, const ActZeroMap& map) {
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  auto block_small = [&](int64_t n, int64_t hb, int64_t wb, int64_t cb) {
    for (int64_t h = hb * blk[0]; h < std::min(H, (hb + 1) * blk[0]); ++h)
      for (int64_t w = wb * blk[1]; w < std::min(W, (wb + 1) * blk[1]); ++w)
        for (int64_t c = cb * blk[2]; c < std::min(C, (cb + 1) * blk[2]); ++c)
          if (!small(x[((n * H + h) * W + w) * C + c])) return false;
    return true;
  };
  int64_t units = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t cu = 0; cu < (C + 7) / 8; ++cu)
        for (int64_t u = 0; u < (W + 7) / 8; ++u) {
          bool z = true;
          for (int64_t wb = 8 * u / blk[1]; wb <= std::min(W - 1, 8 * u + 7) / blk[1]; ++wb)
            for (int64_t cb = 8 * cu / blk[2]; cb <= std::min(C - 1, 8 * cu + 7) / blk[2]; ++cb)
              z = z && block_small(n, h / blk[0], wb, cb);
          const bool bit = (map.bits[static_cast<size_t>(((n * H + h) * map.cu + cu) * map.words + u / 64)] >> (u % 64)) & 1;
          REQUIRE(bit == z);
          units += z;
          REQUIRE(map.zero(n, h, cu, 8 * u, std::min(W - 1, 8 * u + 7)) == z);
        }
  CHECK(map.zero_units == units);
}

}  // namespace

TEST_CASE("the rule pass equals the reference rule, in place and copied, and maps the zero units") {
  const float t = 0.7f;
  for (const Shape& s : {Shape{2, 5, 13, 20}, Shape{1, 3, 70 * 8 + 3, 9}, Shape{3, 1, 1, 37}}) {
    for (const Block& blk : {Block{1, 8, 8}, Block{2, 4, 16}, Block{1, 3, 5}, Block{4, 16, 2}}) {
      INFO("shape " << s[1] << "x" << s[2] << "x" << s[3] << " block " << blk[0] << "x" << blk[1] << "x" << blk[2]);
      Tensor x = test::random_tensor(s, 7, 0.6);
      zero_random_blocks(x.data(), s, blk, 0.3, 8);
      x[3] = std::nanf("");  // a NaN keeps its block
      const Tensor ref = zero_small_blocks(x, blk, t);
      Tensor copy(s), inplace = x.clone();
      ActZeroMap map, map2;
      const int64_t zeroed = apply_act_rule(x.data(), copy.data(), s, blk, t, map);
      CHECK(apply_act_rule(inplace.data(), inplace.data(), s, blk, t, map2) == zeroed);
      CHECK(map2.bits == map.bits);
      CHECK(std::equal(copy.begin(), copy.end(), ref.begin(), [](float a, float b) { return std::memcmp(&a, &b, 4) == 0; }));
      CHECK(std::equal(inplace.begin(), inplace.end(), ref.begin(), [](float a, float b) { return std::memcmp(&a, &b, 4) == 0; }));
      CHECK(map.zero_blocks == zeroed);
      CHECK(map.blocks == act_blocks_per_image({s[1], s[2], s[3]}, blk) * s[0]);
      CHECK(std::fabs(static_cast<double>(map.zero_blocks) / static_cast<double>(map.blocks) - zero_block_fraction(x, blk, t)) < 1e-12);
      check_map(x.data(), s, blk, [t](float v) { return std::fabs(v) < t; }, map);
      // The vector form [N, F] is [N, 1, 1, F].
      if (s[1] == 1 && s[2] == 1) {
        ActZeroMap mv;
        Tensor y({s[0], s[3]});
        apply_act_rule(x.data(), y.data(), {s[0], s[3]}, blk, t, mv);
        CHECK(mv.bits == map.bits);
      }
    }
  }
  // int8: |q| < tq.
  Array<int8_t> q({2, 4, 11, 19});
  Rng r(3);
  for (auto& v : q) v = static_cast<int8_t>(static_cast<int>(r.below(11)) - 5);
  const Shape s{2, 4, 11, 19};
  for (const Block& blk : {Block{1, 8, 8}, Block{2, 2, 3}}) {
    Array<int8_t> ref = q.clone(), y(s);
    zero_small_blocks_inplace(ref.data(), s, blk, 4);
    ActZeroMap map;
    CHECK(apply_act_rule(q.data(), y.data(), s, blk, 4, map) == map.zero_blocks);
    CHECK(std::equal(y.begin(), y.end(), ref.begin()));
    check_map(q.data(), s, blk, [](int8_t v) { return std::abs(int{v}) < 4; }, map);
  }
}

namespace {

const Case kCases[] = {
    {2, 9, 13, 20, 24, 3, 1, 1, 0.5},      // packed 3x3, W and C not multiples of 8
    {2, 7, 9, 16, 20, 3, 2, 1, 0.5},       // stride 2
    {2, 10, 10, 16, 16, 3, 1, 2, 0.5, 2},  // dilation 2
    {3, 12, 12, 64, 40, 1, 1, 0, 0.5},     // 1x1 read directly (flat over the batch)
    {2, 10, 11, 24, 16, 1, 2, 0, 0.6},     // 1x1 gathered per tile, stride 2
    {2, 8, 9, 64, 16, 3, 1, 0, 1.0, 1, 1}, // 3x1 read directly (taps = rows)
    {1, 4, 4, 256, 64, 3, 1, 1, 0.5},      // weights larger than the input: block rows outer
    {5, 1, 1, 50, 30, 1, 1, 0, 0.5},       // a dense layer: a 1x1 conv over 1x1 images
    {2, 70, 70, 8, 8, 1, 1, 0, 1.0},       // rows of 70 pixels: two map words
};


std::string describe(const Case& c) {
  return "N" + std::to_string(c.N) + " " + std::to_string(c.H) + "x" + std::to_string(c.W) + "x" +
         std::to_string(c.C) + " -> " + std::to_string(c.Cout) + " k" + std::to_string(c.k) + " s" +
         std::to_string(c.stride) + " p" + std::to_string(c.pad);
}

}  // namespace

TEST_CASE("fp32 conv skipping zero input blocks equals the reference on the zeroed input") {
  const int threads = omp_get_max_threads();
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    Model m = test::conv_case_model(c, seed += 10);
    const Node& n = m.nodes[1];
    const Tensor& w = n.param("weight");
    compact::CompactLayer l = compact::compress(w.data(), w.shape(), element_mask(n).data(),
                                                compact::spec_for(n, compact::Format::Bsr));
    const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
    const Shape xs{c.N, c.H, c.W, c.C};
    for (double p : {0.0, 0.5, 1.0})
      for (const Block& blk : {Block{1, 8, 8}, Block{2, 4, 16}}) {
        INFO(describe(c) << " zero fraction " << p << " block " << blk[0] << "x" << blk[1] << "x" << blk[2]);
        Tensor x = test::random_tensor(xs, seed + 3);
        zero_random_blocks(x.data(), xs, blk, p, seed + 4);
        // The rule with a tiny threshold zeroes exactly the zero blocks;
        // a dense layer's input is [N, F].
        ActZeroMap map;
        const Shape rs = c.H == 1 && c.W == 1 ? Shape{c.N, c.C} : xs;
        apply_act_rule(x.data(), x.data(), rs, blk, 1e-30f, map);
        if (p == 1.0) CHECK(map.zero_units == map.units);
        if (p == 0.0) CHECK(map.zero_units == 0);
        const Tensor ref = ref::conv2d(x, w, &n.param("bias"), g);
        const Tensor z = test::random_tensor(ref.shape(), seed + 5);
        for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
          if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
          set_isa(isa);
          INFO("isa " << isa_name(isa));
          for (bool sparse : {true, false}) {
            ConvF32 conv(g, sparse ? pack_f32(w.data(), l.geom(), l.row_ptr, l.col_idx, n.param("bias").data())
                                   : pack_f32(w.data(), l.geom(), {}, {}, n.param("bias").data()));
            REQUIRE(conv.can_skip());
            // Both tilings (ActZeroMap::row_tiles), whatever the fraction chose.
            for (int t : {1, 3}) {
              omp_set_num_threads(t);
              ActZeroMap tiled = map;
              tiled.row_tiles = t == 3;
              INFO("row tiles " << tiled.row_tiles);
              Tensor y(ref.shape()), y0(ref.shape());
              conv.run(x.data(), c.C, c.N, y.data(), c.Cout, nullptr, 0, Clamp{}, &tiled);
              conv.run(x.data(), c.C, c.N, y0.data(), c.Cout, nullptr, 0, Clamp{});
              CHECK(test::max_abs_diff(y, ref) < 1e-4f);
              CHECK(test::max_abs_diff(y, y0) < 1e-4f);
              // With the residual epilogue.
              conv.run(x.data(), c.C, c.N, y.data(), c.Cout, z.data(), c.Cout, Clamp{}, &tiled);
              Tensor rz = ref.clone();
              for (size_t i = 0; i < rz.size(); ++i) rz[i] += z[i];
              CHECK(test::max_abs_diff(y, rz) < 1e-4f);
            }
            omp_set_num_threads(threads);
          }
        }
        set_isa(detect_isa());
      }
  }
}

// The kernels do skip: a map that says channels 0-7 are zero everywhere,
// with nonzero values there in x, gives the result of x with those
// channels zeroed (every tile skips block 0 at every tap, whatever its
// geometry); a map of all zeros gives the bias alone.
TEST_CASE("fp32 and int8 kernels skip what the map marks zero") {
  uint64_t seed = 500;
  for (const Case& c : kCases) {
    Model m = test::conv_case_model(c, seed += 10);
    const Node& n = m.nodes[1];
    const Tensor& w = n.param("weight");
    const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
    const Shape xs{c.N, c.H, c.W, c.C};
    Tensor x = test::random_tensor(xs, seed + 1), x0 = x.clone(), xall(xs);
    for (int64_t i = 0; i < static_cast<int64_t>(x0.size()); ++i)
      if (i % c.C < 8) x0[static_cast<size_t>(i)] = 0;
    ActZeroMap lie, all;
    Tensor scratch(xs);
    apply_act_rule(x0.data(), scratch.data(), xs, {1, 8, 8}, 1e-30f, lie);
    apply_act_rule(xall.data(), scratch.data(), xs, {1, 8, 8}, 1e-30f, all);
    const Tensor ref = ref::conv2d(x0, w, &n.param("bias"), g), ref_all = ref::conv2d(xall, w, &n.param("bias"), g);
    // int8 weights and inputs of the same structure.
    Array<uint8_t> keep = element_mask(n);
    Array<int8_t> wq(w.shape()), xq(xs), xq0(xs), xqall(xs);
    Rng r(seed + 2);
    for (size_t i = 0; i < wq.size(); ++i) wq[i] = keep[i] ? static_cast<int8_t>(static_cast<int>(r.below(255)) - 127) : 0;
    for (size_t i = 0; i < xq.size(); ++i) {
      xq[i] = static_cast<int8_t>(static_cast<int>(r.below(256)) - 128);
      xq0[i] = static_cast<int64_t>(i) % c.C < 8 ? 0 : xq[i];
      xqall[i] = 0;
    }
    q8::QNode q;
    q.kind = q8::Kind::Conv;
    q.weight = wq.clone();
    q.bias = Array<int32_t>({c.Cout});
    for (auto& v : q.bias) v = static_cast<int32_t>(r.below(20001)) - 10000;
    for (int64_t o = 0; o < c.Cout; ++o) q.rq.push_back(q8::make_requant(std::ldexp(0.5 + r.uniform(), -10)));
    q.lo = -128;
    q.hi = 127;
    const Array<int8_t> qref = q8::reference_node(n, q, {&xq0}), qref_all = q8::reference_node(n, q, {&xqall});
    compact::CompactLayer lq = compact::compress(wq.data(), wq.shape(), keep.data(), compact::spec_for(n, compact::Format::Bsr));
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      set_isa(isa);
      INFO(describe(c) << " isa " << isa_name(isa));
      ConvF32 conv(g, pack_f32(w.data(), compact::weight_geom(w.shape()), {}, {}, n.param("bias").data()));
      Tensor y(ref.shape());
      for (bool rows : {false, true}) {
        lie.row_tiles = rows;
        conv.run(x.data(), c.C, c.N, y.data(), c.Cout, nullptr, 0, Clamp{}, &lie);
        CHECK(test::max_abs_diff(y, ref) < 1e-4f);
      }
      conv.run(x.data(), c.C, c.N, y.data(), c.Cout, nullptr, 0, Clamp{}, &all);
      CHECK(test::max_abs_diff(y, ref_all) < 1e-4f);
      ConvI8 qconv(g, wq.data(), lq.row_ptr, lq.col_idx, q.bias.data(), q.rq, q.lo, q.hi);
      Array<int8_t> yq(qref.shape());
      qconv.run(xq.data(), c.N, yq.data(), nullptr, nullptr, &lie);
      CHECK(std::equal(yq.begin(), yq.end(), qref.begin()));
      qconv.run(xq.data(), c.N, yq.data(), nullptr, nullptr, &all);
      CHECK(std::equal(yq.begin(), yq.end(), qref_all.begin()));
    }
    set_isa(detect_isa());
  }
}

TEST_CASE("int8 conv skipping zero input blocks equals the int8 reference bit for bit") {
  const int threads = omp_get_max_threads();
  uint64_t seed = 900;
  for (const Case& c : kCases) {
    Model m = test::conv_case_model(c, seed += 10);
    const Node& n = m.nodes[1];
    Array<uint8_t> keep = element_mask(n);
    Rng r(seed + 1);
    q8::QNode q;
    q.kind = q8::Kind::Conv;
    q.weight = Array<int8_t>(n.param("weight").shape());
    for (size_t i = 0; i < q.weight.size(); ++i)
      q.weight[i] = keep[i] ? static_cast<int8_t>(static_cast<int>(r.below(255)) - 127) : 0;
    q.bias = Array<int32_t>({c.Cout});
    for (auto& v : q.bias) v = static_cast<int32_t>(r.below(20001)) - 10000;
    for (int64_t o = 0; o < c.Cout; ++o) q.rq.push_back(q8::make_requant(std::ldexp(0.5 + r.uniform(), -10)));
    q.lo = 0;
    q.hi = 127;
    compact::CompactLayer l = compact::compress(q.weight.data(), q.weight.shape(), keep.data(),
                                                compact::spec_for(n, compact::Format::Bsr));
    const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
    const Shape xs{c.N, c.H, c.W, c.C};
    for (double p : {0.0, 0.5, 1.0})
      for (const Block& blk : {Block{1, 8, 8}, Block{2, 4, 16}}) {
        INFO(describe(c) << " zero fraction " << p << " block " << blk[0] << "x" << blk[1] << "x" << blk[2]);
        Array<int8_t> x(xs);
        for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(r.below(256)) - 128);
        zero_random_blocks(x.data(), xs, blk, p, seed + 2);
        ActZeroMap map;
        apply_act_rule(x.data(), x.data(), xs, blk, 1, map);
        const Array<int8_t> ref = q8::reference_node(n, q, {&x});
        for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
          if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
          set_isa(isa);
          INFO("isa " << isa_name(isa));
          for (bool sparse : {true, false}) {
            ConvI8 conv(g, q.weight.data(), sparse ? l.row_ptr : std::vector<int32_t>{},
                        sparse ? l.col_idx : std::vector<int32_t>{}, q.bias.data(), q.rq, q.lo, q.hi);
            for (int t : {1, 3}) {
              omp_set_num_threads(t);
              Array<int8_t> y(ref.shape());
              conv.run(x.data(), c.N, y.data(), nullptr, nullptr, &map);
              size_t diff = 0;
              for (size_t i = 0; i < y.size(); ++i) diff += y[i] != ref[i];
              CHECK(diff == 0);
            }
            omp_set_num_threads(threads);
          }
        }
        set_isa(detect_isa());
      }
  }
}
