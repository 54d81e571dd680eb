#include <catch2/catch.hpp>

#include <omp.h>

#include <cstring>
#include <limits>
#include <optional>

#include "compact/weights.hpp"
#include "core/reference_ops.hpp"
#include "kernels/conv_f32.hpp"
#include "kernels/depthwise_f32.hpp"
#include "kernels/nm_f32.hpp"
#include "kernels/ops_f32.hpp"
#include "kernels/tw.hpp"
#include "kernels/width_fold.hpp"
#include "sparse_helpers.hpp"
#include "zoo/builder.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

using Case = test::ConvCase;
constexpr Clamp kRelu{true, 0.0f, std::numeric_limits<float>::infinity()};
constexpr Clamp kClip{true, -0.3f, 0.4f};  // a clip that bites on both sides

// Runs one conv through the fp32 kernel on every ISA this CPU has and
// compares with the reference (bias, residual and relu included).
void check_conv(const Case& c, uint64_t seed) {
  Model m = test::conv_case_model(c, seed);
  Node& n = m.nodes[1];
  const Tensor& w = n.param("weight");
  compact::CompactLayer l = compact::compress(w.data(), w.shape(), element_mask(n).data(),
                                              compact::spec_for(n, compact::Format::Bsr));
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  Tensor x = test::random_tensor({c.N, c.H, c.W, c.C}, seed + 3);
  Tensor ref = ref::conv2d(x, w, &n.param("bias"), g);
  Tensor z = test::random_tensor(ref.shape(), seed + 4);
  Tensor ref_res_relu = ref.clone(), ref_res = ref.clone(), ref_clip = ref.clone();
  for (size_t i = 0; i < ref.size(); ++i) {
    ref_res[i] = ref[i] + z[i];
    ref_res_relu[i] = std::max(0.0f, ref_res[i]);
    ref_clip[i] = std::min(std::max(ref[i], kClip.lo), kClip.hi);
  }

  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    INFO("isa " << isa_name(isa) << " N" << c.N << " " << c.H << "x" << c.W << "x" << c.C << " -> " << c.Cout << " k"
                << c.k << " s" << c.stride << " p" << c.pad << " d" << c.density);
    for (bool sparse : {true, false}) {
      PackedF32 p = sparse ? pack_f32(w.data(), l.geom(), l.row_ptr, l.col_idx, n.param("bias").data())
                           : pack_f32(w.data(), l.geom(), {}, {}, n.param("bias").data());
      ConvF32 conv(g, std::move(p));
      Tensor y(ref.shape());
      conv.run(x.data(), c.C, c.N, y.data(), c.Cout, nullptr, 0, Clamp{});
      CHECK(test::max_abs_diff(y, ref) < 1e-4f);
      Tensor y2(ref.shape());
      conv.run(x.data(), c.C, c.N, y2.data(), c.Cout, z.data(), c.Cout, kRelu);
      CHECK(test::max_abs_diff(y2, ref_res_relu) < 1e-4f);
      // The epilogue's other two cases: residual alone, a clip alone.
      conv.run(x.data(), c.C, c.N, y2.data(), c.Cout, z.data(), c.Cout, Clamp{});
      CHECK(test::max_abs_diff(y2, ref_res) < 1e-4f);
      conv.run(x.data(), c.C, c.N, y2.data(), c.Cout, nullptr, 0, kClip);
      CHECK(test::max_abs_diff(y2, ref_clip) < 1e-4f);
    }
  }
  set_isa(detect_isa());
}

