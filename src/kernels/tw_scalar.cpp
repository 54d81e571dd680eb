// The tw kernels (tw.hpp) for baseline x86-64.
#include <algorithm>

#include "kernels/tw.hpp"

namespace bsp::kernels {
#include "kernels/tw_generic.inc"
TwKernelsF32 tw_f32_scalar() { return {&gather_f32, &gemm_f32, &epilogue_f32}; }
TwKernelsI8 tw_i8_scalar() { return {false, &gather_i8, &gemm_i8, &epilogue_i8}; }
}  // namespace bsp::kernels
