#include "kernels/nm_f32.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include <omp.h>

namespace bsp::kernels {

namespace {

NmKernelsF32 kernels_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return nm_f32_avx512();
    case Isa::Avx2: return nm_f32_avx2();
    case Isa::Scalar: break;
  }
  return nm_f32_scalar();
}

// The positions (0 .. M-1 inside each group) of compact layer l's stored values.
std::vector<uint8_t> nm_positions(const compact::CompactLayer& l) {
  const int bits = l.index_bits();
  const size_t count = static_cast<size_t>(l.stored_weights());
  std::vector<uint8_t> pos(count);
  for (size_t s = 0; s < count; ++s) {
    unsigned p = 0;
    for (int b = 0; b < bits; ++b) {
      const size_t bit = s * static_cast<size_t>(bits) + static_cast<size_t>(b);
      p |= ((l.nm_index[bit / 8] >> (bit % 8)) & 1u) << b;
    }
    pos[s] = static_cast<uint8_t>(p);
  }
  return pos;
}

alignas(64) const float kZeros[16] = {};

}  // namespace

NmConvF32::NmConvF32(const ConvGeom& g, const compact::CompactLayer& l, const float* w, const float* bias) : g_(g) {
  if (g.groups != 1) fail("internal: the nm fp32 kernel takes groups = 1");
  if (l.format != compact::Format::NM) fail("internal: the nm fp32 kernel takes nm layers");
  const compact::WeightGeom wg = l.geom();
  if (wg.O != g.Cout || wg.K() != g.kh * g.kw * g.C || wg.I % l.M != 0)
    fail("internal: nm weights do not match the convolution");
  const int64_t O = wg.O;
  K_ = wg.K();
  chunks_ = (K_ + kNmChunk - 1) / kNmChunk;
  bias_.assign(static_cast<size_t>(O), 0.0f);
  if (bias) std::copy(bias, bias + O, bias_.begin());
  // Per output channel, its kept k in ascending order (groups ascend, and the
  // stored positions of a group ascend), split by chunk; the stored values
  // that are zero (filler slots, or weights that folded to zero) are skipped.
  const std::vector<uint8_t> pos = nm_positions(l);
  const int64_t groups_per_o = K_ / l.M;
  std::vector<std::vector<int32_t>> kept(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t q = 0; q < groups_per_o; ++q)
      for (int64_t s = 0; s < l.N; ++s) {
        const int64_t k = q * l.M + pos[static_cast<size_t>((o * groups_per_o + q) * l.N + s)];
        if (w[o * K_ + k] != 0.0f) kept[static_cast<size_t>(o)].push_back(static_cast<int32_t>(k));
      }
  size_t total = 0;
  for (const auto& ks : kept) total += ks.size();
  if (total > static_cast<size_t>(INT32_MAX)) fail("internal: nm layer too large");
  ptr_.reserve(static_cast<size_t>(chunks_ * O + 1));
  std::vector<size_t> next(static_cast<size_t>(O), 0);
  for (int64_t c = 0; c < chunks_; ++c)
    for (int64_t o = 0; o < O; ++o) {
      ptr_.push_back(static_cast<int32_t>(k_.size()));
      const std::vector<int32_t>& ks = kept[static_cast<size_t>(o)];
      size_t& i = next[static_cast<size_t>(o)];
      for (; i < ks.size() && ks[i] < (c + 1) * kNmChunk; ++i) {
        k_.push_back(static_cast<uint16_t>((ks[i] - c * kNmChunk) * kNmTile * sizeof(float)));
        v_.push_back(w[o * K_ + ks[i]]);
      }
    }
  ptr_.push_back(static_cast<int32_t>(k_.size()));
}

NmConvF32::TileOrigin NmConvF32::origin(int64_t p0, int npix) const {
  const ConvGeom& g = g_;
  TileOrigin t;
  t.npix = npix;
  // One division for the first pixel, then counters (divisions per pixel
  // cost as much as a 1x1 layer's transposes).
  int64_t n = p0 / (g.Ho * g.Wo), oh = p0 / g.Wo % g.Ho, ow = p0 % g.Wo;
  for (int j = 0; j < npix; ++j) {
    t.img[j] = n * g.H * g.W * g.C;
    t.ih[j] = oh * g.sh - g.pt;
    t.iw[j] = ow * g.sw - g.pl;
    if (++ow == g.Wo) {
      ow = 0;
      if (++oh == g.Ho) oh = 0, ++n;
    }
  }
  return t;
}

