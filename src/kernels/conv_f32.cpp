#include "kernels/conv_f32.hpp"

#include "kernels/phase_plan.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include <omp.h>

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
  folded_ = g_.kw > 1 && w_.geom.kw == 1 && w_.geom.I == g_.kw * g_.C;
  if (w_.geom.O != g_.Cout || w_.geom.kh != g_.kh || (!folded_ && (w_.geom.I != g_.C || w_.geom.kw != g_.kw)))
    fail("internal: packed weights do not match the convolution");
  if (folded_) {
    if (g_.dw != 1) fail("internal: a width-folded convolution needs dw = 1");
    Wp_ = (g_.W + g_.pl + g_.pr + g_.sw - 1) / g_.sw * g_.sw;
    Wq_ = Wp_ / g_.sw;
    Hq_ = (g_.H + g_.pt + g_.pb + g_.sh - 1) / g_.sh;
    plane_ = (Hq_ + 1) * Wp_ * g_.C;
    for (int64_t y = 0; y < g_.kh; ++y)
      tap_off_.push_back((y * g_.dh) % g_.sh * plane_ + (y * g_.dh) / g_.sh * Wp_ * g_.C);
    pix0_ = virtual_pixel_map(g_.Ho, g_.Wo, Wq_);
    return;  // tiles outer (the default), no gather
  }
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
  // row's weights (rows outer) or a tile's input (tiles outer). A 1x1 layer
  // without padding compares what each order streams instead: tiles outer
  // reads all the weights once per tile, rows outer (groups of 2 block rows)
  // the input once per group; few pixels and many channels (7x7x2048 ->
  // 512) make tiles outer cheaper even with the larger weights.
  const int64_t weight_bytes = w_.nnz_blocks() * g_.kh * g_.kw * 64 * 4;
  const int64_t input_bytes = g_.H * g_.W * g_.C * 4;
  rows_outer_ = weight_bytes > input_bytes;
  if (no_pad && g_.kh == 1 && g_.kw == 1) {
    const int64_t pixels = g_.Ho * g_.Wo, tiles = (pixels + kTileF32 - 1) / kTileF32;
    rows_outer_ = tiles * weight_bytes > (g_.Cout + 15) / 16 * pixels * g_.C * 4;
  }
  // A tile's gather is reused by every block row of its work item: only
  // worth it when tiles are outer (rows outer would gather a tile per group).
  gather_ = !direct_ && !rows_outer_ && no_pad && g_.kh == 1 && g_.kw == 1;
  if (gather_) tap_off_.assign(1, 0);
  // Each virtual pixel's output pixel within its image (-1: a column >= Wo).
  if (!(direct_ && g_.kh == 1) && !gather_) pix0_ = virtual_pixel_map(g_.Ho, g_.Wo, Wq_);
}

// The input pixels of flat output pixels v0 ... v0 + npix - 1 of a 1x1 layer,
// as buf[block][j][8] (j < tp; channels beyond C zero), in this thread's buffer.
const float* ConvF32::gather_tile(const float* x, int64_t ldx, int64_t v0, int npix, int64_t tp) const {
  static thread_local AlignedVector<float> buf;
  const int64_t blocks = (g_.C + 7) / 8, full = g_.C / 8, rest = g_.C % 8;
  if (buf.size() < static_cast<size_t>(blocks * tp * 8)) buf.resize(static_cast<size_t>(blocks * tp * 8));
  const bool unit = g_.sh == 1 && g_.sw == 1;
  const int64_t HWo = g_.Ho * g_.Wo;
  for (int j = 0; j < npix; ++j) {
    const int64_t v = v0 + j;
    const float* src = x + (unit ? v : (v / HWo * g_.H + v % HWo / g_.Wo * g_.sh) * g_.W + v % g_.Wo * g_.sw) * ldx;
    float* dst = buf.data() + j * 8;
    for (int64_t b = 0; b < full; ++b) std::memcpy(dst + b * tp * 8, src + b * 8, 8 * sizeof(float));
    if (rest) {
      float* d = dst + full * tp * 8;
      std::memcpy(d, src + full * 8, static_cast<size_t>(rest) * sizeof(float));
      std::fill(d + rest, d + 8, 0.0f);
    }
  }
  return buf.data();
}

// The folded layout (conv_f32.hpp): row iq of phase a is the padded input's
// row iq * sh + a, pl zero pixels, the W input pixels, zeros to Wp; rows
// outside the input and the slack row are zero. A worksharing loop of the
// enclosing parallel region, ending with its barrier.
void ConvF32::copy_row_phases(const float* x, int64_t ldx, int64_t N, float* out) const {
  const int64_t C = g_.C, row = Wp_ * C;
#pragma omp for collapse(3) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t a = 0; a < g_.sh; ++a)
      for (int64_t iq = 0; iq <= Hq_; ++iq) {
        float* dst = out + (n * g_.sh + a) * plane_ + iq * row;
        const int64_t ih = iq * g_.sh + a - g_.pt;
        if (iq == Hq_ || ih < 0 || ih >= g_.H) {
          std::fill(dst, dst + row, 0.0f);
          continue;
        }
        std::fill(dst, dst + g_.pl * C, 0.0f);
        const float* src = x + (n * g_.H + ih) * g_.W * ldx;
        if (ldx == C)
          std::memcpy(dst + g_.pl * C, src, static_cast<size_t>(g_.W * C) * sizeof(float));
        else
          for (int64_t w = 0; w < g_.W; ++w) std::memcpy(dst + (g_.pl + w) * C, src + w * ldx, static_cast<size_t>(C) * sizeof(float));
        std::fill(dst + (g_.pl + g_.W) * C, dst + row, 0.0f);
      }
}

