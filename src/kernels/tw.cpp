#include "kernels/tw.hpp"

#include <algorithm>
#include <numeric>

#include <omp.h>

namespace bsp::kernels {

namespace {

TwKernelsF32 kernels_f32(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return tw_f32_avx512();
    case Isa::Avx2: return tw_f32_avx2();
    case Isa::Scalar: break;
  }
  return tw_f32_scalar();
}

bool allow_vbmi2 = true;

TwKernelsI8 kernels_i8(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return tw_i8_avx512(allow_vbmi2);
    case Isa::Avx2: return tw_i8_avx2();
    case Isa::Scalar: break;
  }
  return tw_i8_scalar();
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// A tile of the compact layer: its columns and rows.
struct RawTile {
  std::vector<int32_t> cols, rows;
};

std::vector<RawTile> raw_tiles(const compact::CompactLayer& l) {
  std::vector<RawTile> t;
  for (int64_t i = 0; i < l.tiles(); ++i) {
    RawTile r;
    r.cols.assign(l.tile_cols.begin() + l.tile_col_ptr[i], l.tile_cols.begin() + l.tile_col_ptr[i + 1]);
    r.rows.assign(l.tile_rows.begin() + l.tile_row_ptr[i], l.tile_rows.begin() + l.tile_row_ptr[i + 1]);
    std::sort(r.cols.begin(), r.cols.end());
    std::sort(r.rows.begin(), r.rows.end());
    if (!r.cols.empty() && !r.rows.empty()) t.push_back(std::move(r));
  }
  // In order of their first column: tiles cut from the kept columns in order
  // then write ascending output channels (TwPlan::ascending).
  std::sort(t.begin(), t.end(), [](const RawTile& a, const RawTile& b) { return a.cols[0] < b.cols[0]; });
  return t;
}

// The per-pixel state of a work item: each pixel's input at every tap.
struct PixelTaps {
  std::vector<const void*> src;  // [npix][taps], null: padding
  void locate(const ConvGeom& g, const char* x, int64_t elem, int64_t p0, int npix) {
    const int64_t taps = g.kh * g.kw;
    src.resize(static_cast<size_t>(npix * taps));
    int64_t n = p0 / (g.Ho * g.Wo), oh = p0 / g.Wo % g.Ho, ow = p0 % g.Wo;  // then stepped pixel by pixel
    for (int j = 0; j < npix; ++j) {
      const void** s = src.data() + j * taps;
      for (int64_t ky = 0, t = 0; ky < g.kh; ++ky) {
        const int64_t ih = oh * g.sh - g.pt + ky * g.dh;
        const bool row = ih >= 0 && ih < g.H;
        for (int64_t kx = 0; kx < g.kw; ++kx, ++t) {
          const int64_t iw = ow * g.sw - g.pl + kx * g.dw;
          s[t] = row && iw >= 0 && iw < g.W ? x + ((n * g.H + ih) * g.W + iw) * g.C * elem : nullptr;
        }
      }
      if (++ow == g.Wo) {
        ow = 0;
        if (++oh == g.Ho) oh = 0, ++n;
      }
    }
  }
};

// The work split: pixel blocks of tp pixels x column groups.
struct Split {
  int64_t P, tp, blocks, groups;
  std::vector<int64_t> cut, o;
};

Split split(const ConvGeom& g, int64_t N, const TwPlan& plan) {
  Split s;
  s.P = N * g.Ho * g.Wo;
  s.blocks = (s.P + kTwPixels - 1) / kTwPixels;
  s.tp = (s.P + s.blocks - 1) / s.blocks;  // evened out: 49 pixels as 17 + 16 + 16
  s.blocks = (s.P + s.tp - 1) / s.tp;
  const int64_t threads = omp_get_max_threads();
  int64_t groups = 1;
  if (plan.ascending)
    while (s.blocks * groups < 4 * threads && groups * 2 <= static_cast<int64_t>(plan.units.size())) groups *= 2;
  tw_groups(plan, g.Cout, groups, s.cut, s.o);
  s.groups = static_cast<int64_t>(s.cut.size()) - 1;
  return s;
}

// The GEMM of one tile's units [u0, u1) (all of the same tile) for a gathered
// pixel block: row chunks outer, so that a chunk's weights stay cached across
// the blocks and pixels.
// Both weight layouts put row r0 of a block at r0 * 16 * nv elements.
template <class Gemm, class A, class W, class C, class Fn>
void tile_gemm(const TwPlan& plan, int64_t u0, int64_t u1, const A* panel, int64_t ldp, const W* w, int64_t rows,
               C* stage, int64_t lds, int npix, Fn gemm) {
  for (int64_t r0 = 0; r0 < rows; r0 += kTwRowChunk) {
    const int64_t r1 = std::min(rows, r0 + kTwRowChunk);
    for (int64_t u = u0; u < u1; ++u) {
      const TwColBlock& b = plan.tiles[static_cast<size_t>(plan.units[static_cast<size_t>(u)].tile)]
                                .blocks[static_cast<size_t>(plan.units[static_cast<size_t>(u)].block)];
      Gemm a;
      a.a = panel + r0;
      a.lda = ldp;
      a.w = w + b.w_off + r0 * 16 * b.nv;
      a.k = r1 - r0;
      a.c = stage + b.stage;
      a.ldc = lds;
      a.nv = b.nv;
      a.npix = npix;
      a.accumulate = r0 > 0;
      gemm(a);
    }
  }
}

// The work items of a layer's run, shared by both types: per item (a pixel
// block and a group of output channels), every tile of the group gathers
// its panel (Panel, rows ldp apart: max_rows rounded up to `align`, plus
// `align` of slack for the gathers' full-vector stores) and runs its GEMMs
// into the stage (Stage, rows lds apart), then epilogue(stage, lds, p0,
// npix, o0, o1) writes the item's outputs. elem: bytes per input value.
// weights(t) and rows(t): tile t's packed weights and their row count.
template <class Gemm, class Panel, class Stage, class In, class Kern, class Weights, class Rows, class Epilogue>
void run_items(const ConvGeom& g, int64_t N, const TwPlan& plan, const In* x, int64_t align, const Kern& k,
               Weights weights, Rows rows, Epilogue epilogue) {
  const int64_t taps = g.kh * g.kw;
  const Split s = split(g, N, plan);
  const int64_t ldp = round_up(plan.max_rows, align) + align, lds = plan.stage_cols + kTwCols;
#pragma omp parallel
  {
    static thread_local AlignedVector<Panel> panel;
    static thread_local AlignedVector<Stage> stage;
    if (panel.size() < static_cast<size_t>(kTwPixels * ldp)) panel.resize(static_cast<size_t>(kTwPixels * ldp));
    if (stage.size() < static_cast<size_t>(kTwPixels * lds)) stage.resize(static_cast<size_t>(kTwPixels * lds));
    PixelTaps px;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < s.blocks * s.groups; ++it) {
      const int64_t blk = it / s.groups, grp = it % s.groups;
      const int64_t p0 = blk * s.tp;
      const int npix = static_cast<int>(std::min(s.tp, s.P - p0));
      px.locate(g, reinterpret_cast<const char*>(x), sizeof(In), p0, npix);
      const int64_t u1 = s.cut[static_cast<size_t>(grp) + 1];
      for (int64_t u = s.cut[static_cast<size_t>(grp)]; u < u1;) {
        const int32_t t = plan.units[static_cast<size_t>(u)].tile;
        int64_t ue = u;
        while (ue < u1 && plan.units[static_cast<size_t>(ue)].tile == t) ++ue;
        const TwTile& tile = plan.tiles[static_cast<size_t>(t)];
        for (int j = 0; j < npix; ++j)
          k.gather(reinterpret_cast<const In* const*>(px.src.data() + j * taps), tile.gather, panel.data() + j * ldp);
        tile_gemm<Gemm>(plan, u, ue, panel.data(), ldp, weights(t), rows(tile), stage.data(), lds, npix, k.gemm);
        u = ue;
      }
      epilogue(stage.data(), lds, p0, npix, s.o[static_cast<size_t>(grp)], s.o[static_cast<size_t>(grp) + 1]);
    }
  }
}

}  // namespace

