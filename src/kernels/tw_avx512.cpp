// The tw kernels (tw.hpp), AVX-512: fp32 FMA and int8 VNNI micro-kernels of
// P pixels x NV vectors of 16 columns, the compress-based row gather and the
// gathering epilogues.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/tw.hpp"

namespace bsp::kernels {

namespace {

// 128-bit lane h of v. The extract's lane must be a constant: GCC folds the
// unrolled loop's h, clang at -O1 (the sanitizer build) does not.
inline __m128i lane128(__m512i v, int h) {
  switch (h) {
    case 0: return _mm512_castsi512_si128(v);
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    default: return _mm512_extracti32x4_epi32(v, 3);
  }
}

// Pixels per micro-kernel call for NV column vectors: P x NV accumulators
// (24 of the 32 registers, the weights and a broadcast beside them).
constexpr int pixels_for(int nv) { return nv == 4 ? 6 : nv == 3 ? 8 : nv == 2 ? 12 : 24; }

// ---- the micro-kernels ----

// The micro-kernel's operations, per type: fp32 FMA (one panel row per
// step) and int8 VNNI (vpdpbusd: four rows per step, the panel's bytes
// unsigned, the weights' signed).
struct OpsF32 {
  using A = float;  // panel
  using W = float;  // weights
  using C = float;  // stage
  using V = __m512;
  static constexpr int kStep = 1, kWVec = 16;  // panel rows per step, weights per vector
  static V load(const C* p) { return _mm512_loadu_ps(p); }
  static void store(C* p, V v) { _mm512_storeu_ps(p, v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V load_w(const W* w) { return _mm512_load_ps(w); }
  static V bcast(const A* a) { return _mm512_set1_ps(*a); }
  static V madd(V acc, V b, V w) { return _mm512_fmadd_ps(b, w, acc); }
};
struct OpsI8 {
  using A = uint8_t;
  using W = int8_t;
  using C = int32_t;
  using V = __m512i;
  static constexpr int kStep = 4, kWVec = 64;
  static V load(const C* p) { return _mm512_loadu_si512(p); }
  static void store(C* p, V v) { _mm512_storeu_si512(p, v); }
  static V zero() { return _mm512_setzero_si512(); }
  static V load_w(const W* w) { return _mm512_load_si512(w); }
  static V bcast(const A* a) {
    int32_t q;
    std::memcpy(&q, a, 4);
    return _mm512_set1_epi32(q);
  }
  static V madd(V acc, V b, V w) { return _mm512_dpbusd_epi32(acc, b, w); }
};

// P pixels x NV vectors of 16 stage columns: c[p][16 v ..] (+)= sum over the
// k panel rows of a[p][i] * w[i][16 v ..].
template <class Ops, int NV, int P>
void micro(const typename Ops::A* a, int64_t lda, const typename Ops::W* w, int64_t k, typename Ops::C* c,
           int64_t ldc, bool accumulate) {
  typename Ops::V acc[P][NV];
  if (accumulate) {
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = Ops::load(c + p * ldc + 16 * v);
  } else {
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = Ops::zero();
  }
  for (int64_t i = 0; i < k; i += Ops::kStep, w += Ops::kWVec * NV) {
    typename Ops::V wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = Ops::load_w(w + Ops::kWVec * v);
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p) {
      const typename Ops::V b = Ops::bcast(a + p * lda + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[p][v] = Ops::madd(acc[p][v], b, wv[v]);
    }
  }
#pragma GCC unroll 32
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Ops::store(c + p * ldc + 16 * v, acc[p][v]);
}

template <class Ops>
using Micro = void (*)(const typename Ops::A*, int64_t, const typename Ops::W*, int64_t, typename Ops::C*, int64_t,
                       bool);

template <class Ops, int NV, int... Ps>
constexpr auto micro_table(std::integer_sequence<int, Ps...>) {
  return std::array<Micro<Ops>, sizeof...(Ps)>{&micro<Ops, NV, Ps + 1>...};
}

// Args: TwGemmF32 or TwGemmI8.
template <class Ops, int NV, class Args>
void gemm_nv(const Args& a) {
  constexpr int P = pixels_for(NV);
  static constexpr auto table = micro_table<Ops, NV>(std::make_integer_sequence<int, P>{});
  for (int p0 = 0; p0 < a.npix; p0 += P) {
    const int n = std::min(P, a.npix - p0);
    table[static_cast<size_t>(n - 1)](a.a + p0 * a.lda, a.lda, a.w, a.k, a.c + p0 * a.ldc, a.ldc, a.accumulate);
  }
}

template <class Ops, class Args>
void gemm(const Args& a) {
  switch (a.nv) {
    case 4: return gemm_nv<Ops, 4>(a);
    case 3: return gemm_nv<Ops, 3>(a);
    case 2: return gemm_nv<Ops, 2>(a);
    default: return gemm_nv<Ops, 1>(a);
  }
}

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

// How the 16 output channels from c read their stage columns: an expanding
// load of consecutive columns from `off` into the lanes `kept` when the plan
// is ascending, else a gather of columns idx in the lanes `kept`. Lanes
// outside `lanes` and channels in no tile read 0.
struct StageRead {
  bool expand;
  __mmask16 kept;
  int64_t off;
  __m512i idx;
  StageRead(const TwPlan& p, int64_t c, int64_t o0, __mmask16 lanes) : expand(p.ascending) {
    if (expand) {
      const size_t q = static_cast<size_t>(c / 16);
      const uint32_t km = p.kmask[q];
      // Kept channels of the chunk below o0 (a group starting inside it) are skipped.
      off = p.kpos[q] + (o0 > c ? __builtin_popcount(km & ((1u << (o0 - c)) - 1)) : 0);
      kept = static_cast<__mmask16>(km & lanes);
      idx = _mm512_setzero_si512();
    } else {
      off = 0;
      idx = _mm512_maskz_loadu_epi32(lanes, p.src.data() + c);
      kept = _mm512_mask_cmpge_epi32_mask(lanes, idx, _mm512_setzero_si512());
    }
  }
  __m512i operator()(const int32_t* stage) const {
    return expand ? _mm512_maskz_expandloadu_epi32(kept, stage + off)
                  : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), kept, idx, stage, 4);
  }
};

// Lanes of the 16 channels from c that lie in [o0, o1).
inline __mmask16 lanes_of(int64_t c, int64_t o0, int64_t o1) {
  uint32_t m = 0xffffu;
  if (o0 > c) m &= ~((1u << (o0 - c)) - 1);
  if (o1 < c + 16) m &= (1u << (o1 - c)) - 1;
  return static_cast<__mmask16>(m);
}

void epilogue_f32(const TwEpilogueF32& e) {
  const __m512 lo = _mm512_set1_ps(e.clamp.lo), hi = _mm512_set1_ps(e.clamp.hi);
  for (int64_t c = e.o0 / 16 * 16; c < e.o1; c += 16) {
    const __mmask16 lanes = lanes_of(c, e.o0, e.o1);
    const StageRead read(*e.plan, c, e.o0, lanes);
    const __m512 bias = _mm512_maskz_loadu_ps(lanes, e.bias + c);
    for (int j = 0; j < e.npix; ++j) {
      __m512 v = _mm512_add_ps(_mm512_castsi512_ps(read(reinterpret_cast<const int32_t*>(e.stage + j * e.lds))), bias);
      if (e.z) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, e.z + j * e.ld + c));
      if (e.clamp.on) v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      _mm512_mask_storeu_ps(e.y + j * e.ld + c, lanes, v);
    }
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

// The same with AVX-512 VBMI2's byte compress, 64 channels at a time.
__attribute__((target("avx512vbmi2"))) void gather_i8_vbmi2(const int8_t* const* src, const TwGather& g,
                                                           uint8_t* dst) {
  const int taps = static_cast<int>(g.tap_ptr64.size()) - 1;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int t = 0; t < taps; ++t) {
    const int8_t* s = src[t];
    for (int32_t e = g.tap_ptr64[t]; e < g.tap_ptr64[t + 1]; ++e) {
      const __mmask64 m = g.mask64[static_cast<size_t>(e)];
      const __m512i v =
          s ? _mm512_maskz_compress_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + g.chunk64[static_cast<size_t>(e)]), flip))
            : flip;
      _mm512_storeu_si512(dst, v);
      dst += __builtin_popcountll(m);
    }
  }
}

