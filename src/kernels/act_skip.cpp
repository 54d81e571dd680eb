#include "kernels/act_skip.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/act_sparsity.hpp"
#include "core/error.hpp"

namespace bsp::kernels {

namespace {

// One pass over the rule's blocks of each image: a block is tested, then
// zeroed or copied to y; the unit bits are derived from the blocks' flags
// afterwards (no second read of x).
template <class T, class Small>
int64_t apply_rule(const T* x, T* y, const Shape& shape, const std::array<int64_t, 3>& block, Small small,
                   ActZeroMap& map) {
  const auto hwc = act_image_shape(shape);
  const int64_t N = shape.at(0), H = hwc[0], W = hwc[1], C = hwc[2];
  const int64_t bh = std::min(block[0], H), bw = std::min(block[1], W), bc = std::min(block[2], C);
  const int64_t nbh = (H + bh - 1) / bh, nbw = (W + bw - 1) / bw, nbc = (C + bc - 1) / bc;
  map.N = N, map.H = H, map.W = W, map.C = C;
  map.cu = (C + 7) / 8;
  const int64_t Wu = (W + 7) / 8;
  map.words = (Wu + 63) / 64;
  map.bits.assign(static_cast<size_t>(N * H * map.cu * map.words), 0);
  map.blocks = N * nbh * nbw * nbc;
  map.units = N * H * Wu * map.cu;
  map.zero_blocks = map.zero_units = 0;
  const bool unit_blocks = bh == 1 && bw == std::min<int64_t>(8, W) && bc == std::min<int64_t>(8, C);
  std::vector<uint8_t> zeroed(static_cast<size_t>(nbh * nbw * nbc));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t hb = 0; hb < nbh; ++hb)
      for (int64_t wb = 0; wb < nbw; ++wb) {
        const int64_t h1 = std::min(H, (hb + 1) * bh), w1 = std::min(W, (wb + 1) * bw);
        for (int64_t cb = 0; cb < nbc; ++cb) {
          const int64_t c0 = cb * bc, len = std::min(C, c0 + bc) - c0;
          bool all_small = true;
          for (int64_t h = hb * bh; h < h1 && all_small; ++h)
            for (int64_t w = wb * bw; w < w1 && all_small; ++w) {
              const T* p = x + ((n * H + h) * W + w) * C + c0;
              for (int64_t c = 0; c < len; ++c)
                if (!small(p[c])) {
                  all_small = false;
                  break;
                }
            }
          zeroed[static_cast<size_t>((hb * nbw + wb) * nbc + cb)] = all_small;
          map.zero_blocks += all_small;
          if (!all_small && x == y) continue;
          for (int64_t h = hb * bh; h < h1; ++h)
            for (int64_t w = wb * bw; w < w1; ++w) {
              const int64_t o = ((n * H + h) * W + w) * C + c0;
              if (all_small)
                std::fill(y + o, y + o + len, T(0));
              else
                std::memcpy(y + o, x + o, static_cast<size_t>(len) * sizeof(T));
            }
        }
      }
    // The units of this image from the blocks' flags.
    for (int64_t h = 0; h < H; ++h)
      for (int64_t c = 0; c < map.cu; ++c) {
        uint64_t* row = map.bits.data() + ((n * H + h) * map.cu + c) * map.words;
        const int64_t hb = h / bh;
        const int64_t cb0 = 8 * c / bc, cb1 = std::min(C - 1, 8 * c + 7) / bc;
        for (int64_t u = 0; u < Wu; ++u) {
          bool z = true;
          if (unit_blocks) {
            z = zeroed[static_cast<size_t>((hb * nbw + u) * nbc + c)];
          } else {
            const int64_t wb0 = 8 * u / bw, wb1 = std::min(W - 1, 8 * u + 7) / bw;
            for (int64_t wb = wb0; wb <= wb1 && z; ++wb)
              for (int64_t cb = cb0; cb <= cb1 && z; ++cb) z = zeroed[static_cast<size_t>((hb * nbw + wb) * nbc + cb)];
          }
          if (z) {
            row[u >> 6] |= uint64_t{1} << (u & 63);
            ++map.zero_units;
          }
        }
      }
  }
  map.row_tiles = map.unit_fraction() >= kRowTileFraction;
  return map.zero_blocks;
}

}  // namespace

int64_t apply_act_rule(const float* x, float* y, const Shape& shape, const std::array<int64_t, 3>& block, float t,
                       ActZeroMap& map) {
  return apply_rule(x, y, shape, block, [t](float v) { return std::fabs(v) < t; }, map);
}

