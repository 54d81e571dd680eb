// The int8 block-sparse micro-kernel for AVX2 (no VNNI): int16 input and
// weights (conv_i8.hpp), vpmaddwd sums each input-channel pair exactly into
// int32 lanes of 8 output channels; the requantisation is the scalar rule.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/conv_i8.hpp"

namespace bsp::kernels {

namespace {

template <int P>
void tile(const TileI8& a) {
  __m256i acc[P];
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j) acc[j] = _mm256_setzero_si256();
  const int16_t* w = reinterpret_cast<const int16_t*>(a.w);
  const int16_t* x = reinterpret_cast<const int16_t*>(a.x);
  for (int b = 0; b < a.nblk; ++b) {
    const int16_t* xb = x + a.cols[b] * a.ldb;
    for (int t = 0; t < a.ntaps; ++t) {
      const int16_t* xp = xb + a.tap_off[t];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q, w += 16) {
        const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
#pragma GCC unroll 16
        for (int j = 0; j < P; ++j) {
          int32_t pair;
          std::memcpy(&pair, xp + j * 8 + 2 * q, 4);
          acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_set1_epi32(pair), wv));
        }
      }
    }
  }
  for (int j = 0; j < P; ++j) {
    if (!a.y[j]) continue;
    alignas(32) int32_t v[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), acc[j]);
    for (int co = 0; co < a.co_valid; ++co) {
      const int8_t q = q8::requantize(int64_t{v[co]} + a.bias[co], q8::Requant{a.mult[co], a.shift[co]}, a.lo, a.hi);
      a.y[j][co] = a.z ? a.add->apply(q, a.z[j][co]) : q;
    }
  }
}

template <int... Ps>
constexpr auto make_table(std::integer_sequence<int, Ps...>) {
  return std::array<TileFnI8, sizeof...(Ps)>{&tile<Ps + 1>...};
}

void dispatch(const TileI8& a) {
  static constexpr auto table = make_table(std::make_integer_sequence<int, kTileI8Avx2>{});
  table[a.npix - 1](a);
}

}  // namespace

TileFnI8 tile_i8_avx2() { return &dispatch; }

}  // namespace bsp::kernels
