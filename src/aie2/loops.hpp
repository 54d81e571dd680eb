// Loops in instruction streams: codegen emits every iteration of a queue's
// work, then compress_loops() folds runs of iterations whose operands change
// by constant amounts into Loop records with per-operand Stride records. The
// executor walks a stream with LoopCursor, which expands them again.
#pragma once

#include <cstddef>
#include <vector>

#include "aie2/isa.hpp"

namespace bsp::aie2 {

// `flat` holds the queue's instructions; units[u] is the index where unit u
// (one iteration of the stage's loop nest, or a prologue/epilogue piece)
// starts. `periods` lists the unit counts worth trying as a loop body (for
// example 1, 2, and the iterations of one output tile). Greedy from the
// start: at each unit the period that saves the most records wins.
std::vector<Instr> compress_loops(const std::vector<Instr>& flat, const std::vector<size_t>& units,
                                  const std::vector<size_t>& periods);

// Walks a stream, expanding loops: next() returns the next executed
// instruction with its loop strides applied, and its record index.
class LoopCursor {
 public:
  explicit LoopCursor(const std::vector<Instr>* code) : code_(code) {}
  bool done() const { return pc_ >= code_->size() && !in_loop_; }
  // Fills `out` and the record index of the instruction; false at the end.
  bool next(Instr& out, size_t& record);

 private:
  const std::vector<Instr>* code_;
  size_t pc_ = 0;
  bool in_loop_ = false;
  size_t loop_start_ = 0, loop_end_ = 0;  // record range of the body
  int64_t iter_ = 0, count_ = 0;
};

}  // namespace bsp::aie2
