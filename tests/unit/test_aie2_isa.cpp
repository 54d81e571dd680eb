// The AIE2 instruction set: loops fold and expand back to the same
// instructions, programs survive the binary encoding, the assembly names
// every instruction class.
#include <catch2/catch.hpp>

#include "aie2/isa.hpp"
#include "aie2/loops.hpp"
#include "aie2_helpers.hpp"
#include "core/act_sparsity.hpp"

using namespace bsp;
using namespace bsp::aie2;

namespace {
std::vector<Instr> expand(const std::vector<Instr>& code) {
  std::vector<Instr> out;
  LoopCursor c(&code);
  Instr in;
  size_t rec;
  while (c.next(in, rec)) out.push_back(in);
  return out;
}
bool same(const std::vector<Instr>& a, const std::vector<Instr>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].op != b[i].op || a[i].a != b[i].a) return false;
  return true;
}
}  // namespace

TEST_CASE("loop folding is lossless and folds affine runs", "[aie2][isa]") {
  Rng rng(9);
  for (int trial = 0; trial < 300; ++trial) {
    // Units of 1-4 instructions; runs where operands step by constants, with
    // occasional irregular units and ping-pong slots.
    std::vector<Instr> flat;
    std::vector<size_t> units;
    const int n_units = 1 + static_cast<int>(rng.below(40));
    const int len = 1 + static_cast<int>(rng.below(4));
    const int step = static_cast<int>(rng.below(5));
    for (int u = 0; u < n_units; ++u) {
      units.push_back(flat.size());
      const bool odd = rng.below(7) == 0;
      for (int k = 0; k < (odd ? 1 : len); ++k) {
        Instr in = make(odd ? Opc::Rel : k == 0 ? Opc::Acq : Opc::LoadFM,
                        {k, u % 2, u * step + k, odd ? 99 : 3, static_cast<int32_t>(rng.below(odd ? 50 : 1))});
        flat.push_back(in);
      }
    }
    for (std::vector<size_t> periods : {std::vector<size_t>{1}, std::vector<size_t>{4, 2, 1}, std::vector<size_t>{3}}) {
      auto code = compress_loops(flat, units, periods);
      REQUIRE(same(expand(code), flat));
      CHECK(code.size() <= flat.size() + 1);
    }
  }
  // A regular run folds into one loop.
  std::vector<Instr> flat;
  std::vector<size_t> units;
  for (int u = 0; u < 100; ++u) {
    units.push_back(flat.size());
    flat.push_back(make(Opc::Acq, {0, u % 2, 1, 1, 0, -1}));
    flat.push_back(make(Opc::LoadFM, {1, u % 2, 10 * u, 0, 0, 4, 4, 8}));
  }
  auto code = compress_loops(flat, units, {2, 1});
  CHECK(code.size() <= 8);
  CHECK(same(expand(code), flat));
  QueueProg q;
  q.code = code;
  CHECK(executed_instructions(q) == 200);
}

TEST_CASE("programs survive the binary encoding", "[aie2][isa]") {
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  test::make_int8(m);
  Schedule S = make_schedule(m, load_target("aie2:2x3"), DType::Int8);
  Program p = generate_program(S);
  build_const_image(S, m, &p);  // fills the int8 kernel constants
  std::vector<std::string> names;
  std::vector<int32_t> words = encode_program(p, names);
  CHECK(words.size() % 16 == 0);
  Program q;
  decode_program(words, names, q);
  REQUIRE(q.stages.size() == p.stages.size());
  for (size_t s = 0; s < p.stages.size(); ++s) {
    const StageProg &a = p.stages[s], &b = q.stages[s];
    CHECK(a.name == b.name);
    REQUIRE(a.bufs.size() == b.bufs.size());
    for (size_t i = 0; i < a.bufs.size(); ++i) {
      CHECK(a.bufs[i].name == b.bufs[i].name);
      CHECK(a.bufs[i].addr == b.bufs[i].addr);
      CHECK(a.bufs[i].family == b.bufs[i].family);
      CHECK(a.bufs[i].flags == b.bufs[i].flags);
    }
    REQUIRE(a.kernels.size() == b.kernels.size());
    for (size_t i = 0; i < a.kernels.size(); ++i) CHECK(a.kernels[i].consts == b.kernels[i].consts);
    REQUIRE(a.queues.size() == b.queues.size());
    for (size_t i = 0; i < a.queues.size(); ++i) {
      CHECK(a.queues[i].name() == b.queues[i].name());
      CHECK(same(a.queues[i].code, b.queues[i].code));
    }
  }
  // Damaged encodings are refused.
  std::vector<int32_t> cut(words.begin(), words.end() - 16);
  CHECK_THROWS_WITH(decode_program(cut, names, q), Catch::Contains("end record"));
  std::vector<int32_t> odd(words.begin(), words.end() - 3);
  CHECK_THROWS_WITH(decode_program(odd, names, q), Catch::Contains("whole number of records"));
  std::vector<int32_t> bad = words;
  bad[16 * 1] = 77;  // the first buffer record's opcode
  CHECK_THROWS(decode_program(bad, names, q));
}

