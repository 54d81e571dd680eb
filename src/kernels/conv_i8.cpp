#include "kernels/conv_i8.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <omp.h>

#include "kernels/phase_plan.hpp"

namespace bsp::kernels {

namespace {

void pack_run_generic(const int8_t* src, int64_t src_stride, int64_t npix, int64_t C, uint8_t* dst, int64_t bstride,
                      uint8_t flip) {
  const int64_t full = C / 8, blocks = (C + 7) / 8;
  for (int64_t p = 0; p < npix; ++p) {
    const int8_t* s = src + p * src_stride;
    // (Through a local array: src and dst may alias as far as the compiler
    // knows, which kept the copy scalar.)
    uint8_t v[8];
    for (int64_t cb = 0; cb < full; ++cb) {
      for (int c = 0; c < 8; ++c) v[c] = static_cast<uint8_t>(s[cb * 8 + c]) ^ flip;
      std::memcpy(dst + cb * bstride + p * 8, v, sizeof v);
    }
    for (int64_t cb = full; cb < blocks; ++cb) {  // the partial block
      for (int64_t c = 0; c < 8; ++c) v[c] = (cb * 8 + c < C ? static_cast<uint8_t>(s[cb * 8 + c]) : uint8_t{0}) ^ flip;
      std::memcpy(dst + cb * bstride + p * 8, v, sizeof v);
    }
  }
}

}  // namespace

PackRunI8 pack_run_i8_generic() { return &pack_run_generic; }

void ConvI8::pack(const PhasePlan& pp, const int8_t* x, int64_t N, uint8_t* out, uint8_t flip, uint8_t pad,
                  PackRunI8 pack_run) const {
  const ConvGeom& g = g_;
  const int64_t img = pp.image_elems(), blocks = pp.Cp / 8, bstride = pp.block_elems(), Wq = pp.Wq;
  // One plane row per iteration (rows past Hq: the slack), as pack_shared.
  const int64_t rows = (pp.plane + Wq - 1) / Wq;
#pragma omp for collapse(3) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ph = 0; ph < pp.phases; ++ph)
      for (int64_t iq = 0; iq < rows; ++iq) {
        const int64_t a = pp.phase_ab[static_cast<size_t>(ph)] / g.sw, b = pp.phase_ab[static_cast<size_t>(ph)] % g.sw;
        const int64_t ih = iq * g.sh + a - g.pt;
        const int64_t width = std::min(Wq, pp.plane - iq * Wq);
        uint8_t* dst = out + n * img + (ph * pp.plane + iq * Wq) * 8;
        // The real columns jq in [j0, j1): iw = jq * sw + b - pl in [0, W).
        // (None: j0 = j1 = width, all padding.)
        int64_t j0 = width, j1 = width;
        if (iq < pp.Hq && ih >= 0 && ih < g.H && g.W - 1 + g.pl - b >= 0) {
          j0 = std::clamp<int64_t>((g.pl - b + g.sw - 1) / g.sw, 0, width);
          j1 = std::clamp<int64_t>((g.W - 1 + g.pl - b) / g.sw + 1, j0, width);
        }
        // The padding columns (a few per row: 8-byte stores, not memset calls).
        uint64_t pad8;
        std::memset(&pad8, pad, sizeof pad8);
        for (int64_t cb = 0; cb < blocks; ++cb) {
          for (int64_t jq = 0; jq < j0; ++jq) std::memcpy(dst + cb * bstride + jq * 8, &pad8, 8);
          for (int64_t jq = j1; jq < width; ++jq) std::memcpy(dst + cb * bstride + jq * 8, &pad8, 8);
        }
        if (j1 == j0) continue;
        const int8_t* src = x + ((n * g.H + ih) * g.W + (j0 * g.sw + b - g.pl)) * g.C;
        pack_run(src, g.sw * g.C, j1 - j0, g.C, dst + j0 * 8, bstride, flip);
      }
}


ConvI8::ConvI8(const ConvGeom& g, const int8_t* w, const std::vector<int32_t>& row_ptr,
               const std::vector<int32_t>& col_idx, const int32_t* bias, const std::vector<q8::Requant>& rq,
               int32_t lo, int32_t hi)
    : g_(g), lo_(lo), hi_(hi) {
  if (g.groups != 1) fail("internal: the int8 kernel takes groups = 1");
  const int64_t O = g.Cout, I = g.C, taps = g.kh * g.kw;
  const int64_t rows = (O + 7) / 8, cols = (I + 7) / 8;
  if (row_ptr.empty()) {
    for (int64_t r = 0; r <= rows; ++r) row_ptr_.push_back(static_cast<int32_t>(r * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) col_idx_.push_back(static_cast<int32_t>(c));
  } else {
    row_ptr_ = row_ptr;
    col_idx_ = col_idx;
  }
  // Blocks [nnzb][taps][8 co][8 ci], zero beyond O and I; the sums feed the
  // correction of the unsigned input.
  w_.assign(col_idx_.size() * static_cast<size_t>(taps * 64), 0);
  std::vector<int64_t> sum(static_cast<size_t>(rows * 8), 0);
  bool has_min = false;  // a weight of -128: the AVX2 kernel cannot take it
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t j = row_ptr_[r]; j < row_ptr_[r + 1]; ++j) {
      int8_t* dst = w_.data() + static_cast<size_t>(j) * static_cast<size_t>(taps * 64);
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t co = 0; co < 8; ++co)
          for (int64_t ci = 0; ci < 8; ++ci) {
            const int64_t o = r * 8 + co, i = col_idx_[j] * 8 + ci;
            if (o >= O || i >= I) continue;
            const int8_t v = w[(o * taps + t) * I + i];
            dst[(t * 8 + co) * 8 + ci] = v;
            sum[static_cast<size_t>(o)] += v;
            has_min |= v == -128;
          }
    }
  const Isa isa = active_isa();
  kernel_ = isa == Isa::Avx512 ? Kernel::Vnni : isa == Isa::Avx2 && !has_min ? Kernel::Avx2 : Kernel::Scalar;
  bias_.assign(static_cast<size_t>(rows * 8), 0);
  mult_.assign(static_cast<size_t>(rows * 8), 0);
  shift_.assign(static_cast<size_t>(rows * 8), 0);
  for (int64_t o = 0; o < O; ++o) {
    const size_t k = static_cast<size_t>(o);
    bias_[k] = static_cast<int32_t>(unsigned_input() ? bias[o] - 128 * sum[k] : bias[o]);
    mult_[k] = rq[k].mult;
    shift_[k] = rq[k].shift;
  }
  if (unsigned_input()) {
    w128_.assign(col_idx_.size() * static_cast<size_t>(taps * 8), 0);
    for (size_t j = 0; j < col_idx_.size(); ++j)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t co = 0; co < 8; ++co) {
          int32_t s = 0;
          for (int64_t ci = 0; ci < 8; ++ci) s += w_[(j * static_cast<size_t>(taps) + static_cast<size_t>(t)) * 64 + static_cast<size_t>(co * 8 + ci)];
          w128_[(j * static_cast<size_t>(taps) + static_cast<size_t>(t)) * 8 + static_cast<size_t>(co)] = 128 * s;
        }
  }
  const PhasePlan pp(g_);
  Wq_ = pp.Wq;
  for (size_t t = 0; t < pp.tap_pixel.size(); ++t) tap_off_.push_back(pp.tap_elems(t));
  rows_outer_ = nnz_blocks() * taps * 64 > g.H * g.W * g.C;  // see ConvF32
  pix0_ = virtual_pixel_map(g_.Ho, g_.Wo, Wq_);
}

