// int8 kernel for N:M layers (NHWC), computing exactly the int8 semantics of
// compact/int8.hpp (int32 accumulation, bias, per-output-channel
// requantisation, clamp, the fused add) like conv_i8.hpp.
//
// Lanes: 16 output channels x one int32 dword of vpdpbusd = 4 kept weights
// of that channel. With N:M along Cin, 4 kept weights are the kept ones of
// 4/N consecutive groups, i.e. of a "span" of S = 4M/N input channels (2:4:
// 8 channels, 2:8: 16). Per pixel, tap and span the kernel broadcasts the S
// input bytes to every 128-bit lane and one vpshufb gathers, for each output
// channel, the 4 inputs its kept weights multiply (an index vector per
// 16-channel block, tap and span, packed beside the weights); one vpdpbusd
// then does 64 kept multiply-accumulates. The dense int8 kernel needs M/N
// vpdpbusd for the same 16 channels and span: 2:4 halves the dot products,
// 2:8 quarters them, for one shuffle each.
//
// Each work item first copies its tile's inputs (an im2col of 16 pixels,
// every tap) into [tap][line][pixel][L] (lines of L = 64 input channels, one
// vector each, or L = S when I is not a multiple of 64) as unsigned bytes u = q + 128
// (vpdpbusd multiplies unsigned by signed; padding is u = 128, q = 0), so the
// kernel's loads are constant offsets; the bias absorbs -128 * sum(w) per
// output channel.
#pragma once

#include <cstdint>
#include <vector>

#include "compact/int8.hpp"
#include "core/shapes.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

constexpr int kNmTileI8 = 16;  // pixels per register tile

// One call: npix pixels x 16-channel blocks b0 ... b1 - 1.
struct NmTileI8 {
  const uint8_t* x;         // the tile's unsigned input, [ntaps][I / L][16 pixels][L bytes]
  int ntaps;
  int64_t spans;            // spans per tap (I / S)
  int span;                 // S: 8 or 16 input channels
  int line;                 // L: 64 (I a multiple of 64) or S
  const uint8_t* idx;       // per block, tap and span: 64 shuffle indices (lane co, byte e: an offset < S)
  const int8_t* w;          // likewise: 64 weights ([co][e])
  const int32_t* bias;      // [blocks * 16] bias - 128 * sum(w)
  const int32_t* mult;      // [blocks * 16]
  const int32_t* shift;
  int32_t lo, hi;
  int64_t b0, b1;
  int64_t cout;
  int8_t* const* y;         // [npix] each pixel's output (channel 0), or null: drop
  const int8_t* const* z;   // [npix] the fused add's other addend, like y; null: no add
  const q8::FusedAdd* add;
  int npix;
};
using NmTileFnI8 = void (*)(const NmTileI8&);
NmTileFnI8 nm_tile_i8_scalar();
NmTileFnI8 nm_tile_i8_avx512();  // AVX-512 VNNI
// The tile's packed input (NmTileI8::x) from src [taps][16] (each pixel's
// input at each tap, null in the padding): u = q + 128, padding 128.
using NmPackFnI8 = void (*)(const int8_t* const* src, int64_t taps, int64_t C, int L, uint8_t* x);
NmPackFnI8 nm_pack_i8_scalar();
NmPackFnI8 nm_pack_i8_avx512();

class NmConvI8 {
 public:
  // The span S = 4M/N this kernel takes for an N:M layer of I input
  // channels, or 0 when it cannot (4 not a multiple of N, S > 16, or I not
  // a multiple of S).
  static int span_for(int64_t N, int64_t M, int64_t I);
  // Whether the kernel takes weights w [O, kh, kw, I] of g as N:M: a span
  // exists and no group of M input channels has more than N nonzeros (a
  // file's int8 program could disagree with its nm layer).
  static bool takes(const ConvGeom& g, int64_t N, int64_t M, const int8_t* w);
  // w: the layer's int8 weights [O, kh, kw, I], at most N nonzero in each
  // group of M input channels (else bsp::Error); bias and rq per output
  // channel (q8::QNode). The kernel follows active_isa() when constructed:
  // the VNNI one on AVX-512, else the scalar one.
  NmConvI8(const ConvGeom& g, int64_t N, int64_t M, const int8_t* w, const int32_t* bias,
           const std::vector<q8::Requant>& rq, int32_t lo, int32_t hi);
  // x [N, H, W, C] int8 -> y [N, Ho, Wo, Cout]; with z and add, y is the
  // fused add of the conv's output and z.
  void run(const int8_t* x, int64_t N, int8_t* y, const int8_t* z = nullptr, const q8::FusedAdd* add = nullptr) const;
  bool vnni() const { return vnni_; }

 private:
  ConvGeom g_;
  int span_ = 8, line_ = 8;
  int64_t spans_ = 0, blocks_ = 0;
  bool vnni_ = false;
  AlignedVector<uint8_t> idx_;  // [blocks][taps][spans][64]
  AlignedVector<int8_t> w_;     // likewise
  std::vector<int32_t> bias_, mult_, shift_;  // [blocks * 16]
  int32_t lo_, hi_;
};

}  // namespace bsp::kernels
