// The int8 block-sparse micro-kernel, AVX-512 VNNI: vpdpbusd multiplies the
// unsigned input (q + 128) by the signed weights, 4 products per int32 lane;
// requantisation in 64-bit lanes (the exact integer rule of compact/int8.hpp).
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/conv_i8.hpp"

namespace bsp::kernels {

namespace {

inline __m512i bcast8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

// [a: lanes (co, half)] + [b] -> [a: co 0..7 | b: co 0..7], int32.
inline __m512i reduce_pair(__m512i a, __m512i b) {
  const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
  const __m512i even = _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0)));
  const __m512i odd = _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i idx = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  return _mm512_permutexvar_epi32(idx, _mm512_add_epi32(even, odd));
}

struct Requant8 {
  __m512i mult, round, shift, lo, hi;
  // The fused add (q8::FusedAdd), when the tile has one.
  __m512i m_self, m_other, add_round, add_lo, add_hi;
  __m128i add_shift;
};

// 8 int32 accumulators -> 8 int8 (then the fused add with the addend z when
// not null), stored under mask. Products in 64-bit lanes: v and the
// multipliers fit 32 bits, so vpmuldq gives them exactly.
inline void requant_store(__m256i acc, const Requant8& r, int8_t* y, const int8_t* z, __mmask8 m) {
  __m512i v = _mm512_cvtepi32_epi64(acc);
  v = _mm512_add_epi64(_mm512_mullo_epi64(v, r.mult), r.round);
  v = _mm512_srav_epi64(v, r.shift);
  v = _mm512_min_epi64(_mm512_max_epi64(v, r.lo), r.hi);
  if (z) {
    const __m512i zv = _mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(m, z));
    v = _mm512_add_epi64(_mm512_add_epi64(_mm512_mul_epi32(v, r.m_self), _mm512_mul_epi32(zv, r.m_other)), r.add_round);
    v = _mm512_sra_epi64(v, r.add_shift);
    v = _mm512_min_epi64(_mm512_max_epi64(v, r.add_lo), r.add_hi);
  }
  _mm_mask_storeu_epi8(y, m, _mm512_cvtepi64_epi8(v));
}

template <int P>
void tile(const TileI8& a) {
  __m512i acc[P];
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j) acc[j] = _mm512_setzero_si512();
  const int8_t* w = a.w;
  constexpr int64_t ldx = 8;  // the packed layout (conv_i8.cpp)
  for (int b = 0; b < a.nblk; ++b) {
    const uint8_t* xb = a.x + a.cols[b] * a.ldb;
    for (int t = 0; t < a.ntaps; ++t, w += 64) {
      const uint8_t* xp = xb + a.tap_off[t];
      const __m512i wv = _mm512_load_si512(w);
    #pragma GCC unroll 32
  for (int j = 0; j < P; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], bcast8(xp + j * ldx), wv);
    }
  }
  const __mmask8 m = static_cast<__mmask8>((1u << a.co_valid) - 1);
  const __m256i mult32 = _mm256_maskz_loadu_epi32(m, a.mult), shift32 = _mm256_maskz_loadu_epi32(m, a.shift);
  Requant8 r;
  r.mult = _mm512_cvtepi32_epi64(mult32);
  r.shift = _mm512_cvtepi32_epi64(shift32);
  // round = shift > 0 ? 1 << (shift - 1) : 0
  r.round = _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), r.shift), 1);
  r.lo = _mm512_set1_epi64(a.lo);
  r.hi = _mm512_set1_epi64(a.hi);
  if (a.z) {
    r.m_self = _mm512_set1_epi64(a.add->m_self);
    r.m_other = _mm512_set1_epi64(a.add->m_other);
    r.add_round = _mm512_set1_epi64(a.add->round);
    r.add_shift = _mm_cvtsi32_si128(a.add->shift);
    r.add_lo = _mm512_set1_epi64(a.add->lo);
    r.add_hi = _mm512_set1_epi64(a.add->hi);
  }
  const __m512i bias = _mm512_broadcast_i64x4(_mm256_maskz_loadu_epi32(m, a.bias));
#pragma GCC unroll 16
  for (int j = 0; j < P; j += 2) {
    const bool two = j + 1 < P;
    const __m512i s = _mm512_add_epi32(reduce_pair(acc[j], two ? acc[j + 1] : _mm512_setzero_si512()), bias);
    if (a.y[j]) requant_store(_mm512_castsi512_si256(s), r, a.y[j], a.z ? a.z[j] : nullptr, m);
    if (two && a.y[j + 1]) requant_store(_mm512_extracti64x4_epi64(s, 1), r, a.y[j + 1], a.z ? a.z[j + 1] : nullptr, m);
  }
}

template <int... Ps>
constexpr auto make_table(std::integer_sequence<int, Ps...>) {
  return std::array<TileFnI8, sizeof...(Ps)>{&tile<Ps + 1>...};
}

void dispatch(const TileI8& a) {
  static constexpr auto table = make_table(std::make_integer_sequence<int, kTileI8>{});
  table[a.npix - 1](a);
}

}  // namespace

TileFnI8 tile_i8_avx512() { return &dispatch; }

}  // namespace bsp::kernels
