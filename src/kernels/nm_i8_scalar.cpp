// The int8 nm kernel without vector extensions: the packed layout of
// nm_i8.hpp, the integer arithmetic of compact/int8.hpp.
#include "kernels/nm_i8.hpp"

#include <algorithm>

namespace bsp::kernels {

namespace {

void tile(const NmTileI8& a) {
  const int64_t step = a.ntaps * a.spans * 64;  // bytes per 16-channel block
  for (int64_t b = a.b0; b < a.b1; ++b) {
    int32_t acc[kNmTileI8][16] = {};
    const uint8_t* idx = a.idx + b * step;
    const int8_t* w = a.w + b * step;
    for (int t = 0; t < a.ntaps; ++t)
      for (int64_t s = 0; s < a.spans; ++s, idx += 64, w += 64)
        for (int j = 0; j < a.npix; ++j) {
          // span s of tap t: line s * S / L, bytes (s * S) % L of it
          const int64_t l = s * a.span / a.line, off = s * a.span % a.line;
          const uint8_t* xp = a.x + ((t * (a.spans * a.span / a.line) + l) * kNmTileI8 + j) * a.line + off;
          for (int co = 0; co < 16; ++co)
            for (int e = 0; e < 4; ++e) acc[j][co] += int32_t{xp[idx[co * 4 + e]]} * w[co * 4 + e];
        }
    const int co_valid = static_cast<int>(std::min<int64_t>(16, a.cout - b * 16));
    for (int j = 0; j < a.npix; ++j) {
      if (!a.y[j]) continue;
      for (int co = 0; co < co_valid; ++co) {
        const int64_t o = b * 16 + co;
        const int8_t v = q8::requantize(int64_t{acc[j][co]} + a.bias[o], q8::Requant{a.mult[o], a.shift[o]}, a.lo, a.hi);
        a.y[j][o] = a.z ? a.add->apply(v, a.z[j][o]) : v;
      }
    }
  }
}

// [tap][line][pixel][L] from the pixels' rows, flipped to unsigned.
void pack(const int8_t* const* src, int64_t taps, int64_t C, int L, uint8_t* x) {
  for (int64_t t = 0; t < taps; ++t)
    for (int j = 0; j < kNmTileI8; ++j) {
      const int8_t* s = src[t * kNmTileI8 + j];
      for (int64_t c = 0; c < C; ++c)
        x[((t * (C / L) + c / L) * kNmTileI8 + j) * L + c % L] = s ? static_cast<uint8_t>(s[c] ^ 0x80) : 0x80;
    }
}

}  // namespace

NmTileFnI8 nm_tile_i8_scalar() { return &tile; }
NmPackFnI8 nm_pack_i8_scalar() { return &pack; }

}  // namespace bsp::kernels
