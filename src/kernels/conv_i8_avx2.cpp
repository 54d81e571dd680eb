// The int8 block-sparse micro-kernel for AVX2 (no VNNI; compiled with -mavx2).
//
// AVX2's byte dot product vpmaddubsw multiplies unsigned by signed bytes and
// saturates each sum of two products to int16. With the signed input q it
// takes |q| (0..128 as unsigned bytes) and the weights with q's sign moved
// onto them (vpsignb): |q| * sign(q) w = q * w, and with |w| <= 127 a pair
// sums to at most 2 * 128 * 127 = 32512, never saturating. ConvI8 uses this
// kernel only when no weight is -128 (bsp's quantiser clamps to +-127).
// vpmaddwd by ones then sums the int16 pairs into int32 lanes of 4 input
// channels. The requantisation is the exact integer rule of
// compact/int8.hpp, in 64-bit products (requant8 and fused_add8 below).
//
// Layout (conv_i8.hpp): the packed input as signed bytes (padding 0), 8
// channels per block and pixel; the weights per block and tap [8 co][8 ci],
// row-major, as two 256-bit vectors of 4 output channels each, an int32
// lane holding 4 input channels: lanes [co][half] with half 0 = ci 0..3.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/conv_i8.hpp"

namespace bsp::kernels {

namespace {

inline __m256i bcast8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_set1_epi64x(v);
}

// q * w summed over each lane's 4 input channels, added to acc.
inline __m256i dot4(__m256i acc, __m256i xabs, __m256i x, __m256i w, __m256i ones) {
  const __m256i p16 = _mm256_maddubs_epi16(xabs, _mm256_sign_epi8(w, x));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
}

// Arithmetic right shift of 64-bit lanes (AVX2 has only the logical one):
// ~(~v >> s) for negative v.
inline __m256i sra64(__m256i v, __m256i s) {
  const __m256i neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, neg), s), neg);
}

inline __m256i clamp64(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

// The requantisation of 8 channels: per channel multiplier and shift
// (compact/int8.hpp), then the fused add (q8::FusedAdd) when the tile has one.
struct Requant8 {
  __m256i mult, shift, lo, hi;  // int32 lanes, channels 0..7
  __m256i round[2];             // int64: channels 0..3, 4..7
  __m256i round_eo[2];          // int64: channels 0, 2, 4, 6 and 1, 3, 5, 7
  bool high = false;            // every shift >= 32 (high_path below)
  const q8::FusedAdd* add = nullptr;
  __m256i m_self, m_other, add_round, add_lo, add_hi;
  __m128i add_shift_hi;  // add->shift - 32 (when >= 32)
  __m256i add_shift;     // int64 lanes
};

// The general rule's last step on 4 channels in 64-bit lanes t (any shift
// 0..62): t >> shift clamped to [lo, hi], narrowed to int32 lanes 0..3 of a
// 128-bit vector. The products before it, by vpmuldq, are exact (the sums
// and multipliers fit 32 signed bits).
inline __m128i shift_clamp4(__m256i t, __m256i shift, __m256i lo, __m256i hi) {
  const __m256i v = clamp64(sra64(t, shift), lo, hi);
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

// The high path, for shifts of 32 or more: floor(p / 2^s) is the high word
// of the 64-bit p = v * m + round shifted right by s - 32, so 8 channels stay
// in one vector (even and odd lanes multiplied apart, high words blended) and
// the shift and clamp are 32-bit.
inline __m256i high_words(__m256i even, __m256i odd) {
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// 8 int32 sums (channels 0..7, bias included) -> 8 int32 within [lo, hi].
inline __m256i requant8(__m256i s, const Requant8& r) {
  if (r.high) {
    const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(s, r.mult), r.round_eo[0]);
    const __m256i po = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(s, 32), _mm256_srli_epi64(r.mult, 32)), r.round_eo[1]);
    const __m256i h = _mm256_srav_epi32(high_words(pe, po), _mm256_sub_epi32(r.shift, _mm256_set1_epi32(32)));
    return _mm256_max_epi32(_mm256_min_epi32(h, r.hi), r.lo);
  }
  __m128i out[2];
  for (int h = 0; h < 2; ++h) {
    const __m128i sh = h ? _mm256_extracti128_si256(s, 1) : _mm256_castsi256_si128(s);
    const __m128i m = h ? _mm256_extracti128_si256(r.mult, 1) : _mm256_castsi256_si128(r.mult);
    const __m128i k = h ? _mm256_extracti128_si256(r.shift, 1) : _mm256_castsi256_si128(r.shift);
    const __m256i t = _mm256_add_epi64(_mm256_mul_epi32(_mm256_cvtepi32_epi64(sh), _mm256_cvtepi32_epi64(m)), r.round[h]);
    out[h] = shift_clamp4(t, _mm256_cvtepi32_epi64(k), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(r.lo)),
                          _mm256_cvtepi32_epi64(_mm256_castsi256_si128(r.hi)));
  }
  return _mm256_setr_m128i(out[0], out[1]);
}

