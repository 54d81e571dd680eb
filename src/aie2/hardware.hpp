// AIE2 (AIE-ML) array descriptions: the hardware facts that the scheduler,
// code generator, simulator and estimator work from. They come from JSON files
// (data/aie2/*.json, every field documented in man/bsp-aie2.5) so that a user
// can describe a part of their own.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "core/json.hpp"

namespace bsp::aie2 {

// The data type of activations and weights on the device. Accumulators are
// 32 bits wide for every type (int32 for int8, fp32 otherwise).
constexpr int64_t kAccBytes = 4;

struct Hardware {
  std::string name;         // "aie2-4x4", "npu1", ...
  std::string description;  // one line
  std::string source;       // the file it was read from ("" when built in memory)
  int64_t rows = 0, cols = 0;  // cores per column, columns (one memtile and one shim tile per column)
  double clock_ghz = 1.0;

  // Core tile.
  int64_t core_memory = 0;          // data memory bytes
  int64_t core_banks = 0;           // equal banks of the data memory
  int64_t core_program_memory = 0;  // bytes (reported, not used by the cost model)
  int64_t core_locks = 0;           // semaphore locks per core tile
  int64_t core_reserved = 0;        // data memory bytes kept for stack and kernel arguments
  int64_t core_mm2s = 2;            // DMA channels out of a core (its output tiles alternate over them)
  int64_t core_s2mm = 2;            // DMA channels into a core (each carries one transfer at a time)
  // Memory tile.
  int64_t memtile_memory = 0, memtile_banks = 0, memtile_locks = 0;
  int64_t memtile_mm2s = 0, memtile_s2mm = 0;  // DMA channels out of / into the memtile
  // Shim tile (DDR interface), per column.
  int64_t shim_mm2s = 0, shim_s2mm = 0;  // DDR -> array, array -> DDR channels
  double ddr_channel_gbps = 4.0;         // per shim channel
  double stream_gbps = 4.0;              // per memtile <-> core stream channel

  int64_t macs_int8 = 256, macs_bf16 = 128, macs_fp32 = 42;  // per cycle per core, peak
  // The int8 MAC rate with the structured-sparse B operand (2 zeros in every
  // 4 weights along the reduction, compressed with a mask), counted in
  // dense-equivalent MACs per cycle; 0: the target has no such operand.
  int64_t macs_int8_sparse = 0;
  double compute_efficiency = 0.7;     // achieved fraction of peak inside a kernel
  int64_t kernel_overhead_cycles = 0;  // per COMP call (setup, accumulator load/store)
  int64_t dma_overhead_cycles = 0;     // per transfer (descriptor and lock handshake)
  bool ddr_overlap = true;             // false: DDR transfers are not overlapped with anything
  // The Sparse-Blox-like extension (bsp-aie2(5)): the zero blocks of an
  // input that an activation rule zeroes are neither moved from the memtile
  // to the cores nor multiplied. Without it a rule is still applied (the
  // same results) at the cost of a dense input.
  bool act_block_skip = false;

  // The shape of the matrix-multiply unit: output positions x output channels x
  // input channels per vector operation; work is padded up to these multiples.
  int64_t vec_positions = 4, vec_cout = 8, vec_cin = 8;
  // Bytes of operands the vector unit consumes per cycle in elementwise work
  // (pooling, additions, softmax): one 512-bit vector.
  int64_t vec_bytes_per_cycle = 64;

  int64_t cores() const { return rows * cols; }
  // Output tiles alternate over up to two core MM2S channels (slot s on
  // channel s), each slot then with its own lock pair.
  int64_t out_channels() const { return core_mm2s < 2 ? core_mm2s : 2; }
  int64_t macs_per_cycle(DType t) const;
  // Seconds for `bytes` on one channel of the given kind.
  double ddr_seconds(double bytes) const { return bytes / (ddr_channel_gbps * 1e9); }
  double stream_seconds(double bytes) const { return bytes / (stream_gbps * 1e9); }
};

// Parses and checks a stored description (a model file's /schedule or
// /program "hardware" attribute), which is whole: no "base" (a base would
// open another file); `source` names it in error messages.
Hardware hardware_from_json(const Json& j, const std::string& source);
Json hardware_to_json(const Hardware& h);

// Resolves a --target argument:
//   a name of a file in the data directory ("npu1", "ve2802", "aie2-4x4"),
//   "aie2:RxC" (the aie2 template with R rows and C columns; a shipped
//   aie2-RxC.json is used when it exists),
//   or a path to a JSON file (contains '/' or ends in ".json").
Hardware load_target(const std::string& target);

// The paper's assumptions (--model paper): 1 GHz, compute efficiency 1,
// 4 GB/s channels, no per-call or per-transfer overheads, DDR transfers not
// overlapped with anything else.
void apply_paper_model(Hardware& h);

// The directory holding aie2/*.json: $BSP_DATA_DIR, else the installed data
// directory, else the source tree's data/ (for the build directory and tests).
std::string data_dir();

}  // namespace bsp::aie2
