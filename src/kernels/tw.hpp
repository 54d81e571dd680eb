// Tile-wise (tw) convolution and dense layers, fp32 and int8, NHWC: the
// execution model of the tile-sparsity paper (shared/DESIGN.md section 2).
// The weight is B[K, N], K = kh*kw*Cin, N = Cout; a tile keeps n_t output
// columns and k_t rows (reduction indices k = tap*Cin + c) and runs as one
// dense GEMM [pixels, k_t] x [k_t, n_t].
//
// How it runs. A work item is a block of up to kTwPixels output pixels and
// a group of column blocks. For each tile:
//   1. gather: the tile's kept rows of the im2col input of the block's
//      pixels into a panel a[p][i] (pixel p, kept row i; zero in the
//      padding), one masked load and compress per 16 input channels of a
//      tap (AVX-512; int8 with VBMI2: per 64), once per tile and pixel block
//      and reused by all the tile's columns;
//   2. GEMM: the tile's columns in blocks of up to 64 (4 x 16 lanes), the
//      weights packed per block as [k_t][64] (fp32) or [k_t/4][64][4] (int8,
//      the operand layout of vpdpbusd); a register-blocked micro-kernel keeps
//      P pixels x 16*NV columns of accumulators (AVX-512: 6 x 64, 8 x 48,
//      12 x 32, 24 x 16), each kept row one load per 16 columns and one
//      broadcast per pixel; rows in chunks of kTwRowChunk so that the
//      chunk's weights stay cached across the block's pixels;
//   3. the accumulators go to a per-thread stage [pixel][kept column]; the
//      epilogue writes each pixel's output channels in order, reading the
//      stage column of each (an expanding load of 16 channels when the
//      tiles' columns ascend, else a gather; channels in no tile: none) and
//      adding bias, residual and clamp (int8: requantisation and the fused
//      add, exactly compact/int8.hpp).
// tvw layers (2:4 inside the tiles) run the same way, their zeros multiplied
// like the other weights: selecting each column's 2 of 4 inputs costs a
// shuffle per product on the port the products need (measured on AVX-512:
// vpshufb + vpdpbusd is no faster than two vpdpbusd), so it does not pay.
// Work is split over pixel blocks and, when those are too few for the
// threads, over groups of column blocks whose output channels are
// contiguous (tiles cut from the kept columns in order, which is how bsp
// prune and compress make them; otherwise one group).
//
// int8: the AVX-512 kernel (VNNI vpdpbusd, unsigned x signed) gathers the
// input as u = q + 128 (padding 128) and the bias carries -128 * sum(w) per
// output channel; the scalar and AVX2 kernels gather q (padding 0).
#pragma once

#include <cstdint>
#include <vector>

#include "compact/int8.hpp"
#include "compact/weights.hpp"
#include "core/fusion.hpp"
#include "core/shapes.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

constexpr int kTwPixels = 24;      // pixels per block (a multiple of every micro-kernel's P)
constexpr int kTwCols = 64;        // columns per column block (4 x 16 lanes)
constexpr int kTwRowChunk = 256;   // kept rows per GEMM chunk (a multiple of 4)

// Which input each kept row of a tile reads, in row order: per tap, chunks
// of 16 input channels with the mask of the kept ones.
struct TwGather {
  std::vector<int32_t> tap_ptr;  // [taps + 1] into chunk / mask
  std::vector<int32_t> chunk;    // first channel of the chunk
  std::vector<uint16_t> mask;    // bit j: channel chunk + j is kept
  // The same in chunks of 64 channels (the byte compress of AVX-512 VBMI2).
  std::vector<int32_t> tap_ptr64, chunk64;
  std::vector<uint64_t> mask64;
};

// One tile's column block: NV vectors of 16 columns.
struct TwColBlock {
  int nv;           // 1..4
  int64_t w_off;    // offset of its packed weights (elements)
  int64_t stage;    // its first column's stage column (it writes 16 * nv from there)
};

