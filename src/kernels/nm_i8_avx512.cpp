// The int8 nm kernel, AVX-512 VNNI (nm_i8.hpp): per pixel, tap and span a
// broadcast of the span's input bytes to each 128-bit lane, one vpshufb
// gathering each output channel's 4 inputs, one vpdpbusd; requantisation in
// 64-bit lanes (the exact integer rule of compact/int8.hpp).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/nm_i8.hpp"

namespace bsp::kernels {

namespace {

// The span's bytes in every 128-bit lane: 8 bytes twice (S = 8) or 16 bytes.
template <int S>
inline __m512i bcast_span(const uint8_t* p) {
  if constexpr (S == 8) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return _mm512_set1_epi64(v);
  } else {
    return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
}

struct Requant8 {
  __m512i mult, round, shift, lo, hi;
  __m512i m_self, m_other, add_round, add_lo, add_hi;
  __m128i add_shift;
};

inline Requant8 requant8(const NmTileI8& a, int64_t o, __mmask8 m) {
  Requant8 r;
  r.mult = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, a.mult + o));
  r.shift = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, a.shift + o));
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
  return r;
}

// 8 int32 sums (bias included) -> 8 int8 (then the fused add with z when not
// null), stored under mask: products in 64-bit lanes (v and the multipliers
// fit 32 bits, so they are exact).
inline void requant_store(__m256i acc, const Requant8& r, int8_t* y, const int8_t* z, __mmask8 m) {
  __m512i v = _mm512_cvtepi32_epi64(acc);
  v = _mm512_add_epi64(_mm512_mul_epi32(v, r.mult), r.round);  // vpmuldq: 1 uop, exact (both fit 32 bits)
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

template <int P, int S, int L>
void tile(const NmTileI8& a) {
  const int64_t step = a.ntaps * a.spans * 64;
  for (int64_t b = a.b0; b < a.b1; ++b) {
    __m512i acc[P];
#pragma GCC unroll 16
    for (int j = 0; j < P; ++j) acc[j] = _mm512_setzero_si512();
    const uint8_t* idx = a.idx + b * step;
    const int8_t* w = a.w + b * step;
    const uint8_t* x = a.x;
    const int64_t lines = a.ntaps * (a.spans * S / L);  // the packed input runs through taps and lines alike
    for (int64_t q = 0; q < lines; ++q, x += kNmTileI8 * L)
#pragma GCC unroll 1
      for (int si = 0; si < L / S; ++si, idx += 64, w += 64) {
        const __m512i iv = _mm512_load_si512(idx), wv = _mm512_load_si512(w);
#pragma GCC unroll 16
        for (int j = 0; j < P; ++j)
          acc[j] = _mm512_dpbusd_epi32(acc[j], _mm512_shuffle_epi8(bcast_span<S>(x + j * L + si * S), iv), wv);
      }
    const int64_t o = b * 16;
    const int co_valid = static_cast<int>(std::min<int64_t>(16, a.cout - o));
    const __mmask8 m0 = static_cast<__mmask8>(co_valid >= 8 ? 0xFF : (1u << co_valid) - 1);
    const __mmask8 m1 = static_cast<__mmask8>(co_valid <= 8 ? 0 : (1u << (co_valid - 8)) - 1);
    const Requant8 r0 = requant8(a, o, m0);
    const __m512i bias = _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << co_valid) - 1), a.bias + o);
    if (m1) {
      const Requant8 r1 = requant8(a, o + 8, m1);
      for (int j = 0; j < P; ++j) {
        if (!a.y[j]) continue;
        const __m512i s = _mm512_add_epi32(acc[j], bias);
        requant_store(_mm512_castsi512_si256(s), r0, a.y[j] + o, a.z ? a.z[j] + o : nullptr, m0);
        requant_store(_mm512_extracti64x4_epi64(s, 1), r1, a.y[j] + o + 8, a.z ? a.z[j] + o + 8 : nullptr, m1);
      }
    } else {
      for (int j = 0; j < P; ++j) {
        if (!a.y[j]) continue;
        const __m512i s = _mm512_add_epi32(acc[j], bias);
        requant_store(_mm512_castsi512_si256(s), r0, a.y[j] + o, a.z ? a.z[j] + o : nullptr, m0);
      }
    }
  }
}

template <int S, int L, int... Ps>
constexpr auto make_table(std::integer_sequence<int, Ps...>) {
  return std::array<NmTileFnI8, sizeof...(Ps)>{&tile<Ps + 1, S, L>...};
}

// Tables per span S and line L (64, or S itself).
void dispatch(const NmTileI8& a) {
  using Seq = std::make_integer_sequence<int, kNmTileI8>;
  static constexpr auto t8 = make_table<8, 8>(Seq{}), t8l = make_table<8, 64>(Seq{});
  static constexpr auto t16 = make_table<16, 16>(Seq{}), t16l = make_table<16, 64>(Seq{});
  const bool wide = a.line == 64;
  (a.span == 8 ? (wide ? t8l : t8) : (wide ? t16l : t16))[a.npix - 1](a);
}

// [tap][line][pixel][L] from the pixels' rows, flipped to unsigned: one
// 64-byte vector per pixel and line (L = 64), or masked L-byte pieces.
void pack(const int8_t* const* src, int64_t taps, int64_t C, int L, uint8_t* x) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t lines = C / L;
  const __mmask64 m = L == 64 ? ~__mmask64{0} : (__mmask64{1} << L) - 1;
  for (int64_t t = 0; t < taps; ++t)
    for (int j = 0; j < kNmTileI8; ++j) {
      const int8_t* s = src[t * kNmTileI8 + j];
      uint8_t* d = x + (t * lines * kNmTileI8 + j) * L;
      if (!s) {
        for (int64_t l = 0; l < lines; ++l) _mm512_mask_storeu_epi8(d + l * kNmTileI8 * L, m, flip);
      } else if (L == 64) {
        for (int64_t l = 0; l < lines; ++l)
          _mm512_storeu_si512(d + l * kNmTileI8 * 64, _mm512_xor_si512(_mm512_loadu_si512(s + l * 64), flip));
      } else {
        for (int64_t l = 0; l < lines; ++l)
          _mm512_mask_storeu_epi8(d + l * kNmTileI8 * L, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + l * L), flip));
      }
    }
}

}  // namespace

NmTileFnI8 nm_tile_i8_avx512() { return &dispatch; }
NmPackFnI8 nm_pack_i8_avx512() { return &pack; }

}  // namespace bsp::kernels