TEST_CASE("the assembly names every instruction class", "[aie2][isa]") {
  Model m = test::aie2_model("fmnist-cnn");
  ScheduleOptions o;
  o.resident = false;
  Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::FP32, o);
  const std::string a = program_asm(generate_program(S));
  for (const char* w : {"LOAD ", "LOADW ", "LOADFM ", "LOADWM ", "COMP ", "WRITEFM ", "WRITE ", "acq ", "rel ", "loop ",
                        "endloop", "stage 0 \"conv1.conv\"", "queue core0", "kernel 0 conv 3x3"})
    CHECK(a.find(w) != std::string::npos);
}

TEST_CASE("activation rules survive the binary encoding; their records are checked", "[aie2][isa][act]") {
  Model m = test::aie2_model("fmnist-cnn", 0.5);
  for (const char* n : {"conv2.conv", "fc1"}) set_act_rule(*m.find(n), 0.25, {2, 4, 16});
  test::make_int8(m);
  for (bool resident : {true, false}) {
    ScheduleOptions o;
    o.resident = resident;
    Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::Int8, o);
    Program p = generate_program(S);
    build_const_image(S, m, &p);  // the int8 thresholds T
    REQUIRE(p.uses_act());
    std::vector<std::string> names;
    const std::vector<int32_t> words = encode_program(p, names);
    Program q;
    decode_program(words, names, q);
    int ruled = 0;
    for (size_t s = 0; s < p.stages.size(); ++s) {
      const StageProg &a = p.stages[s], &b = q.stages[s];
      REQUIRE(a.act.has_value() == b.act.has_value());
      if (!a.act) continue;
      ++ruled;
      CHECK((a.name == "conv2.conv" || a.name == "fc1"));
      CHECK(b.act->threshold == a.act->threshold);
      CHECK(b.act->threshold >= 1);
      CHECK((b.act->bh == 2 && b.act->bw == 4 && b.act->bc == 16));
      CHECK((b.act->flat == 1) == (a.name == "fc1"));  // fc1 reads the flattened map
      CHECK((b.act->c0 == a.act->c0 && b.act->C == a.act->C && b.act->src == a.act->src &&
             b.act->src_count == a.act->src_count));
      for (size_t i = 0; i < a.queues.size(); ++i) CHECK(same(a.queues[i].code, b.queues[i].code));
    }
    CHECK(ruled == 2);
    const std::string text = program_asm(q);
    CHECK(text.find("  act     |v| < ") != std::string::npos);
    CHECK(text.find(resident ? "LOADFMZ " : "LOADZ ") != std::string::npos);
    // A Z form in a stage without a rule, and a malformed rule, are refused.
    size_t at = 0;  // the first act record
    while (words[at * 16] != static_cast<int32_t>(Opc::Act)) ++at;
    std::vector<int32_t> bad = words;
    bad[at * 16 + 2] = 0;  // bh
    CHECK_THROWS_WITH(decode_program(bad, names, q), Catch::Contains("bad activation rule"));
    bad = words;
    bad[at * 16 + 9] = 100000;  // src past the stage's buffers
    CHECK_THROWS_WITH(decode_program(bad, names, q), Catch::Contains("bad activation rule"));
    Program plain = generate_program(make_schedule(test::aie2_model("fmnist-cnn", 0.5), load_target("aie2:2x2"), DType::FP32, o));
    REQUIRE_FALSE(plain.uses_act());
    for (QueueProg& qp : plain.stages[1].queues)
      for (Instr& in : qp.code) in.op = z_form(in.op);
    names.clear();
    const std::vector<int32_t> zw = encode_program(plain, names);
    CHECK_THROWS_WITH(decode_program(zw, names, q), Catch::Contains("in a stage without an activation rule"));
  }
}