// A random stem-like convolution: few input channels, a kernel 2 to 7
// wide, strides and padding on both axes, over an image of up to 12 x 20;
// nullopt when the kernel does not fit the padded image.
std::optional<ConvGeom> random_stem(Rng& r, int64_t dh, int64_t dw) {
  const auto below = [&r](int64_t n) { return static_cast<int64_t>(r.below(static_cast<uint64_t>(n))); };
  ConvGeom g;
  g.C = 1 + below(5);
  g.Cout = 1 + below(20);
  g.kh = 1 + below(7);
  g.kw = 2 + below(6);
  g.sh = 1 + below(3);
  g.sw = 1 + below(3);
  g.dh = dh;
  g.dw = dw;
  g.H = 1 + below(12);
  g.W = 1 + below(20);
  g.pt = below(g.kh);
  g.pb = below(g.kh);
  g.pl = below(g.kw);
  g.pr = below(g.kw);
  const int64_t eh = g.H + g.pt + g.pb - g.dh * (g.kh - 1), ew = g.W + g.pl + g.pr - g.dw * (g.kw - 1);
  if (eh < 1 || ew < 1) return std::nullopt;
  g.Ho = (eh - 1) / g.sh + 1;
  g.Wo = (ew - 1) / g.sw + 1;
  return g;
}

}  // namespace

TEST_CASE("fp32 bsr conv matches the reference on edge shapes") {
  const Case cases[] = {
      {1, 7, 7, 16, 16, 3, 1, 1, 0.5},     // batch 1, padding
      {2, 9, 11, 24, 40, 3, 2, 1, 0.5},    // stride 2, odd sizes
      {1, 8, 8, 13, 11, 3, 1, 1, 0.6},     // channels not multiples of 8
      {3, 6, 6, 32, 24, 1, 1, 0, 0.5},     // 1x1: the direct path, batch flattened
      {2, 10, 10, 16, 16, 1, 2, 0, 0.5},   // 1x1 stride 2
      {1, 5, 5, 8, 8, 3, 1, 1, 0.0},       // fully empty layer: bias only
      {1, 5, 5, 16, 16, 3, 1, 1, 1.0},     // fully dense
      {1, 12, 12, 8, 16, 7, 2, 3, 1.0},    // a stem-like 7x7 stride 2
      {2, 9, 9, 16, 8, 3, 1, 0, 0.7},      // no padding, kw > 1
      {1, 6, 9, 16, 16, 3, 1, 0, 0.5, 2},  // dilation
      {1, 8, 8, 16, 16, 5, 1, 2, 0.3},     // empty block rows likely
      {1, 3, 3, 8, 64, 3, 1, 1, 0.5},      // tiny image, more channels than pixels
      {2, 6, 5, 16, 8, 3, 1, 0, 0.5, 1, 1},  // 3x1 kernel: the direct path with row taps
      {1, 6, 5, 16, 8, 1, 1, 0, 0.5, 1, 3},  // 1x3 kernel
      {2, 5, 7, 64, 40, 1, 1, 0, 0.5},     // 1x1 on 64 channels: NHWC read directly, batch flattened
      {1, 7, 7, 128, 24, 1, 1, 0, 0.5},    // direct, 49 pixels: a partial last tile
      {1, 3, 5, 256, 16, 1, 1, 0, 0.5},    // direct, fewer pixels than a tile
      {2, 7, 9, 13, 16, 1, 1, 0, 0.5},     // 1x1 gathered per tile, channels not multiples of 8
      {3, 9, 7, 40, 24, 1, 2, 0, 0.6},     // 1x1 stride 2 gathered, odd sizes, batch 3
      {2, 6, 6, 512, 24, 1, 1, 0, 0.5},    // 1x1 on 512 channels gathered per tile
      {1, 3, 3, 24, 200, 1, 1, 0, 1.0},    // 1x1 on 9 pixels, dense: packed, rows outer
      {1, 7, 7, 136, 256, 1, 1, 0, 0.5},   // 1x1, weights larger than the input, few tiles: gathered, tiles outer
  };
  uint64_t seed = 1;
  for (const Case& c : cases) check_conv(c, seed += 10);
}

