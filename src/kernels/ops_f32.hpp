// The fp32 pooling ops of the runner (runner.hpp): the same arithmetic, in
// the same order, as the reference ops (infer/reference_ops.hpp), so results
// are bitwise equal; plain loops over a chunk of channels held in a local
// array that the compiler vectorises per ISA, OpenMP over output rows.
#pragma once

#include <cstdint>

#include "core/shapes.hpp"
#include "kernels/isa.hpp"

namespace bsp::kernels {

struct OpsF32 {
  // max over the real elements of each window; x [N, H, W, C] -> y [N, Ho, Wo, C]
  void (*maxpool)(const float* x, int64_t N, const WindowGeom& g, float* y);
  // mean over each window (count_include_pad: padding positions count, as ref::avgpool)
  void (*avgpool)(const float* x, int64_t N, const WindowGeom& g, bool count_include_pad, float* y);
  // x [N, HW, C] -> y [N, C]: the mean over HW (double accumulation, as ref::global_avgpool)
  void (*global_avgpool)(const float* x, int64_t N, int64_t HW, int64_t C, float* y);
};
OpsF32 ops_f32_generic();
OpsF32 ops_f32_avx512();
inline OpsF32 ops_f32(Isa isa) { return isa == Isa::Avx512 ? ops_f32_avx512() : ops_f32_generic(); }

}  // namespace bsp::kernels
