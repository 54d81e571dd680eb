// The int8 block-sparse micro-kernel, AVX-512 VNNI: vpdpbusd multiplies the
// unsigned input (q + 128) by the signed weights, 4 products per int32 lane;
// requantisation exact (the integer rule of compact/int8.hpp) on 16 int32
// lanes, two pixels at once.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/conv_i8.hpp"

namespace bsp::kernels {

namespace {

inline __m512i bcast8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

// Two pixels' accumulators [a: lanes (co, half)] and [b] -> their sums over
// the halves, 16 int32 lanes in the "pair order": 128-bit lane k holds
// a's co 2k, 2k+1 then b's co 2k, 2k+1 (vshufps keeps the lanes; no
// cross-lane permute: the per-channel constants are laid out in this order
// instead, and the bytes are put back in channel order by one vpshufb).
inline __m512i reduce_pair(__m512i a, __m512i b) {
  const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
  const __m512i even = _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0)));
  const __m512i odd = _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_epi32(even, odd);
}

// 8 per-channel int32 (co 0..7) -> 16 lanes in the pair order.
inline __m512i pair_order(__m256i c) {
  const __m512i idx = _mm512_setr_epi32(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7);
  return _mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(c));
}

// The pair order's 16 bytes [a0 a1 b0 b1 a2 a3 b2 b3 ...] <-> [a0..a7 b0..b7].
inline __m128i bytes_to_pixels(__m128i v) {
  return _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
}
inline __m128i pixels_to_bytes(__m128i v) {
  return _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15));
}

// The constants of a tile's epilogue, 16 lanes in the pair order.
struct Epilogue {
  __m512i mult, mult_odd;          // int32 lanes; mult_odd: the odd lanes' multipliers in the even lanes
  __m512i round_even, round_odd;   // int64: 2^(shift - 1) (0 for shift 0) of the even / odd lanes (general path)
  __m512i shift_even, shift_odd;   // int64 shift counts (general path)
  __m512i round_high, shift_high;  // int32: 2^(shift - 33) and shift - 32 (high path)
  __m512i lo, hi, lo64, hi64;
  // The fused add (q8::FusedAdd), when the tile has one: its path (below)
  // by its shift.
  enum class Add { General, Mid, Words, High } add = Add::General;
  __m512i m_self, m_other, add_round, add_round_high, add_lo, add_hi, add_lo64, add_hi64;
  __m512i m_low, m_high;  // Words: the multipliers' low and high 16 bits, (self, other) pairs
  __m128i add_shift, add_shift_odd;  // General and Mid: shift and 32 - shift; Words: shift - 16; High: shift - 32
  // The last clamp's upper bound is 127: vpmovsdb's saturation does it.
  bool sat_hi = false;
};

// Even and odd int64 lanes -> int32 lanes: the high words of both (floor(t / 2^32)).
inline __m512i high_words(__m512i even, __m512i odd) {
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}
// ... and their low words (values that fit 32 bits).
inline __m512i low_words(__m512i even, __m512i odd) {
  return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// 16 int32 sums v (bias included) -> clamp(rescale(v), lo, hi) (compact/int8.hpp),
// exactly: the 64-bit products v * mult of the even and odd lanes by vpmuldq
// (v and mult fit 32 signed bits). High, when every shift is 33 or more:
// floor((p + 2^(s-1)) / 2^s) = floor((floor(p / 2^32) + 2^(s-33)) / 2^(s-32)),
// the high words of the products, so the rounding, the shift and the clamp
// are 32-bit (|p| < 2^62: the sum fits).
template <bool High>
inline __m512i requant16(__m512i v, const Epilogue& e) {
  const __m512i pe = _mm512_mul_epi32(v, e.mult);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), e.mult_odd);
  if constexpr (High) {
    // (The upper bound: by the caller, which may leave it to vpmovsdb.)
    const __m512i h = _mm512_srav_epi32(_mm512_add_epi32(high_words(pe, po), e.round_high), e.shift_high);
    return _mm512_max_epi32(h, e.lo);
  } else {
    const __m512i te = _mm512_srav_epi64(_mm512_add_epi64(pe, e.round_even), e.shift_even);
    const __m512i to = _mm512_srav_epi64(_mm512_add_epi64(po, e.round_odd), e.shift_odd);
    return low_words(_mm512_min_epi64(_mm512_max_epi64(te, e.lo64), e.hi64),
                     _mm512_min_epi64(_mm512_max_epi64(to, e.lo64), e.hi64));
  }
}

