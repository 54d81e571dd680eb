#include "kernels/conv_f32.hpp"

#include "kernels/phase_plan.hpp"

#include <algorithm>
#include <cstring>

namespace bsp::kernels {

TileFnF32 tile_f32(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return tile_f32_avx512();
    case Isa::Avx2: return tile_f32_avx2();
    case Isa::Scalar: break;
  }
  return tile_f32_scalar();
}

int tile_pixels_f32(Isa isa) { return isa == Isa::Avx512 ? 24 : isa == Isa::Avx2 ? 6 : 8; }

PackedF32 pack_f32(const float* w, const WeightGeom& g, const std::vector<int32_t>& row_ptr,
                   const std::vector<int32_t>& col_idx, const float* bias) {
  PackedF32 p;
  p.geom = g;
  const int64_t rows = (g.O + 7) / 8, cols = (g.I + 7) / 8, taps = g.kh * g.kw;
  if (row_ptr.empty()) {
    for (int64_t r = 0; r <= rows; ++r) p.row_ptr.push_back(static_cast<int32_t>(r * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) p.col_idx.push_back(static_cast<int32_t>(c));
  } else {
    if (static_cast<int64_t>(row_ptr.size()) != rows + 1) fail("internal: bsr structure does not match the weight");
    p.row_ptr = row_ptr;
    p.col_idx = col_idx;
  }
  p.w.assign(p.col_idx.size() * static_cast<size_t>(taps * 64), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t j = p.row_ptr[r]; j < p.row_ptr[r + 1]; ++j) {
      const int64_t c = p.col_idx[j];
      float* dst = p.w.data() + static_cast<size_t>(j) * static_cast<size_t>(taps * 64);
      for (int64_t t = 0; t < taps; ++t)
        for (int q = 0; q < 4; ++q)
          for (int co = 0; co < 8; ++co)
            for (int h = 0; h < 2; ++h) {
              const int64_t o = r * 8 + co, i = c * 8 + 2 * q + h;
              if (o < g.O && i < g.I) dst[t * 64 + q * 16 + co * 2 + h] = w[(o * taps + t) * g.I + i];
            }
    }
  p.bias.assign(static_cast<size_t>(rows * 8), 0.0f);
  if (bias) std::copy(bias, bias + g.O, p.bias.begin());
  return p;
}

ConvF32::ConvF32(const ConvGeom& g, PackedF32 w) : g_(g), w_(std::move(w)) {
  if (g_.groups != 1) fail("internal: the fp32 kernel takes groups = 1");
  if (w_.geom.O != g_.Cout || w_.geom.I != g_.C || w_.geom.kh != g_.kh || w_.geom.kw != g_.kw)
    fail("internal: packed weights do not match the convolution");
  const bool no_pad = g_.pt == 0 && g_.pl == 0 && g_.pb == 0 && g_.pr == 0;
  // Reading NHWC directly (no packing pass) for the channel counts the
  // kernels are compiled for; larger strides would also pile a tile's rows
  // into a few L1 sets.
  direct_ = g_.sh == 1 && g_.sw == 1 && no_pad && g_.kw == 1 && direct_stride(g_.C);
  if (direct_) {
    Wq_ = g_.W;
    for (int64_t y = 0; y < g_.kh; ++y) tap_off_.push_back(y * g_.dh * g_.W);  // pixels; run() scales by ldx
  } else {
    const PhasePlan pp(g_);
    Wq_ = pp.Wq;
    for (size_t t = 0; t < pp.tap_pixel.size(); ++t) tap_off_.push_back(pp.tap_elems(t));
  }
  // Keep whichever is larger cache-resident across the inner loop: a block
  // row's weights (rows outer) or a tile's input (tiles outer).
  const int64_t weight_bytes = w_.nnz_blocks() * g_.kh * g_.kw * 64 * 4;
  const int64_t input_bytes = g_.H * g_.W * g_.C * 4;
  rows_outer_ = weight_bytes > input_bytes;
}

int64_t ConvF32::kept_macs() const { return w_.nnz_blocks() * 64 * g_.kh * g_.kw * g_.Ho * g_.Wo; }

void ConvF32::run(const float* x, int64_t ldx, int64_t N, float* y, int64_t ldy, const float* z, int64_t ldz,
                  bool relu) const {
  if (direct_ && ldx != g_.C) fail("internal: a direct convolution needs a dense NHWC input");
  const Isa isa = active_isa();
  const TileFnF32 fn = tile_f32(isa);
  const int P = tile_pixels_f32(isa);
  const int64_t rows = w_.rows();

  // The input as the kernel reads it: one image's planes start `img` floats apart.
  const float* xin = x;
  int64_t img = 0, pix_stride = ldx, block_stride = 8;
  // Packing scratch, reused across calls (every element is rewritten);
  // thread_local, so only this thread may name it (xin below).
  static thread_local AlignedVector<float> packed;
  if (direct_) {
    img = g_.H * g_.W * ldx;
  } else {
    const PhasePlan pp(g_);
    img = pp.image_elems();
    if (packed.size() < static_cast<size_t>(N * img)) packed.resize(static_cast<size_t>(N * img));
    pix_stride = 8;
    block_stride = pp.block_elems();
    pp.pack(g_, x, ldx, N, packed.data(), [](float v) { return v; }, 0.0f);
    xin = packed.data();
  }

  // Virtual pixels: per image Ho * Wq; a 1x1 direct layer treats the batch as one image.
  const bool flat = direct_ && g_.kh == 1;
  const int64_t images = flat ? 1 : N;
  const int64_t V = flat ? N * g_.Ho * g_.Wo : g_.Ho * Wq_;
  const int64_t tiles = (V + P - 1) / P;
  const int64_t items = images * tiles * rows;
  const int ntaps = static_cast<int>(tap_off_.size());
  std::vector<int64_t> taps = tap_off_;
  if (direct_)
    for (auto& t : taps) t *= ldx;

#pragma omp parallel for schedule(dynamic, 2)
  for (int64_t it = 0; it < items; ++it) {
    int64_t r, tile;
    const int64_t n = it / (rows * tiles), rt = it % (rows * tiles);
    if (rows_outer_)
      r = rt / tiles, tile = rt % tiles;
    else
      r = rt % rows, tile = rt / rows;
    const int64_t v0 = tile * P;
    const int npix = static_cast<int>(std::min<int64_t>(P, V - v0));
    float* yp[kTileF32];
    const float* zp[kTileF32];
    for (int j = 0; j < npix; ++j) {
      const int64_t v = v0 + j;
      int64_t pix;  // output pixel index in [N * Ho * Wo)
      if (flat) {
        pix = v;
      } else {
        const int64_t oh = v / Wq_, ow = v % Wq_;
        pix = ow < g_.Wo ? (n * g_.Ho + oh) * g_.Wo + ow : -1;
      }
      yp[j] = pix < 0 ? nullptr : y + pix * ldy + r * 8;
      zp[j] = pix < 0 || !z ? nullptr : z + pix * ldz + r * 8;
    }
    TileF32 a;
    a.x = xin + n * img + v0 * pix_stride;
    a.ldx = pix_stride;
    a.ldb = block_stride;
    a.tap_off = taps.data();
    a.ntaps = ntaps;
    a.cols = w_.col_idx.data() + w_.row_ptr[r];
    a.nblk = w_.row_ptr[r + 1] - w_.row_ptr[r];
    a.w = w_.w.data() + static_cast<size_t>(w_.row_ptr[r]) * static_cast<size_t>(ntaps * 64);
    a.y = yp;
    a.z = z ? zp : nullptr;
    a.bias = w_.bias.data() + r * 8;
    a.co_valid = static_cast<int>(std::min<int64_t>(8, g_.Cout - r * 8));
    a.relu = relu;
    a.npix = npix;
    fn(a);
  }
}

}  // namespace bsp::kernels
