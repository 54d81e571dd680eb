// The AIE2 instruction set of bsp (specified in man/bsp-isa.7): a program is
// a list of stages run one after the other; a stage declares its buffers and
// kernels and gives each queue (a core, or a DMA channel of a core, memtile or
// shim tile) its own instruction stream. Queues run concurrently and
// synchronise only through semaphore locks, two per buffer (free, full), as
// AIE-ML hardware does.
//
// Every instruction is one record of 16 little-endian int32 words: word 0 is
// the opcode, words 1..15 its operands a[0..14].
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aie2/hardware.hpp"

namespace bsp::aie2 {

enum class Opc : int32_t {
  Stage = 1,    // stage header: index, buffers, kernels, queues, name
  Buf = 2,      // buffer declaration
  Kdef = 3,     // kernel declaration
  Kparam = 6,   // constants of the kernel declared before (int8 rescaling)
  Act = 7,      // the stage's activation rule (at most one; program version 2)
  Queue = 4,    // queue header: kind, tile, channel, records
  End = 5,      // end of program
  Acq = 8,      // acquire a lock
  Rel = 9,      // release a lock
  Loop = 12,    // repeat the next `body` instructions `count` times
  Stride = 13,  // per-iteration increments of the previous instruction's operands
  Load = 16,    // DDR -> memtile, feature map box
  LoadW = 17,   // DDR -> memtile, weights (linear)
  LoadFM = 18,  // memtile -> core(s), feature map box (zero padding)
  LoadWM = 19,  // memtile -> core(s), weights (linear)
  LoadFMS = 22, // memtile -> core(s), feature map box of every step-th row and column
  WriteFM = 20, // core -> memtile, feature map box
  Write = 21,   // memtile -> DDR, feature map box
  Comp = 24,    // run a kernel on a core
  // The activation-rule forms of LOAD, LOADFM and LOADFMS (program version
  // 2): the same operands; the transfer applies the stage's Act rule
  // (man/bsp-isa.7, ACTIVATION RULES).
  LoadZ = 25,
  LoadFMZ = 26,
  LoadFMSZ = 27,
};
const char* opc_name(Opc o);

// The activation-rule form of a box transfer and back.
inline bool act_form(Opc o) { return o == Opc::LoadZ || o == Opc::LoadFMZ || o == Opc::LoadFMSZ; }
inline Opc base_form(Opc o) {
  switch (o) {
    case Opc::LoadZ: return Opc::Load;
    case Opc::LoadFMZ: return Opc::LoadFM;
    case Opc::LoadFMSZ: return Opc::LoadFMS;
    default: return o;
  }
}
inline Opc z_form(Opc o) {
  switch (o) {
    case Opc::Load: return Opc::LoadZ;
    case Opc::LoadFM: return Opc::LoadFMZ;
    case Opc::LoadFMS: return Opc::LoadFMSZ;
    default: return o;
  }
}

constexpr int kOperands = 15;

struct Instr {
  Opc op = Opc::End;
  std::array<int32_t, kOperands> a{};
};

enum class Mem : int32_t { DDR = 0, Memtile = 1, Core = 2 };
enum class QKind : int32_t { Core = 0, CoreMM2S = 1, MemtileMM2S = 2, ShimMM2S = 3, ShimS2MM = 4 };
const char* qkind_name(QKind k);

// Buffer flags.
constexpr int32_t kBufShared = 1;   // several queues may write it at once (disjoint parts, each byte once)
constexpr int32_t kBufPrivate = 2;  // one queue's scratch (no locks): the core that owns it
constexpr int32_t kBufLinear = 4;   // raw bytes (weights), no [rows][cols][pitch] layout
constexpr int32_t kBufSlotLocks = 8;  // a free/full lock pair per slot (else one pair for all slots)

// A buffer: `slots` slots of slot_bytes at addr in the memory of tile (a
// core index, a column, or 0 for DDR); a group buffer exists at the same
// address in tile_count cores tile, tile + tile_stride, ... Box buffers hold
// [rows][cols][pitch] elements of elem_bytes per slot.
struct BufDecl {
  int32_t id = 0;
  Mem mem = Mem::DDR;
  int32_t tile = 0, tile_count = 1, tile_stride = 1;
  int64_t addr = 0;
  int32_t slot_bytes = 0, slots = 1;
  int32_t rows = 0, cols = 0, pitch = 0, elem_bytes = 1;
  int32_t free_init = 0, full_init = 0;
  int32_t flags = 0;
  // Core buffers: the core DMA input (S2MM) channel that transfers into the
  // buffer arrive on. split > 0: channels [split, pitch) of every slot are
  // written by a second writer, on the next input channel, under a second
  // lock pair (locks 2 free, 3 full); readers hold both pairs.
  int32_t port = 0, split = 0;
  int32_t family = 255;  // which kernel operand it is (codegen.hpp), 255: none
  std::string name;
  int64_t slot_elems() const { return static_cast<int64_t>(rows) * cols * pitch; }
};

enum class KKind : int32_t { Conv = 0, MaxPool = 1, AvgPool = 2, Eltwise = 3, Softmax = 4 };
const char* kkind_name(KKind k);

// Kernel flags (in Kdef).
constexpr int32_t kKRelu = 1;
constexpr int32_t kKSparse = 2;     // conv weights carry block indices
constexpr int32_t kKAdd = 4;        // conv adds the residual operand
constexpr int32_t kKIncludePad = 8; // avgpool divides by the full window
constexpr int32_t kKClip = 16;      // eltwise clamps to bounds (fp32: two float constants)
// Eltwise functions (at most one; int8 kernels take their table or
// rescaling from the constants, fp32 ones compute the function).
constexpr int32_t kKSigmoid = 32;
constexpr int32_t kKHardSigmoid = 64;  // fp32: alpha and beta as two float constants
constexpr int32_t kKHardSwish = 128;
constexpr int32_t kKMul = 256;         // the product of the two inputs
constexpr int32_t kKBcast = 512;       // mul: input 1 holds one pixel, [C] broadcast over the tile
// avgpool of a whole-map window in row passes: the input tile holds window
// rows [pt, kh - pb) only (COMP pt, pb: the rows before and after the pass);
// they add to the accumulator, the last pass divides the window's sum.
constexpr int32_t kKRows = 1024;
// int8 conv with the AIE-ML sparse B operand: the chunk holds, after the
// counts and indices (always present), each block row's (block, tap) units
// in compressed pairs; COMP operand pt (a[11]) is the chunk's pair count
// (man/bsp-isa.7, SPARSE OPERAND). ISA version 3.
constexpr int32_t kKSparse24 = 2048;
// COMP flags.
constexpr int32_t kCFirst = 1;  // first input-channel pass: start from zero
constexpr int32_t kCLast = 2;   // last pass: apply the epilogue and write the output tile

struct KernelDecl {
  int32_t id = 0;
  KKind kind = KKind::Conv;
  int32_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int32_t in_buf = -1, n_in = 1, w_buf = -1, out_buf = -1, add_buf = -1, acc_buf = -1;
  int32_t flags = 0;
  std::vector<int32_t> consts;  // int8: clamps, residual and concat rescaling (man/bsp-isa.7)
};

// A stage's activation rule (core/act_sparsity.hpp; man/bsp-isa.7,
// ACTIVATION RULES): the blocks of the view [H, W, C] (channels [c0, c0 + C)
// of the activation held by buffers src .. src + src_count - 1: one DDR
// buffer, or the memtile row bands in order) whose every value v has
// |v| < threshold are zero for the transfers in their Z forms. flat: the
// activation read as a vector [1, 1, F] (a dense layer after a flatten).
struct ActDecl {
  int32_t threshold = 0;  // int8: T (1..256, 0: not set yet); fp32/bf16: the float32 bits of t
  int32_t bh = 1, bw = 8, bc = 8;
  int32_t c0 = 0, C = 0;
  int32_t flat = 0;
  int32_t src = 0, src_count = 1;
};

struct QueueProg {
  QKind kind = QKind::Core;
  int32_t tile = 0, channel = 0;
  std::vector<Instr> code;  // Loop/Stride records included
  std::string name() const;  // "core(1,2)", "memtile(3).mm2s2", ...
  std::string label;         // for assembly: which streams it carries
};

struct StageProg {
  int32_t index = 0;
  std::string name;
  std::vector<BufDecl> bufs;
  std::vector<KernelDecl> kernels;
  std::optional<ActDecl> act;
  std::vector<QueueProg> queues;
};

struct Program {
  Hardware hw;
  DType dtype = DType::FP32;
  int64_t ddr_bytes = 0, ddr_const_bytes = 0;
  // Where the host puts the input [H, W, C] and finds the output.
  int64_t input_addr = 0, output_addr = 0;
  std::vector<int64_t> input_shape, output_shape;
  std::vector<StageProg> stages;
  uint64_t fingerprint = 0;
  // Whether a stage applies an activation rule: such a program is ISA
  // version 2 (man/bsp-isa.7), the others version 1.
  bool uses_act() const {
    for (const StageProg& s : stages)
      if (s.act) return true;
    return false;
  }
  // Whether a kernel uses the sparse operand (kKSparse24): ISA version 3.
  bool uses_sparse24() const {
    for (const StageProg& s : stages)
      for (const KernelDecl& k : s.kernels)
        if (k.flags & kKSparse24) return true;
    return false;
  }
};

// Binary form: records of 16 int32 words, plus a table of names.
std::vector<int32_t> encode_program(const Program& p, std::vector<std::string>& names);
// Decodes and checks the structure (record kinds, counts, ids, loop bodies);
// `hw`, `dtype` and the header fields come from the file's attributes.
void decode_program(const std::vector<int32_t>& words, const std::vector<std::string>& names, Program& p);

// Readable assembly of the whole program.
std::string program_asm(const Program& p);

// Helpers for building instruction records.
Instr make(Opc op, std::initializer_list<int32_t> args);

// Packs four paddings (each 0..255) into one operand.
inline int32_t pack_pad(int64_t t, int64_t l, int64_t b, int64_t r) {
  return static_cast<int32_t>((t & 255) | ((l & 255) << 8) | ((b & 255) << 16) | ((r & 255) << 24));
}
inline int64_t pad_part(int32_t p, int i) { return (static_cast<uint32_t>(p) >> (8 * i)) & 255; }

// Number of instruction records executed when the loops are expanded.
int64_t executed_instructions(const QueueProg& q);

}  // namespace bsp::aie2