// The fused add on 16 int8 values v and their addends z (int32 lanes):
// t = v * m_self + z * m_other + round, |t| < 2^40 + round, then >> shift
// and the clamp. High (shift 33 or more): as requant16's high path. Mid
// (shift 9 to 32, when Words below does not apply): t >> shift fits 31 bits, so its low word is bits shift ..
// shift + 31 of t (a logical shift of the even lanes, a left shift by 32 -
// shift of the odd ones) and the clamp is 32-bit. General: 64-bit.
inline __m512i fused_add16(__m512i v, __m512i z, const Epilogue& e) {
  if (e.add == Epilogue::Add::Words) {
    // Each multiplier m = mh * 2^16 + ml with ml and mh in int16, the shift
    // 16 to 31: with (v, z) as a pair of int16 per lane, B = round +
    // v * ml_self + z * ml_other and A = v * mh_self + z * mh_other +
    // floor(B / 2^16) (vpdpwssd, exact in 32 bits: |B| < 2^30 + 2^24,
    // |A| < 2^25), and t = A' * 2^16 + B with A' = A - floor(B / 2^16), so
    // floor(t / 2^shift) = A >> (shift - 16).
    const __m512i vz = _mm512_mask_blend_epi16(0xAAAAAAAA, v, _mm512_slli_epi32(z, 16));
    const __m512i b = _mm512_dpwssd_epi32(e.add_round, vz, e.m_low);
    const __m512i h = _mm512_sra_epi32(_mm512_dpwssd_epi32(_mm512_srai_epi32(b, 16), vz, e.m_high), e.add_shift);
    return _mm512_max_epi32(h, e.add_lo);  // then the upper bound (add_final)
  }
  __m512i te = _mm512_add_epi64(_mm512_mul_epi32(v, e.m_self), _mm512_mul_epi32(z, e.m_other));
  __m512i to = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(v, 32), e.m_self),
                                _mm512_mul_epi32(_mm512_srli_epi64(z, 32), e.m_other));
  if (e.add == Epilogue::Add::High) {
    const __m512i h = _mm512_sra_epi32(_mm512_add_epi32(high_words(te, to), e.add_round_high), e.add_shift);
    return _mm512_max_epi32(h, e.add_lo);
  }
  te = _mm512_add_epi64(te, e.add_round);
  to = _mm512_add_epi64(to, e.add_round);
  if (e.add == Epilogue::Add::Mid) {
    const __m512i h =
        _mm512_mask_blend_epi32(0xAAAA, _mm512_srl_epi64(te, e.add_shift), _mm512_sll_epi64(to, e.add_shift_odd));
    return _mm512_max_epi32(h, e.add_lo);
  }
  te = _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(te, e.add_shift), e.add_lo64), e.add_hi64);
  to = _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(to, e.add_shift), e.add_lo64), e.add_hi64);
  return low_words(te, to);
}

// The tile's sums (bias included) -> int8 outputs, two pixels per step,
// without a branch per pixel: a dropped pixel (null y), and the missing
// partner of an odd last pixel, write to (and take their addend from) a
// scratch slot. Full: 8 valid channels (plain 8-byte loads and stores).
template <int P, bool High, bool Z, bool Full>
inline void store_tile(const __m512i (&acc)[P], const Epilogue& e, const TileI8& a) {
  alignas(16) int8_t junk[16] = {};
  const __mmask16 m = static_cast<__mmask16>((1u << a.co_valid) - 1);
#pragma GCC unroll 16
  for (int j = 0; j < P; j += 2) {
    const bool two = j + 1 < P;
    int8_t* y0 = a.y[j] ? a.y[j] + a.yoff : junk;
    int8_t* y1 = two && a.y[j + 1] ? a.y[j + 1] + a.yoff : junk + 8;
    __m512i v = requant16<High>(reduce_pair(acc[j], two ? acc[j + 1] : _mm512_setzero_si512()), e);
    if constexpr (Z) {
      if constexpr (High) v = _mm512_min_epi32(v, e.hi);  // the add takes the clamped value
      const int8_t* z0 = a.y[j] ? a.z[j] + a.yoff : junk;
      const int8_t* z1 = two && a.y[j + 1] ? a.z[j + 1] + a.yoff : junk + 8;
      const __m128i zz =
          Full ? _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(z0))),
                                               reinterpret_cast<const double*>(z1)))
               : _mm_unpacklo_epi64(_mm_maskz_loadu_epi8(m, z0), _mm_maskz_loadu_epi8(m, z1));
      v = fused_add16(v, _mm512_cvtepi8_epi32(pixels_to_bytes(zz)), e);
    }
    // The upper bound of the last clamp by vpmovsdb's saturation when it is 127.
    if (!e.sat_hi) v = _mm512_min_epi32(v, Z ? e.add_hi : e.hi);
    const __m128i b = bytes_to_pixels(_mm512_cvtsepi32_epi8(v));
    if constexpr (Full) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y0), b);
      _mm_storeh_pd(reinterpret_cast<double*>(y1), _mm_castsi128_pd(b));
    } else {
      _mm_mask_storeu_epi8(y0, m, b);
      _mm_mask_storeu_epi8(y1, m, _mm_unpackhi_epi64(b, b));
    }
  }
}

