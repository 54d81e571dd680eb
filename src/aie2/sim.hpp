// bsp sim: runs a program functionally on a simulated array and returns the
// network output, to compare with the reference forward pass.
#pragma once

#include <vector>

#include "aie2/executor.hpp"
#include "aie2/isa.hpp"
#include "core/model.hpp"
#include "core/tensor.hpp"

namespace bsp::aie2 {

struct SimRun {
  Tensor output;                   // [N, ...] the output storage's elements per image
  std::vector<StageTiming> stages; // of the last image
  int64_t executed = 0;            // instructions, all images
};

// input: [N, H, W, C] fp32 (the program's input shape). `const_image`: the
// DDR constants (weights) from build_const_image / the file's /program. For
// int8 programs the host quantises the input and dequantises the output with
// the scales of `m`'s int8 program (/compact), as q8::reference_forward does.
// `progress` (may be null) is called after every stage.
SimRun simulate(const Program& p, const std::vector<uint8_t>& const_image, const Tensor& input, const Model& m,
                void (*progress)(size_t stage, size_t stages, void* ctx) = nullptr, void* ctx = nullptr);

// A program's output against the reference forward of `m` on the same
// input (q8::reference_forward for an int8 program, which must match bit
// for bit; reference_forward for fp32, within rel_tolerance times the
// largest reference magnitude).
struct SimCheck {
  double max_abs_diff = 0;       // NaN counts as infinite
  double max_abs_reference = 0;
  double tolerance = 0;          // the absolute tolerance applied
  int64_t worst = 0;             // flat index of the largest difference
  float got = 0, want = 0;       // the values there
  bool match = false;
};
SimCheck check_output(const Program& p, const Model& m, const Tensor& input, const Tensor& output, double rel_tolerance);

}  // namespace bsp::aie2
