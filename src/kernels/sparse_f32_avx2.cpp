// tw fp32 inner loops, AVX2 + FMA: two ymm per 16 pixels.
#include <immintrin.h>

#include "kernels/sparse_f32.hpp"

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
inline V vadd(V x, V y) { return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)}; }
inline V vfma(float s, V x, V acc) {
  const __m256 b = _mm256_set1_ps(s);
  return {_mm256_fmadd_ps(b, x.a, acc.a), _mm256_fmadd_ps(b, x.b, acc.b)};
}
constexpr int J = 6;
}  // namespace
#include "kernels/sparse_f32_impl.inc"

SparseKernelsF32 sparse_f32_avx2() { return {&tile_kernel}; }
}  // namespace bsp::kernels