TEST_CASE("fp32 bsr conv gives the same result on any thread count") {
  // The work split (tiles x groups of block rows, tile sizes evened out)
  // depends on the thread count and on which of weights and input is larger.
  const Case cases[] = {
      {1, 7, 7, 64, 136, 3, 1, 1, 0.5},   // weights larger than the input: rows outer
      {1, 14, 14, 16, 48, 3, 1, 1, 0.5},  // input larger: tiles outer, row groups split
      {2, 9, 9, 64, 72, 1, 1, 0, 0.5},    // direct
      {2, 3, 3, 64, 72, 1, 1, 0, 1.0},    // direct, rows outer
      {1, 9, 9, 24, 200, 1, 2, 0, 0.4},   // 1x1 stride 2, 25 rows
      {2, 14, 14, 72, 48, 1, 2, 0, 0.5},  // 1x1 stride 2 gathered per tile, row groups split
  };
  uint64_t seed = 300;
  const int before = omp_get_max_threads();
  for (int t : {1, 2, 3, 5}) {
    omp_set_num_threads(t);
    INFO("threads " << t);
    for (const Case& c : cases) check_conv(c, seed += 10);
  }
  omp_set_num_threads(before);
}

namespace {

// nm and tw layers on their kernels (NmConvF32, TwConvF32) against the reference conv.
void check_sparse(const Case& c, compact::Format f, uint64_t seed, int64_t nm_n = 2, int64_t nm_m = 4) {
  GraphBuilder b("t", c.H, c.W, c.C);
  b.conv("conv", "input", GraphBuilder::square(c.Cout, c.k, c.stride, c.pad, true));
  Model m = b.finish();
  Node& n = m.nodes[1];
  n.param("weight") = test::random_tensor({c.Cout, c.k, c.k, c.C}, seed, 0.2);
  n.param("bias") = test::random_tensor({c.Cout}, seed + 1);
  if (f == compact::Format::NM)
    test::nm_prune(n, nm_n, nm_m);
  else
    test::tw_prune(n, 8, c.density, c.density, seed + 2);
  const Tensor& w = n.param("weight");
  compact::CompactLayer l = compact::compress(w.data(), w.shape(), element_mask(n).data(), compact::spec_for(n, f));
  const ConvGeom g = conv_geom(n, {c.H, c.W, c.C});
  Tensor x = test::random_tensor({c.N, c.H, c.W, c.C}, seed + 3);
  Tensor ref = ref::conv2d(x, w, &n.param("bias"), g);
  Tensor z = test::random_tensor(ref.shape(), seed + 4);
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    set_isa(isa);
    INFO(compact::format_name(f) << " " << nm_n << ":" << nm_m << " isa " << isa_name(isa) << " " << c.H << "x" << c.W << "x" << c.C << " -> "
                                 << c.Cout << " k" << c.k << " s" << c.stride);
    std::optional<NmConvF32> nm;
    std::optional<TwConvF32> tw;
    if (f == compact::Format::NM)
      nm.emplace(g, l, w.data(), n.param("bias").data());
    else
      tw.emplace(g, l, w.data(), n.param("bias").data());
    auto run = [&](const float* zz, Clamp cl, Tensor& out) {
      if (nm)
        nm->run(x.data(), c.N, out.data(), zz, cl);
      else
        tw->run(x.data(), c.N, out.data(), zz, cl);
    };
    Tensor y(ref.shape());
    run(nullptr, Clamp{}, y);
    CHECK(test::max_abs_diff(y, ref) < 1e-4f);
    run(z.data(), kRelu, y);
    float worst = 0;
    for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::abs(y[i] - std::max(0.0f, ref[i] + z[i])));
    CHECK(worst < 1e-4f);
    run(nullptr, kClip, y);
    worst = 0;
    for (size_t i = 0; i < y.size(); ++i)
      worst = std::max(worst, std::abs(y[i] - std::min(std::max(ref[i], kClip.lo), kClip.hi)));
    CHECK(worst < 1e-4f);
  }
  set_isa(detect_isa());
}

}  // namespace

