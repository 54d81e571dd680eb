// The int8 block-sparse micro-kernel without vector extensions: the packed
// layout of conv_i8.hpp, the integer arithmetic of compact/int8.hpp.
#include "kernels/conv_i8.hpp"

namespace bsp::kernels {

namespace {

void tile(const TileI8& a) {
  int32_t acc[kTileI8][8] = {};
  const int8_t* w = a.w;
  int32_t skipped[8] = {};  // the skipped zero inputs' 128 * w terms (act_skip.hpp), added to every pixel
  for (int b = 0; b < a.nblk; ++b) {
    const uint8_t* xb = a.x + a.cols[b] * a.ldb;
    for (int t = 0; t < a.ntaps; ++t, w += 64) {
      if (a.skip && a.skip[a.cols[b] * a.ntaps + t]) {
        for (int co = 0; co < 8; ++co) skipped[co] += a.w128[(b * a.ntaps + t) * 8 + co];
        continue;
      }
      const uint8_t* xp = xb + a.tap_off[t];
      for (int j = 0; j < a.npix; ++j)
        for (int co = 0; co < 8; ++co) {
          int32_t s = 0;
          for (int ci = 0; ci < 8; ++ci) s += int32_t{xp[j * a.ldx + ci]} * w[co * 8 + ci];
          acc[j][co] += s;
        }
    }
  }
  for (int j = 0; j < a.npix; ++j)
    for (int co = 0; co < 8; ++co) acc[j][co] += skipped[co];
  for (int j = 0; j < a.npix; ++j) {
    if (!a.y[j]) continue;
    for (int co = 0; co < a.co_valid; ++co) {
      const int8_t v = q8::requantize(int64_t{acc[j][co]} + a.bias[co], q8::Requant{a.mult[co], a.shift[co]}, a.lo, a.hi);
      a.y[j][a.yoff + co] = a.z ? a.add->apply(v, a.z[j][a.yoff + co]) : v;
    }
  }
}

}  // namespace

TileFnI8 tile_i8_scalar() { return &tile; }

}  // namespace bsp::kernels