struct TwTile {
  int64_t rows = 0;   // k_t (int8: the panel and weights pad it to a multiple of 4)
  TwGather gather;
  std::vector<TwColBlock> blocks;
};

// The layer's tile structure as the kernels run it (shared by fp32 and int8).
struct TwPlan {
  std::vector<TwTile> tiles;
  // Stage columns: the tiles' columns one after the other. A column block
  // writes 16 * nv of them, past its tile's last column into the next
  // tile's (which overwrites them later) or the row's slack of kTwCols.
  int64_t stage_cols = 0;
  std::vector<int32_t> src;  // [O] stage column of output channel o, -1: in no tile
  // The column blocks in tile order, each with its first output channel and
  // its cost (rows x vectors): the units a work item's column group takes.
  struct Unit {
    int32_t tile, block;
    int64_t o_first, cost;
  };
  std::vector<Unit> units;
  // The units' output channels ascend: groups of units own channel ranges,
  // and per 16 output channels o = 16q ... the kept ones (kmask[q], bit j:
  // channel 16q + j is in a tile) read consecutive stage columns from
  // kpos[q] on (an expanding load). Else the epilogue gathers src[o].
  bool ascending = false;
  std::vector<uint16_t> kmask;
  std::vector<int32_t> kpos;
  int64_t max_rows = 0;
};
// Splits the units into at most `groups` runs of about equal cost: run r is
// units [cut[r], cut[r + 1]) and owns output channels [o[r], o[r + 1]).
void tw_groups(const TwPlan& p, int64_t O, int64_t groups, std::vector<int64_t>& cut, std::vector<int64_t>& o);

// Per-ISA kernels (fp32).
struct TwGemmF32 {
  const float* a;    // panel: pixel p, row i at a[p * lda + i]
  int64_t lda;
  const float* w;    // [k][16 * nv]
  int64_t k;
  float* c;          // stage: pixel p, column j at c[p * ldc + j]
  int64_t ldc;
  int nv, npix;      // npix <= kTwPixels
  bool accumulate;   // add to c (else overwrite)
};
// The outputs o0 <= o < o1 of npix pixels (pixel j: stage row j, y and z
// rows j, ld apart): y[o] = clamp(bias[o] + (src[o] >= 0 ? stage[src[o]] :
// 0) + z[o]) (the stage read through kmask / kpos when the plan is
// ascending). Channels outer, so that each chunk's constants are loaded once.
struct TwEpilogueF32 {
  const float* stage;
  int64_t lds;
  const TwPlan* plan;
  const float* bias;     // [O]
  const float* z;        // the residual, or null
  float* y;
  int64_t ld;            // y and z: elements between pixels
  int64_t o0, o1;
  int npix;
  Clamp clamp;
};
struct TwKernelsF32 {
  // dst[i] for the tile's kept rows i in order; src[tap]: the pixel's input at
  // that tap (channel 0), null in the padding. Writes up to 16 floats past the end.
  void (*gather)(const float* const* src, const TwGather& g, float* dst);
  void (*gemm)(const TwGemmF32& a);
  void (*epilogue)(const TwEpilogueF32& e);
};
TwKernelsF32 tw_f32_scalar();
TwKernelsF32 tw_f32_avx2();
TwKernelsF32 tw_f32_avx512();

