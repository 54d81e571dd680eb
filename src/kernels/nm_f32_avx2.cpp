// nm fp32 kernel pieces, AVX2 + FMA: two ymm per 16 pixels.
#include <immintrin.h>

#include <algorithm>

#include "kernels/nm_f32.hpp"

namespace bsp::kernels {
namespace {
struct V {
  __m256 a, b;
};
inline V vload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline void vstore(float* p, V x) {
  _mm256_storeu_ps(p, x.a);
  _mm256_storeu_ps(p + 8, x.b);
}
inline V vzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V vset1(float s) { return {_mm256_set1_ps(s), _mm256_set1_ps(s)}; }
inline V vadd(V x, V y) { return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)}; }
inline V vmin(V x, V y) { return {_mm256_min_ps(x.a, y.a), _mm256_min_ps(x.b, y.b)}; }
inline V vmax(V x, V y) { return {_mm256_max_ps(x.a, y.a), _mm256_max_ps(x.b, y.b)}; }
inline V vfma(float s, V x, V acc) {
  const __m256 w = _mm256_set1_ps(s);
  return {_mm256_fmadd_ps(w, x.a, acc.a), _mm256_fmadd_ps(w, x.b, acc.b)};
}

// 8x8: dst[c * ldd + i] = src[i][c0 + c].
void transpose8(const float* const* src, int c0, float* dst, int64_t ldd) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src[i] + c0);
  for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    _mm256_storeu_ps(dst + m * ldd, _mm256_permute2f128_ps(u[m], u[m + 4], 0x20));
    _mm256_storeu_ps(dst + (m + 4) * ldd, _mm256_permute2f128_ps(u[m], u[m + 4], 0x31));
  }
}
void transpose16(const float* const* src, float* dst, int64_t ldd) {
  for (int rb = 0; rb < 2; ++rb)
    for (int cb = 0; cb < 2; ++cb) transpose8(src + rb * 8, cb * 8, dst + cb * 8 * ldd + rb * 8, ldd);
}
constexpr int kChains = 4;
}  // namespace
#include "kernels/nm_f32_impl.inc"

NmKernelsF32 nm_f32_avx2() { return {&accumulate, &transpose16, &store16}; }
}  // namespace bsp::kernels
