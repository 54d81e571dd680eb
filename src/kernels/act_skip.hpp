// Skipping zero activation blocks (issue 26; Spex / Sparse-Blox, AICAS
// 2023): the activation rule of a conv2d or dense node (core/act_sparsity.hpp)
// is applied to the layer's input in one pass that also records which
// input units are all zero, and the conv kernels (conv_f32.hpp, conv_i8.hpp)
// skip the multiply-accumulates of those units.
//
// The unit is the kernels' own granularity, 1 row x 8 columns x 8 channels
// (an 8-channel block is what one weight block multiplies; 8 columns is the
// default rule block along W): a unit is zero when every rule block it
// touches was zeroed. With the default rule block [1, 8, 8] units and rule
// blocks coincide. (A rule block that is already all zero is zeroed by any
// threshold > 0, so "zeroed" and "all zero" are the same thing.)
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace bsp::kernels {

// The zero-unit fraction of a layer's input below which the runners do not
// hand the kernel the zero map, and from which ConvF32 skips on row tiles
// (ActZeroMap::row_tiles). Measured with tests/bench/bench_act_skip.cpp
// (one thread, under load, zero units drawn at random): the per-tile masks
// and the skip tests cost 2-5% when nothing is skipped. On the usual
// 24-pixel tiles, fmnist-cnn's 3x3 layers (28x28x32, 14x14x64) break even
// near 0.5 and gain 1.2-1.4x at 0.75; on row tiles of 16 columns 0.97-1.08x
// at 0 to 0.1 (14 columns: one tile per row, better than the usual tiling),
// 1.0-1.17x at 0.28, 1.19-1.42x at 0.53, 1.45-1.94x at 0.75 (8 columns:
// 15-25% slower at low fractions, less at high ones than 16). A dense
// layer (3136 -> 256; its tiles stay images) breaks even near 0.1 and gains
// 1.35x at 0.55. Clustered zeros (a dark background) skip more at the same
// fraction than random ones. Whole models, bsp bench --data fashion-mnist
// --limit 100 --reps 30 --threads 1 (load 2.7), no-skip / skip per layer:
// fmnist-cnn 1.02x at 0.43 (conv2), 1.22x at 0.46-0.47 (conv3, conv4),
// 1.29x at 0.58 (fc1); fmnist-resnet 1.04-1.06x at 0.51-0.55, 1.41x at
// 0.65, 1.71x at 0.75, 1.97x at 0.80, 2.51x at 0.95.
constexpr double kMinSkipFraction = 0.25;
constexpr double kMinSkipFractionDense = 0.15;  // fp32 dense layers
// int8 (ConvI8, VNNI): skipping measured slower on fmnist-cnn's 3x3 layers
// (0.8-0.9x at 43-74% zero blocks, row tiles and a branch-free list of the
// kept blocks included: the VNNI products of a tile are cheap next to the
// listing and the masks), so the int8 runner skips only nearly empty inputs.
constexpr double kMinSkipFractionI8 = 0.9;
constexpr double kRowTileFraction = 0.0;        // always, when skipping

// Output columns per tile when the conv kernels skip zero inputs (row
// tiles: ConvF32::run, ConvI8::run).
constexpr int kSkipTile = 16;

struct ActZeroMap {
  int64_t N = 0, H = 0, W = 0, C = 0;  // the input as [N, H, W, C] ([N, F]: H = W = 1, C = F)
  int64_t cu = 0;                      // channel units: ceil(C / 8)
  int64_t words = 0;                   // 64-bit words per (image, row, channel unit): ceil(ceil(W / 8) / 64)
  // [N][H][cu][words]: bit u of a row is set when pixels 8u ... 8u + 7
  // (clipped to W) x channels 8 cu ... 8 cu + 7 (clipped to C) are all zero.
  std::vector<uint64_t> bits;
  int64_t zero_blocks = 0, blocks = 0;  // of the rule's blocks, over all images (what bench reports)
  int64_t zero_units = 0, units = 0;    // of the units
  // How ConvF32 tiles a layer it skips on (conv_f32.cpp, kSkipTile): 16
  // columns of one output row per tile (more all-zero (tile, block, tap)
  // triples) instead of the usual 24 pixels that may span row ends.
  // apply_act_rule sets it from the zero fraction (kRowTileFraction).
  bool row_tiles = false;

  // Whether columns iw0 ... iw1 (0 <= iw0 <= iw1 < W) of row ih of image n
  // are zero in channel unit c.
  bool zero(int64_t n, int64_t ih, int64_t c, int64_t iw0, int64_t iw1) const {
    const uint64_t* row = bits.data() + ((n * H + ih) * cu + c) * words;
    const int64_t u0 = iw0 >> 3, u1 = iw1 >> 3;
    for (int64_t wd = u0 >> 6; wd <= u1 >> 6; ++wd) {
      const int64_t lo = wd == u0 >> 6 ? u0 & 63 : 0, hi = wd == u1 >> 6 ? u1 & 63 : 63;
      const uint64_t mask = (hi == 63 ? ~uint64_t{0} : (uint64_t{1} << (hi + 1)) - 1) & ~((uint64_t{1} << lo) - 1);
      if ((row[wd] & mask) != mask) return false;
    }
    return true;
  }
  double unit_fraction() const { return units ? static_cast<double>(zero_units) / static_cast<double>(units) : 0.0; }
};

// The rule of core/act_sparsity.hpp from x to y ([N, H, W, C] or [N, F];
// y == x: in place): y is x with every block whose values all have |v| < t
// zeroed (float32; a NaN keeps its block), exactly zero_small_blocks, and
// `map` is filled in the same pass over x. Returns the number of blocks
// zeroed.
int64_t apply_act_rule(const float* x, float* y, const Shape& shape, const std::array<int64_t, 3>& block, float t,
                       ActZeroMap& map);
// The int8 rule: every |q| < tq (compact/int8.hpp, act_qthreshold).
int64_t apply_act_rule(const int8_t* x, int8_t* y, const Shape& shape, const std::array<int64_t, 3>& block,
                       int32_t tq, ActZeroMap& map);

// The per-tile skip masks of a convolution: which (channel unit, tap) pairs
// read only zero inputs for a run of output pixels. Shared by the fp32 and
// int8 kernels (same tiling: conv_f32.hpp).
struct SkipGeom {
  int64_t H, W, Ho, Wo, sh, sw, pt, pl, dh, dw, kh, kw;
  int64_t Wq;          // virtual pixels per output row (non-flat)
  bool flat;           // virtual pixel v is output pixel v of the batch (Ho * Wo per image)
  bool direct_taps;    // taps are the kh rows only (kw = 1: direct NHWC layers)
};
// mask[c * ntaps + t] = 1 when channel unit c at tap t reads only zeros
// (or padding) for virtual pixels v0 ... v0 + npix - 1 of image n (flat:
// n ignored). Tap t is (t / kw, t % kw), or (t, 0) with direct_taps.
void tile_skip_mask(const SkipGeom& g, const ActZeroMap& map, int64_t n, int64_t v0, int npix, int ntaps,
                    uint8_t* mask);

}  // namespace bsp::kernels
