// The fp32 block-sparse micro-kernel, AVX-512 (this file alone is compiled
// with -mavx512f -mavx512vl -mavx512dq ...). Lanes: 8 output channels x 2
// input channels; one accumulator per pixel (see conv_f32.hpp).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/conv_f32.hpp"

namespace bsp::kernels {

namespace {

// Two consecutive floats broadcast to every 64-bit lane (one vbroadcastsd from memory).
inline __m512 bcast_pair(const float* p) {
  double d;
  std::memcpy(&d, p, sizeof d);
  return _mm512_castpd_ps(_mm512_set1_pd(d));
}

// Sums the input-channel halves of two pixels' accumulators:
// -> [pixel a: co 0..7 | pixel b: co 0..7].
inline __m512 reduce_pair(__m512 a, __m512 b) {
  const __m512 even = _mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 odd = _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  const __m512i idx = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  return _mm512_permutexvar_ps(idx, _mm512_add_ps(even, odd));
}

// LDX, the pixel stride, is a compile-time constant so that every broadcast
// of the unrolled tile is one load with an immediate offset (LDX = 0: the
// runtime a.ldx, slower address arithmetic).
template <int P, int LDX>
void tile(const TileF32& a) {
  const int64_t ldx = LDX ? LDX : a.ldx;
  for (int64_t r = a.r0; r < a.r1; ++r) {
    // The residual's 64-byte lines (two block rows each) are fetched a line
    // ahead of the epilogue that reads them: the tile's pixels lie a pixel
    // stride apart, which the hardware prefetchers do not follow, and a
    // residual that has left the caches (56x56x256) otherwise stalled each
    // epilogue for a memory latency (layer1's 64 -> 256 convs: -0.1 ms each).
    if (a.z && !((r - a.r0) & 1))
      for (int64_t rr = r == a.r0 ? r : r + 2; rr <= r + 2 && rr < a.r1; rr += 2)
        for (int j = 0; j < P; ++j)
          if (a.yoff[j] >= 0) _mm_prefetch(reinterpret_cast<const char*>(a.z + a.zoff[j] + rr * 8), _MM_HINT_T0);
    __m512 acc[P];
#pragma GCC unroll 32
    for (int j = 0; j < P; ++j) acc[j] = _mm512_setzero_ps();
    const int32_t* cols = a.col_idx + a.row_ptr[r];
    const int nblk = a.row_ptr[r + 1] - a.row_ptr[r];
    const float* w = a.w + static_cast<size_t>(a.row_ptr[r]) * static_cast<size_t>(a.ntaps * 64);
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
          const __m512 wv = _mm512_load_ps(w);
#pragma GCC unroll 32
          for (int j = 0; j < P; ++j) acc[j] = _mm512_fmadd_ps(bcast_pair(xp + j * ldx + 2 * q), wv, acc[j]);
        }
      }
    }
    const int co_valid = static_cast<int>(std::min<int64_t>(8, a.cout - r * 8));
    const __mmask8 m = static_cast<__mmask8>((1u << co_valid) - 1);
    const __m512 bias = _mm512_broadcast_f32x8(_mm256_maskz_loadu_ps(m, a.bias + r * 8));
    float* const y = a.y + r * 8;
    const float* const z = a.z ? a.z + r * 8 : nullptr;
#pragma GCC unroll 16
    for (int j = 0; j < P; j += 2) {
      const bool two = j + 1 < P;
      __m512 s = _mm512_add_ps(reduce_pair(acc[j], two ? acc[j + 1] : _mm512_setzero_ps()), bias);
      const bool y0 = a.yoff[j] >= 0, y1 = two && a.yoff[j + 1] >= 0;
      if (z) {
        const __m256 z0 = y0 ? _mm256_maskz_loadu_ps(m, z + a.zoff[j]) : _mm256_setzero_ps();
        const __m256 z1 = y1 ? _mm256_maskz_loadu_ps(m, z + a.zoff[j + 1]) : _mm256_setzero_ps();
        s = _mm512_add_ps(s, _mm512_insertf32x8(_mm512_castps256_ps512(z0), z1, 1));
      }
      if (a.clamp) s = _mm512_min_ps(_mm512_max_ps(s, _mm512_set1_ps(a.lo)), _mm512_set1_ps(a.hi));
      if (y0) _mm256_mask_storeu_ps(y + a.yoff[j], m, _mm512_castps512_ps256(s));
      if (y1) _mm256_mask_storeu_ps(y + a.yoff[j + 1], m, _mm512_extractf32x8_ps(s, 1));
    }
  }
}

template <int LDX, int... Ps>
constexpr auto make_table(std::integer_sequence<int, Ps...>) {
  return std::array<TileFnF32, sizeof...(Ps)>{&tile<Ps + 1, LDX>...};
}

// Every tile size for the packed layout (ldx = 8); the NHWC strides only
// for full tiles, a layer's last partial tile taking the runtime stride
// (fewer instantiations to compile). No compile-time stride below 8: with
// ldx = 6 (a folded 3-channel stem) pixel j's pair q = 3 is pixel j + 1's
// pair q = 0, GCC keeps such shared broadcasts live across the q loop and
// spills half the accumulators' operands to the stack (conv1 10% slower
// than with the runtime stride).
void dispatch(const TileF32& a) {
  using Seq = std::make_integer_sequence<int, kTileF32>;
  static constexpr auto packed = make_table<8>(Seq{});
  static constexpr auto any = make_table<0>(Seq{});
  constexpr int P = kTileF32;
  if (a.ldx == 8) return packed[a.npix - 1](a);
  if (a.npix < P) return any[a.npix - 1](a);
  if (a.ldx == 64) return tile<P, 64>(a);
  if (a.ldx == 128) return tile<P, 128>(a);
  if (a.ldx == 256) return tile<P, 256>(a);
  any[P - 1](a);
}

}  // namespace

TileFnF32 tile_f32_avx512() { return &dispatch; }

}  // namespace bsp::kernels