int64_t ConvF32::kept_macs() const { return w_.nnz_blocks() * 64 * w_.geom.kh * w_.geom.kw * g_.Ho * g_.Wo; }

// The input as the kernel reads it: one image's planes start `img` floats
// apart. Packing scratch is reused across calls (every element is
// rewritten) and thread_local, so only the calling thread may name it.
ConvF32::InputView ConvF32::input_view(const float* x, int64_t ldx, int64_t N) const {
  static thread_local AlignedVector<float> packed;
  InputView v;
  v.x = x;
  v.pix_stride = ldx;
  if (direct_) {
    v.img = g_.H * g_.W * ldx;
  } else if (folded_) {
    v.img = g_.sh * plane_;
    // + 64: a tiny image's last pixel may read past the last slack row
    // (zeroed: stale floats there could be non-finite).
    if (packed.size() < static_cast<size_t>(N * v.img + 64)) packed.resize(static_cast<size_t>(N * v.img + 64));
    std::fill(packed.begin() + N * v.img, packed.begin() + N * v.img + 64, 0.0f);
    v.pix_stride = g_.sw * g_.C;
    v.x = v.rows_to = packed.data();
  } else if (gather_) {
    v.pix_stride = 8;  // x, block_stride: the item's gather buffer
  } else {
    // Packed layers pack inside the kernel's parallel region (one fork and
    // join per layer: with passive OpenMP threads each costs a wake-up).
    v.pp.emplace(g_);
    v.img = v.pp->image_elems();
    if (packed.size() < static_cast<size_t>(N * v.img)) packed.resize(static_cast<size_t>(N * v.img));
    v.pix_stride = 8;
    v.block_stride = v.pp->block_elems();
    v.x = v.pack_to = packed.data();
  }
  return v;
}

