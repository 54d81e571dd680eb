// fp32 pooling ops compiled for AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/ops_f32.hpp"

namespace bsp::kernels {
#include "kernels/ops_f32_impl.inc"
OpsF32 ops_f32_avx512() { return {&maxpool_impl, &avgpool_impl, &gap_impl}; }
}  // namespace bsp::kernels
