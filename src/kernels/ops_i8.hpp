// The int8 element-wise, pooling and depthwise ops of the int8 runner, exactly the
// rules of compact/int8.hpp (the int8 reference computes the same bits):
// vectorised loops compiled per ISA (AVX-512, AVX2 and baseline), OpenMP
// over rows.
#pragma once

#include <cstdint>
#include <vector>

#include "compact/int8.hpp"
#include "core/shapes.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

struct OpsI8 {
  // y[i] = clamp((sum_k x_k[i] * mult[k] + 2^(shift-1)) >> shift, lo, hi), i < n
  void (*add)(const int8_t* const* x, const int32_t* mult, int nin, int32_t shift, int32_t lo, int32_t hi, int8_t* y,
              int64_t n);
  // max over the real elements of each window; x [N, H, W, C] -> y [N, Ho, Wo, C]
  void (*maxpool)(const int8_t* x, int64_t N, const WindowGeom& g, int8_t* y);
  // y[n][c] = clamp(rescale(sum_p x[n][p][c], rq), -128, 127)
  void (*global_avgpool)(const int8_t* x, int64_t N, int64_t HW, int64_t C, q8::Requant rq, int8_t* y);
  // y[i] = q8::quantize_value(x[i], scale), i < n (the model input)
  void (*quantize)(const float* x, int64_t n, double scale, int8_t* y);
  // A depthwise conv (g.groups = g.C = g.Cout) as the int8 conv rule:
  // acc = bias[c] + sum over the window's real taps x * w, y = clamp(rescale(
  // acc, rq[c]), lo, hi), then add->apply(y, z) when add is not null.
  // x [N, H, W, C], w [kh*kw, C] tap-major, bias and rq [C], z and y [N, Ho, Wo, C].
  void (*depthwise)(const int8_t* x, int64_t N, const ConvGeom& g, const int8_t* w, const int32_t* bias,
                    const q8::Requant* rq, int32_t lo, int32_t hi, const int8_t* z, const q8::FusedAdd* add, int8_t* y);
};
OpsI8 ops_i8_generic();
OpsI8 ops_i8_avx2();
OpsI8 ops_i8_avx512();
inline OpsI8 ops_i8(Isa isa) {
  return isa == Isa::Avx512 ? ops_i8_avx512() : isa == Isa::Avx2 ? ops_i8_avx2() : ops_i8_generic();
}

}  // namespace bsp::kernels