TEST_CASE("fp32 nm and tw kernels match the reference") {
  const Case cases[] = {
      {1, 7, 7, 16, 24, 3, 1, 1, 0.6},   // batch 1, padding
      {2, 9, 11, 32, 20, 3, 2, 1, 0.5},  // stride 2, odd sizes, Cout not a multiple of 8
      {3, 5, 5, 64, 40, 1, 1, 0, 0.7},   // 1x1, K crosses no chunk
      {1, 6, 6, 96, 16, 3, 1, 1, 0.5},   // K = 864: several chunks
      {1, 4, 4, 8, 8, 3, 1, 1, 0.0},     // tw: nothing kept (bias only)
      {1, 4, 4, 8, 8, 3, 1, 1, 1.0},     // tw: everything kept
  };
  uint64_t seed = 500;
  for (const Case& c : cases) {
    if (c.C % 4 == 0) check_sparse(c, compact::Format::NM, seed += 10);
    check_sparse(c, compact::Format::TW, seed += 10);
  }
}

TEST_CASE("fp32 nm kernel: tiles, chunks, channel ranges and edges") {
  // The nm kernel's paths: C a multiple of 16 (16x16 transposes) or not
  // (element copies); K over several 128-index chunks; more than one 64-pixel
  // tile and a partial last one (1 .. 4 pixel vectors); output channels not a
  // multiple of 16 (the scalar epilogue); few tiles with many channels (the
  // channels split into ranges across threads); batch > 1 (pixels of one tile
  // in two images); 2:4, 2:8 and 1:4.
  const Case cases[] = {
      {1, 7, 7, 64, 128, 3, 1, 1, 0},   // 49 pixels, K = 576, channel ranges
      {2, 9, 10, 32, 40, 3, 2, 1, 0},   // stride 2, 2 images in one tile, Cout % 16 = 8
      {1, 14, 14, 48, 24, 1, 1, 0, 0},  // 196 pixels: 3 full tiles and 4 pixels
      {1, 5, 6, 128, 256, 1, 1, 0, 0},  // 30 pixels, 8 ranges of channels
      {3, 4, 4, 24, 17, 3, 1, 1, 0},    // C % 16 != 0
      {1, 11, 13, 16, 33, 3, 2, 0, 0},  // no padding, odd sizes
  };
  uint64_t seed = 700;
  for (const Case& c : cases)
    for (auto [n, m] : {std::pair<int64_t, int64_t>{2, 4}, {2, 8}, {1, 4}}) {
      if (c.C % m) continue;
      for (int t : {1, 2, 3}) {
        const int before = omp_get_max_threads();
        omp_set_num_threads(t);
        INFO("threads " << t);
        check_sparse(c, compact::Format::NM, seed += 10, n, m);
        omp_set_num_threads(before);
      }
    }
}

TEST_CASE("fp32 kernels on random shapes") {
  Rng r(2024);
  for (int i = 0; i < 12; ++i) {
    const Case c = test::random_conv_case(r);
    check_conv(c, 9000 + static_cast<uint64_t>(i));
    if (c.C % 4 == 0) check_sparse(c, compact::Format::NM, 9100 + static_cast<uint64_t>(i));
    check_sparse(c, compact::Format::TW, 9200 + static_cast<uint64_t>(i));
  }
}

