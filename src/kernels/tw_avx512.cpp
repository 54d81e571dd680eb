// The tw kernels (tw.hpp), AVX-512: fp32 FMA and int8 VNNI micro-kernels of
// P pixels x NV vectors of 16 columns, the compress-based row gather and the
// gathering epilogues.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/tw.hpp"

namespace bsp::kernels {

namespace {

// Pixels per micro-kernel call for NV column vectors: P x NV accumulators
// (24 of the 32 registers, the weights and a broadcast beside them).
constexpr int pixels_for(int nv) { return nv == 4 ? 6 : nv == 3 ? 8 : nv == 2 ? 12 : 24; }

// ---- fp32 ----

void gather_f32(const float* const* src, const TwGather& g, float* dst) {
  const int taps = static_cast<int>(g.tap_ptr.size()) - 1;
  for (int t = 0; t < taps; ++t) {
    const float* s = src[t];
    for (int32_t e = g.tap_ptr[t]; e < g.tap_ptr[t + 1]; ++e) {
      const __mmask16 m = g.mask[static_cast<size_t>(e)];
      // Masked load: lanes past the channel count are never touched.
      const __m512 v = s ? _mm512_maskz_compress_ps(m, _mm512_maskz_loadu_ps(m, s + g.chunk[static_cast<size_t>(e)]))
                         : _mm512_setzero_ps();
      _mm512_storeu_ps(dst, v);
      dst += __builtin_popcount(m);
    }
  }
}

template <int NV, int P>
void micro_f32(const float* a, int64_t lda, const float* w, int64_t k, float* c, int64_t ldc, bool accumulate) {
  __m512 acc[P][NV];
  if (accumulate) {
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_loadu_ps(c + p * ldc + 16 * v);
  } else {
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < k; ++i, w += 16 * NV) {
    __m512 wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_ps(w + 16 * v);
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p) {
      const __m512 b = _mm512_set1_ps(a[p * lda + i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_fmadd_ps(b, wv[v], acc[p][v]);
    }
  }
#pragma GCC unroll 32
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + p * ldc + 16 * v, acc[p][v]);
}

using MicroF32 = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

template <int NV, int... Ps>
constexpr auto table_f32(std::integer_sequence<int, Ps...>) {
  return std::array<MicroF32, sizeof...(Ps)>{&micro_f32<NV, Ps + 1>...};
}

template <int NV>
void gemm_nv_f32(const TwGemmF32& a) {
  constexpr int P = pixels_for(NV);
  static constexpr auto table = table_f32<NV>(std::make_integer_sequence<int, P>{});
  for (int p0 = 0; p0 < a.npix; p0 += P) {
    const int n = std::min(P, a.npix - p0);
    table[static_cast<size_t>(n - 1)](a.a + p0 * a.lda, a.lda, a.w, a.k, a.c + p0 * a.ldc, a.ldc, a.accumulate);
  }
}

void gemm_f32(const TwGemmF32& a) {
  switch (a.nv) {
    case 4: return gemm_nv_f32<4>(a);
    case 3: return gemm_nv_f32<3>(a);
    case 2: return gemm_nv_f32<2>(a);
    default: return gemm_nv_f32<1>(a);
  }
}

void epilogue_f32(const float* stage, const int32_t* src, const float* bias, const float* z, float* y, int64_t o0,
                  int64_t o1, Clamp clamp) {
  const __m512 lo = _mm512_set1_ps(clamp.lo), hi = _mm512_set1_ps(clamp.hi);
  for (int64_t o = o0; o < o1; o += 16) {
    const __mmask16 tail = o1 - o >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (o1 - o)) - 1);
    const __m512i idx = _mm512_maskz_loadu_epi32(tail, src + o);
    const __mmask16 kept = _mm512_mask_cmpge_epi32_mask(tail, idx, _mm512_setzero_si512());
    __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), kept, idx, stage, 4);
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, bias + o));
    if (z) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, z + o));
    if (clamp.on) v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    _mm512_mask_storeu_ps(y + o, tail, v);
  }
}

// ---- int8 ----

// Input bytes as u = q + 128 (q XOR 0x80); padding 128.
void gather_i8(const int8_t* const* src, const TwGather& g, uint8_t* dst) {
  const int taps = static_cast<int>(g.tap_ptr.size()) - 1;
  const __m512i bias = _mm512_set1_epi32(0x80);
  for (int t = 0; t < taps; ++t) {
    const int8_t* s = src[t];
    for (int32_t e = g.tap_ptr[t]; e < g.tap_ptr[t + 1]; ++e) {
      const __mmask16 m = g.mask[static_cast<size_t>(e)];
      __m128i b;
      if (s) {
        const __m512i wide = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, s + g.chunk[static_cast<size_t>(e)]));
        b = _mm512_cvtepi32_epi8(_mm512_maskz_compress_epi32(m, _mm512_add_epi32(wide, bias)));
      } else {
        b = _mm_set1_epi8(static_cast<char>(0x80));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), b);
      dst += __builtin_popcount(m);
    }
  }
}

