#include "kernels/nm_i8.hpp"

#include <algorithm>
#include <cstring>

#include <omp.h>

namespace bsp::kernels {

int NmConvI8::span_for(int64_t N, int64_t M, int64_t I) {
  if (N < 1 || N > 4 || 4 % N != 0 || M < N) return 0;
  const int64_t S = 4 * M / N;
  return S <= 16 && I % S == 0 ? static_cast<int>(S) : 0;
}

bool NmConvI8::takes(const ConvGeom& g, int64_t N, int64_t M, const int8_t* w) {
  if (g.groups != 1 || !span_for(N, M, g.C)) return false;
  const int64_t count = g.Cout * g.kh * g.kw * g.C;
  for (int64_t i = 0; i < count; i += M) {
    int64_t nz = 0;
    for (int64_t p = 0; p < M; ++p) nz += w[i + p] != 0;
    if (nz > N) return false;
  }
  return true;
}

NmConvI8::NmConvI8(const ConvGeom& g, int64_t N, int64_t M, const int8_t* w, const int32_t* bias,
                   const std::vector<q8::Requant>& rq, int32_t lo, int32_t hi)
    : g_(g), lo_(lo), hi_(hi) {
  if (g.groups != 1) fail("internal: the int8 nm kernel takes groups = 1");
  const int64_t O = g.Cout, I = g.C, taps = g.kh * g.kw;
  span_ = span_for(N, M, I);
  if (!span_) fail("internal: the int8 nm kernel cannot take {}:{} with {} input channels", N, M, I);
  spans_ = I / span_;
  line_ = I % 64 == 0 ? 64 : span_;
  blocks_ = (O + 15) / 16;
  vnni_ = active_isa() == Isa::Avx512;
  // Per (block, tap, span) and output channel: the kept positions of each of
  // its 4/N groups, N per group, ascending; slots a group does not fill
  // (fewer than N nonzeros) take position 0 with weight 0.
  const size_t entries = static_cast<size_t>(blocks_ * taps * spans_ * 64);
  idx_.assign(entries, 0);
  w_.assign(entries, 0);
  std::vector<int64_t> sum(static_cast<size_t>(blocks_ * 16), 0);
  for (int64_t o = 0; o < O; ++o) {
    const int64_t b = o / 16, co = o % 16;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t s = 0; s < spans_; ++s) {
        const size_t at = static_cast<size_t>(((b * taps + t) * spans_ + s) * 64 + co * 4);
        int e = 0;
        for (int64_t grp = 0; grp < 4 / N; ++grp) {
          int used = 0;
          for (int64_t p = 0; p < M; ++p) {
            const int64_t i = s * span_ + grp * M + p;
            const int8_t v = w[(o * taps + t) * I + i];
            if (v == 0) continue;
            if (used == N) fail("internal: an int8 weight group has more than {} of {} nonzero", N, M);
            idx_[at + static_cast<size_t>(e)] = static_cast<uint8_t>(grp * M + p);
            w_[at + static_cast<size_t>(e)] = v;
            sum[static_cast<size_t>(o)] += v;
            ++e, ++used;
          }
          e += static_cast<int>(N) - used;  // filler slots: position 0, weight 0
        }
      }
  }
  bias_.assign(static_cast<size_t>(blocks_ * 16), 0);
  mult_.assign(static_cast<size_t>(blocks_ * 16), 0);
  shift_.assign(static_cast<size_t>(blocks_ * 16), 0);
  for (int64_t o = 0; o < O; ++o) {
    const size_t k = static_cast<size_t>(o);
    bias_[k] = static_cast<int32_t>(bias[o] - 128 * sum[k]);
    mult_[k] = rq[k].mult;
    shift_[k] = rq[k].shift;
  }
}

void NmConvI8::run(const int8_t* x, int64_t N, int8_t* y, const int8_t* z, const q8::FusedAdd* add) const {
  const ConvGeom& g = g_;
  const NmTileFnI8 fn = vnni_ ? nm_tile_i8_avx512() : nm_tile_i8_scalar();
  const NmPackFnI8 pack = vnni_ ? nm_pack_i8_avx512() : nm_pack_i8_scalar();
  const int64_t taps = g.kh * g.kw, O = g.Cout;
  const int64_t P = N * g.Ho * g.Wo, tiles = (P + kNmTileI8 - 1) / kNmTileI8;
  // Work items: (tile, group of 16-channel blocks); groups as large as the
  // thread count allows (a tile's inputs stay in L1 across its blocks).
  const int threads = omp_get_max_threads();
  int64_t group = blocks_;
  while (group > 1 && tiles * ((blocks_ + group - 1) / group) < 4 * threads) group = (group + 1) / 2;
  const int64_t groups = (blocks_ + group - 1) / group;
  const int64_t items = tiles * groups;
  const int64_t tap_bytes = g.C * kNmTileI8;
#pragma omp parallel
  {
    AlignedVector<uint8_t> buf(static_cast<size_t>(taps * tap_bytes));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t t = it / groups, gi = it % groups;
      const int64_t p0 = t * kNmTileI8;
      const int npix = static_cast<int>(std::min<int64_t>(kNmTileI8, P - p0));
      // Each pixel's input at each tap (null: padding); pixels past npix repeat the last.
      const int8_t* src[kNmTileI8 * 64];
      std::vector<const int8_t*> more;
      const int8_t** sp = src;
      if (taps > 64) {
        more.resize(static_cast<size_t>(taps * kNmTileI8));
        sp = more.data();
      }
      // (n, oh, ow) of pixel p0 + j by counters: divisions per pixel cost as
      // much as the packing.
      int64_t n = p0 / (g.Ho * g.Wo), oh = p0 / g.Wo % g.Ho, ow = p0 % g.Wo;
      for (int j = 0; j < kNmTileI8; ++j) {
        const int64_t ih0 = oh * g.sh - g.pt, iw0 = ow * g.sw - g.pl;
        const int8_t* img = x + n * g.H * g.W * g.C;
        if (j + 1 < npix && ++ow == g.Wo) {
          ow = 0;
          if (++oh == g.Ho) oh = 0, ++n;
        }
        int64_t tap = 0;
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t kx = 0; kx < g.kw; ++kx, ++tap) {
            const int64_t ih = ih0 + ky * g.dh, iw = iw0 + kx * g.dw;
            sp[tap * kNmTileI8 + j] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? img + (ih * g.W + iw) * g.C : nullptr;
          }
      }
      pack(sp, taps, g.C, line_, buf.data());
      int8_t* ys[kNmTileI8];
      const int8_t* zs[kNmTileI8];
      for (int j = 0; j < kNmTileI8; ++j) {
        const int64_t p = p0 + std::min(j, npix - 1);
        ys[j] = j < npix ? y + p * O : nullptr;
        zs[j] = z ? z + p * O : nullptr;
      }
      NmTileI8 a;
      a.x = buf.data();
      a.ntaps = static_cast<int>(taps);
      a.spans = spans_;
      a.span = span_;
      a.line = line_;
      a.idx = idx_.data();
      a.w = w_.data();
      a.bias = bias_.data();
      a.mult = mult_.data();
      a.shift = shift_.data();
      a.lo = lo_;
      a.hi = hi_;
      a.b0 = gi * group;
      a.b1 = std::min(blocks_, (gi + 1) * group);
      a.cout = O;
      a.y = ys;
      a.z = z ? zs : nullptr;
      a.add = add;
      a.npix = npix;
      fn(a);
    }
  }
}

}  // namespace bsp::kernels