TEST_CASE("fp32 depthwise conv matches the reference") {
  // Random windows (3x3 and 5x5 take the register path, others the
  // generic one), strides, dilations, asymmetric padding, channel counts
  // with and without a partial lane block; residual and clamp on and off.
  Rng r(404);
  int checked = 0;
  for (int i = 0; i < 40; ++i) {
    ConvGeom g;
    const int64_t N = 1 + static_cast<int64_t>(r.below(2));
    const int64_t ks[] = {3, 5, 1, 7, 2};
    g.kh = ks[r.below(5)];
    g.kw = r.below(4) == 0 ? ks[r.below(5)] : g.kh;
    g.H = 1 + static_cast<int64_t>(r.below(14)), g.W = 1 + static_cast<int64_t>(r.below(14));
    const int64_t Cs[] = {16, 32, 8, 3, 20, 48, 1};
    g.C = g.Cout = g.groups = Cs[r.below(7)];
    if (g.C == 1) g.groups = 2, g.C = g.Cout = 2;
    g.sh = 1 + static_cast<int64_t>(r.below(2)), g.sw = 1 + static_cast<int64_t>(r.below(2));
    g.dh = 1 + static_cast<int64_t>(r.below(4) == 0), g.dw = g.dh;
    g.pt = static_cast<int64_t>(r.below(3)), g.pl = static_cast<int64_t>(r.below(3));
    g.pb = static_cast<int64_t>(r.below(3)), g.pr = static_cast<int64_t>(r.below(3));
    const int64_t eh = (g.kh - 1) * g.dh + 1, ew = (g.kw - 1) * g.dw + 1;
    if (g.H + g.pt + g.pb < eh || g.W + g.pl + g.pr < ew) continue;
    g.Ho = (g.H + g.pt + g.pb - eh) / g.sh + 1;
    g.Wo = (g.W + g.pl + g.pr - ew) / g.sw + 1;
    const uint64_t seed = 500 + static_cast<uint64_t>(i) * 7;
    const Tensor w = test::random_tensor({g.C, g.kh, g.kw, 1}, seed);
    const Tensor bias = test::random_tensor({g.C}, seed + 1);
    const Tensor x = test::random_tensor({N, g.H, g.W, g.C}, seed + 2);
    const Tensor ref = ref::conv2d(x, w, &bias, g);
    const Tensor z = test::random_tensor(ref.shape(), seed + 3);
    const bool with_z = r.below(2) == 0;
    const Clamp clamp = r.below(2) == 0 ? kClip : Clamp{};
    Tensor want = ref.clone();
    for (size_t k = 0; k < want.size(); ++k) {
      float v = want[k] + (with_z ? z[k] : 0.0f);
      want[k] = clamp.on ? std::min(std::max(v, clamp.lo), clamp.hi) : v;
    }
    INFO("N" << N << " " << g.H << "x" << g.W << "x" << g.C << " k" << g.kh << "x" << g.kw << " s" << g.sh << ","
             << g.sw << " d" << g.dh << " pad " << g.pt << "," << g.pl << "," << g.pb << "," << g.pr << " z" << with_z
             << " clamp" << clamp.on);
    REQUIRE(g.depthwise());
    const DepthwiseF32 dw(g, w.data(), bias.data());
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      set_isa(isa);
      INFO("isa " << isa_name(isa));
      Tensor y(ref.shape());
      dw.run(x.data(), N, y.data(), with_z ? z.data() : nullptr, clamp);
      CHECK(test::max_abs_diff(y, want) < 1e-5f);
      ++checked;
    }
  }
  set_isa(detect_isa());
  CHECK(checked > 40);
}