template <int P, bool High, bool Z>
inline void store_tile(const __m512i (&acc)[P], const Epilogue& e, const TileI8& a) {
  if (a.co_valid == 8)
    store_tile<P, High, Z, true>(acc, e, a);
  else
    store_tile<P, High, Z, false>(acc, e, a);
}

template <int P>
void tile(const TileI8& a) {
  const __mmask8 m = static_cast<__mmask8>((1u << a.co_valid) - 1);
  // The accumulators start at the bias: lanes (co, half 0) take bias[co].
  const __m512i bias = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(m, a.bias));
  __m512i acc[P];
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j) acc[j] = bias;
  const int8_t* w = a.w;
  constexpr int64_t ldx = 8;  // the packed layout (conv_i8.cpp)
  if (!a.skip) {
    for (int b = 0; b < a.nblk; ++b) {
      const uint8_t* xb = a.x + a.cols[b] * a.ldb;
      for (int t = 0; t < a.ntaps; ++t, w += 64) {
        const uint8_t* xp = xb + a.tap_off[t];
        const __m512i wv = _mm512_load_si512(w);
#pragma GCC unroll 32
        for (int j = 0; j < P; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], bcast8(xp + j * ldx), wv);
      }
    }
  } else {
    // Skipping zero inputs (act_skip.hpp). A branch per (block, tap) on
    // the mask mispredicts about as often as the pattern is irregular, and
    // a mispredict (15-20 cycles) costs as much as the P products it would
    // save: the kept (block, tap) pairs are listed first without branches,
    // then multiplied in a loop of known length. The skipped pairs' 128 * w
    // terms (the input's zero is u = 128) are summed for the tile on the
    // way, masked rather than branched, and added to every pixel after.
    thread_local std::vector<int64_t> xoff, woff;
    const size_t pairs = static_cast<size_t>(a.nblk) * static_cast<size_t>(a.ntaps);
    if (xoff.size() < pairs) xoff.resize(pairs), woff.resize(pairs);
    __m256i skipped = _mm256_setzero_si256();
    size_t kept = 0;
    for (int b = 0; b < a.nblk; ++b) {
      const int64_t xb = a.cols[b] * a.ldb;
      const uint8_t* sk = a.skip + a.cols[b] * a.ntaps;
      for (int t = 0; t < a.ntaps; ++t) {
        const int64_t e = static_cast<int64_t>(b) * a.ntaps + t;
        xoff[kept] = xb + a.tap_off[t];
        woff[kept] = e * 64;
        kept += sk[t] ? 0 : 1;
        const __m256i on = _mm256_set1_epi32(-static_cast<int32_t>(sk[t]));
        skipped = _mm256_add_epi32(
            skipped, _mm256_and_si256(on, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w128 + e * 8))));
      }
    }
    for (size_t i = 0; i < kept; ++i) {
      const uint8_t* xp = a.x + xoff[i];
      const __m512i wv = _mm512_load_si512(w + woff[i]);
#pragma GCC unroll 32
      for (int j = 0; j < P; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], bcast8(xp + j * ldx), wv);
    }
    const __m512i add = _mm512_cvtepu32_epi64(skipped);  // lanes (co, half 0), like the bias