int64_t apply_act_rule(const int8_t* x, int8_t* y, const Shape& shape, const std::array<int64_t, 3>& block,
                       int32_t tq, ActZeroMap& map) {
  return apply_rule(x, y, shape, block, [tq](int8_t q) { return std::abs(static_cast<int32_t>(q)) < tq; }, map);
}

void tile_skip_mask(const SkipGeom& g, const ActZeroMap& map, int64_t n, int64_t v0, int npix, int ntaps,
                    uint8_t* mask) {
  const int64_t cu = map.cu;
  std::fill(mask, mask + cu * ntaps, uint8_t{1});
  const int64_t end = v0 + npix, HWo = g.Ho * g.Wo;
  // Tap t = ky * cols + kx (direct layers: t = ky, one column).
  const int64_t cols = g.direct_taps ? 1 : g.kw, rows = ntaps / cols;
  thread_local std::vector<int64_t> a, b;
  thread_local std::vector<uint64_t> mk;
  a.resize(static_cast<size_t>(cols));
  b.resize(static_cast<size_t>(cols));
  mk.resize(static_cast<size_t>(cols));
  // Runs of the tile's pixels along one output row: (image, oh, ow0 ... ow1).
  for (int64_t v = v0; v < end;) {
    int64_t img = n, oh, ow0, ow1, next;
    if (g.flat) {
      img = v / HWo;
      const int64_t p = v % HWo;
      oh = p / g.Wo, ow0 = p % g.Wo;
      ow1 = std::min(g.Wo - 1, ow0 + (end - v) - 1);
      next = v + (ow1 - ow0 + 1);
    } else {
      oh = v / g.Wq, ow0 = v % g.Wq;
      const int64_t last = std::min(end - 1, oh * g.Wq + g.Wq - 1);
      ow1 = std::min(last - oh * g.Wq, g.Wo - 1);  // columns >= Wo are computed and dropped
      next = last + 1;
    }
    if (ow0 <= ow1)
      for (int64_t ky = 0; ky < rows; ++ky) {
        const int64_t ih = oh * g.sh - g.pt + ky * g.dh;
        if (ih < 0 || ih >= g.H) continue;  // padding: zero
        // Per tap of this kernel row, the columns read span a ... b (every
        // sw-th: the span is a superset), clipped to the image (columns
        // outside are padding: zero); lo ... hi, the columns every tap
        // reads. When those hold a nonzero unit no tap of the row can be
        // skipped: one test instead of kw (most tests at low fractions).
        // A range within one 64-unit word is one AND per channel unit; the
        // word and its mask are computed once, outside the channel loop.
        int64_t lo = 0, hi = g.W - 1;
        for (int64_t kx = 0; kx < cols; ++kx) {
          a[kx] = std::max<int64_t>(0, ow0 * g.sw - g.pl + kx * g.dw);
          b[kx] = std::min(g.W - 1, ow1 * g.sw - g.pl + kx * g.dw);
          if (a[kx] <= b[kx]) lo = std::max(lo, a[kx]), hi = std::min(hi, b[kx]);
        }
        const bool shared = cols > 1 && lo <= hi;
        const uint64_t* row0 = map.bits.data() + (img * g.H + ih) * cu * map.words;
        if (map.words == 1) {
          auto bits = [](int64_t c0, int64_t c1) {
            const int64_t u0 = c0 >> 3, u1 = c1 >> 3;
            return (u1 == 63 ? ~uint64_t{0} : (uint64_t{1} << (u1 + 1)) - 1) & ~((uint64_t{1} << u0) - 1);
          };
          const uint64_t sm = shared ? bits(lo, hi) : 0;
          for (int64_t kx = 0; kx < cols; ++kx) mk[kx] = a[kx] <= b[kx] ? bits(a[kx], b[kx]) : 0;
          for (int64_t c = 0; c < cu; ++c) {
            const uint64_t w = row0[c];
            uint8_t* m = mask + c * ntaps + ky * cols;
            if (shared && (w & sm) != sm) {  // a nonzero unit every tap reads
              for (int64_t kx = 0; kx < cols; ++kx)
                if (a[kx] <= b[kx]) m[kx] = 0;
              continue;
            }
            for (int64_t kx = 0; kx < cols; ++kx)
              if ((w & mk[kx]) != mk[kx]) m[kx] = 0;
          }
          continue;
        }
        for (int64_t c = 0; c < cu; ++c) {
          uint8_t* m = mask + c * ntaps + ky * cols;
          const bool shared_nonzero = shared && !map.zero(img, ih, c, lo, hi);
          for (int64_t kx = 0; kx < cols; ++kx)
            if (m[kx] && a[kx] <= b[kx] && (shared_nonzero || !map.zero(img, ih, c, a[kx], b[kx]))) m[kx] = 0;
        }
      }
    v = next;
  }
}

}  // namespace bsp::kernels
