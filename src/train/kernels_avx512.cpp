// The AVX-512 kernels (see kernels.hpp). This file alone is compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512dq; kernels.cpp calls it only
// after checking the CPU.
// GCC 12's intrinsics pass _mm512_undefined_ps() as the unused merge source,
// which -Wuninitialized reports in every caller (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "train/kernels.hpp"

namespace bsp::train {

namespace {

// One 8 x (16 * NV) tile of igemm8: 8 * NV accumulators (24 for NV = 3),
// NV loads of B and 8 broadcasts of A per K entry. MASK: the last vector is
// partial (`last` selects its lanes).
template <int NV, bool MASK>
inline void igemm8_tile(const float* A, const int64_t* off, int64_t T, const float* B, float* C, int64_t ldc,
                        bool accumulate, __mmask16 last) {
  __m512 c[8][NV];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) c[r][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < T; ++t) {
    const float* b = B + off[t];
    __m512 bv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      bv[v] = (MASK && v == NV - 1) ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
    const float* a = A + t * 8;
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(ar, bv[v], c[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      float* cp = C + r * ldc + 16 * v;
      if (MASK && v == NV - 1) {
        __m512 x = c[r][v];
        if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(last, cp));
        _mm512_mask_storeu_ps(cp, last, x);
      } else {
        __m512 x = c[r][v];
        if (accumulate) x = _mm512_add_ps(x, _mm512_loadu_ps(cp));
        _mm512_storeu_ps(cp, x);
      }
    }
  }
}

void igemm8_avx512(const float* A, const int64_t* off, int64_t T, const float* B, int64_t P, float* C, int64_t ldc,
                   bool accumulate) {
  int64_t p = 0;
  for (; p + 48 <= P; p += 48) igemm8_tile<3, false>(A, off, T, B + p, C + p, ldc, accumulate, 0xffff);
  const int64_t rest = P - p;
  if (rest <= 0) return;
  const int nv = static_cast<int>((rest + 15) / 16);
  const int tail = static_cast<int>(rest - (nv - 1) * 16);
  const __mmask16 last = static_cast<__mmask16>((1u << tail) - 1u);
  if (nv == 3)
    igemm8_tile<3, true>(A, off, T, B + p, C + p, ldc, accumulate, last);
  else if (nv == 2)
    igemm8_tile<2, true>(A, off, T, B + p, C + p, ldc, accumulate, last);
  else
    igemm8_tile<1, true>(A, off, T, B + p, C + p, ldc, accumulate, last);
}

// Sum of the 16 lanes (written out: GCC 12's _mm512_reduce_add_ps warns).
inline float hsum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 x = _mm512_castps512_ps128(v);
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

// R rows x TT K entries of rowdot8: R * TT accumulators of 16 partial sums,
// reduced at the end.
template <int R, int TT>
inline void rowdot_tile(const float* Y, int64_t ldy, const int64_t* off, const int64_t* didx, const float* B, int64_t P,
                        float* D, int64_t ldd) {
  __m512 acc[R][TT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int j = 0; j < TT; ++j) acc[r][j] = _mm512_setzero_ps();
  const float* b[TT];
#pragma GCC unroll 3
  for (int j = 0; j < TT; ++j) b[j] = B + off[j];
  int64_t p = 0;
  for (; p + 16 <= P; p += 16) {
    __m512 bv[TT];
#pragma GCC unroll 3
    for (int j = 0; j < TT; ++j) bv[j] = _mm512_loadu_ps(b[j] + p);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __m512 y = _mm512_loadu_ps(Y + r * ldy + p);
      asm("" : "+v"(y));  // one load per row, not one folded into each FMA
#pragma GCC unroll 3
      for (int j = 0; j < TT; ++j) acc[r][j] = _mm512_fmadd_ps(y, bv[j], acc[r][j]);
    }
  }
  if (p < P) {
    const __mmask16 m = static_cast<__mmask16>((1u << (P - p)) - 1u);
    __m512 bv[TT];
#pragma GCC unroll 3
    for (int j = 0; j < TT; ++j) bv[j] = _mm512_maskz_loadu_ps(m, b[j] + p);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 y = _mm512_maskz_loadu_ps(m, Y + r * ldy + p);
#pragma GCC unroll 3
      for (int j = 0; j < TT; ++j) acc[r][j] = _mm512_fmadd_ps(y, bv[j], acc[r][j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int j = 0; j < TT; ++j) D[r * ldd + (didx ? didx[j] : j)] += hsum(acc[r][j]);
}

template <int R>
void rowdot_rows(const float* Y, int64_t ldy, const int64_t* off, const int64_t* didx, int64_t T, const float* B,
                 int64_t P, float* D, int64_t ldd) {
  // Without an index list, output t goes to column t: shift D instead.
  int64_t t = 0;
  for (; t + 3 <= T; t += 3)
    rowdot_tile<R, 3>(Y, ldy, off + t, didx ? didx + t : nullptr, B, P, didx ? D : D + t, ldd);
  if (T - t == 2) rowdot_tile<R, 2>(Y, ldy, off + t, didx ? didx + t : nullptr, B, P, didx ? D : D + t, ldd);
  if (T - t == 1) rowdot_tile<R, 1>(Y, ldy, off + t, didx ? didx + t : nullptr, B, P, didx ? D : D + t, ldd);
}

void rowdot8_avx512(const float* Y, int64_t ldy, int rows, const int64_t* off, const int64_t* didx, int64_t T,
                    const float* B, int64_t P, float* D, int64_t ldd) {
  switch (rows) {
    case 8: rowdot_rows<8>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 7: rowdot_rows<7>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 6: rowdot_rows<6>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 5: rowdot_rows<5>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 4: rowdot_rows<4>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 3: rowdot_rows<3>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 2: rowdot_rows<2>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    case 1: rowdot_rows<1>(Y, ldy, off, didx, T, B, P, D, ldd); break;
    default: break;
  }
}

}  // namespace

extern const KernelSet kKernelsAvx512;
const KernelSet kKernelsAvx512 = {"avx512", igemm8_avx512, rowdot8_avx512};

}  // namespace bsp::train
