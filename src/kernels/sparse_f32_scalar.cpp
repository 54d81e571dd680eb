// tw fp32 inner loops without vector extensions (16 floats per "vector").
#include "kernels/sparse_f32.hpp"

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
inline V vadd(const V& a, const V& b) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = a.x[i] + b.x[i];
  return r;
}
inline V vfma(float s, const V& x, const V& acc) {
  V r;
  for (int i = 0; i < 16; ++i) r.x[i] = s * x.x[i] + acc.x[i];
  return r;
}
constexpr int J = 4;
}  // namespace
#include "kernels/sparse_f32_impl.inc"

SparseKernelsF32 sparse_f32_scalar() { return {&tile_kernel}; }
}  // namespace bsp::kernels
