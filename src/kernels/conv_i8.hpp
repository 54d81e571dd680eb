// Block-sparse int8 convolution and dense layers (NHWC), computing exactly
// the int8 semantics of compact/int8.hpp: int32 accumulation, bias,
// per-output-channel requantisation (64-bit multiply, round half up, shift),
// clamp to [lo, hi]. The same tiling as conv_f32.hpp: phase planes, virtual
// pixels, one block row of 8 output channels per call; a work item is a
// tile and a group of block rows (packing and items share one parallel
// region).
//
// The input is packed as unsigned bytes u = q + 128 (q XOR 0x80), padding
// included (u = 128 is q = 0), because VNNI's vpdpbusd multiplies unsigned by
// signed bytes; the kernel subtracts 128 * sum(w[o]) per output channel
// (the AVX2 kernel reads the signed bytes q instead, padding 0).
// Lanes of one 512-bit accumulator: 8 output channels x 2 groups of 4 input
// channels, so a block's 8 x 8 int8 weights at one tap are a single vector in
// the compact bsr layout ([co][ci], row-major): no repacking.
#pragma once

#include <cstdint>
#include <vector>

#include "compact/int8.hpp"
#include "compact/weights.hpp"
#include "core/shapes.hpp"
#include "kernels/act_skip.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

struct PhasePlan;

struct TileI8 {
  const uint8_t* x;        // packed input at the tile's first virtual pixel
  int64_t ldx;             // bytes between virtual pixels
  int64_t ldb;             // bytes between 8-channel blocks
  const int64_t* tap_off;  // [ntaps] bytes
  int ntaps;
  const int32_t* cols;     // [nblk]
  int nblk;
  const int8_t* w;         // [nblk][ntaps][8 co][8 ci]
  int8_t* const* y;        // [npix] output pointers at channel 0 (null: drop)
  const int8_t* const* z;  // [npix] the fused add's other addend, like y; null: no add
  int64_t yoff;            // this block row's first channel: y[j] + yoff, z[j] + yoff
  const q8::FusedAdd* add; // when z (compact/int8.hpp)
  const int32_t* bias;     // [8] bias - 128 * sum(w) per output channel (AVX2, signed input: the bias)
  const int32_t* mult;     // [8]
  const int32_t* shift;    // [8]
  int32_t lo, hi;
  int co_valid;
  int npix;
  // [input blocks][ntaps]: 1 when the tile reads only zeros from that input
  // block at that tap (act_skip.hpp): its products are skipped; null:
  // nothing skipped. The unsigned kernels then add, for each skipped block
  // and tap, what its zero input (u = 128) would have: w128 [nblk][ntaps][8
  // co], 128 * the sum of the block's weights at the tap (like w).
  const uint8_t* skip = nullptr;
  const int32_t* w128 = nullptr;
};
constexpr int kTileI8 = 24;

using TileFnI8 = void (*)(const TileI8&);
TileFnI8 tile_i8_scalar();
TileFnI8 tile_i8_avx512();  // needs AVX-512 VNNI
// AVX2 has no u8 x s8 dot product that cannot saturate; its kernel reads the
// input as signed bytes q (padding 0) with the uncorrected bias and needs
// every weight within +-127 (conv_i8_avx2.cpp). The same weight layout.
TileFnI8 tile_i8_avx2();
constexpr int kTileI8Avx2 = 5;

// Packing a run of npix source pixels (src_stride bytes apart) of C
// channels into the kernel's layout: dst[cb * bstride + p * 8 + c] =
// src[p * src_stride + cb * 8 + c] ^ flip for every block cb < ceil(C / 8),
// c < 8, and 0 ^ flip for the channels beyond C (flip 0x80 makes q + 128,
// the VNNI kernel's unsigned input, whose padding is 128; 0 keeps q, padding 0).
using PackRunI8 = void (*)(const int8_t* src, int64_t src_stride, int64_t npix, int64_t C, uint8_t* dst,
                           int64_t bstride, uint8_t flip);
PackRunI8 pack_run_i8_generic();
PackRunI8 pack_run_i8_avx512();  // 8 pixels x 8 blocks per step (an 8 x 8 transpose of 64-bit words), masked loads

class ConvI8 {
 public:
  // w: dense int8 weights [O, kh, kw, I]; row_ptr/col_idx: the 8x8 blocks to
  // keep (empty: all); bias and rq per output channel (q8::QNode).
  ConvI8(const ConvGeom& g, const int8_t* w, const std::vector<int32_t>& row_ptr, const std::vector<int32_t>& col_idx,
         const int32_t* bias, const std::vector<q8::Requant>& rq, int32_t lo, int32_t hi);
  // x [N, H, W, C] int8 -> y [N, Ho, Wo, Cout] int8; with z (same layout as
  // y) and add, y is the fused add of the conv's output and z.
  // zeros, when not null, maps the all-zero units of x (act_skip.hpp): the
  // products of an input block at a tap are skipped when every pixel of the
  // tile reads zeros there (the granularity of ConvF32::run, for the same
  // reasons), bit-exact: the unsigned kernels add the skipped 128 * w terms
  // once per tile (TileI8::w128). Not for a width-folded layer.
  void run(const int8_t* x, int64_t N, int8_t* y, const int8_t* z = nullptr, const q8::FusedAdd* add = nullptr,
           const ActZeroMap* zeros = nullptr) const;
  int64_t nnz_blocks() const { return static_cast<int64_t>(col_idx_.size()); }

 private:
  // x -> out in the layout of PhasePlan::pack_shared (the same bytes), each
  // value through ^ flip, padding `pad` (= 0 ^ flip, what pack_run writes for
  // the channels beyond C): a worksharing loop of the enclosing parallel
  // region. Runs of real pixels go through pack_run.
  void pack(const PhasePlan& pp, const int8_t* x, int64_t N, uint8_t* out, uint8_t flip, uint8_t pad,
            PackRunI8 pack_run) const;

  ConvGeom g_;
  std::vector<int32_t> row_ptr_, col_idx_;
  // The kernel, chosen when constructed: the AVX2 one takes the signed
  // input (no -128 weight), the others the unsigned one.
  enum class Kernel { Scalar, Avx2, Vnni } kernel_ = Kernel::Scalar;
  bool unsigned_input() const { return kernel_ != Kernel::Avx2; }  // packed as q + 128
  AlignedVector<int8_t> w_;    // [nnzb][taps][8 co][8 ci]
  std::vector<int32_t> bias_, mult_, shift_;  // [rows * 8]
  // Unsigned kernels: [nnzb][taps][8 co] 128 * sum over ci of w, what a
  // block's zero input (q + 128 = 128) adds at a tap: put back when skipped.
  std::vector<int32_t> w128_;
  int32_t lo_, hi_;
  int64_t Wq_ = 0;
  bool rows_outer_ = false;
  std::vector<int32_t> pix0_;  // [Ho * Wq] output pixel of each virtual pixel, -1 dropped
  std::vector<int64_t> tap_off_;  // bytes from an image's first plane
};

}  // namespace bsp::kernels
