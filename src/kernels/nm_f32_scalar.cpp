// nm fp32 kernel pieces without vector extensions (16 floats per "vector").
#include <algorithm>

#include "kernels/nm_f32.hpp"

namespace bsp::kernels {
namespace {
struct V {
  float x[16];
};
inline V vload(const float* p) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = p[i];
  return r;
}
inline void vstore(float* p, const V& a) {
  for (int i = 0; i < 16; ++i) p[i] = a.x[i];
}
inline V vzero() { return V{}; }
inline V vset1(float s) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = s;
  return r;
}
inline V vadd(const V& a, const V& b) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = a.x[i] + b.x[i];
  return r;
}
inline V vmin(const V& a, const V& b) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = std::min(a.x[i], b.x[i]);
  return r;
}
inline V vmax(const V& a, const V& b) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = std::max(a.x[i], b.x[i]);
  return r;
}
inline V vfma(float s, const V& x, const V& acc) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = s * x.x[i] + acc.x[i];
  return r;
}
void transpose16(const float* const* src, float* dst, int64_t ldd) {
  for (int c = 0; c < 16; ++c)
    for (int j = 0; j < 16; ++j) dst[c * ldd + j] = src[j][c];
}
constexpr int kChains = 1;
}  // namespace
#include "kernels/nm_f32_impl.inc"

NmKernelsF32 nm_f32_scalar() { return {&accumulate, &transpose16, &store16}; }
}  // namespace bsp::kernels