// The requantisation of compact/int8.hpp for 16 output channels (acc: the
// stage values plus bias), then the fused add with the addend z (sign-
// extended to 32 bits) when `add`: 64-bit arithmetic on the even and the
// odd 32-bit lanes apart (vpmuldq multiplies the low signed 32 bits of each
// 64-bit lane: the accumulators, multipliers and clamped values all fit
// them), the results back in the 32-bit lanes. mult, shift and round come
// per half (odd lanes moved down).
struct AddConsts {
  __m512i m_self, m_other, round, lo, hi;
  __m128i shift;
};
// Of the fused add f; all zero without one.
inline AddConsts add_consts(const q8::FusedAdd* f) {
  AddConsts a{};
  if (!f) return a;
  a.m_self = _mm512_set1_epi64(f->m_self);
  a.m_other = _mm512_set1_epi64(f->m_other);
  a.round = _mm512_set1_epi64(f->round);
  a.shift = _mm_cvtsi32_si128(f->shift);
  a.lo = _mm512_set1_epi64(f->lo);
  a.hi = _mm512_set1_epi64(f->hi);
  return a;
}
// The fused add on the even (or the odd, moved down) 32-bit lanes of 16
// values v and addends z, in 64-bit lanes.
inline __m512i fused_add64(__m512i v, __m512i z, const AddConsts& a) {
  const __m512i t =
      _mm512_add_epi64(_mm512_add_epi64(_mm512_mul_epi32(v, a.m_self), _mm512_mul_epi32(z, a.m_other)), a.round);
  return _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(t, a.shift), a.lo), a.hi);
}
// A chunk of 16 channels' requantisation constants (multipliers m, shifts
// s), split into the even lanes and the odd lanes moved down.
struct RequantConsts {
  __m512i mult[2], shift[2], round[2];
  RequantConsts(__m512i m, __m512i s) {
    mult[0] = m;
    mult[1] = _mm512_srli_epi64(m, 32);
    shift[0] = _mm512_and_si512(s, _mm512_set1_epi64(0xffffffff));
    shift[1] = _mm512_srli_epi64(s, 32);
    for (int h = 0; h < 2; ++h) round[h] = _mm512_srli_epi64(_mm512_sllv_epi64(_mm512_set1_epi64(1), shift[h]), 1);
  }
};
inline __m128i requant16(__m512i acc, const RequantConsts& q, __m512i lo, __m512i hi, bool add, const AddConsts& a,
                         __m512i z) {
  __m512i v[2];
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m512i x = h ? _mm512_srli_epi64(acc, 32) : acc;
    __m512i r = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, q.mult[h]), q.round[h]), q.shift[h]);
    r = _mm512_min_epi64(_mm512_max_epi64(r, lo), hi);
    if (add) r = fused_add64(r, h ? _mm512_srli_epi64(z, 32) : z, a);
    v[h] = r;
  }
  // Even lanes from v[0], odd lanes from v[1] (each value in its low 32 bits).
  return _mm512_cvtepi32_epi8(_mm512_mask_blend_epi32(0xaaaa, v[0], _mm512_slli_epi64(v[1], 32)));
}

