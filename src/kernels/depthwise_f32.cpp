#include "kernels/depthwise_f32.hpp"

#include "core/error.hpp"

namespace bsp::kernels {

DepthwiseF32::DepthwiseF32(const ConvGeom& g, const float* w, const float* bias) : g_(g) {
  if (!g.depthwise()) fail("internal: not a depthwise convolution ({} groups, {} -> {} channels)", g.groups, g.C, g.Cout);
  w_.taps = g.kh * g.kw;
  w_.C = g.C;
  w_.Cp = (g.C + 15) / 16 * 16;
  w_.w.assign(static_cast<size_t>(w_.taps * w_.Cp), 0.0f);
  w_.bias.assign(static_cast<size_t>(w_.Cp), 0.0f);
  // OHWI [C, kh, kw, 1] -> [tap, C]
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t t = 0; t < w_.taps; ++t) w_.w[static_cast<size_t>(t * w_.Cp + c)] = w[c * w_.taps + t];
  if (bias)
    for (int64_t c = 0; c < g.C; ++c) w_.bias[static_cast<size_t>(c)] = bias[c];
}

void DepthwiseF32::run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const {
  DepthwiseFn fn = depthwise_f32_generic();
  switch (active_isa()) {
    case Isa::Avx512: fn = depthwise_f32_avx512(); break;
    case Isa::Avx2: fn = depthwise_f32_avx2(); break;
    case Isa::Scalar: break;
  }
  fn(DepthwiseArgs{&g_, &w_, x, N, y, z, clamp});
}

}  // namespace bsp::kernels
