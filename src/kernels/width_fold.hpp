// Width folding for convolutions with few input channels (a network's stem,
// e.g. 7x7 over 3 channels): the 8-channel blocks of the kernels would be
// mostly padding. Gathering the kw taps of each output column into the
// channel axis, x'[n, h, ow, x*C + c] = x_padded[n, h, ow*sw + x*dw, c],
// turns the layer into a kh x 1 convolution over kw*C channels with stride
// (sh, 1) whose OHWI weight is the original one viewed as [O, kh, 1, kw*C].
#pragma once

#include <cstdint>
#include <cstring>

#include "core/shapes.hpp"

namespace bsp::kernels {

// True when folding needs fewer 8-channel blocks per output row.
inline bool width_fold_pays(const ConvGeom& g) {
  if (g.groups != 1 || g.kw < 2 || g.C % 8 == 0) return false;
  return (g.kw * g.C + 7) / 8 < g.kw * ((g.C + 7) / 8);
}

inline ConvGeom width_folded(const ConvGeom& g) {
  ConvGeom f = g;
  f.W = g.Wo;
  f.C = g.kw * g.C;
  f.kw = 1;
  f.sw = 1;
  f.dw = 1;
  f.pl = f.pr = 0;
  return f;
}

// x [N, H, W, C] -> out [N, H, Wo, kw*C] (zero where the tap falls in the padding).
template <typename T>
void width_im2col(const ConvGeom& g, const T* x, int64_t N, T* out) {
  const int64_t C2 = g.kw * g.C;
  // With dw = 1 the kw taps of a column inside the row are kw*C consecutive
  // elements of the NHWC row: one short copy (a stem's 7 taps x 3 channels:
  // 21 floats) instead of kw tiny ones; only the columns at the edges go tap by tap.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < g.H; ++h)
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        T* dst = out + ((n * g.H + h) * g.Wo + ow) * C2;
        const int64_t iw0 = ow * g.sw - g.pl;
        if (g.dw == 1 && iw0 >= 0 && iw0 + g.kw <= g.W) {
          const T* src = x + ((n * g.H + h) * g.W + iw0) * g.C;
          for (int64_t k = 0; k < C2; ++k) dst[k] = src[k];
          continue;
        }
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = ow * g.sw - g.pl + j * g.dw;
          if (iw < 0 || iw >= g.W)
            std::memset(dst + j * g.C, 0, static_cast<size_t>(g.C) * sizeof(T));
          else
            std::memcpy(dst + j * g.C, x + ((n * g.H + h) * g.W + iw) * g.C, static_cast<size_t>(g.C) * sizeof(T));
        }
      }
}

}  // namespace bsp::kernels