TEST_CASE("fp32 pooling ops equal the reference bit for bit") {
  Rng r(77);
  for (int i = 0; i < 40; ++i) {
    WindowGeom g;
    const int64_t N = 1 + static_cast<int64_t>(r.below(3));
    g.H = 1 + static_cast<int64_t>(r.below(12));
    g.W = 1 + static_cast<int64_t>(r.below(12));
    // channel counts around the 64-channel chunk and tiny ones
    const int64_t cs[] = {1, 3, 8, 63, 64, 65, 130};
    g.C = cs[r.below(7)];
    g.kh = 1 + static_cast<int64_t>(r.below(4));
    g.kw = 1 + static_cast<int64_t>(r.below(4));
    g.sh = 1 + static_cast<int64_t>(r.below(3));
    g.sw = 1 + static_cast<int64_t>(r.below(3));
    g.dh = 1 + static_cast<int64_t>(r.below(2));
    g.dw = i % 5 == 0 ? 2 : 1;
    g.pt = static_cast<int64_t>(r.below(static_cast<uint64_t>(g.kh)));
    g.pb = static_cast<int64_t>(r.below(static_cast<uint64_t>(g.kh)));
    g.pl = static_cast<int64_t>(r.below(static_cast<uint64_t>(g.kw)));
    g.pr = static_cast<int64_t>(r.below(static_cast<uint64_t>(g.kw)));
    const int64_t eh = g.H + g.pt + g.pb - g.dh * (g.kh - 1), ew = g.W + g.pl + g.pr - g.dw * (g.kw - 1);
    if (eh < 1 || ew < 1) continue;
    g.Ho = (eh - 1) / g.sh + 1;
    g.Wo = (ew - 1) / g.sw + 1;
    const Tensor x = test::random_tensor({N, g.H, g.W, g.C}, 4000 + static_cast<uint64_t>(i));
    // maxpool also on signed zeros and NaNs (which std::max, and so the
    // reference, skips unless first): the vector max must pick the same element.
    Tensor xs = x.clone();
    for (size_t k = 0; k < xs.size(); ++k)
      if (k % 7 == 0) xs[k] = k % 2 ? -0.0f : 0.0f;
      else if (k % 11 == 0) xs[k] = std::numeric_limits<float>::quiet_NaN();
    const Tensor mxs = ref::maxpool(xs, g);
    const Tensor mx = ref::maxpool(x, g), av0 = ref::avgpool(x, g, false), av1 = ref::avgpool(x, g, true);
    const Tensor gap = ref::global_avgpool(x);
    for (Isa isa : {Isa::Scalar, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      INFO("isa " << isa_name(isa) << " N" << N << " " << g.H << "x" << g.W << "x" << g.C << " k" << g.kh << "x" << g.kw
                  << " s" << g.sh << "x" << g.sw << " d" << g.dh << "x" << g.dw << " p" << g.pt << g.pl << g.pb << g.pr);
      const OpsF32 ops = ops_f32(isa);
      Tensor y(mx.shape());
      ops.maxpool(x.data(), N, g, y.data());
      CHECK(std::memcmp(y.data(), mx.data(), y.size() * sizeof(float)) == 0);
      ops.maxpool(xs.data(), N, g, y.data());
      CHECK(std::memcmp(y.data(), mxs.data(), y.size() * sizeof(float)) == 0);
      ops.avgpool(x.data(), N, g, false, y.data());
      CHECK(std::memcmp(y.data(), av0.data(), y.size() * sizeof(float)) == 0);
      ops.avgpool(x.data(), N, g, true, y.data());
      CHECK(std::memcmp(y.data(), av1.data(), y.size() * sizeof(float)) == 0);
      Tensor yg(gap.shape());
      ops.global_avgpool(x.data(), N, g.H * g.W, g.C, yg.data());
      CHECK(std::memcmp(yg.data(), gap.data(), yg.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("width folding gathers each output column's kw taps") {
  // x'[n, h, ow, j*C + c] = x[n, h, ow*sw - pl + j*dw, c], zero in the padding:
  // the contiguous copy inside the row and the tap-by-tap copy at its edges.
  Rng r(91);
  for (int i = 0; i < 30; ++i) {
    const std::optional<ConvGeom> stem = random_stem(r, 1, i % 4 == 3 ? 2 : 1);
    if (!stem) continue;
    const ConvGeom& g = *stem;
    const int64_t N = 1 + static_cast<int64_t>(r.below(2));
    const Tensor x = test::random_tensor({N, g.H, g.W, g.C}, 500 + static_cast<uint64_t>(i));
    const int64_t C2 = g.kw * g.C;
    Tensor y({N, g.H, g.Wo, C2});
    width_im2col(g, x.data(), N, y.data());
    INFO("W" << g.W << " C" << g.C << " kw" << g.kw << " sw" << g.sw << " dw" << g.dw << " pl" << g.pl << " pr" << g.pr);
    int64_t bad = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < g.H; ++h)
        for (int64_t ow = 0; ow < g.Wo; ++ow)
          for (int64_t j = 0; j < g.kw; ++j)
            for (int64_t c = 0; c < g.C; ++c) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              const float want = iw < 0 || iw >= g.W ? 0.0f : x[static_cast<size_t>(((n * g.H + h) * g.W + iw) * g.C + c)];
              bad += y[static_cast<size_t>(((n * g.H + h) * g.Wo + ow) * C2 + j * g.C + c)] != want;
            }
    CHECK(bad == 0);
  }
}

TEST_CASE("fp32 conv reads a width-folded stem in place") {
  // Weights packed as [O, kh, 1, kw*C] on the unfolded geometry: the kernel
  // reads each output column's kw taps straight from padded row phases
  // (conv_f32.hpp). Random stems: strides and padding on both axes, row
  // dilation, tiny images (the last pixel's block reads past its row), every
  // ISA and several thread counts, with and without residual and relu.
  // The first case is shaped like ResNet-50's conv1 (3 channels, 7x7,
  // stride 2: pixel stride 6, full 24-pixel tiles), and the input of every
  // third case sits in a wider buffer (a pixel stride above C).
  Rng r(77);
  const int before = omp_get_max_threads();
  int checked = 0;
  for (int i = -1; i < 40; ++i) {
    std::optional<ConvGeom> stem;
    if (i < 0) {
      ConvGeom c1;
      c1.H = c1.W = 32, c1.C = 3, c1.Cout = 16, c1.kh = c1.kw = 7, c1.sh = c1.sw = 2, c1.dh = c1.dw = 1;
      c1.pt = c1.pl = c1.pb = c1.pr = 3, c1.Ho = c1.Wo = 16;
      stem = c1;
    } else {
      stem = random_stem(r, i % 5 == 4 ? 2 : 1, 1);
    }
    if (!stem) continue;
    const ConvGeom& g = *stem;
    const int64_t N = i < 0 ? 2 : 1 + static_cast<int64_t>(r.below(2));
    const int64_t ldx = i % 3 == 2 ? g.C + 3 : g.C;
    ++checked;
    const uint64_t seed = 900 + static_cast<uint64_t>(i) * 10;
    const Tensor w = test::random_tensor({g.Cout, g.kh, g.kw, g.C}, seed, 0.2);
    const Tensor bias = test::random_tensor({g.Cout}, seed + 1);
    const Tensor x = test::random_tensor({N, g.H, g.W, g.C}, seed + 2);
    const Tensor ref = ref::conv2d(x, w, &bias, g);
    const Tensor z = test::random_tensor(ref.shape(), seed + 3);
    Tensor ref_res_relu = ref.clone();
    for (size_t k = 0; k < ref.size(); ++k) ref_res_relu[k] = std::max(0.0f, ref[k] + z[k]);
    // x with pixel stride ldx, junk in the gaps.
    Tensor xs = test::random_tensor({N * g.H * g.W, ldx}, seed + 4, 1e3);
    for (int64_t p = 0; p < N * g.H * g.W; ++p)
      std::copy(x.data() + p * g.C, x.data() + (p + 1) * g.C, xs.data() + p * ldx);
    INFO("ldx " << ldx << " N" << N << " " << g.H << "x" << g.W << "x" << g.C << " -> " << g.Cout << " k" << g.kh << "x" << g.kw << " s"
             << g.sh << "," << g.sw << " dh" << g.dh << " pad " << g.pt << "," << g.pl << "," << g.pb << "," << g.pr);
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
      set_isa(isa);
      INFO("isa " << isa_name(isa));
      ConvF32 conv(g, pack_f32(w.data(), {g.Cout, g.kh, 1, g.kw * g.C}, {}, {}, bias.data()));
      for (int t : {1, 2, 3}) {
        omp_set_num_threads(t);
        Tensor y(ref.shape());
        conv.run(xs.data(), ldx, N, y.data(), g.Cout, nullptr, 0, Clamp{});
        CHECK(test::max_abs_diff(y, ref) < 1e-4f);
        Tensor y2(ref.shape());
        conv.run(xs.data(), ldx, N, y2.data(), g.Cout, z.data(), g.Cout, kRelu);
        CHECK(test::max_abs_diff(y2, ref_res_relu) < 1e-4f);
      }
    }
  }
  omp_set_num_threads(before);
  set_isa(detect_isa());
  CHECK(checked > 20);
}
