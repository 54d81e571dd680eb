#include "kernels/sparse_f32.hpp"

#include <algorithm>

namespace bsp::kernels {

namespace {

SparseKernelsF32 kernels_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return sparse_f32_avx512();
    case Isa::Avx2: return sparse_f32_avx2();
    case Isa::Scalar: break;
  }
  return sparse_f32_scalar();
}

}  // namespace

SparseConvF32::SparseConvF32(const ConvGeom& g, const compact::CompactLayer& l, const float* w, const float* bias)
    : g_(g) {
  if (g.groups != 1) fail("internal: the sparse fp32 kernels take groups = 1");
  const compact::WeightGeom wg = l.geom();
  K_ = wg.K();
  chunks_ = (K_ + kSparseChunk - 1) / kSparseChunk;
  bias_.assign(static_cast<size_t>(wg.O), 0.0f);
  if (bias) std::copy(bias, bias + wg.O, bias_.begin());
  if (l.format == compact::Format::TW) {
    for (int64_t t = 0; t < l.tiles(); ++t) {
      SparseTileF32 tile;
      tile.cols.assign(l.tile_cols.begin() + l.tile_col_ptr[t], l.tile_cols.begin() + l.tile_col_ptr[t + 1]);
      tile.rows.assign(l.tile_rows.begin() + l.tile_row_ptr[t], l.tile_rows.begin() + l.tile_row_ptr[t + 1]);
      std::sort(tile.rows.begin(), tile.rows.end());
      for (int32_t k : tile.rows)
        for (int32_t o : tile.cols) tile.v.push_back(w[o * K_ + k]);
      tile.chunk_ptr.assign(static_cast<size_t>(chunks_ + 1), 0);
      for (int64_t c = 0; c <= chunks_; ++c)
        tile.chunk_ptr[static_cast<size_t>(c)] = static_cast<int32_t>(
            std::lower_bound(tile.rows.begin(), tile.rows.end(), static_cast<int32_t>(c * kSparseChunk)) -
            tile.rows.begin());
      if (!tile.cols.empty() && !tile.rows.empty()) tiles_.push_back(std::move(tile));
    }
  } else {
    fail("internal: the sparse fp32 kernel takes tw layers");
  }
}

void SparseConvF32::run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const {
  const SparseKernelsF32 k = kernels_for(active_isa());
  const ConvGeom& g = g_;
  const int64_t O = g.Cout, P = N * g.Ho * g.Wo, tiles = (P + 15) / 16;
#pragma omp parallel
  {
    AlignedVector<float> xt(static_cast<size_t>(kSparseChunk * 16));
    AlignedVector<float> acc(static_cast<size_t>(O * 16));
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t p0 = t * 16;
      const int npix = static_cast<int>(std::min<int64_t>(16, P - p0));
      for (int64_t o = 0; o < O; ++o) std::fill_n(acc.data() + o * 16, 16, bias_[static_cast<size_t>(o)]);
      // Input pixel origin of each output pixel of the tile.
      int64_t n_[16], h0[16], w0[16];
      for (int j = 0; j < 16; ++j) {
        const int64_t p = p0 + std::min(j, npix - 1);
        n_[j] = p / (g.Ho * g.Wo);
        h0[j] = (p / g.Wo) % g.Ho * g.sh - g.pt;
        w0[j] = p % g.Wo * g.sw - g.pl;
      }
      for (int64_t c = 0; c < chunks_; ++c) {
        const int64_t k0 = c * kSparseChunk, k1 = std::min(K_, k0 + kSparseChunk);
        // xt[k - k0][j] = the input pixel j multiplies with weight k.
        for (int j = 0; j < 16; ++j) {
          int64_t tap = k0 / g.C, i = k0 % g.C;
          const float* src = nullptr;
          auto locate = [&] {
            const int64_t ih = h0[j] + (tap / g.kw) * g.dh, iw = w0[j] + (tap % g.kw) * g.dw;
            src = j < npix && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x + ((n_[j] * g.H + ih) * g.W + iw) * g.C
                                                                         : nullptr;
          };
          locate();
          for (int64_t kk = k0; kk < k1; ++kk) {
            xt[static_cast<size_t>((kk - k0) * 16 + j)] = src ? src[i] : 0.0f;
            if (++i == g.C) {
              i = 0;
              ++tap;
              if (kk + 1 < k1) locate();
            }
          }
        }
        for (const SparseTileF32& tile : tiles_) k.tile(xt.data(), tile, c, acc.data());
      }
      for (int j = 0; j < npix; ++j) {
        float* yr = y + (p0 + j) * O;
        const float* zr = z ? z + (p0 + j) * O : nullptr;
        for (int64_t o = 0; o < O; ++o) {
          float v = acc[static_cast<size_t>(o * 16 + j)] + (zr ? zr[o] : 0.0f);
          yr[o] = clamp.on ? std::min(std::max(v, clamp.lo), clamp.hi) : v;
        }
      }
    }
  }
}

}  // namespace bsp::kernels