// Per-ISA kernels (int8).
struct TwGemmI8 {
  const uint8_t* a;  // panel bytes: pixel p, row i at a[p * lda + i] (lda a multiple of 4)
  int64_t lda;
  const int8_t* w;   // [k / 4][16 * nv][4]
  int64_t k;         // a multiple of 4
  int32_t* c;
  int64_t ldc;
  int nv, npix;
  bool accumulate;
};
// The outputs o0 <= o < o1 of npix pixels: requantised bias[o] + the stage
// column of o (as TwEpilogueF32), then the fused add with z when not null.
struct TwEpilogueI8 {
  const int32_t* stage;
  int64_t lds;
  const TwPlan* plan;
  const int32_t* bias;   // [O]
  const int32_t* mult;   // [O]
  const int32_t* shift;  // [O]
  int32_t lo, hi;
  const int8_t* z;       // the fused add's addend, or null
  const q8::FusedAdd* add;
  int8_t* y;
  int64_t ld;
  int64_t o0, o1;
  int npix;
  // For an epilogue over the kept channels alone (ascending plans): bias,
  // mult and shift in stage-column order, each channel's output when in no
  // tile (the requantised bias), and [npix][stage_cols + 64] bytes of scratch.
  const int32_t *kbias, *kmult, *kshift;
  const int8_t* idle;
  int8_t* scratch;
};
struct TwKernelsI8 {
  bool unsigned_input;  // gathers q + 128 (padding 128), else q (padding 0)
  void (*gather)(const int8_t* const* src, const TwGather& g, uint8_t* dst);
  void (*gemm)(const TwGemmI8& a);
  void (*epilogue)(const TwEpilogueI8& e);
};
TwKernelsI8 tw_i8_scalar();
// weight_min: the layer has a weight of -128 (the plain C++ GEMM then).
TwKernelsI8 tw_i8_avx2(bool weight_min = false);
// Needs AVX-512 VNNI; gathers with vpcompressb where the CPU has AVX-512
// VBMI2 unless `vbmi2` is false (tests take both paths).
TwKernelsI8 tw_i8_avx512(bool vbmi2 = true);
// Whether TwConvI8 may use the VBMI2 gather (default true; for tests).
void tw_allow_vbmi2(bool allow);

// The plan of a tw compact layer (tile structure only; values are packed by
// the convolutions): tiles without rows or columns are left out.
TwPlan tw_plan(const ConvGeom& g, const compact::CompactLayer& l);

// Whether every nonzero of the dense weights w [O, kh, kw, I] lies in one of
// the tiles of l.
bool tw_covers(const compact::CompactLayer& l, const int8_t* w);

class TwConvF32 {
 public:
  // w: the folded dense fp32 weights [O, kh, kw, I] (the layer gives the
  // tiles; weights outside them are ignored); bias [O] or null.
  TwConvF32(const ConvGeom& g, const compact::CompactLayer& layer, const float* w, const float* bias);
  // x [N, H, W, C] (dense layers: [N, C] with H = W = 1) -> y [N, Ho, Wo, O];
  // z (like y) added before the clamp.
  void run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const;

 private:
  ConvGeom g_;
  TwPlan plan_;
  std::vector<AlignedVector<float>> w_;  // per tile: its column blocks' packed weights
  AlignedVector<float> bias_;
};

class TwConvI8 {
 public:
  // w: the dense int8 weights [O, kh, kw, I]; every nonzero weight must lie
  // in a tile (else bsp::Error: the caller runs the layer otherwise);
  // bias and rq per output channel (q8::QNode).
  TwConvI8(const ConvGeom& g, const compact::CompactLayer& layer, const int8_t* w, const int32_t* bias,
           const std::vector<q8::Requant>& rq, int32_t lo, int32_t hi);
  void run(const int8_t* x, int64_t N, int8_t* y, const int8_t* z = nullptr, const q8::FusedAdd* add = nullptr) const;

 private:
  ConvGeom g_;
  TwPlan plan_;
  TwKernelsI8 k_;  // chosen when constructed (the bias depends on it)
  std::vector<AlignedVector<int8_t>> w_;
  std::vector<int32_t> bias_, mult_, shift_;
  std::vector<int32_t> kbias_, kmult_, kshift_;  // TwEpilogueI8
  std::vector<int8_t> idle_;
  int32_t lo_, hi_;
};

}  // namespace bsp::kernels
