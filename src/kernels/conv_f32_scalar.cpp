// The fp32 block-sparse micro-kernel without vector extensions: the same
// packed layout and loop order as the vector kernels.
#include <algorithm>

#include "kernels/conv_f32.hpp"

namespace bsp::kernels {

namespace {

void tile_row(const TileF32& a, int64_t r) {
  float acc[kTileF32][8] = {};
  const int32_t* cols = a.col_idx + a.row_ptr[r];
  const int nblk = a.row_ptr[r + 1] - a.row_ptr[r];
  const float* w = a.w + static_cast<size_t>(a.row_ptr[r]) * static_cast<size_t>(a.ntaps * 64);
  for (int b = 0; b < nblk; ++b) {
    const float* xb = a.x + cols[b] * a.ldb;
    const uint8_t* skip = a.skip ? a.skip + cols[b] * a.ntaps : nullptr;
    for (int t = 0; t < a.ntaps; ++t, w += 64) {
      if (skip && skip[t]) continue;  // zero inputs (act_skip.hpp)
      const float* xp = xb + a.tap_off[t];
      for (int j = 0; j < a.npix; ++j)
        for (int q = 0; q < 4; ++q)
          for (int co = 0; co < 8; ++co)
            acc[j][co] += xp[j * a.ldx + 2 * q] * w[q * 16 + co * 2] + xp[j * a.ldx + 2 * q + 1] * w[q * 16 + co * 2 + 1];
    }
  }
  for (int j = 0; j < a.npix; ++j) {
    if (a.yoff[j] < 0) continue;
    for (int64_t co = 0; co < std::min<int64_t>(8, a.cout - r * 8); ++co) {
      float v = acc[j][co] + a.bias[r * 8 + co];
      if (a.z) v += a.z[a.zoff[j] + r * 8 + co];
      if (a.clamp) v = std::min(std::max(v, a.lo), a.hi);
      a.y[a.yoff[j] + r * 8 + co] = v;
    }
  }
}

void tile(const TileF32& a) {
  for (int64_t r = a.r0; r < a.r1; ++r) tile_row(a, r);
}

}  // namespace

TileFnF32 tile_f32_scalar() { return &tile; }

}  // namespace bsp::kernels
