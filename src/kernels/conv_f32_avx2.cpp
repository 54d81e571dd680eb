// The fp32 block-sparse micro-kernel, AVX2 + FMA (compiled with -mavx2 -mfma).
// Lanes: 4 output channels x 2 input channels, two accumulators per pixel.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/conv_f32.hpp"

namespace bsp::kernels {

namespace {

inline __m256 bcast_pair(const float* p) {
  double d;
  std::memcpy(&d, p, sizeof d);
  return _mm256_castpd_ps(_mm256_set1_pd(d));
}

// hadd -> [co0 co1 co4 co5 | co2 co3 co6 co7]: the channel order back.
inline __m256 row_sum(__m256 lo, __m256 hi, __m256 bias) {
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  return _mm256_add_ps(_mm256_permutevar8x32_ps(_mm256_hadd_ps(lo, hi), order), bias);
}

// The epilogue of a full block row: pixel j's 8 channels to y + yoff[j]
// (+ z + zoff[j] before the clamp). A dropped pixel (yoff < 0) goes to a
// scratch line instead: a select, not a branch.
template <int P, bool Z, bool CLAMP>
inline void store_row(const __m256 (&lo)[P], const __m256 (&hi)[P], __m256 bias, float* y, const float* z,
                      const TileF32& a) {
  alignas(32) float junk[8] = {};
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j) {
    const bool drop = a.yoff[j] < 0;
    __m256 s = row_sum(lo[j], hi[j], bias);
    if constexpr (Z) s = _mm256_add_ps(s, _mm256_loadu_ps(drop ? junk : z + a.zoff[j]));
    if constexpr (CLAMP) s = _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(a.lo)), _mm256_set1_ps(a.hi));
    _mm256_storeu_ps(drop ? junk : y + a.yoff[j], s);
  }
}

// The last block row of a layer whose channels are not a multiple of 8.
template <int P>
inline void store_row_masked(const __m256 (&lo)[P], const __m256 (&hi)[P], __m256 bias, float* y, const float* z,
                             const TileF32& a, int64_t co_valid) {
  alignas(32) int maskv[8];
  for (int i = 0; i < 8; ++i) maskv[i] = i < co_valid ? -1 : 0;
  const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(maskv));
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j) {
    if (a.yoff[j] < 0) continue;
    __m256 s = row_sum(lo[j], hi[j], bias);
    if (z) s = _mm256_add_ps(s, _mm256_maskload_ps(z + a.zoff[j], m));
    if (a.clamp) s = _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(a.lo)), _mm256_set1_ps(a.hi));
    _mm256_maskstore_ps(y + a.yoff[j], m, s);
  }
}

// Block row r of the tile.
template <int P, int LDX>
void tile_row(const TileF32& a, int64_t r) {
  __m256 lo[P], hi[P];
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j) lo[j] = hi[j] = _mm256_setzero_ps();
  const int32_t* cols = a.col_idx + a.row_ptr[r];
  const int nblk = a.row_ptr[r + 1] - a.row_ptr[r];
  const float* w = a.w + static_cast<size_t>(a.row_ptr[r]) * static_cast<size_t>(a.ntaps * 64);
  const int64_t ldx = LDX ? LDX : a.ldx;
  for (int b = 0; b < nblk; ++b) {
    const float* xb = a.x + cols[b] * a.ldb;
    const uint8_t* skip = a.skip ? a.skip + cols[b] * a.ntaps : nullptr;
    for (int t = 0; t < a.ntaps; ++t) {
      if (skip && skip[t]) {  // zero inputs (act_skip.hpp)
        w += 64;
        continue;
      }
      const float* xp = xb + a.tap_off[t];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q, w += 16) {
        const __m256 w0 = _mm256_load_ps(w), w1 = _mm256_load_ps(w + 8);
#pragma GCC unroll 32
        for (int j = 0; j < P; ++j) {
          const __m256 xv = bcast_pair(xp + j * ldx + 2 * q);
          lo[j] = _mm256_fmadd_ps(xv, w0, lo[j]);
          hi[j] = _mm256_fmadd_ps(xv, w1, hi[j]);
        }
      }
    }
  }
  const int64_t co_valid = std::min<int64_t>(8, a.cout - r * 8);
  // The bias is padded to whole block rows (PackedF32); y and z are not.
  const __m256 bias = _mm256_load_ps(a.bias + r * 8);
  float* const y = a.y + r * 8;
  const float* const z = a.z ? a.z + r * 8 : nullptr;
  // A full block row takes plain loads and stores: AMD's Zen cores run a
  // masked store (vmaskmovps) as a microcoded sequence, several times the
  // cost of vmovups, and the epilogue stores once per pixel and block row.
  // One loop per case, fully unrolled and without branches (a branch per
  // pixel left lo/hi in memory: twice the epilogue's time on 1x1 layers).
  if (co_valid == 8) {
    if (z)
      a.clamp ? store_row<P, true, true>(lo, hi, bias, y, z, a) : store_row<P, true, false>(lo, hi, bias, y, z, a);
    else
      a.clamp ? store_row<P, false, true>(lo, hi, bias, y, z, a) : store_row<P, false, false>(lo, hi, bias, y, z, a);
  } else {
    store_row_masked<P>(lo, hi, bias, y, z, a, co_valid);
  }
}

template <int P, int LDX>
void tile(const TileF32& a) {
  for (int64_t r = a.r0; r < a.r1; ++r) tile_row<P, LDX>(a, r);
}

template <int LDX, int... Ps>
constexpr auto make_table(std::integer_sequence<int, Ps...>) {
  return std::array<TileFnF32, sizeof...(Ps)>{&tile<Ps + 1, LDX>...};
}

// Every tile size for the packed layout (ldx = 8); the NHWC strides only
// for full tiles, a layer's last partial tile taking the runtime stride
// (fewer instantiations to compile).
void dispatch(const TileF32& a) {
  using Seq = std::make_integer_sequence<int, 6>;
  static constexpr auto packed = make_table<8>(Seq{});
  static constexpr auto any = make_table<0>(Seq{});
  constexpr int P = 6;
  if (a.ldx == 8) return packed[a.npix - 1](a);
  if (a.npix < P) return any[a.npix - 1](a);
  if (a.ldx == 64) return tile<P, 64>(a);
  if (a.ldx == 128) return tile<P, 128>(a);
  if (a.ldx == 256) return tile<P, 256>(a);
  // Width-folded RGB stems (ldx = sw * 3): a runtime stride cost them ~25%
  // here (12 accumulators leave room for the broadcasts shared between
  // pixels; the AVX-512 kernel's 24 do not, conv_f32_avx512.cpp).
  if (a.ldx == 3) return tile<P, 3>(a);
  if (a.ldx == 6) return tile<P, 6>(a);
  any[P - 1](a);
}

}  // namespace

TileFnF32 tile_f32_avx2() { return &dispatch; }

}  // namespace bsp::kernels
