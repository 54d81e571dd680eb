// Code generation: from a schedule to the instruction streams of every stage
// (man/bsp-isa.7), and the DDR image of the constants (packed weight chunks
// with their block indices and epilogue parameters).
#pragma once

#include <cstdint>
#include <vector>

#include "aie2/isa.hpp"
#include "aie2/schedule.hpp"
#include "core/model.hpp"

namespace bsp::q8 {
struct QNode;
}

namespace bsp::aie2 {

// Buffer families a kernel refers to (a core finds its own buffer of a
// family by membership); stored in bits 8..15 of a buffer's flags word.
enum Family : int32_t {
  kFamIn0 = 0,  // inputs 0.. (kFamIn0 + k)
  kFamW = 8,
  kFamOut = 9,
  kFamAdd = 10,
  kFamAcc = 11,
  kFamOther = 255,
};

Program generate_program(const Schedule& S);
// One stage's instruction streams (what generate_program does per stage).
StageProg generate_stage(const Schedule& S, size_t stage);

// The weight image at DDR address 0 (S.ddr_const_bytes bytes): every chunk
// packed at its ddr_addr. Needs the model's weights (fp32 models: the float
// weights; int8: the quantised program of /compact). For int8 it also fills
// the kernels' constants of `prog` (the program generated from S), which a
// program needs to run.
std::vector<uint8_t> build_const_image(const Schedule& S, const Model& m, Program* prog = nullptr);

// Epilogue parameters of one output channel of a conv stage (fp32/bf16):
// y = (acc + bias) * scale + shift, then the residual add and relu.
struct ChannelParams {
  float bias = 0, scale = 1, shift = 0;
};
std::vector<ChannelParams> conv_params(const Stage& st, const Model& m);

// The weight a conv stage multiplies with, OHWI [Cout, kh, kw, Cin]: its
// node's own for groups 1; a grouped conv's spread over every input
// channel, zero outside each output channel's group; a lone batchnorm's
// identity (fp32) or quantised scale (int8) on the diagonal.
// stage_weights.cpp.
Tensor stage_weight(const Stage& st, const Model& m);
Array<int8_t> stage_weight_i8(const Stage& st, const q8::QNode& qn);

}  // namespace bsp::aie2