// The fused add on 8 int8 values v (int32 lanes) and their addends z.
inline __m256i fused_add8(__m256i v, __m256i z, const Requant8& r) {
  if (r.add->shift >= 9) {
    // t = v * m_self + z * m_other + round in 64 bits, even and odd lanes apart.
    const __m256i te = _mm256_add_epi64(_mm256_add_epi64(_mm256_mul_epi32(v, r.m_self), _mm256_mul_epi32(z, r.m_other)),
                                        r.add_round);
    const __m256i to = _mm256_add_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), r.m_self),
                                                         _mm256_mul_epi32(_mm256_srli_epi64(z, 32), r.m_other)),
                                        r.add_round);
    __m256i h;
    if (r.add->shift >= 32) {
      h = _mm256_sra_epi32(high_words(te, to), r.add_shift_hi);
    } else {
      // |v|, |z| <= 128 and |m| <= 2^31 bound |t| by 2^39 + 2^30, so for a
      // shift of 9 or more t >> shift fits 31 bits: its low word is bits
      // shift .. shift + 31 of t, the same under a logical 64-bit shift.
      const __m128i k = _mm256_castsi256_si128(r.add_shift);
      h = _mm256_blend_epi32(_mm256_srl_epi64(te, k), _mm256_slli_epi64(_mm256_srl_epi64(to, k), 32), 0xAA);
    }
    return _mm256_max_epi32(_mm256_min_epi32(h, r.add_hi), r.add_lo);
  }
  __m128i out[2];
  for (int h = 0; h < 2; ++h) {
    const __m256i v4 = _mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v));
    const __m256i z4 = _mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(z, 1) : _mm256_castsi256_si128(z));
    const __m256i t = _mm256_add_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(v4, r.m_self), _mm256_mul_epi32(z4, r.m_other)), r.add_round);
    out[h] = shift_clamp4(t, r.add_shift, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(r.add_lo)),
                          _mm256_cvtepi32_epi64(_mm256_castsi256_si128(r.add_hi)));
  }
  return _mm256_setr_m128i(out[0], out[1]);
}

// 8 int32 sums (channels 0..7) -> co_valid int8 at y, with the addend z
// (co_valid bytes, or null).
inline void requant_store(__m256i s, const Requant8& r, int8_t* y, const int8_t* z, int co_valid) {
  __m256i v = requant8(s, r);
  if (z) {
    int64_t z8 = 0;
    std::memcpy(&z8, z, static_cast<size_t>(co_valid));
    v = fused_add8(v, _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(z8)), r);
  }
  // Saturating packs (the values are within int8): bytes 0..3 of each lane.
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v, v), _mm256_setzero_si256());
  const int64_t out = static_cast<int64_t>(static_cast<uint32_t>(_mm256_extract_epi32(b, 0))) |
                      (static_cast<int64_t>(_mm256_extract_epi32(b, 4)) << 32);
  if (co_valid == 8)
    std::memcpy(y, &out, 8);
  else
    std::memcpy(y, &out, static_cast<size_t>(co_valid));
}

