// tw fp32 inner loops, AVX-512: one zmm per 16 pixels.
#include <immintrin.h>

#include "kernels/sparse_f32.hpp"

namespace bsp::kernels {
namespace {
struct V {
  __m512 v;
};
inline V vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void vstore(float* p, V a) { _mm512_storeu_ps(p, a.v); }
inline V vzero() { return {_mm512_setzero_ps()}; }
inline V vadd(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V vfma(float s, V x, V acc) { return {_mm512_fmadd_ps(_mm512_set1_ps(s), x.v, acc.v)}; }
constexpr int J = 12;
}  // namespace
#include "kernels/sparse_f32_impl.inc"

SparseKernelsF32 sparse_f32_avx512() { return {&tile_kernel}; }
}  // namespace bsp::kernels
