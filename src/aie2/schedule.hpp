// The AIE2 schedule: for every stage, how the work splits across the cores,
// the per-core subvolumes (tiles) and loop order, the buffers in core and
// memtile memory, where every activation lives (DDR, or resident in the
// memtiles), and the DDR layout of the weights in the order the cores consume
// them. `bsp schedule` computes it, stores the decisions in the /schedule
// group (man/bsp-format.5), and every later stage re-derives the rest from
// those decisions with derive_plan().
//
// Work split of a stage over the R x C cores: the output positions are cut
// into ps = ny x nx rectangles (output width across columns first), the
// output channels into pc contiguous parts balanced by nonzero 8x8 weight
// blocks; core number s * pc + q (column-major: core index i sits at column
// i / R, row i % R) computes rectangle s for channel part q. Activations of
// rectangle s are broadcast to its pc cores, the weights of part q to its ps
// cores. Input channels are split into K passes only when a tile with all of
// them does not fit: the partial sums stay in the core's accumulator.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aie2/hardware.hpp"
#include "aie2/lower.hpp"
#include "core/model.hpp"

namespace bsp::aie2 {

constexpr int64_t kBlock = 8;  // weight blocks are 8 output x 8 input channels

// Which 8x8 blocks of a conv/dense weight hold a nonzero: [ceil(Cout/8), ceil(Cin/8)].
// From the block:8x8 mask when there is one, else from the weights themselves.
struct Occupancy {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> bits;      // rows x cols
  std::vector<int64_t> row_nnz;   // nonzero blocks per block row
  std::vector<int64_t> prefix;    // (rows + 1) x (cols + 1) 2-D prefix sums of bits
  int64_t nnz = 0;
  // The stage multiplies with the sparse operand (man/bsp-isa.7, SPARSE
  // OPERAND): int8, a target with macs_per_cycle.int8_sparse, and at most 2
  // nonzeros in every aligned group of 4 input channels of its weight. Its
  // chunks store each block row's (block, tap) units in pairs, compressed.
  bool sparse24 = false;
  // balanced_groups()'s block-row boundaries and row order per number of
  // groups: the search asks for the same ones many times (one stage is
  // planned by one thread at a time).
  mutable std::map<int64_t, std::pair<std::vector<int64_t>, std::vector<int64_t>>> traded;
  bool dense() const { return nnz == rows * cols; }
  bool at(int64_t r, int64_t c) const { return bits[static_cast<size_t>(r * cols + c)] != 0; }
  // Stored blocks in block rows [r0, r1) x block columns [c0, c1).
  int64_t count(int64_t r0, int64_t r1, int64_t c0, int64_t c1) const {
    auto P = [&](int64_t r, int64_t c) { return prefix[static_cast<size_t>(r * (cols + 1) + c)]; };
    return P(r1, c1) - P(r0, c1) - P(r1, c0) + P(r0, c0);
  }
};
// The 8x8 blocks a conv stage stores: with an 8x8 block mask its kept
// blocks, else those of its weight (stage_weight) that hold a nonzero;
// `dense`: every block of the layer's structure (all of them for groups 1;
// for grouped convs and lone batchnorms those that meet a group).
// stage_weights.cpp.
Occupancy block_occupancy(const Stage& st, const Model& m, bool dense = false);
// Whether a conv stage's mask promises at most 2 nonzeros in every aligned
// group of 4 input channels at each (output channel, tap), the rule of the
// AIE-ML sparse operand: nm:N:M or a combined pattern's N:M part that
// implies it (nm:2:4, nm:1:4, nm:2:8, ...; stage_weights.cpp), or a tvw:G
// mask whose weights happen to keep it. The reader has checked the mask and
// that pruned weights are zero, and float zeros stay int8 zeros, so the
// int8 weight keeps it too (the packer checks).
bool two_of_four(const Stage& st, const Model& m);

enum class Place { DDR, Memtile };

// Where an activation storage lives. Resident storages are cut into row bands,
// band m (rows [m * band_rows, (m + 1) * band_rows)) in memtile m at offset
// memtile_addr.
struct StoragePlan {
  Place place = Place::DDR;
  int64_t ddr_addr = -1;
  int64_t band_rows = 0;
  int64_t memtile_addr = -1;
  int64_t band_bytes = 0;
};

struct Rect {
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // output rows [y0, y1), columns [x0, x1)
  int64_t h() const { return y1 - y0; }
  int64_t w() const { return x1 - x0; }
  bool operator==(const Rect&) const = default;
};

// The choices `bsp schedule` makes for one stage (what /schedule stores).
struct Decision {
  int64_t ps = 1, pc = 1;  // spatial parts x channel parts
  int64_t ny = 1, nx = 1;  // spatial grid, ps = ny * nx
  int64_t th = 1, tw = 1;  // output tile rows x columns per core
  int64_t co_t = 8;        // output channels per tile (a multiple of 8 unless it covers the part)
  int64_t ci_t = 8;        // input channels per pass (conv); = co_t for channelwise stages
  char order = 'A';        // 'A': tiles outer, channel chunks inner; 'B': channel chunks outer
  bool w_resident = false; // the weights of a part stay in the memtile for the whole stage
  std::vector<int64_t> cbounds;  // pc * J + 1 output channel boundaries (positions in the row order)
  // The order of the 8-channel block rows of a sparse conv (a permutation of
  // 0 .. Cout/8 - 1; empty: the natural order). Channel parts and chunks cut
  // this order: position c stands for output channel rows[c / 8] * 8 + c % 8.
  // Moving a few block rows between otherwise contiguous groups evens out
  // the stored blocks per core; the cores write their channels back to
  // their places in runs of consecutive channels.
  std::vector<int64_t> rows;
};

// The block row at position r of the decision's row order, the output channel
// at position c, and the stored blocks at positions [r0, r1) x block columns [b0, b1).
inline int64_t block_row(const Decision& d, int64_t r) { return d.rows.empty() ? r : d.rows[static_cast<size_t>(r)]; }
inline int64_t out_channel(const Decision& d, int64_t c) {
  return d.rows.empty() ? c : d.rows[static_cast<size_t>(c / kBlock)] * kBlock + c % kBlock;
}
int64_t rows_count(const Occupancy& o, const Decision& d, int64_t r0, int64_t r1, int64_t b0, int64_t b1);
// A sparse24 chunk's unit pairs: per block row, ceil(stored blocks x taps / 2).
int64_t rows_pairs(const Occupancy& o, const Decision& d, int64_t r0, int64_t r1, int64_t b0, int64_t b1, int64_t taps);

// Output channel positions [c0, c1) as runs of consecutive channels: each
// run is (offset from c0, first output channel, channels).
struct ChannelRun {
  int64_t off = 0, c0 = 0, n = 0;
};
std::vector<ChannelRun> channel_runs(const Decision& d, int64_t c0, int64_t c1);

// One weight chunk: output channels [co0, co1) x input channels [ci0, ci1) of
// one channel part, packed (man/bsp-isa.7) at ddr_addr.
struct Chunk {
  int64_t co0 = 0, co1 = 0, ci0 = 0, ci1 = 0;
  int64_t nnz = 0;    // 8x8 blocks stored
  int64_t pairs = 0;  // sparse24 stages: compressed unit pairs stored (rows_pairs)
  int64_t bytes = 0;  // packed size
  int64_t ddr_addr = 0;
};

// A buffer in core or memtile memory.
struct Buffer {
  std::string name;
  int64_t addr = 0;
  int64_t slot_bytes = 0;
  int64_t slots = 1;
  int64_t bytes() const { return slot_bytes * slots; }
};

// Everything derived from a Decision: what codegen emits and the estimator
// and `bsp schedule --json` report.
struct StagePlan {
  Decision d;
  int64_t rh = 0, rw = 0;  // largest rectangle
  int64_t ty = 0, tx = 0, T = 0, J = 0, K = 0;  // tile rows, tile columns, tiles (ty*tx), channel chunks, input passes
  int64_t ih = 0, iw = 0;  // input tile rows x columns (largest)
  std::vector<Rect> rects;                 // [ps]
  std::vector<std::vector<Chunk>> chunks;  // conv: [pc][j * K + k]
  int64_t chunk_max = 0;                   // largest chunk of any part
  std::vector<int64_t> part_bytes;         // conv: [pc] weight bytes of each channel part (its chunks)
  // Per chunk index j, over the channel parts: the stored blocks (conv; over
  // the input passes, between the slowest part's and per pass the slowest
  // part's: derive_split) and the most output channels, what the compute of
  // the chunk waits for.
  std::vector<int64_t> worst_nnz, worst_ch;  // [J]
  std::vector<int64_t> worst_pairs;          // [J], sparse24 stages only: the same for the compressed pairs
  int64_t w_loads = 0;                     // weight chunks each core receives (1: one slot suffices)
  int64_t out_runs = 1;                    // most runs of consecutive channels in a channel group (reordered convs)
  // A core takes input tiles on its first input (S2MM) channel and weights
  // on its second. fm_split > 0: input channels [fm_split, ci) of every tile
  // come on a second stream into the second channel, behind the weights, so
  // that the two channels carry about the same bytes (a conv with one input
  // resident in the memtiles; ci: the pass's input channels).
  int64_t fm_split = 0;
  int64_t fm_streams() const { return fm_split > 0 ? 2 : 1; }  // per spatial part
  int32_t add_port = 0;  // the core input channel of the residual operand
  // Weights that arrive once (w_loads 1, streamed) go from DDR straight
  // into the cores' memory, without memtile staging (when DDR time adds to
  // the stage, during its DDR time): on the part's shim streams, each
  // writing its share of the core buffer (split by bytes with a second lock
  // pair when there are two).
  bool w_direct = false;
  bool subsample = false;  // the input tiles hold every stride-th row and column only (subsampled_input)
  // Core memory (the same in every core): inputs (one per stage input), weights,
  // output, residual operand, accumulator.
  std::vector<Buffer> core_in;
  Buffer core_w, core_out, core_add, core_acc;
  int64_t core_used = 0;
  // Memtile memory, per memtile: the staging buffers of this stage (resident
  // activations are placed by the StoragePlans).
  std::vector<std::vector<Buffer>> memtile;  // [cols]
  std::vector<int64_t> memtile_used;         // [cols] including resident activations
  // Work balance: per core, the MACs it performs (sparse: only stored blocks).
  std::vector<int64_t> core_macs;  // [ps * pc]
  double imbalance = 1.0;          // max / mean over the cores that work
  // The DMA channel of every stream, in codegen's order: per memtile its
  // MM2S channels, per shim tile its MM2S and S2MM channels. Streams are
  // spread longest first over the least loaded channel of their tile, so that
  // heavy streams get a channel of their own (a channel runs its streams'
  // transfers in program order).
  std::vector<std::vector<int32_t>> ch_fm, ch_ld;  // [input][stream * fm_streams() + slot]: memtile, shim
  std::vector<int32_t> ch_wm;                      // [part]: memtile
  std::vector<int32_t> ch_ldw;                     // [part * ldw_streams + stream]: shim
  // A part's weights come from DDR on ldw_streams shim streams: loads
  // alternate over them (by slot, or chunk by chunk into a resident part),
  // and a single load is cut in halves.
  int32_t ldw_streams = 1;
  std::vector<int32_t> ch_am, ch_lda, ch_wr;       // [core]: residual memtile, shim; output shim
  // Traffic the plan causes (bytes) and its analytic time estimate.
  int64_t ddr_read = 0, ddr_weights = 0, ddr_write = 0, stream_bytes = 0;
  double est_seconds = 0;
};

// The stages' block occupancy (conv stages only, else empty), fixed once
// make_schedule derives it, so copies of a Schedule share one: the planner
// copies its Schedule per residency attempt, and a pruned VGG-16 fc's
// prefix sums alone are 13 MB.
class StageOccupancy {
 public:
  const Occupancy& operator[](size_t s) const { return (*v_)[s]; }
  size_t size() const { return v_->size(); }
  const std::vector<Occupancy>& all() const { return *v_; }
  void set(std::vector<Occupancy> v) { v_ = std::make_shared<const std::vector<Occupancy>>(std::move(v)); }