#pragma GCC unroll 32
    for (int j = 0; j < P; ++j) acc[j] = _mm512_add_epi32(acc[j], add);
  }
  const __m256i shift8 = _mm256_maskz_loadu_epi32(m, a.shift);
  Epilogue e;
  e.mult = pair_order(_mm256_maskz_loadu_epi32(m, a.mult));
  e.mult_odd = _mm512_srli_epi64(e.mult, 32);
  const __m512i shift = pair_order(shift8);
  e.lo = _mm512_set1_epi32(a.lo);
  e.hi = _mm512_set1_epi32(a.hi);
  const bool high = (_mm256_mask_cmpge_epi32_mask(m, shift8, _mm256_set1_epi32(33)) & m) == m;
  if (high) {
    e.shift_high = _mm512_sub_epi32(shift, _mm512_set1_epi32(32));
    e.round_high = _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_sub_epi32(shift, _mm512_set1_epi32(33)));
  } else {
    e.shift_even = _mm512_and_si512(shift, _mm512_set1_epi64(0xFFFFFFFF));
    e.shift_odd = _mm512_srli_epi64(shift, 32);
    // 2^(shift - 1): a shift of 0 gives the count 2^64 - 1, which vpsllvq turns into 0.
    const __m512i one = _mm512_set1_epi64(1);
    e.round_even = _mm512_sllv_epi64(one, _mm512_sub_epi64(e.shift_even, one));
    e.round_odd = _mm512_sllv_epi64(one, _mm512_sub_epi64(e.shift_odd, one));
    e.lo64 = _mm512_set1_epi64(a.lo);
    e.hi64 = _mm512_set1_epi64(a.hi);
  }
  e.sat_hi = a.hi == 127;
  if (a.z) {
    const q8::FusedAdd& f = *a.add;
    e.m_self = _mm512_set1_epi64(f.m_self);
    e.m_other = _mm512_set1_epi64(f.m_other);
    e.add_round = _mm512_set1_epi64(f.round);
    e.add_lo = _mm512_set1_epi32(f.lo);
    e.add_hi = _mm512_set1_epi32(f.hi);
    // Words: the multipliers split into int16 halves (m - mh * 2^16 in
    // [-2^15, 2^15), mh within int16 too).
    const auto split = [](int32_t m, int32_t& lo16, int32_t& hi16) {
      lo16 = static_cast<int16_t>(static_cast<uint32_t>(m) & 0xFFFF);
      const int64_t h = (int64_t{m} - lo16) / 65536;
      hi16 = static_cast<int32_t>(h);
      return h >= -32768 && h <= 32767;
    };
    int32_t sl = 0, sh = 0, ol = 0, oh = 0;
    const bool words = f.shift >= 16 && f.shift <= 31 && split(f.m_self, sl, sh) && split(f.m_other, ol, oh);
    e.add = f.shift >= 33 ? Epilogue::Add::High
            : words       ? Epilogue::Add::Words
            : f.shift >= 9 ? Epilogue::Add::Mid
                           : Epilogue::Add::General;
    e.sat_hi = f.hi == 127;
    if (e.add == Epilogue::Add::Words) {
      e.add_shift = _mm_cvtsi32_si128(f.shift - 16);
      e.add_round = _mm512_set1_epi32(static_cast<int32_t>(f.round));
      e.m_low = _mm512_set1_epi32(static_cast<int32_t>((static_cast<uint32_t>(sl) & 0xFFFF) | (static_cast<uint32_t>(ol) << 16)));
      e.m_high = _mm512_set1_epi32(static_cast<int32_t>((static_cast<uint32_t>(sh) & 0xFFFF) | (static_cast<uint32_t>(oh) << 16)));
    } else if (e.add == Epilogue::Add::High) {
      e.add_shift = _mm_cvtsi32_si128(f.shift - 32);
      e.add_round_high = _mm512_set1_epi32(1 << (f.shift - 33));
    } else {
      e.add_shift = _mm_cvtsi32_si128(f.shift);
      e.add_shift_odd = _mm_cvtsi32_si128(32 - f.shift);
      e.add_lo64 = _mm512_set1_epi64(f.lo);
      e.add_hi64 = _mm512_set1_epi64(f.hi);
    }
    if (high)
      store_tile<P, true, true>(acc, e, a);
    else
      store_tile<P, false, true>(acc, e, a);
  } else {
    if (high)
      store_tile<P, true, false>(acc, e, a);
    else
      store_tile<P, false, false>(acc, e, a);
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

namespace bsp::kernels {

namespace {

// 8 pixels x 8 blocks of 8 bytes: r[p] holds pixel p's blocks 0..7 (one
// 64-bit word each) -> out[k] holds block k of pixels 0..7 (the standard
// 8 x 8 transpose: 64-bit unpacks, then two rounds of 128-bit lane shuffles).
inline void transpose8x8(const __m512i (&r)[8], __m512i (&out)[8]) {
  __m512i lo[4], hi[4], a[4], b[4];
  for (int i = 0; i < 4; ++i) {
    lo[i] = _mm512_unpacklo_epi64(r[2 * i], r[2 * i + 1]);  // words 0, 2, 4, 6 of pixels 2i, 2i+1
    hi[i] = _mm512_unpackhi_epi64(r[2 * i], r[2 * i + 1]);  // words 1, 3, 5, 7
  }
  for (int i = 0; i < 2; ++i) {
    a[2 * i] = _mm512_shuffle_i64x2(lo[2 * i], lo[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0));      // words 0, 4
    a[2 * i + 1] = _mm512_shuffle_i64x2(lo[2 * i], lo[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1));  // words 2, 6
    b[2 * i] = _mm512_shuffle_i64x2(hi[2 * i], hi[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0));      // words 1, 5
    b[2 * i + 1] = _mm512_shuffle_i64x2(hi[2 * i], hi[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1));  // words 3, 7
  }
  out[0] = _mm512_shuffle_i64x2(a[0], a[2], _MM_SHUFFLE(2, 0, 2, 0));
  out[4] = _mm512_shuffle_i64x2(a[0], a[2], _MM_SHUFFLE(3, 1, 3, 1));
  out[2] = _mm512_shuffle_i64x2(a[1], a[3], _MM_SHUFFLE(2, 0, 2, 0));
  out[6] = _mm512_shuffle_i64x2(a[1], a[3], _MM_SHUFFLE(3, 1, 3, 1));
  out[1] = _mm512_shuffle_i64x2(b[0], b[2], _MM_SHUFFLE(2, 0, 2, 0));
  out[5] = _mm512_shuffle_i64x2(b[0], b[2], _MM_SHUFFLE(3, 1, 3, 1));
  out[3] = _mm512_shuffle_i64x2(b[1], b[3], _MM_SHUFFLE(2, 0, 2, 0));
  out[7] = _mm512_shuffle_i64x2(b[1], b[3], _MM_SHUFFLE(3, 1, 3, 1));
}

void pack_run(const int8_t* src, int64_t src_stride, int64_t npix, int64_t C, uint8_t* dst, int64_t bstride,
              uint8_t flip) {
  // Channels beyond C: masked (zero) loads, then 0 ^ flip, the padding.
  const int64_t nblocks = (C + 7) / 8;
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
  int64_t p = 0;
  for (; p + 8 <= npix; p += 8) {
    const int8_t* s = src + p * src_stride;
    for (int64_t cb = 0; cb < nblocks; cb += 8) {
      // Blocks cb .. cb + 7 (fewer at the end: their stores are skipped).
      const int64_t nb = std::min<int64_t>(8, nblocks - cb), bytes = std::min<int64_t>(64, C - cb * 8);
      const __mmask64 m = bytes == 64 ? ~__mmask64{0} : (__mmask64{1} << bytes) - 1;
      __m512i r[8], out[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + i * src_stride + cb * 8), f);
      transpose8x8(r, out);
      for (int k = 0; k < nb; ++k) _mm512_storeu_si512(dst + (cb + k) * bstride + p * 8, out[k]);
    }
  }
  // The last pixels, one 8-byte word at a time.
  const __m128i f16 = _mm_set1_epi8(static_cast<char>(flip));
  for (; p < npix; ++p)
    for (int64_t cb = 0; cb < nblocks; ++cb) {
      const int64_t bytes = std::min<int64_t>(8, C - cb * 8);
      const __mmask16 m = static_cast<__mmask16>((1u << bytes) - 1);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + cb * bstride + p * 8),
                       _mm_xor_si128(_mm_maskz_loadu_epi8(m, src + p * src_stride + cb * 8), f16));
    }
}

}  // namespace

PackRunI8 pack_run_i8_avx512() { return &pack_run; }

}  // namespace bsp::kernels
