// Runs a program: every queue of a stage concurrently, as a discrete-event
// simulation in which a transfer takes bytes / channel bandwidth and a COMP
// the cycles of its padded multiply-accumulates. Locks are AIE-ML semaphores
// (acquire waits for value >= v and subtracts v, release adds). Used two ways:
//   - timing only (bsp estimate): no data, just the clock;
//   - functional (bsp sim): DDR, memtiles and core memories hold bytes, the
//     transfers copy them and COMP runs the kernels.
// Both check the program: every access inside its buffer, every buffer
// accessed only inside an acquire/release window, no buffer written while
// another queue reads or writes it, no deadlock. A violation throws
// bsp::Error naming the stage (layer), queue, instruction and record.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "aie2/isa.hpp"

namespace bsp::aie2 {

enum InstrClass { kClsLoad, kClsLoadW, kClsLoadFM, kClsLoadWM, kClsComp, kClsWriteFM, kClsWrite, kClsCount };
const char* instr_class_name(int c);

struct ClassStats {
  double busy_s = 0;     // summed over the queues
  int64_t bytes = 0;     // transfers
  int64_t count = 0;     // instructions executed
  int64_t macs = 0;      // COMP: padded multiply-accumulates executed
};

struct StageTiming {
  double seconds = 0;     // the stage's time
  double onchip_s = 0;    // the overlapped part (everything when DDR overlaps)
  double ddr_s = 0;       // non-overlapped DDR time (hw.ddr_overlap = false), else 0
  std::array<ClassStats, kClsCount> cls{};
  // Per class, the busiest single queue's time in it: what the stage would
  // take for that class alone. Their sum over classes is the time without
  // any overlap.
  std::array<double, kClsCount> queue_max{};
  int64_t executed = 0;   // instructions, loops expanded
};

// The memories of a simulated array.
struct Machine {
  std::vector<uint8_t> ddr;
  std::vector<std::vector<uint8_t>> memtile, core;
  Machine(const Hardware& hw, int64_t ddr_bytes);
};

// Runs one stage. `m` null: timing only. act_zero: the fraction of the
// stage's input blocks its activation rule leaves zero (bsp estimate
// measures it on data); on a target with the act_block_skip extension its
// Z-form LOADFM transfers and its convolution's COMP are charged for the
// other blocks only (man/bsp-isa.7, TIMING). Ignored for stages without a
// rule and targets without the extension, and in functional runs, which
// charge the share of zero blocks the stage's input really has.
StageTiming run_stage(const Program& p, const StageProg& s, Machine* m, double act_zero = 0.0);

}  // namespace bsp::aie2
