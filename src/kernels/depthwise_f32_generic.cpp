// Depthwise fp32 convolution for CPUs without AVX2 (baseline x86-64, SSE2):
// 4 channels per vector, a multiply and an add for each FMA.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/depthwise_f32.hpp"

namespace bsp::kernels {
namespace {
using V = __m128;
constexpr int64_t kLanes = 4;
inline V vload(const float* p) { return _mm_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm_storeu_ps(p, v); }
inline V vset1(float f) { return _mm_set1_ps(f); }
inline V vfma(V a, V b, V acc) { return _mm_add_ps(_mm_mul_ps(a, b), acc); }
inline V vadd(V a, V b) { return _mm_add_ps(a, b); }
inline V vmax(V a, V b) { return _mm_max_ps(a, b); }
inline V vmin(V a, V b) { return _mm_min_ps(a, b); }
}  // namespace
#include "kernels/depthwise_f32_impl.inc"
DepthwiseFn depthwise_f32_generic() { return &depthwise_impl; }
}  // namespace bsp::kernels