void NmConvF32::build_chunk(const NmKernelsF32& kern, const float* x, const TileOrigin& o, int64_t k0, int64_t k1,
                            float* xt) const {
  const ConvGeom& g = g_;
  const int npix = o.npix, nvec = (npix + 15) / 16;
  // Each pixel's input at tap t, or null in the padding (and past npix).
  auto source = [&](int j, int64_t t) -> const float* {
    if (j >= npix) return nullptr;
    const int64_t ih = o.ih[j] + (t / g.kw) * g.dh, iw = o.iw[j] + (t % g.kw) * g.dw;
    return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x + o.img[j] + (ih * g.W + iw) * g.C : nullptr;
  };
  if (g.C % 16 == 0) {
    // 16 channels x 16 pixels at a time (a chunk holds whole 16-channel pieces:
    // kNmChunk and C are multiples of 16).
    const float* src[kNmTile];
    const float* rows[16];
    int64_t cur_tap = -1;
    for (int64_t k = k0; k < k1; k += 16) {
      const int64_t t = k / g.C, i = k % g.C;
      if (t != cur_tap) {
        for (int j = 0; j < 16 * nvec; ++j) src[j] = source(j, t);
        cur_tap = t;
      }
      for (int v = 0; v < nvec; ++v) {
        for (int j = 0; j < 16; ++j) rows[j] = src[v * 16 + j] ? src[v * 16 + j] + i : kZeros;
        kern.transpose16(rows, xt + (k - k0) * kNmTile + v * 16, kNmTile);
      }
    }
    return;
  }
  // Any C: element by element.
  for (int j = 0; j < 16 * nvec; ++j) {
    int64_t t = k0 / g.C, i = k0 % g.C;
    const float* s = source(j, t);
    for (int64_t k = k0; k < k1; ++k) {
      xt[(k - k0) * kNmTile + j] = s ? s[i] : 0.0f;
      if (++i == g.C && k + 1 < k1) i = 0, s = source(j, ++t);
    }
  }
}

void NmConvF32::run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const {
  const NmKernelsF32 kern = kernels_for(active_isa());
  const ConvGeom& g = g_;
  const int64_t O = g.Cout, P = N * g.Ho * g.Wo, tiles = (P + kNmTile - 1) / kNmTile;
  // Tiles share the pixel vectors evenly (196 pixels: 4 + 3 + 3 + 3 vectors,
  // not 4 + 4 + 4 + 1): tile t has vectors [t * nv / tiles, (t + 1) * nv / tiles).
  const int64_t nv = (P + 15) / 16;
  // Work items: (tile, range of output channels). Few tiles (small images at
  // batch 1) split the channels so that every thread has work; each item
  // builds its tile's xt itself, so no more ranges than that (a 7x7x512 3x3
  // layer builds as many transposes per range as 64 channels' FMAs take).
  const int threads = omp_get_max_threads();
  int64_t ranges = 1;
  while (tiles * ranges < 2 * threads && O / (ranges * 2) >= 32) ranges *= 2;
  const int64_t span = (O / ranges + 15) / 16 * 16;
  ranges = (O + span - 1) / span;
  const int64_t items = tiles * ranges;
#pragma omp parallel
  {
    AlignedVector<float> xt(static_cast<size_t>(kNmChunk * kNmTile));
    AlignedVector<float> acc(static_cast<size_t>(span * kNmTile));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t t = it / ranges, o0 = it % ranges * span, o1 = std::min(O, o0 + span);
      const int64_t p0 = t * nv / tiles * 16;
      const int npix = static_cast<int>(std::min(P, (t + 1) * nv / tiles * 16) - p0);
      const int nvec = (npix + 15) / 16;
      for (int64_t o = o0; o < o1; ++o) std::fill_n(acc.data() + (o - o0) * kNmTile, kNmTile, bias_[static_cast<size_t>(o)]);
      const TileOrigin org = origin(p0, npix);
      for (int64_t c = 0; c < chunks_; ++c) {
        const int64_t k0 = c * kNmChunk, k1 = std::min(K_, k0 + kNmChunk);
        build_chunk(kern, x, org, k0, k1, xt.data());
        const NmChunkF32 ch{ptr_.data() + c * O, k_.data(), v_.data()};
        kern.accumulate(xt.data(), ch, o0, o1, nvec, acc.data());
      }
      for (int v = 0; v < nvec; ++v) {
        const int np = std::min(16, npix - v * 16);
        for (int64_t o = o0; o < o1; o += 16) {
          const int64_t off = (p0 + v * 16) * O + o;
          kern.store16(acc.data() + (o - o0) * kNmTile + v * 16, static_cast<int>(std::min<int64_t>(16, o1 - o)), np,
                       y + off, O, z ? z + off : nullptr, clamp);
        }
      }
    }
  }
}

}  // namespace bsp::kernels
