// fp32 kernel for N:M layers (compact nm form), conv2d and dense, NHWC.
//
// Why pixels as lanes. Every output channel keeps its own N of each M input
// channels, so no two output channels share their kept inputs: a kernel with
// output channels in the vector lanes (conv_f32.hpp) would have to gather a
// different input per lane (one shuffle per FMA: measured as costly as the
// FMA itself, which leaves 2:4 no faster than dense). With pixels in the
// lanes the gather is free: it is the address of a load. For a tile of up to
// 64 output pixels and a chunk of KC reduction indices k = (y*kw + x)*I + i,
// xt[k][64] holds what each pixel multiplies with weight k (the transposed
// im2col, built with 16x16 transposes; zero in the padding). Each kept weight
// of an output channel is then one broadcast and one FMA per 16 pixels with
// an xt row read from L1: the same one load per FMA as the dense kernel, and
// only N/M of the FMAs.
//
// Accumulators: per work item (a tile and a range of output channels) an
// [o][64] buffer, bias first, carried across chunks in registers per output
// channel; the epilogue transposes it back to NHWC (16x16 blocks) and adds
// the residual and the clamp.
#pragma once

#include <cstdint>
#include <vector>

#include "compact/weights.hpp"
#include "core/fusion.hpp"
#include "core/shapes.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

constexpr int kNmTile = 64;    // pixels per tile: xt rows are 64 floats (4 vectors of 16)
constexpr int kNmChunk = 128;  // KC: reduction indices per xt chunk (32 KiB: stays in L1)
static_assert(kNmChunk * kNmTile * sizeof(float) <= 65536, "xt row offsets are 16-bit");

// One chunk's kept weights, output channel by output channel.
struct NmChunkF32 {
  const int32_t* ptr;  // [O + 1]: channel o's entries are [ptr[o], ptr[o + 1])
  const uint16_t* k;   // (k - chunk start) * kNmTile * 4: the byte offset of k's xt row
  const float* v;
};

// The per-ISA pieces (nm_f32_impl.inc).
struct NmKernelsF32 {
  // acc[(o - o0) * 64 + j] += sum over o's entries of v * xt[k * 64 + j], for
  // o in [o0, o1) and j < 16 * nvec (nvec in 1..4).
  void (*accumulate)(const float* xt, const NmChunkF32& c, int64_t o0, int64_t o1, int nvec, float* acc);
  // dst[c * ldd + j] = src[j][c] for j, c < 16 (src: 16 row pointers).
  void (*transpose16)(const float* const* src, float* dst, int64_t ldd);
  // The epilogue of 16 output channels x npix (<= 16) pixels: acc row c is
  // channel c's 16 pixels (stride 64); y[j * ldy + c] = clamp(acc[c][j] +
  // z[j * ldy + c]) for c < nco (<= 16), j < npix; z may be null.
  void (*store16)(const float* acc, int nco, int npix, float* y, int64_t ldy, const float* z, Clamp clamp);
};
NmKernelsF32 nm_f32_scalar();
NmKernelsF32 nm_f32_avx2();
NmKernelsF32 nm_f32_avx512();

class NmConvF32 {
 public:
  // w: the folded dense fp32 weights [O, kh, kw, I], zero where the layer's
  // N:M structure prunes; layer: its nm compact form (positions); bias [O]
  // or null. I must be a multiple of M (the compact nm form guarantees it).
  NmConvF32(const ConvGeom& g, const compact::CompactLayer& layer, const float* w, const float* bias);
  // x [N, H, W, C] (dense layers: [N, C] with H = W = 1) -> y [N, Ho, Wo, O];
  // z (like y) added before the clamp.
  void run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const;
  // Kept (nonzero) weights: the FMAs per 16 pixels.
  int64_t kept() const { return static_cast<int64_t>(k_.size()); }

 private:
  // Where a tile's output pixels read their input: image offset (floats)
  // and the top-left input row and column of the window; npix of them.
  struct TileOrigin {
    int64_t img[kNmTile], ih[kNmTile], iw[kNmTile];
    int npix;
  };
  TileOrigin origin(int64_t p0, int npix) const;
  // xt rows [k0, k1) of a tile.
  void build_chunk(const NmKernelsF32& kern, const float* x, const TileOrigin& t, int64_t k0, int64_t k1,
                   float* xt) const;

  ConvGeom g_;
  int64_t K_ = 0, chunks_ = 0;
  std::vector<int32_t> ptr_;  // [chunks][O] entry offsets (chunk-major), then the end
  std::vector<uint16_t> k_;
  AlignedVector<float> v_;
  std::vector<float> bias_;
};

}  // namespace bsp::kernels
