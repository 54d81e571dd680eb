// The kernels a COMP runs, on the contents of a simulated core's data memory.
// Buffer layouts are [rows][cols][pitch] elements; weight chunks are packed as
// man/bsp-isa.7 describes (parameters, block counts and indices, 8x8 blocks
// spanning the kernel window).
#pragma once

#include <cstdint>

#include "aie2/hardware.hpp"
#include "aie2/isa.hpp"

namespace bsp::aie2 {

struct Layout {
  int64_t rows = 0, cols = 0, pitch = 0;
};

struct KernelCall {
  const KernelDecl* k = nullptr;
  DType dtype = DType::FP32;
  const uint8_t* in[4] = {nullptr, nullptr, nullptr, nullptr};
  Layout in_l;
  const uint8_t* w = nullptr;
  int64_t w_bytes = 0;  // the weight slot's size
  uint8_t* out = nullptr;
  Layout out_l;
  const uint8_t* add = nullptr;  // same layout as out
  uint8_t* acc = nullptr;        // [rows][cols][pitch] of 4-byte accumulators, same shape as out
  int64_t oh = 0, ow = 0, co = 0, ci = 0, nnz = 0;
  int32_t flags = 0;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // pools: padding rows/columns of the input tile
};

// Runs the kernel; throws bsp::Error (without location, the caller adds it)
// when the operands do not fit their buffers or the weight chunk does not
// match the instruction.
void run_kernel(const KernelCall& c);

}  // namespace bsp::aie2