void epilogue_i8(const TwEpilogueI8& e) {
  // Locals: the int8 stores below may alias anything, so fields read through
  // e would be reloaded after each of them.
  const int32_t* const stage = e.stage;
  const int64_t lds = e.lds, ld = e.ld, o0 = e.o0, o1 = e.o1;
  const int npix = e.npix;
  const int8_t* const zb = e.z;
  int8_t* const yb = e.y;
  const bool add = zb != nullptr;
  const AddConsts a = add_consts(add ? e.add : nullptr);
  const __m512i lo = _mm512_set1_epi64(e.lo), hi = _mm512_set1_epi64(e.hi);
  for (int64_t c = o0 / 16 * 16; c < o1; c += 16) {
    const __mmask16 lanes = lanes_of(c, o0, o1);
    const StageRead read(*e.plan, c, o0, lanes);
    const __m512i bias = _mm512_maskz_loadu_epi32(lanes, e.bias + c);
    const RequantConsts q(_mm512_maskz_loadu_epi32(lanes, e.mult + c), _mm512_maskz_loadu_epi32(lanes, e.shift + c));
    for (int j = 0; j < npix; ++j) {
      const __m512i z = add ? _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, zb + j * ld + c)) : _mm512_setzero_si512();
      const __m512i acc = _mm512_add_epi32(read(stage + j * lds), bias);
      const __m128i b = requant16(acc, q, lo, hi, add, a, z);
      int8_t* y = yb + j * ld + c;
      if (lanes == 0xffff)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y), b);
      else
        _mm_mask_storeu_epi8(y, lanes, b);
    }
  }
}

// Stage column of the first kept channel at or after o (ascending plans).
inline int64_t kept_before(const TwPlan& p, int64_t o) {
  const size_t q = static_cast<size_t>(o / 16);
  if (q >= p.kmask.size()) return p.stage_cols;
  return p.kpos[q] + __builtin_popcount(p.kmask[q] & ((1u << (o % 16)) - 1));
}

// The fused add (q8::FusedAdd) on 16 int8 values v and addends z, both
// sign-extended to 32 bits: 64-bit arithmetic on even and odd lanes apart.
inline __m128i fused_add16(__m512i v, __m512i z, const AddConsts& a) {
  __m512i r[2];
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) r[h] = fused_add64(h ? _mm512_srli_epi64(v, 32) : v, h ? _mm512_srli_epi64(z, 32) : z, a);
  return _mm512_cvtepi32_epi8(_mm512_mask_blend_epi32(0xaaaa, r[0], _mm512_slli_epi64(r[1], 32)));
}