 private:
  std::shared_ptr<const std::vector<Occupancy>> v_ = std::make_shared<const std::vector<Occupancy>>();
};

struct Schedule {
  Hardware hw;
  DType dtype = DType::FP32;
  Lowered graph;
  StageOccupancy occupancy;
  std::vector<StoragePlan> storages;
  std::vector<StagePlan> stages;
  int64_t ddr_const_bytes = 0;  // weights image at DDR address 0
  int64_t ddr_bytes = 0;        // weights + activations
  uint64_t fingerprint = 0;     // of the graph and the block occupancy
  uint64_t source_hash = 0;     // model_hash() (store.hpp) of the model it was made for
};

// The most candidate plans per stage ScheduleOptions::tune may ask to time.
inline constexpr int kMaxTune = 64;

struct ScheduleOptions {
  bool resident = true;        // keep activations in the memtiles when they fit
  bool fixed_mapping = false;  // the paper's split: output width across columns, channels across rows
  bool dense = false;          // store every weight block (the dense counterpart, for comparisons)
  int tune = 1;                // > 1: time this many of the best analytic plans per stage, keep the fastest
};

// Schedules every stage; never fails for lack of memory (it splits further
// and spills activations to DDR), only for graphs lower() refuses or kernels
// whose smallest tile does not fit a core.
Schedule make_schedule(const Model& m, const Hardware& hw, DType dtype, const ScheduleOptions& opt = {});

// Rebuilds a schedule from stored decisions (the hardware, dtype, decisions
// and storage plans), checking them against the model.
Schedule rebuild_schedule(const Model& m, const Hardware& hw, DType dtype, const std::vector<Decision>& decisions,
                          const std::vector<StoragePlan>& storages, uint64_t fingerprint);

// Bytes of per-channel epilogue parameters in a weight chunk.
int64_t param_bytes_per_channel(DType t);
// Packed size of a weight chunk (man/bsp-isa.7).
int64_t chunk_bytes(DType t, bool sparse, int64_t channels, int64_t block_rows, int64_t nnz, int64_t kh, int64_t kw);
// The same for a sparse24 chunk of `pairs` compressed unit pairs (int8).
int64_t chunk_bytes_24(int64_t channels, int64_t block_rows, int64_t nnz, int64_t pairs);
// A compressed unit pair: two 40-byte groups (8-byte mask, 32 data bytes),
// the 16 x 8 int8 B tile of one sparse 4x16x8 multiply (man/bsp-isa.7).
inline constexpr int64_t kPairBytes = 80;

// The core index of (spatial part s, channel part q) and its position.
inline int64_t core_index(const Decision& d, int64_t s, int64_t q) { return s * d.pc + q; }
inline int64_t core_col(const Hardware& hw, int64_t i) { return i / hw.rows; }
inline int64_t core_row(const Hardware& hw, int64_t i) { return i % hw.rows; }

// Times each stage's plan and its runners-up (the next best by the analytic
// cost, runners_up[stage]) as generated programs and keeps the fastest;
// lays out DDR again. (tune.cpp: it needs the code generator and executor.)
void tune_schedule(Schedule& S, const std::vector<std::vector<StagePlan>>& runners_up);
void layout_ddr(Schedule& S);

struct Program;
uint64_t schedule_fingerprint(const Lowered& g, const std::vector<Occupancy>& occ, DType t);
// The fingerprint a schedule (and the program generated from it) of m for hw
// and dtype has.
uint64_t model_fingerprint(const Model& m, const Hardware& hw, DType dtype);
// Refuses a stored program whose fingerprint is not the model's (bsp sim and
// bsp estimate run a program only for the model it was generated from).
void check_program_fits(const Model& m, const Program& p);

}  // namespace bsp::aie2