template <int NV, int P>
void micro_i8(const uint8_t* a, int64_t lda, const int8_t* w, int64_t k, int32_t* c, int64_t ldc, bool accumulate) {
  __m512i acc[P][NV];
  if (accumulate) {
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_loadu_si512(c + p * ldc + 16 * v);
  } else {
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_setzero_si512();
  }
  for (int64_t i = 0; i < k; i += 4, w += 64 * NV) {
    __m512i wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_si512(w + 64 * v);
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p) {
      int32_t q;
      std::memcpy(&q, a + p * lda + i, 4);
      const __m512i b = _mm512_set1_epi32(q);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], b, wv[v]);
    }
  }
#pragma GCC unroll 32
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_storeu_si512(c + p * ldc + 16 * v, acc[p][v]);
}

using MicroI8 = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int32_t*, int64_t, bool);

template <int NV, int... Ps>
constexpr auto table_i8(std::integer_sequence<int, Ps...>) {
  return std::array<MicroI8, sizeof...(Ps)>{&micro_i8<NV, Ps + 1>...};
}

template <int NV>
void gemm_nv_i8(const TwGemmI8& a) {
  constexpr int P = pixels_for(NV);
  static constexpr auto table = table_i8<NV>(std::make_integer_sequence<int, P>{});
  for (int p0 = 0; p0 < a.npix; p0 += P) {
    const int n = std::min(P, a.npix - p0);
    table[static_cast<size_t>(n - 1)](a.a + p0 * a.lda, a.lda, a.w, a.k, a.c + p0 * a.ldc, a.ldc, a.accumulate);
  }
}

void gemm_i8(const TwGemmI8& a) {
  switch (a.nv) {
    case 4: return gemm_nv_i8<4>(a);
    case 3: return gemm_nv_i8<3>(a);
    case 2: return gemm_nv_i8<2>(a);
    default: return gemm_nv_i8<1>(a);
  }
}

// 8 int32 accumulators (bias included) -> requantised, clamped, the fused add
// when z: int64 lanes, the exact rule of compact/int8.hpp.
inline __m128i requant8(__m256i acc, __m256i mult32, __m256i shift32, const TwEpilogueI8& e, __m128i z8) {
  const __m512i shift = _mm512_cvtepi32_epi64(shift32);
  const __m512i round = _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), shift), 1);
  __m512i v = _mm512_add_epi64(_mm512_mullo_epi64(_mm512_cvtepi32_epi64(acc), _mm512_cvtepi32_epi64(mult32)), round);
  v = _mm512_srav_epi64(v, shift);
  v = _mm512_min_epi64(_mm512_max_epi64(v, _mm512_set1_epi64(e.lo)), _mm512_set1_epi64(e.hi));
  if (e.z) {
    const q8::FusedAdd& f = *e.add;
    const __m512i zv = _mm512_cvtepi8_epi64(z8);
    v = _mm512_add_epi64(_mm512_add_epi64(_mm512_mul_epi32(v, _mm512_set1_epi64(f.m_self)),
                                          _mm512_mul_epi32(zv, _mm512_set1_epi64(f.m_other))),
                         _mm512_set1_epi64(f.round));
    v = _mm512_sra_epi64(v, _mm_cvtsi32_si128(f.shift));
    v = _mm512_min_epi64(_mm512_max_epi64(v, _mm512_set1_epi64(f.lo)), _mm512_set1_epi64(f.hi));
  }
  return _mm512_cvtepi64_epi8(v);
}

void epilogue_i8(const TwEpilogueI8& e) {
  for (int64_t o = e.o0; o < e.o1; o += 16) {
    const __mmask16 tail = e.o1 - o >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (e.o1 - o)) - 1);
    const __m512i idx = _mm512_maskz_loadu_epi32(tail, e.src + o);
    const __mmask16 kept = _mm512_mask_cmpge_epi32_mask(tail, idx, _mm512_setzero_si512());
    __m512i acc = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), kept, idx, e.stage, 4);
    acc = _mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(tail, e.bias + o));
    const __m512i mult = _mm512_maskz_loadu_epi32(tail, e.mult + o), shift = _mm512_maskz_loadu_epi32(tail, e.shift + o);
    const __m128i z = e.z ? _mm_maskz_loadu_epi8(tail, e.z + o) : _mm_setzero_si128();
    const __m128i lo = requant8(_mm512_castsi512_si256(acc), _mm512_castsi512_si256(mult), _mm512_castsi512_si256(shift), e, z);
    const __m128i hi = requant8(_mm512_extracti64x4_epi64(acc, 1), _mm512_extracti64x4_epi64(mult, 1),
                                _mm512_extracti64x4_epi64(shift, 1), e, _mm_srli_si128(z, 8));
    _mm_mask_storeu_epi8(e.y + o, tail, _mm_unpacklo_epi64(lo, hi));
  }
}

}  // namespace

TwKernelsF32 tw_f32_avx512() { return {&gather_f32, &gemm_f32, &epilogue_f32}; }
TwKernelsI8 tw_i8_avx512() { return {true, &gather_i8, &gemm_i8, &epilogue_i8}; }

}  // namespace bsp::kernels