// The tile's sums -> int8 outputs, fully unrolled without a branch per pixel
// (as the fp32 kernel's epilogue): a dropped pixel (null y) writes to, and
// takes its addend from, a scratch slot.
template <int P, bool Z>
inline void store_tile(const __m256i (&lo)[P], const __m256i (&hi)[P], __m256i biasv, const Requant8& r,
                       const TileI8& a) {
  alignas(8) int8_t junk[8] = {};
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j) {
    const bool drop = !a.y[j];
    // hadd -> [co0 co1 co4 co5 | co2 co3 co6 co7]
    const __m256i s = _mm256_add_epi32(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(lo[j], hi[j]), order), biasv);
    requant_store(s, r, drop ? junk : a.y[j] + a.yoff, Z ? (drop ? junk : a.z[j] + a.yoff) : nullptr, a.co_valid);
  }
}

template <int P>
void tile(const TileI8& a) {
  __m256i lo[P], hi[P];  // co 0..3 and 4..7, lanes [co][half]
#pragma GCC unroll 16
  for (int j = 0; j < P; ++j) lo[j] = hi[j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* w = a.w;
  constexpr int64_t ldx = 8;  // the packed layout (conv_i8.cpp)
  for (int b = 0; b < a.nblk; ++b) {
    const uint8_t* xb = a.x + a.cols[b] * a.ldb;
    for (int t = 0; t < a.ntaps; ++t, w += 64) {
      if (a.skip && a.skip[a.cols[b] * a.ntaps + t]) continue;  // zero inputs (act_skip.hpp)
      const uint8_t* xp = xb + a.tap_off[t];
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32));
#pragma GCC unroll 16
      for (int j = 0; j < P; ++j) {
        const __m256i x = bcast8(xp + j * ldx), xabs = _mm256_abs_epi8(x);
        lo[j] = dot4(lo[j], xabs, x, w0, ones);
        hi[j] = dot4(hi[j], xabs, x, w1, ones);
      }
    }
  }
  // Channels beyond co_valid take shift 32 and multiplier 0 (never stored).
  alignas(32) int32_t bias[8] = {}, mult[8] = {}, shift[8] = {32, 32, 32, 32, 32, 32, 32, 32};
  const int32_t *bias_p = a.bias, *mult_p = a.mult, *shift_p = a.shift;
  if (a.co_valid < 8) {
    std::memcpy(bias, a.bias, sizeof(int32_t) * static_cast<size_t>(a.co_valid));
    std::memcpy(mult, a.mult, sizeof(int32_t) * static_cast<size_t>(a.co_valid));
    std::memcpy(shift, a.shift, sizeof(int32_t) * static_cast<size_t>(a.co_valid));
    bias_p = bias, mult_p = mult, shift_p = shift;
  }
  Requant8 r{};
  r.mult = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mult_p));
  r.shift = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift_p));
  r.high = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(32), r.shift))) == 0;
  // The rounding terms 2^(shift - 1) in 64-bit lanes, built in vectors (once
  // per tile and block row): a shift of 0 gives the count 2^32 - 1 or -1,
  // which vpsllvq turns into 0, the rule's "no rounding term".
  const __m256i one = _mm256_set1_epi64x(1), sm1 = _mm256_sub_epi32(r.shift, _mm256_set1_epi32(1));
  r.round_eo[0] = _mm256_sllv_epi64(one, _mm256_and_si256(sm1, _mm256_set1_epi64x(0xFFFFFFFF)));
  r.round_eo[1] = _mm256_sllv_epi64(one, _mm256_srli_epi64(sm1, 32));
  r.round[0] = _mm256_sllv_epi64(one, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(sm1)));
  r.round[1] = _mm256_sllv_epi64(one, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(sm1, 1)));
  r.lo = _mm256_set1_epi32(a.lo);
  r.hi = _mm256_set1_epi32(a.hi);
  if (a.z) {
    r.add = a.add;
    r.m_self = _mm256_set1_epi32(a.add->m_self);
    r.m_other = _mm256_set1_epi32(a.add->m_other);
    r.add_round = _mm256_set1_epi64x(a.add->round);
    r.add_shift = _mm256_set1_epi64x(a.add->shift);
    r.add_shift_hi = _mm_cvtsi32_si128(a.add->shift - 32);
    r.add_lo = _mm256_set1_epi32(a.add->lo);
    r.add_hi = _mm256_set1_epi32(a.add->hi);
  }
  const __m256i biasv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias_p));
  if (a.z)
    store_tile<P, true>(lo, hi, biasv, r, a);
  else
    store_tile<P, false>(lo, hi, biasv, r, a);
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
