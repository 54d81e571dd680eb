// int8 ops compiled for AVX2 (CPUs without AVX-512).
#include <algorithm>

#include "kernels/ops_i8.hpp"

namespace bsp::kernels {
#include "kernels/ops_i8_impl.inc"
OpsI8 ops_i8_avx2() { return {&add_impl, &maxpool_impl, &gap_impl, &quantize_impl, &depthwise_impl}; }
}  // namespace bsp::kernels
