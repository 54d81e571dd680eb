// Block-sparse fp32 convolution and dense layers on NHWC activations, with
// 8 x 8 blocks (8 output x 8 input channels) spanning the kernel window, the
// bsr layout of compact/weights.hpp. A dense layer is the same kernel with
// every block present: that is bsp's dense fast path.
//
// How it runs. The output is computed in tiles of up to P "virtual pixels"
// times one block row (8 output channels). The input is repacked into phase
// planes (phase_plan.hpp: one per stride phase, padding in place, 8 channels
// per block contiguous), except 1x1-row layers with stride 1, no padding and
// few channels, which read the NHWC input as it is, and other 1x1 layers
// without padding whose tiles stay outside the block rows: each work item
// gathers its own tile's pixels into a small [blocks][P][8] buffer (no
// packing pass over the whole input, no second parallel region). In a phase plane every
// kernel tap is a constant offset, so the P pixels of a tile, v = oh * Wq +
// ow, read their inputs at x + v * ldx + tap_off[t] + block * ldb: an affine
// address whatever the stride. Columns ow >= Wo are computed and dropped.
// For each kept block and tap the kernel loads the block's weights as four
// 16-lane vectors (lanes = 8 output channels x 2 input channels) and
// accumulates x[v][c, c+1] (one 64-bit broadcast) times them into one
// accumulator per pixel; the two input-channel halves are summed at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "compact/weights.hpp"
#include "core/fusion.hpp"
#include "core/shapes.hpp"
#include "kernels/act_skip.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"
#include "kernels/phase_plan.hpp"

namespace bsp::kernels {

using compact::WeightGeom;

// One call of the micro-kernel: npix (<= kTileF32) virtual pixels x block
// rows r0 ... r1 - 1, one after the other (one call per work item: the
// row loop stays inside the kernel).
struct TileF32 {
  const float* x;           // input at the tile's first virtual pixel, block 0
  int64_t ldx;              // floats between consecutive virtual pixels (8; C when direct; sw*C when folded)
  int64_t ldb;              // floats between consecutive 8-channel blocks
  const int64_t* tap_off;   // [ntaps] offset of each tap (floats)
  int ntaps;
  const int32_t* row_ptr;   // the layer's bsr structure (PackedF32)
  const int32_t* col_idx;
  const float* w;           // the layer's packed blocks: per block [ntaps][4][8][2]
  const float* bias;        // [rows * 8]
  int64_t r0, r1;           // the block rows to compute
  int64_t cout;             // output channels (the last block row may have fewer than 8)
  float* y;                 // output at channel 0: pixel j, channel c at y[yoff[j] + c]
  const int64_t* yoff;      // [npix] offset of each pixel's output from y (floats); < 0: drop the pixel
  const float* z;           // residual added before the clamp, like y, or null
  const int64_t* zoff;      // [npix] offset of each pixel's residual from z (when z)
  bool clamp;               // y = min(max(y, lo), hi) (a relu: lo 0, hi +inf)
  float lo, hi;
  int npix;
  // [input blocks][ntaps]: 1 when the tile reads only zeros from that input
  // block at that tap (act_skip.hpp), whose multiply-accumulates are
  // skipped; null: nothing skipped.
  const uint8_t* skip = nullptr;
};
constexpr int kTileF32 = 24;  // the largest npix any ISA takes
// The pixel strides the vector kernels are compiled for: 8 (the packed
// layout), the NHWC channel counts read directly, and on AVX2 sw * C of
// width-folded RGB stems (3 and 6; see the dispatchers of conv_f32_avx2.cpp
// and conv_f32_avx512.cpp for why not on AVX-512).
constexpr bool direct_stride(int64_t c) { return c == 64 || c == 128 || c == 256; }

using TileFnF32 = void (*)(const TileF32&);
TileFnF32 tile_f32_scalar();
TileFnF32 tile_f32_avx2();
TileFnF32 tile_f32_avx512();
TileFnF32 tile_f32(Isa isa);
int tile_pixels_f32(Isa isa);  // the tile size the ISA's kernel prefers

// Packed weights: the structure of a bsr layer (8x8 blocks) and each block's
// values reordered to the kernel's lanes, one 64-float group per tap:
// group[q * 16 + co * 2 + h] = W[co, y, x, ci = 2q + h].
struct PackedF32 {
  WeightGeom geom;
  std::vector<int32_t> row_ptr, col_idx;
  AlignedVector<float> w;
  AlignedVector<float> bias;  // [rows * 8], zero beyond O
  int64_t rows() const { return static_cast<int64_t>(row_ptr.size()) - 1; }
  int64_t nnz_blocks() const { return static_cast<int64_t>(col_idx.size()); }
};

// From dense weights w [O, kh, kw, I] (already scaled by a folded batchnorm)
// and the block structure to keep (row_ptr/col_idx of an 8x8 bsr; empty
// vectors: every block). scale (per output channel) and bias may be null.
PackedF32 pack_f32(const float* w, const WeightGeom& g, const std::vector<int32_t>& row_ptr,
                   const std::vector<int32_t>& col_idx, const float* bias);

// A conv2d (groups = 1) or dense layer prepared for the kernel. Dense layers
// are 1x1 convolutions over a 1x1 image.
//
// Width-folded convolutions (a stem: few input channels, kw > 1, dw = 1;
// width_fold.hpp): given weights packed as [O, kh, 1, kw*C], the kw taps of
// an output column are kw*C consecutive floats of a padded input row, so
// the kernel reads them in place: run() copies the input once into sh row
// phases of its padded rows (plane a holds padded rows a, a+sh, ...; the
// width padded to a multiple of sw), and virtual pixel v = oh * Wq + ow,
// Wq = Wp / sw, reads its kw*C "channels" at v * sw*C + tap row offset.
// No column gather, no 8-channel planes. The last block of a pixel reads up
// to 7 floats past its kw*C (the next columns, or the plane's zero slack),
// which meet zero weights: with finite inputs exactly the reference result;
// an Inf or NaN input pixel also turns the outputs of up to one block's
// worth of neighbouring columns into NaN (0 * Inf).
class ConvF32 {
 public:
  // w: packed for g, or for g width-folded ([Cout, kh, 1, kw*C], dw = 1).
  ConvF32(const ConvGeom& g, PackedF32 w);
  // x [N, H, W, C] with pixel stride ldx -> y [N, Ho, Wo, Cout] with pixel
  // stride ldy (y may be a channel slice of a wider tensor); z, when not
  // null, is added before the clamp (same layout as y, stride ldz).
  //
  // zeros, when not null, maps the all-zero units of x (act_skip.hpp; x
  // dense NHWC, ldx = C): the kernel skips the multiply-accumulates of an
  // input block at a tap when every pixel of the tile reads zeros there.
  // Why that granularity: a tile (with a map: 16 output columns of one
  // row, kSkipTile; a dense layer's: up to 24 images) times one 8-channel
  // input block at one tap is the kernel's inner unit of work, P x 4 FMAs
  // per block row reusing one weight vector each; a finer skip (one pixel)
  // would break the register tile, a coarser one (a block over all taps)
  // would skip far less of a 3x3 layer, whose taps read different rows and
  // columns. For a 1x1 layer a tile's block is exactly 2 units (16 pixels x
  // 8 channels); for a 3x3 one each tap reads 2-3 units of one row. The
  // masks are computed once per tile and run (checks per channel block and
  // tap, against P x 4 FMAs per block row), shared by all block rows. A
  // width-folded stem (few channels folded into kw * C) ignores the map:
  // its "channels" are columns.
  void run(const float* x, int64_t ldx, int64_t N, float* y, int64_t ldy, const float* z, int64_t ldz,
           Clamp clamp, const ActZeroMap* zeros = nullptr) const;
  // Whether run() uses a zero map (not width-folded).
  bool can_skip() const { return !folded_; }
  const ConvGeom& geom() const { return g_; }
  const PackedF32& weights() const { return w_; }
  // Multiply-accumulates per image that the kernel performs on kept blocks.
  int64_t kept_macs() const;