void ConvF32::run(const float* x, int64_t ldx, int64_t N, float* y, int64_t ldy, const float* z, int64_t ldz,
                  Clamp clamp, const ActZeroMap* zeros) const {
  if (direct_ && ldx != g_.C) fail("internal: a direct convolution needs a dense NHWC input");
  if (ldx < g_.C) fail("internal: a pixel stride below the channel count");
  const Isa isa = active_isa();
  const TileFnF32 fn = tile_f32(isa);
  const int P = tile_pixels_f32(isa);
  const int64_t rows = w_.rows();

  const InputView in = input_view(x, ldx, N);
  const float* xin = in.x;
  const int64_t img = in.img, pix_stride = in.pix_stride, block_stride = in.block_stride;
  const std::optional<PhasePlan>& pp = in.pp;
  float* const pack_to = in.pack_to;

  // Virtual pixels: per image Ho * Wq; a 1x1 direct or gathered layer treats
  // the batch as one image.
  const bool flat = (direct_ && g_.kh == 1) || gather_;
  const int64_t images = flat ? 1 : N;
  const int64_t V = flat ? N * g_.Ho * g_.Wo : g_.Ho * Wq_;
  int64_t tiles = (V + P - 1) / P;
  // Packed layers take every tile size at full speed: spread the pixels
  // evenly (49 pixels: 17 + 16 + 16, not 24 + 24 + 1, whose lone pixel would
  // stream the block row's weights for one accumulator).
  int64_t tp = pix_stride == 8 ? (V + tiles - 1) / tiles : P;
  tiles = (V + tp - 1) / tp;
  // Skipping (a zero map, act_skip.hpp): row tiles instead, kSkipTile
  // output columns of one output row from a multiple of kSkipTile, so that
  // a tap of a stride-1 layer reads the columns of two or three 8-column
  // units, not of the four or five a 24-pixel tile spanning row ends
  // reads: more (tile, block, tap) triples are all zero (measured in
  // tests/bench/bench_act_skip.cpp: 16 columns beat 8, whose tiles reuse a
  // weight vector too little, and 24). Not for a dense layer (Wo = 1): its
  // tiles are images, kept as many as before.
  const bool skip = zeros && !folded_;
  const bool row_tiles = skip && zeros->row_tiles && g_.Wo > 1;
  const int64_t per_row = (g_.Wo + kSkipTile - 1) / kSkipTile;
  if (row_tiles) {
    tp = kSkipTile;
    tiles = (flat ? N * g_.Ho : g_.Ho) * per_row;
  }
  // Tile `tile`'s first virtual pixel and its pixel count.
  auto tile_span = [&](int64_t tile) -> std::pair<int64_t, int> {
    if (!row_tiles) return {tile * tp, static_cast<int>(std::min<int64_t>(tp, V - tile * tp))};
    const int64_t row = tile / per_row, col = tile % per_row * kSkipTile;
    return {row * (flat ? g_.Wo : Wq_) + col, static_cast<int>(std::min<int64_t>(kSkipTile, g_.Wo - col))};
  };
  // Work items: (image, tile, group of block rows). A group spans whole
  // 64-byte output lines (16 channels) so that two threads never write the
  // same line; tiles outer keeps a tile's input in L1 across the rows of
  // its group, rows outer keeps the group's weights cached across tiles.
  // Groups are as large as the thread count allows.
  const int threads = omp_get_max_threads();
  int64_t group = rows;
  if (rows_outer_) {
    group = 2;
  } else {
    while (group > 2 && images * tiles * ((rows + group - 1) / group) < 8 * threads) group = std::max<int64_t>(2, (group / 2 + 1) / 2 * 2);
  }
  const int64_t groups = (rows + group - 1) / group;
  const int64_t items = images * tiles * groups;
  const int ntaps = static_cast<int>(tap_off_.size());
  std::vector<int64_t> taps = tap_off_;
  if (direct_)
    for (auto& t : taps) t *= ldx;

  float* const rows_to = in.rows_to;
  // Skip masks, one per (image, tile) (act_skip.hpp), filled in the region.
  static thread_local std::vector<uint8_t> masks;
  const int64_t mask_len = (g_.C + 7) / 8 * ntaps;
  SkipGeom sg{};
  if (skip) {
    if (zeros->N != N || zeros->H != g_.H || zeros->W != g_.W || zeros->C != g_.C || ldx != g_.C)
      fail("internal: the zero map does not match the convolution's input");
    sg = {g_.H, g_.W, g_.Ho, g_.Wo, g_.sh, g_.sw, g_.pt, g_.pl, g_.dh, g_.dw, g_.kh, g_.kw, Wq_, flat, direct_};
    if (masks.size() < static_cast<size_t>(images * tiles * mask_len))
      masks.resize(static_cast<size_t>(images * tiles * mask_len));
  }
  uint8_t* const mask0 = masks.data();
#pragma omp parallel
  {
    if (pp) pp->pack_shared(g_, x, ldx, N, pack_to, [](float v) { return v; }, 0.0f);
    if (rows_to) copy_row_phases(x, ldx, N, rows_to);
    if (skip) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < images * tiles; ++i) {
        const auto [v0, npix] = tile_span(i % tiles);
        tile_skip_mask(sg, *zeros, i / tiles, v0, npix, ntaps, mask0 + i * mask_len);
      }
    }
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t it = 0; it < items; ++it) {
      const auto [n, gi, tile] = work_item(it, groups, tiles, rows_outer_);
      const auto [v0, npix] = tile_span(tile);
      // Output and residual offsets of each pixel's channel 0 (-1: dropped column).
      int64_t yoff[kTileF32], zoff[kTileF32];
      for (int j = 0; j < npix; ++j) {
        const int64_t v = v0 + j;
        int64_t p = v;
        if (!flat) {
          const int32_t q = pix0_[static_cast<size_t>(v)];
          p = q < 0 ? -1 : n * g_.Ho * g_.Wo + q;
        }
        yoff[j] = p < 0 ? -1 : p * ldy;
        zoff[j] = p < 0 ? -1 : p * ldz;
      }
      TileF32 a;
      a.x = xin + n * img + v0 * pix_stride;
      a.ldx = pix_stride;
      a.ldb = block_stride;
      if (gather_) {
        a.x = gather_tile(x, ldx, v0, npix, tp);
        a.ldb = tp * 8;
      }
      a.tap_off = taps.data();
      a.ntaps = ntaps;
      a.yoff = yoff;
      a.zoff = zoff;
      a.clamp = clamp.on;
      a.lo = clamp.lo;
      a.hi = clamp.hi;
      a.npix = npix;
      a.row_ptr = w_.row_ptr.data();
      a.col_idx = w_.col_idx.data();
      a.w = w_.w.data();
      a.bias = w_.bias.data();
      a.r0 = gi * group;
      a.r1 = std::min(rows, (gi + 1) * group);
      a.cout = g_.Cout;
      a.y = y;
      a.z = z;
      a.skip = skip ? mask0 + (n * tiles + tile) * mask_len : nullptr;
      if (npix <= P) {
        fn(a);
      } else {  // a row tile wider than the ISA's tile (AVX2: 6): even parts sharing its mask
        const int parts = (npix + P - 1) / P, each = (npix + parts - 1) / parts;
        for (int c0 = 0; c0 < npix; c0 += each) {
          TileF32 b = a;
          b.x += c0 * a.ldx;
          b.yoff += c0;
          b.zoff += c0;
          b.npix = std::min(each, npix - c0);
          fn(b);
        }
      }
    }
  }
}

}  // namespace bsp::kernels