void tw_allow_vbmi2(bool allow) { allow_vbmi2 = allow; }

void tw_groups(const TwPlan& p, int64_t O, int64_t groups, std::vector<int64_t>& cut, std::vector<int64_t>& o) {
  const int64_t n = static_cast<int64_t>(p.units.size());
  cut.assign(1, 0);
  o.assign(1, 0);
  if (!p.ascending || groups <= 1 || n <= 1) {
    cut.push_back(n);
    o.push_back(O);
    return;
  }
  int64_t total = 0;
  for (const auto& u : p.units) total += u.cost;
  int64_t acc = 0;
  for (int64_t u = 0; u < n; ++u) {
    acc += p.units[static_cast<size_t>(u)].cost;
    const int64_t made = static_cast<int64_t>(cut.size());
    // Cut after u when the cost so far reaches the next group's share.
    if (made < groups && u + 1 < n && acc * groups >= made * total) {
      cut.push_back(u + 1);
      o.push_back(p.units[static_cast<size_t>(u + 1)].o_first);
    }
  }
  cut.push_back(n);
  o.push_back(O);
}

bool tw_covers(const compact::CompactLayer& l, const int8_t* w) {
  const int64_t K = l.geom().K(), n = l.geom().numel();
  std::vector<uint8_t> in(static_cast<size_t>(n), 0);
  for (int64_t t = 0; t < l.tiles(); ++t)
    for (int32_t c = l.tile_col_ptr[t]; c < l.tile_col_ptr[t + 1]; ++c)
      for (int32_t r = l.tile_row_ptr[t]; r < l.tile_row_ptr[t + 1]; ++r)
        in[static_cast<size_t>(l.tile_cols[c] * K + l.tile_rows[r])] = 1;
  for (int64_t i = 0; i < n; ++i)
    if (w[i] != 0 && !in[static_cast<size_t>(i)]) return false;
  return true;
}

