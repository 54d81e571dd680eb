// The input layout the conv kernels read (conv_f32.hpp): per image and
// 8-channel block, sh*sw phase planes of [Hq, Wq] pixels x 8 channels
// ([Cp/8][phases][plane][8]); plane (a, b) holds the padded input's rows a,
// a+sh, ... and columns b, b+sw, ...; padding and the channels beyond C are
// already filled in. Every tap is then a constant offset from a virtual
// pixel v = oh * Wq + ow, and the 8 channels of a block for consecutive
// pixels are contiguous (a tile's loads stay in a few cache lines whatever C).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/shapes.hpp"

namespace bsp::kernels {

struct PhasePlan {
  int64_t Cp = 0, Hq = 0, Wq = 0;
  int64_t plane = 0;               // pixels per plane, slack for the last row's garbage columns included
  int64_t phases = 1;              // planes stored per block: the phases some tap reads
  std::vector<int64_t> tap_pixel;  // per tap (y*kw + x): pixel offset from an image's first plane
  std::vector<int64_t> phase_ab;   // per stored plane: its phase a * sw + b

  explicit PhasePlan(const ConvGeom& g) {
    Cp = (g.C + 7) / 8 * 8;
    const int64_t Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
    Hq = (Hp + g.sh - 1) / g.sh, Wq = (Wp + g.sw - 1) / g.sw;
    // Only the phases some tap reads are stored (a 1x1 stride-2 layer needs
    // one plane of four).
    // (Looked up among the stored phases, at most kh*kw of them: a table
    // of all sh*sw phases would be sized by the stride.)
    auto slot_of = [&](int64_t ab) {
      for (size_t i = 0; i < phase_ab.size(); ++i)
        if (phase_ab[i] == ab) return static_cast<int64_t>(i);
      phase_ab.push_back(ab);
      return static_cast<int64_t>(phase_ab.size()) - 1;
    };
    int64_t max_off = 0;
    std::vector<int64_t> phase;
    for (int64_t y = 0; y < g.kh; ++y)
      for (int64_t x = 0; x < g.kw; ++x) {
        const int64_t a = (y * g.dh) % g.sh, oy = (y * g.dh) / g.sh;
        const int64_t b = (x * g.dw) % g.sw, ox = (x * g.dw) / g.sw;
        max_off = std::max(max_off, oy * Wq + ox);
        tap_pixel.push_back(oy * Wq + ox);
        phase.push_back(slot_of(a * g.sw + b));
      }
    phases = static_cast<int64_t>(phase_ab.size());
    plane = std::max(Hq * Wq, g.Ho * Wq + max_off) + 1;
    for (size_t t = 0; t < tap_pixel.size(); ++t) tap_pixel[t] += phase[t] * plane;
  }
  int64_t block_elems() const { return phases * plane * 8; }  // between channel blocks
  int64_t image_elems() const { return Cp / 8 * block_elems(); }
  int64_t tap_elems(size_t t) const { return tap_pixel[t] * 8; }

  // Writes every element of out (N * image_elems()) from x [N, H, W, C]
  // (pixel stride ldx), each input element through f, `pad` everywhere else
  // (padding, channels beyond C, the slack after each plane). A worksharing
  // loop for every thread of an enclosing parallel region (ends with its
  // barrier), so that a layer's packing and its kernel share one region.
  template <typename T, typename U, typename F>
  void pack_shared(const ConvGeom& g, const T* x, int64_t ldx, int64_t N, U* out, F f, U pad) const {
    const int64_t img = image_elems(), blocks = Cp / 8, bstride = block_elems();
    // One plane row per iteration (rows past Hq: the slack); each source
    // pixel is read once, contiguously, and scattered to the block planes.
    const int64_t rows = (plane + Wq - 1) / Wq;
#pragma omp for collapse(3) schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t ph = 0; ph < phases; ++ph)
        for (int64_t iq = 0; iq < rows; ++iq) {
          const int64_t a = phase_ab[static_cast<size_t>(ph)] / g.sw, b = phase_ab[static_cast<size_t>(ph)] % g.sw;
          const int64_t ih = iq * g.sh + a - g.pt;
          const int64_t width = std::min(Wq, plane - iq * Wq);
          U* dst = out + n * img + (ph * plane + iq * Wq) * 8;
          const bool row_in = iq < Hq && ih >= 0 && ih < g.H;
          for (int64_t jq = 0; jq < width; ++jq) {
            const int64_t iw = jq * g.sw + b - g.pl;
            const T* src = row_in && iw >= 0 && iw < g.W ? x + ((n * g.H + ih) * g.W + iw) * ldx : nullptr;
            // Whole blocks take a fixed 8-element copy (vectorised; a
            // runtime trip count here cost a loop and a memset call per
            // block and pixel, a quarter of a stem conv's time).
            // (Through a local array: src and out may alias as far as the
            // compiler knows, which kept the copy scalar.)
            const int64_t full = src ? g.C / 8 : 0;
            U v[8];
            for (int64_t cb = 0; cb < full; ++cb) {
              for (int c = 0; c < 8; ++c) v[c] = f(src[cb * 8 + c]);
              std::memcpy(dst + cb * bstride + jq * 8, v, sizeof v);
            }
            for (int64_t cb = full; cb < blocks; ++cb) {
              const int64_t nc = src ? g.C - cb * 8 : 0;
              for (int c = 0; c < 8; ++c) v[c] = c < nc ? f(src[cb * 8 + c]) : pad;
              std::memcpy(dst + cb * bstride + jq * 8, v, sizeof v);
            }
          }
        }
  }
};

// Each virtual pixel v = oh * Wq + ow's output pixel oh * Wo + ow within its
// image, -1 for the columns ow >= Wo that are computed and dropped.
inline std::vector<int32_t> virtual_pixel_map(int64_t Ho, int64_t Wo, int64_t Wq) {
  std::vector<int32_t> m(static_cast<size_t>(Ho * Wq));
  for (int64_t v = 0; v < Ho * Wq; ++v) m[static_cast<size_t>(v)] = v % Wq < Wo ? static_cast<int32_t>(v / Wq * Wo + v % Wq) : -1;
  return m;
}

// The conv kernels' work items, numbered image by image: within an image
// either rows outer (item = row * tiles + tile: a row's weights stay cached
// across tiles) or tiles outer (tile * rows + row: a tile's input stays
// cached across rows). "row" is a block row or a group of them.
struct WorkItem {
  int64_t n, row, tile;
};
inline WorkItem work_item(int64_t it, int64_t rows, int64_t tiles, bool rows_outer) {
  const int64_t n = it / (rows * tiles), rt = it % (rows * tiles);
  return rows_outer ? WorkItem{n, rt / tiles, rt % tiles} : WorkItem{n, rt % rows, rt / rows};
}

}  // namespace bsp::kernels
