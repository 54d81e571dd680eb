// libFuzzer target: the AIE2 program decoder and the executor's checks on
// raw instruction words, as bsp reads them from a file's /program/code
// (man/bsp-isa.7). Input: byte 0 flags (bit 0 int8, bit 1 also run the
// program functionally), byte 1 the size of the name table, then the words
// (little-endian int32). The program is decoded, disassembled (bsp codegen
// --asm), then every stage runs on a simulated aie2:2x2 array, timing only
// (bsp estimate) and, with bit 1, with data (bsp sim). A clean refusal is a
// bsp::Error; anything else is a crash.
#include <cstring>

#include "aie2/executor.hpp"
#include "aie2/hardware.hpp"
#include "aie2/isa.hpp"
#include "fuzz_common.hpp"

namespace {

using namespace bsp::aie2;

// Instructions a queue executes with its loops expanded, saturating: the
// fuzzer skips the simulation of programs above a budget (a real program
// may run for as long as its loops say; a fuzz run may not).
int64_t executed_bound(const QueueProg& q) {
  constexpr int64_t kMax = int64_t{1} << 40;
  int64_t n = 0;
  for (const Instr& in : q.code) {
    if (in.op == Opc::Loop) {
      const int64_t c = std::max<int32_t>(in.a[0], 0);
      const int64_t b = std::max<int32_t>(in.a[1], 0);
      n += c * std::min<int64_t>(b, static_cast<int64_t>(q.code.size()));
    } else {
      ++n;
    }
    if (n > kMax) return kMax;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Hardware hw = load_target("aie2:2x2");
  if (size < 2) return 0;
  const bool int8 = data[0] & 1, functional = data[0] & 2;
  std::vector<std::string> names;
  for (int i = 0; i < data[1]; ++i) names.push_back("n" + std::to_string(i));
  std::vector<int32_t> words((size - 2) / 4);
  if (!words.empty()) std::memcpy(words.data(), data + 2, words.size() * 4);

  Program p;
  p.hw = hw;
  p.dtype = int8 ? bsp::DType::Int8 : bsp::DType::FP32;
  p.ddr_bytes = 1 << 20;
  try {
    decode_program(words, names, p);
  } catch (const bsp::Error&) {
    return 0;
  }
  volatile size_t asm_size = program_asm(p).size();
  (void)asm_size;
  int64_t work = 0;
  for (const StageProg& s : p.stages)
    for (const QueueProg& q : s.queues) work += executed_bound(q);
  if (work > 200000) return 0;
  try {
    for (const StageProg& s : p.stages) run_stage(p, s, nullptr);
  } catch (const bsp::Error&) {
  }
  if (functional) {
    Machine mach(p.hw, p.ddr_bytes);
    try {
      for (const StageProg& s : p.stages) run_stage(p, s, &mach);
    } catch (const bsp::Error&) {
    }
  }
  return 0;
}