TwPlan tw_plan(const ConvGeom& g, const compact::CompactLayer& l) {
  if (l.format != compact::Format::TW) fail("internal: the tw kernels take tw layers");
  const compact::WeightGeom wg = l.geom();
  if (wg.O != g.Cout || wg.I != g.C || wg.kh != g.kh || wg.kw != g.kw || g.groups != 1)
    fail("internal: tw weights do not match the convolution");
  TwPlan p;
  p.src.assign(static_cast<size_t>(wg.O), -1);
  const int64_t taps = wg.kh * wg.kw;
  int32_t last_col = -1;
  p.ascending = true;
  for (const RawTile& r : raw_tiles(l)) {
    TwTile t;
    t.rows = static_cast<int64_t>(r.rows.size());
    p.max_rows = std::max(p.max_rows, t.rows);
    // Gather: per tap, the 16-channel chunks of its kept rows.
    t.gather.tap_ptr.assign(1, 0);
    size_t i = 0;
    for (int64_t tap = 0; tap < taps; ++tap) {
      for (; i < r.rows.size() && r.rows[i] / wg.I == tap; ++i) {
        const int32_t c = static_cast<int32_t>(r.rows[i] % wg.I), c0 = c / 16 * 16;
        if (t.gather.chunk.size() == static_cast<size_t>(t.gather.tap_ptr.back()) || t.gather.chunk.back() != c0) {
          t.gather.chunk.push_back(c0);
          t.gather.mask.push_back(0);
        }
        t.gather.mask.back() = static_cast<uint16_t>(t.gather.mask.back() | (1u << (c - c0)));
      }
      t.gather.tap_ptr.push_back(static_cast<int32_t>(t.gather.chunk.size()));
    }
    t.gather.tap_ptr64.assign(1, 0);
    i = 0;
    for (int64_t tap = 0; tap < taps; ++tap) {
      for (; i < r.rows.size() && r.rows[i] / wg.I == tap; ++i) {
        const int32_t c = static_cast<int32_t>(r.rows[i] % wg.I), c0 = c / 64 * 64;
        if (t.gather.chunk64.size() == static_cast<size_t>(t.gather.tap_ptr64.back()) || t.gather.chunk64.back() != c0) {
          t.gather.chunk64.push_back(c0);
          t.gather.mask64.push_back(0);
        }
        t.gather.mask64.back() |= uint64_t{1} << (c - c0);
      }
      t.gather.tap_ptr64.push_back(static_cast<int32_t>(t.gather.chunk64.size()));
    }
    const int64_t ncols = static_cast<int64_t>(r.cols.size());
    for (int64_t j = 0; j < ncols; ++j) {
      p.src[static_cast<size_t>(r.cols[static_cast<size_t>(j)])] = static_cast<int32_t>(p.stage_cols + j);
      if (r.cols[static_cast<size_t>(j)] <= last_col) p.ascending = false;
      last_col = r.cols[static_cast<size_t>(j)];
    }
    for (int64_t j0 = 0; j0 < ncols; j0 += kTwCols) {
      TwColBlock b;
      b.nv = static_cast<int>((std::min<int64_t>(kTwCols, ncols - j0) + 15) / 16);
      b.w_off = 0;  // set by the convolution that packs the values
      b.stage = p.stage_cols + j0;
      p.units.push_back({static_cast<int32_t>(p.tiles.size()), static_cast<int32_t>(t.blocks.size()),
                         r.cols[static_cast<size_t>(j0)], t.rows * b.nv});
      t.blocks.push_back(b);
    }
    p.stage_cols += ncols;
    p.tiles.push_back(std::move(t));
  }
  if (p.ascending) {
    const int64_t chunks = (wg.O + 15) / 16;
    p.kmask.assign(static_cast<size_t>(chunks), 0);
    p.kpos.assign(static_cast<size_t>(chunks), 0);
    int32_t pos = 0;
    for (int64_t q = 0; q < chunks; ++q) {
      p.kpos[static_cast<size_t>(q)] = pos;
      for (int64_t j = 0; j < 16 && 16 * q + j < wg.O; ++j)
        if (p.src[static_cast<size_t>(16 * q + j)] >= 0) {
          p.kmask[static_cast<size_t>(q)] = static_cast<uint16_t>(p.kmask[static_cast<size_t>(q)] | (1u << j));
          ++pos;
        }
    }
  }
  return p;
}