// The int8 epilogue over the kept channels alone (ascending plans; VBMI2's
// byte expand): 1. requantise the item's kept channels, which are
// consecutive stage columns, into compact bytes (no per-channel lookups,
// and the channels in no tile cost nothing); 2. expand them into the output
// channels, those in no tile taking their requantised bias; 3. the fused
// add, over every channel. Other plans: epilogue_i8.
__attribute__((target("avx512vbmi2"))) void epilogue_i8_vbmi2(const TwEpilogueI8& e) {
  const TwPlan& p = *e.plan;
  if (!p.ascending) return epilogue_i8(e);
  const int32_t* const stage = e.stage;
  const int64_t lds = e.lds, ld = e.ld, o0 = e.o0, o1 = e.o1;
  const int npix = e.npix;
  const int8_t* const zb = e.z;
  int8_t* const yb = e.y;
  int8_t* const scratch = e.scratch;
  const bool add = zb != nullptr;
  const AddConsts a = add_consts(add ? e.add : nullptr);
  const __m512i lo = _mm512_set1_epi64(e.lo), hi = _mm512_set1_epi64(e.hi);
  const int64_t s0 = kept_before(p, o0), s1 = kept_before(p, o1);
  // 1. scratch row j, byte s - s0: kept channel (stage column) s.
  for (int64_t s = s0; s < s1; s += 16) {
    const __mmask16 lanes = s1 - s >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (s1 - s)) - 1);
    const __m512i bias = _mm512_maskz_loadu_epi32(lanes, e.kbias + s);
    const RequantConsts q(_mm512_maskz_loadu_epi32(lanes, e.kmult + s), _mm512_maskz_loadu_epi32(lanes, e.kshift + s));
    for (int j = 0; j < npix; ++j) {
      const __m512i acc = _mm512_add_epi32(_mm512_maskz_loadu_epi32(lanes, stage + j * lds + s), bias);
      const __m128i b = requant16(acc, q, lo, hi, false, a, _mm512_setzero_si512());
      _mm_storeu_si128(reinterpret_cast<__m128i*>(scratch + j * lds + (s - s0)), b);  // the row has 64 bytes of slack
    }
  }
  // 2. and 3., 64 output channels at a time.
  for (int64_t c = o0 / 64 * 64; c < o1; c += 64) {
    uint64_t lanes = ~uint64_t{0};
    if (o0 > c) lanes &= ~uint64_t{0} << (o0 - c);
    if (o1 < c + 64) lanes &= (uint64_t{1} << (o1 - c)) - 1;
    uint64_t km = 0;
    for (int i = 0; i < 4; ++i) {
      const size_t q = static_cast<size_t>(c / 16 + i);
      if (q < p.kmask.size()) km |= static_cast<uint64_t>(p.kmask[q]) << (16 * i);
    }
    km &= lanes;
    const int64_t off = kept_before(p, std::max(c, o0)) - s0;
    const __m512i idle = _mm512_maskz_loadu_epi8(lanes, e.idle + c);
    for (int j = 0; j < npix; ++j) {
      const __m512i v = _mm512_mask_expandloadu_epi8(idle, km, scratch + j * lds + off);
      int8_t* const y = yb + j * ld + c;
      if (!add) {
        _mm512_mask_storeu_epi8(y, lanes, v);
        continue;
      }
      const int8_t* const z = zb + j * ld + c;
#pragma GCC unroll 4
      for (int h = 0; h < 4; ++h) {
        const __mmask16 l16 = static_cast<__mmask16>(lanes >> (16 * h));
        if (!l16) continue;
        const __m512i v32 = _mm512_cvtepi8_epi32(lane128(v, h));
        const __m512i z32 = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(l16, z + 16 * h));
        _mm_mask_storeu_epi8(y + 16 * h, l16, fused_add16(v32, z32, a));
      }
    }
  }
}

}  // namespace

TwKernelsF32 tw_f32_avx512() { return {&gather_f32, &gemm<OpsF32, TwGemmF32>, &epilogue_f32}; }
TwKernelsI8 tw_i8_avx512(bool vbmi2) {
  if (vbmi2 && __builtin_cpu_supports("avx512vbmi2")) return {true, &gather_i8_vbmi2, &gemm<OpsI8, TwGemmI8>, &epilogue_i8_vbmi2};
  return {true, &gather_i8, &gemm<OpsI8, TwGemmI8>, &epilogue_i8};
}

}  // namespace bsp::kernels
