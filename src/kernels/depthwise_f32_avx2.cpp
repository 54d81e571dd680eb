// Depthwise fp32 convolution compiled for AVX2 with FMA: 8 channels per vector.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/depthwise_f32.hpp"

namespace bsp::kernels {
namespace {
using V = __m256;
constexpr int64_t kLanes = 8;
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V vset1(float f) { return _mm256_set1_ps(f); }
inline V vfma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vmin(V a, V b) { return _mm256_min_ps(a, b); }
}  // namespace
#include "kernels/depthwise_f32_impl.inc"
DepthwiseFn depthwise_f32_avx2() { return &depthwise_impl; }
}  // namespace bsp::kernels