// ---- fp32 ----

TwConvF32::TwConvF32(const ConvGeom& g, const compact::CompactLayer& l, const float* w, const float* bias)
    : g_(g), plan_(tw_plan(g, l)) {
  const int64_t K = l.geom().K();
  const std::vector<RawTile> raw = raw_tiles(l);
  for (size_t t = 0; t < plan_.tiles.size(); ++t) {
    TwTile& tile = plan_.tiles[t];
    AlignedVector<float> pw;
    for (TwColBlock& b : tile.blocks) {
      b.w_off = static_cast<int64_t>(pw.size());
      const int64_t width = 16 * b.nv, first = b.stage - tile.blocks[0].stage;  // first: its first column in the tile
      pw.resize(pw.size() + static_cast<size_t>(tile.rows * width), 0.0f);
      for (int64_t i = 0; i < tile.rows; ++i)
        for (int64_t j = 0; j < width && first + j < static_cast<int64_t>(raw[t].cols.size()); ++j)
          pw[static_cast<size_t>(b.w_off + i * width + j)] =
              w[raw[t].cols[static_cast<size_t>(first + j)] * K + raw[t].rows[static_cast<size_t>(i)]];
    }
    w_.push_back(std::move(pw));
  }
  bias_.assign(static_cast<size_t>(g.Cout), 0.0f);
  if (bias) std::copy(bias, bias + g.Cout, bias_.begin());
}

void TwConvF32::run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const {
  const int64_t O = g_.Cout;
  const TwKernelsF32 k = kernels_f32(active_isa());
  run_items<TwGemmF32, float, float>(
      g_, N, plan_, x, 16, k, [&](int32_t t) { return w_[static_cast<size_t>(t)].data(); },
      [](const TwTile& tile) { return tile.rows; },
      [&](const float* stage, int64_t lds, int64_t p0, int npix, int64_t o0, int64_t o1) {
        TwEpilogueF32 e;
        e.stage = stage;
        e.lds = lds;
        e.plan = &plan_;
        e.bias = bias_.data();
        e.z = z ? z + p0 * O : nullptr;
        e.y = y + p0 * O;
        e.ld = O;
        e.o0 = o0;
        e.o1 = o1;
        e.npix = npix;
        e.clamp = clamp;
        k.epilogue(e);
      });
}

// ---- int8 ----

