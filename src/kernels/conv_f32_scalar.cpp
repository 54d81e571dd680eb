// The fp32 block-sparse micro-kernel without vector extensions: the same
// packed layout and loop order as the vector kernels.
#include <algorithm>

#include "kernels/conv_f32.hpp"

namespace bsp::kernels {

namespace {

void tile(const TileF32& a) {
  float acc[kTileF32][8] = {};
  const float* w = a.w;
  for (int b = 0; b < a.nblk; ++b) {
    const float* xb = a.x + a.cols[b] * a.ldb;
    for (int t = 0; t < a.ntaps; ++t, w += 64) {
      const float* xp = xb + a.tap_off[t];
      for (int j = 0; j < a.npix; ++j)
        for (int q = 0; q < 4; ++q)
          for (int co = 0; co < 8; ++co)
            acc[j][co] += xp[j * a.ldx + 2 * q] * w[q * 16 + co * 2] + xp[j * a.ldx + 2 * q + 1] * w[q * 16 + co * 2 + 1];
    }
  }
  for (int j = 0; j < a.npix; ++j) {
    if (a.yoff[j] < 0) continue;
    for (int co = 0; co < a.co_valid; ++co) {
      float v = acc[j][co] + a.bias[co];
      if (a.z) v += a.z[a.zoff[j] + co];
      if (a.relu) v = std::max(v, 0.0f);
      a.y[a.yoff[j] + co] = v;
    }
  }
}

}  // namespace

TileFnF32 tile_f32_scalar() { return &tile; }

}  // namespace bsp::kernels