void ConvI8::run(const int8_t* x, int64_t N, int8_t* y, const int8_t* z, const q8::FusedAdd* add,
                 const ActZeroMap* zeros) const {
  if (!z != !add) fail("internal: a fused add needs both its addend and its parameters");
  const PackRunI8 pack_run = kernel_ == Kernel::Vnni ? pack_run_i8_avx512() : pack_run_i8_generic();
  const TileFnI8 fn = kernel_ == Kernel::Avx2 ? tile_i8_avx2() : kernel_ == Kernel::Vnni ? tile_i8_avx512() : tile_i8_scalar();
  const int P = kernel_ == Kernel::Avx2 ? kTileI8Avx2 : kernel_ == Kernel::Vnni ? kTileI8 : 8;
  const int64_t rows = static_cast<int64_t>(row_ptr_.size()) - 1;
  const PhasePlan pp(g_);
  const int64_t img = pp.image_elems();
  // Packing scratch, reused across calls (every element is rewritten).
  static thread_local AlignedVector<uint8_t> packed;
  const size_t need = static_cast<size_t>(N * img);
  if (packed.size() < need) packed.resize(need);
  // (thread_local: take the pointer here, not inside the parallel region)
  uint8_t* const xu8 = packed.data();

  const int64_t V = g_.Ho * Wq_;
  // Skipping (a zero map): row tiles of kSkipTile columns, as ConvF32::run
  // and for the same reason (24-pixel tiles spanning row ends have few
  // (tile, block, tap) triples all zero: skipping did not pay on them).
  const bool row_tiles = zeros && g_.Wo > 1;
  const int64_t per_row = (g_.Wo + kSkipTile - 1) / kSkipTile;
  const int64_t tiles = row_tiles ? g_.Ho * per_row : (V + P - 1) / P;
  auto tile_span = [&](int64_t tile) -> std::pair<int64_t, int> {
    if (!row_tiles) return {tile * P, static_cast<int>(std::min<int64_t>(P, V - tile * P))};
    const int64_t col = tile % per_row * kSkipTile;
    return {tile / per_row * Wq_ + col, static_cast<int>(std::min<int64_t>(kSkipTile, g_.Wo - col))};
  };
  // Work items: (image, tile, group of block rows), at least 8 per thread
  // (the rule of ConvF32::run, without its even groups: a block row's int8
  // output is 8 bytes, and whole 64-byte lines would take 8 rows, too coarse
  // for small layers; two threads may then share an output line, never a
  // byte). One row per item left the items too small for 1x1 layers, and
  // for rows outer too: an item's setup and its dispatch cost as much as a
  // sparse row's work. Rows outer, a group's weights stay within a quarter of
  // L2 (kGroupBytes), to stay cached across the group's tiles.
  const int threads = omp_get_max_threads();
  constexpr int64_t kGroupBytes = 1 << 20;
  int64_t group = rows;
  if (rows_outer_) {
    const int64_t row_bytes = std::max<int64_t>(1, nnz_blocks() * static_cast<int64_t>(tap_off_.size()) * 64 / rows);
    group = std::clamp<int64_t>(kGroupBytes / row_bytes, 1, rows);
  }
  while (group > 1 && N * tiles * ((rows + group - 1) / group) < 8 * threads) group = (group + 1) / 2;
  const int64_t groups = (rows + group - 1) / group;
  const int64_t items = N * tiles * groups;
  const int ntaps = static_cast<int>(tap_off_.size());
  // Skip masks, one per (image, tile) (act_skip.hpp), filled in the region.
  static thread_local std::vector<uint8_t> masks;
  const int64_t mask_len = (g_.C + 7) / 8 * ntaps;
  SkipGeom sg{};
  if (zeros) {
    if (zeros->N != N || zeros->H != g_.H || zeros->W != g_.W || zeros->C != g_.C)
      fail("internal: the zero map does not match the convolution's input");
    sg = {g_.H, g_.W, g_.Ho, g_.Wo, g_.sh, g_.sw, g_.pt, g_.pl, g_.dh, g_.dw, g_.kh, g_.kw, Wq_, false, false};
    if (masks.size() < static_cast<size_t>(N * tiles * mask_len)) masks.resize(static_cast<size_t>(N * tiles * mask_len));
  }
  uint8_t* const mask0 = masks.data();
#pragma omp parallel
  {
    if (unsigned_input())  // 128 is the zero of q + 128.
      pack(pp, x, N, xu8, 0x80, 128, pack_run);
    else  // the signed input, as bytes
      pack(pp, x, N, xu8, 0, 0, pack_run);
    if (zeros) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < N * tiles; ++i) {
        const auto [v0, npix] = tile_span(i % tiles);
        tile_skip_mask(sg, *zeros, i / tiles, v0, npix, ntaps, mask0 + i * mask_len);
      }
    }
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t it = 0; it < items; ++it) {
      const auto [n, gi, tile] = work_item(it, groups, tiles, rows_outer_);
      const auto [v0, npix] = tile_span(tile);
      // Each pixel's output (and addend) offset at channel 0 (-1: a dropped column).
      int64_t pix[kTileI8];
      for (int j = 0; j < npix; ++j) {
        const int32_t q = pix0_[static_cast<size_t>(v0 + j)];
        pix[j] = q < 0 ? -1 : (n * g_.Ho * g_.Wo + q) * g_.Cout;
      }
      TileI8 a;
      a.x = xu8 + n * img + v0 * 8;
      a.ldx = 8;
      a.ldb = pp.block_elems();
      a.tap_off = tap_off_.data();
      a.ntaps = ntaps;
      a.lo = lo_;
      a.hi = hi_;
      a.npix = npix;
      int8_t* yp[kTileI8];
      const int8_t* zp[kTileI8];
      for (int j = 0; j < npix; ++j) {
        yp[j] = pix[j] < 0 ? nullptr : y + pix[j];
        zp[j] = pix[j] < 0 || !z ? nullptr : z + pix[j];
      }
      a.y = yp;
      a.z = z ? zp : nullptr;
      a.add = add;
      for (int64_t r = gi * group; r < std::min(rows, (gi + 1) * group); ++r) {
        a.yoff = r * 8;
        const size_t w0 = static_cast<size_t>(row_ptr_[r]) * static_cast<size_t>(ntaps * 64);
        a.cols = col_idx_.data() + row_ptr_[r];
        a.nblk = row_ptr_[r + 1] - row_ptr_[r];
        a.w = w_.data() + w0;
        a.bias = bias_.data() + r * 8;
        a.skip = zeros ? mask0 + (n * tiles + tile) * mask_len : nullptr;
        a.w128 = unsigned_input() ? w128_.data() + static_cast<size_t>(row_ptr_[r]) * static_cast<size_t>(ntaps * 8) : nullptr;
        a.mult = mult_.data() + r * 8;
        a.shift = shift_.data() + r * 8;
        a.co_valid = static_cast<int>(std::min<int64_t>(8, g_.Cout - r * 8));
        if (npix <= P) {
          fn(a);
        } else {  // a row tile wider than the kernel's tile: even parts sharing its mask
          const int parts = (npix + P - 1) / P, each = (npix + parts - 1) / parts;
          for (int c0 = 0; c0 < npix; c0 += each) {
            TileI8 b = a;
            b.x += c0 * 8;
            b.y = yp + c0;
            b.z = z ? zp + c0 : nullptr;
            b.npix = std::min(each, npix - c0);
            fn(b);
          }
        }
      }
    }
  }
}

}  // namespace bsp::kernels
