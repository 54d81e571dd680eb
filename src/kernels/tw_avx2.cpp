// The tw kernels (tw.hpp) compiled for AVX2 + FMA (CPUs without AVX-512):
// the plain C++ bodies of tw_generic.inc, vectorised by the compiler, and an
// int8 GEMM in intrinsics. AVX2 has no u8 x s8 dot product that cannot
// saturate: as conv_i8_avx2.cpp, vpmaddubsw takes |q| and the weights with
// q's sign moved onto them (vpsignb), so a pair of products sums to at most
// 2 * 128 * 127 and never saturates while no weight is -128; a layer with
// a -128 weight takes the plain C++ GEMM.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/tw.hpp"

namespace bsp::kernels {
#include "kernels/tw_generic.inc"

namespace {

// 4 pixels x 16 columns (2 x 8 int32 lanes) at a time; the weights'
// [k/4][16 nv][4] layout gives 8 columns of 4 rows as one 256-bit load.
template <int NV>
void gemm_nv_i8_avx2(const TwGemmI8& a) {
  constexpr int W = 16 * NV;
  const __m256i ones = _mm256_set1_epi16(1);
  for (int p0 = 0; p0 < a.npix; p0 += 4) {
    const int n = std::min(4, a.npix - p0);
    for (int c0 = 0; c0 < W; c0 += 16) {
      __m256i acc[4][2];
      for (int p = 0; p < 4; ++p)
        for (int h = 0; h < 2; ++h)
          acc[p][h] = a.accumulate && p < n
                          ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.c + (p0 + p) * a.ldc + c0 + 8 * h))
                          : _mm256_setzero_si256();
      for (int64_t i = 0; i < a.k; i += 4) {
        const int8_t* wr = a.w + i * W + c0 * 4;
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wr));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wr + 32));
        for (int p = 0; p < 4; ++p) {
          if (p >= n) break;
          int32_t q;
          std::memcpy(&q, a.a + (p0 + p) * a.lda + i, 4);
          const __m256i x = _mm256_set1_epi32(q), xa = _mm256_abs_epi8(x);
          acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w0, x)), ones));
          acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w1, x)), ones));
        }
      }
      for (int p = 0; p < n; ++p)
        for (int h = 0; h < 2; ++h)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.c + (p0 + p) * a.ldc + c0 + 8 * h), acc[p][h]);
    }
  }
}

void gemm_i8_avx2(const TwGemmI8& a) {
  switch (a.nv) {
    case 4: return gemm_nv_i8_avx2<4>(a);
    case 3: return gemm_nv_i8_avx2<3>(a);
    case 2: return gemm_nv_i8_avx2<2>(a);
    default: return gemm_nv_i8_avx2<1>(a);
  }
}

}  // namespace

TwKernelsF32 tw_f32_avx2() { return {&gather_f32, &gemm_f32, &epilogue_f32}; }
TwKernelsI8 tw_i8_avx2(bool weight_min) {
  return {false, &gather_i8, weight_min ? &gemm_i8 : &gemm_i8_avx2, &epilogue_i8};
}
}  // namespace bsp::kernels