 private:
  // The input as the kernel reads it (run): x, or the packed or row-phase
  // copy that the parallel region fills (pack_to, rows_to).
  struct InputView {
    const float* x = nullptr;
    int64_t img = 0, pix_stride = 0, block_stride = 8;  // floats between images, pixels, channel blocks
    std::optional<PhasePlan> pp;
    float* pack_to = nullptr;  // packed layers: the PhasePlan's destination
    float* rows_to = nullptr;  // folded layers: the row phases' destination
  };
  InputView input_view(const float* x, int64_t ldx, int64_t N) const;
  const float* gather_tile(const float* x, int64_t ldx, int64_t v0, int npix, int64_t tp) const;
  void copy_row_phases(const float* x, int64_t ldx, int64_t N, float* out) const;

  ConvGeom g_;
  PackedF32 w_;
  bool direct_ = false;   // no repacking: the NHWC input is read as it is
  bool folded_ = false;   // width-folded: the input copied into padded row phases (above)
  int64_t Wp_ = 0;        // folded: padded row width in pixels (a multiple of sw)
  int64_t Hq_ = 0;        // folded: rows per row phase
  int64_t plane_ = 0;     // folded: floats per row phase, a slack row included
  bool gather_ = false;   // 1x1, no padding: each work item gathers its tile's pixels
  int64_t Wq_ = 0;        // virtual pixels per output row
  bool rows_outer_ = false;  // iterate block rows outside tiles (weights larger than the input)
  std::vector<int32_t> pix0_;  // [Ho * Wq] output pixel of each virtual pixel, -1 dropped (not flat)
  std::vector<int64_t> tap_off_;  // packed: floats from an image's first plane; direct: pixels
};

}  // namespace bsp::kernels
