// Depthwise fp32 convolution compiled for AVX-512: 16 channels per vector.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/depthwise_f32.hpp"

namespace bsp::kernels {
namespace {
using V = __m512;
constexpr int64_t kLanes = 16;
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V vset1(float f) { return _mm512_set1_ps(f); }
inline V vfma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
inline V vmin(V a, V b) { return _mm512_min_ps(a, b); }
}  // namespace
#include "kernels/depthwise_f32_impl.inc"
DepthwiseFn depthwise_f32_avx512() { return &depthwise_impl; }
}  // namespace bsp::kernels