TwConvI8::TwConvI8(const ConvGeom& g, const compact::CompactLayer& l, const int8_t* w, const int32_t* bias,
                   const std::vector<q8::Requant>& rq, int32_t lo, int32_t hi)
    : g_(g), plan_(tw_plan(g, l)), k_(kernels_i8(active_isa())), lo_(lo), hi_(hi) {
  const int64_t K = l.geom().K(), O = g.Cout;
  if (active_isa() == Isa::Avx2 && std::find(w, w + O * K, int8_t{-128}) != w + O * K) k_ = tw_i8_avx2(true);
  const std::vector<RawTile> raw = raw_tiles(l);
  // Every nonzero weight must be in a tile: the kernel computes only those.
  int64_t inside = 0, nonzero = 0;
  for (int64_t i = 0; i < O * K; ++i) nonzero += w[i] != 0;
  for (size_t t = 0; t < plan_.tiles.size(); ++t) {
    TwTile& tile = plan_.tiles[t];
    const int64_t rows4 = round_up(tile.rows, 4);
    AlignedVector<int8_t> pw;
    for (TwColBlock& b : tile.blocks) {
      b.w_off = static_cast<int64_t>(pw.size());
      const int64_t width = 16 * b.nv, first = b.stage - tile.blocks[0].stage;
      pw.resize(pw.size() + static_cast<size_t>(rows4 * width), 0);
      for (int64_t i = 0; i < tile.rows; ++i)
        for (int64_t j = 0; j < width && first + j < static_cast<int64_t>(raw[t].cols.size()); ++j) {
          const int8_t v = w[raw[t].cols[static_cast<size_t>(first + j)] * K + raw[t].rows[static_cast<size_t>(i)]];
          inside += v != 0;
          pw[static_cast<size_t>(b.w_off + (i / 4) * width * 4 + j * 4 + i % 4)] = v;
        }
    }
    w_.push_back(std::move(pw));
  }
  if (inside != nonzero) fail("internal: {} nonzero int8 weights lie outside the tiles", nonzero - inside);
  idle_.resize(static_cast<size_t>(O));
  kbias_.resize(static_cast<size_t>(plan_.stage_cols));
  kmult_.resize(static_cast<size_t>(plan_.stage_cols));
  kshift_.resize(static_cast<size_t>(plan_.stage_cols));
  bias_.assign(bias, bias + O);
  mult_.resize(static_cast<size_t>(O));
  shift_.resize(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    mult_[static_cast<size_t>(o)] = rq[static_cast<size_t>(o)].mult;
    shift_[static_cast<size_t>(o)] = rq[static_cast<size_t>(o)].shift;
    if (k_.unsigned_input) {
      int64_t sum = 0;
      for (int64_t i = 0; i < K; ++i) sum += w[o * K + i];
      bias_[static_cast<size_t>(o)] -= static_cast<int32_t>(128 * sum);
    }
    idle_[static_cast<size_t>(o)] = q8::requantize(bias_[static_cast<size_t>(o)], rq[static_cast<size_t>(o)], lo, hi);
    const int32_t j = plan_.src[static_cast<size_t>(o)];
    if (j >= 0) {
      kbias_[static_cast<size_t>(j)] = bias_[static_cast<size_t>(o)];
      kmult_[static_cast<size_t>(j)] = mult_[static_cast<size_t>(o)];
      kshift_[static_cast<size_t>(j)] = shift_[static_cast<size_t>(o)];
    }
  }
}

void TwConvI8::run(const int8_t* x, int64_t N, int8_t* y, const int8_t* z, const q8::FusedAdd* add) const {
  const int64_t O = g_.Cout;
  run_items<TwGemmI8, uint8_t, int32_t>(
      g_, N, plan_, x, 64, k_, [&](int32_t t) { return w_[static_cast<size_t>(t)].data(); },
      [](const TwTile& tile) { return round_up(tile.rows, 4); },
      [&](const int32_t* stage, int64_t lds, int64_t p0, int npix, int64_t o0, int64_t o1) {
        static thread_local AlignedVector<int8_t> scratch;  // the VBMI2 epilogue's compact bytes, rows lds apart
        if (scratch.size() < static_cast<size_t>(kTwPixels * lds)) scratch.resize(static_cast<size_t>(kTwPixels * lds));
        TwEpilogueI8 e;
        e.stage = stage;
        e.lds = lds;
        e.plan = &plan_;
        e.bias = bias_.data();
        e.mult = mult_.data();
        e.shift = shift_.data();
        e.lo = lo_;
        e.hi = hi_;
        e.z = z ? z + p0 * O : nullptr;
        e.add = add;
        e.y = y + p0 * O;
        e.ld = O;
        e.o0 = o0;
        e.o1 = o1;
        e.npix = npix;
        e.kbias = kbias_.data();
        e.kmult = kmult_.data();
        e.kshift = kshift_.data();
        e.idle = idle_.data();
        e.scratch = scratch.data();
        k_.epilogue(e);
      });
}

}  // namespace bsp::kernels
