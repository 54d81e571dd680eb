// fp32 kernel for the tw compact form (conv2d and dense, NHWC); nm layers
// have their own (nm_f32.hpp).
//
// It works on a transposed im2col tile: for 16 consecutive output pixels
// and a chunk of KC reduction indices k = (y*kw + x)*I + i, xt[k][16] holds
// the input each pixel multiplies with weight k (zero in the padding), so one
// 16-lane vector load serves one weight for 16 pixels. Per tile, the
// gathered rows are shared by the tile's n_t output channels: one load of
// xt[row] feeds n_t FMAs (the packed matrix row).
// Accumulators live in a per-thread [O][16] buffer that starts at the bias;
// the epilogue transposes it back to NHWC and adds the residual and relu.
#pragma once

#include <cstdint>
#include <vector>

#include "compact/weights.hpp"
#include "core/fusion.hpp"
#include "core/shapes.hpp"
#include "kernels/aligned.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

constexpr int kSparseChunk = 256;  // KC: reduction indices per xt chunk (16 KiB)

// A tw tile's kept weights.
struct SparseTileF32 {
  std::vector<int32_t> cols;   // output channels
  std::vector<int32_t> rows;   // k indices, ascending
  std::vector<int32_t> chunk_ptr;  // [chunks + 1] into rows
  AlignedVector<float> v;      // [rows.size()][cols.size()] row-major
};

// The per-ISA inner loops (one 16-pixel tile, one xt chunk).
struct SparseKernelsF32 {
  // acc[cols[j]][16] += sum over the tile's rows in this chunk of v[i][j] * xt[rows[i] - base]
  void (*tile)(const float* xt, const SparseTileF32& t, int64_t chunk, float* acc);
};
SparseKernelsF32 sparse_f32_scalar();
SparseKernelsF32 sparse_f32_avx2();
SparseKernelsF32 sparse_f32_avx512();

class SparseConvF32 {
 public:
  // w: the folded dense fp32 weights [O, kh, kw, I]; the layer gives the
  // structure (tw). bias [O] or null.
  SparseConvF32(const ConvGeom& g, const compact::CompactLayer& layer, const float* w, const float* bias);
  // x [N, H, W, C] (dense layers: [N, C] with H = W = 1) -> y [N, Ho, Wo, O];
  // z (like y) added before the clamp.
  void run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const;

 private:
  ConvGeom g_;
  int64_t K_ = 0, chunks_ = 0;
  std::vector<SparseTileF32> tiles_;
  std::vector<float> bias_;
};

}  // namespace bsp::kernels
