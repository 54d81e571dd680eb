// The AIE2 simulator: programs for the small networks reproduce the fp32
// reference on every kind of array and the int8 reference bit for bit; and
// broken programs are caught and named.
#include <catch2/catch.hpp>

#include "aie2_helpers.hpp"
#include "aie2/estimate.hpp"
#include "aie2/executor.hpp"
#include "aie2/plan.hpp"
#include "compact/act_measure.hpp"
#include "core/act_sparsity.hpp"
#include "zoo/builder.hpp"

using namespace bsp;
using namespace bsp::aie2;

// (The full matrix, both networks at every paper size, dense and sparse,
// fp32 and int8, is tests/bench/aie2_sim_matrix.sh.)
namespace {
struct Case {
  const char* arch;
  double density;
  const char* target;
};
// The first transfer `op` of stage s into the second half of split buffer
// b: its destination argument `dst` is b, its offset argument `off` (the
// destination channel of a box, the byte offset of a linear transfer) at
// or above the split.
Instr* into_second_half(Program& p, size_t s, int32_t b, Opc op, int dst, int off) {
  const int32_t split = p.stages[s].bufs[static_cast<size_t>(b)].split;
  for (QueueProg& q : p.stages[s].queues)
    for (Instr& in : q.code)
      if (in.op == op && in.a[static_cast<size_t>(dst)] == b && in.a[static_cast<size_t>(off)] >= split) return &in;
  return nullptr;
}

// Moves the locks of the queue that issues `marker` on buffer b from the
// second lock pair to the first.
void second_writer_to_first_pair(Program& p, size_t s, int32_t b, const Instr* marker) {
  for (QueueProg& q : p.stages[s].queues) {
    bool issues = false;
    for (const Instr& in : q.code) issues |= &in == marker;
    if (!issues) continue;
    for (Instr& in : q.code)
      if ((in.op == Opc::Acq || in.op == Opc::Rel) && in.a[0] == b) in.a[2] -= 2;
  }
}

// Schedules, generates and runs int8 model m on hw and checks the output
// bit for bit against the int8 reference; returns the schedule.
Schedule run_exact_int8(const Model& m, const Hardware& hw, uint64_t seed) {
  Schedule S = make_schedule(m, hw, DType::Int8);
  Program p = generate_program(S);
  std::vector<uint8_t> img = build_const_image(S, m, &p);
  const Shape sh = m.input_shape();
  Tensor x = test::random_tensor({1, sh[0], sh[1], sh[2]}, seed);
  SimRun run = simulate(p, img, x, m);
  Tensor ref = q8::reference_forward(m, *m.compact->int8, x);
  REQUIRE(ref.size() == run.output.size());
  for (size_t i = 0; i < ref.size(); ++i) CHECK(ref[i] == run.output[i]);
  return S;
}

}  // namespace

TEST_CASE("fp32 programs match the reference forward", "[aie2][sim]") {
  for (const Case& k : {Case{"fmnist-cnn", 1.0, "aie2:1x1"}, Case{"fmnist-cnn", 0.5, "aie2:2x2"},
                        Case{"fmnist-cnn", 1.0, "aie2:8x8"}, Case{"fmnist-resnet", 0.5, "aie2:3x3"},
                        Case{"fmnist-resnet", 1.0, "aie2:4x4"}, Case{"fmnist-resnet", 0.5, "aie2:2x8"}}) {
    INFO(k.arch << " density " << k.density << " " << k.target);
    Model m = test::aie2_model(k.arch, k.density);
    auto r = test::run_pipeline(m, k.target);
    CHECK(r.max_diff <= 1e-5 * r.max_ref);
    CHECK(r.sim_seconds > 0);
  }
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  auto r = test::run_pipeline(m, "aie2:3x2", /*resident=*/false);
  CHECK(r.max_diff <= 1e-5 * r.max_ref);
}

TEST_CASE("int8 programs are bit-exact with the int8 reference", "[aie2][sim]") {
  for (const Case& k : {Case{"fmnist-cnn", 0.5, "aie2:1x1"}, Case{"fmnist-cnn", 1.0, "aie2:4x4"},
                        Case{"fmnist-resnet", 0.5, "aie2:2x2"}, Case{"fmnist-resnet", 1.0, "aie2:3x5"}}) {
    INFO(k.arch << " density " << k.density << " " << k.target);
    Model m = test::aie2_model(k.arch, k.density);
    test::make_int8(m);
    auto r = test::run_pipeline(m, k.target);
    CHECK(r.max_diff == 0.0);
  }
}

TEST_CASE("check_output: int8 must be bit-exact, fp32 within the tolerance; it names the worst value", "[aie2][sim]") {
  for (bool int8 : {false, true}) {
    Model m = test::aie2_model("fmnist-cnn", 0.5);
    if (int8) test::make_int8(m);
    auto r = test::run_pipeline(m, "aie2:2x2");
    const Shape s = m.input_shape();
    Tensor x = test::random_tensor({1, s[0], s[1], s[2]}, 11);  // run_pipeline's input
    SimRun run = simulate(r.program, r.image, x, m);
    SimCheck ok = check_output(r.program, m, x, run.output, 1e-4);
    CHECK(ok.match);
    CHECK(ok.max_abs_reference > 0);
    CHECK(ok.tolerance == (int8 ? 0.0 : 1e-4 * ok.max_abs_reference));
    // One value off by a hair: int8 fails, fp32 within its tolerance passes; a
    // larger error fails both and is the one reported.
    run.output[7] += static_cast<float>(ok.max_abs_reference * 1e-6);
    CHECK(check_output(r.program, m, x, run.output, 1e-4).match == !int8);
    run.output[3] += static_cast<float>(ok.max_abs_reference);
    SimCheck bad = check_output(r.program, m, x, run.output, 1e-4);
    CHECK_FALSE(bad.match);
    CHECK(bad.worst == 3);
    CHECK(bad.got == run.output[3]);
  }
}

TEST_CASE("layers whose block rows are reordered over the cores stay exact", "[aie2][sim]") {
  // fmnist-resnet pruned at 0.5 with uneven block rows: the scheduler trades
  // rows between channel parts; the cores write their channels back in runs
  // (to resident bands, to DDR and from the residual operand).
  for (const char* target : {"aie2:2x2", "aie2:4x4"})
    for (bool resident : {true, false}) {
      INFO(target << (resident ? " resident" : " in DDR"));
      Model m = test::aie2_model("fmnist-resnet", 0.5, 4);
      test::make_int8(m);
      auto r = test::run_pipeline(m, target, resident);
      int reordered = 0, with_add = 0;
      for (size_t i = 0; i < r.schedule.stages.size(); ++i)
        if (!r.schedule.stages[i].d.rows.empty()) {
          ++reordered;
          with_add += r.schedule.graph.stages[i].add.has_value();
        }
      CHECK(reordered >= 2);
      if (std::string(target) == "aie2:2x2") CHECK(with_add >= 1);  // a residual operand read in runs
      CHECK(r.max_diff == 0.0);
    }
}

namespace {

// The first record of `op` in a queue of `kind` (any queue when kind < 0) of
// stage s; for acq/rel with mode >= 0 only that access mode.
Instr* find_record(Program& p, size_t s, Opc op, int kind = -1, int mode = -1) {
  for (QueueProg& q : p.stages[s].queues) {
    if (kind >= 0 && static_cast<int>(q.kind) != kind) continue;
    for (Instr& in : q.code)
      if (in.op == op && (mode < 0 || in.a[4] == mode)) return &in;
  }
  return nullptr;
}

std::string run_error(const Program& p, const std::vector<uint8_t>& img, const Model& m) {
  const Shape s = m.input_shape();
  Tensor x = test::random_tensor({1, s[0], s[1], s[2]}, 1);
  try {
    simulate(p, img, x, m);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("broken programs are errors that name the stage, queue and instruction", "[aie2][sim]") {
  Model m = test::aie2_model("fmnist-cnn");
  ScheduleOptions o;
  o.resident = false;
  Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::FP32, o);
  const Program good = generate_program(S);
  const std::vector<uint8_t> img = build_const_image(S, m);
  REQUIRE(run_error(good, img, m).empty());

  SECTION("an out-of-range address") {
    Program p = good;
    Instr* in = find_record(p, 1, Opc::LoadFM);
    REQUIRE(in);
    in->a[10] += 1000;  // destination row
    const std::string e = run_error(p, img, m);
    CHECK_THAT(e, Catch::Contains("stage 1 'conv2.conv'") && Catch::Contains("(LOADFM)") &&
                      Catch::Contains("out-of-range address"));
  }
  SECTION("a buffer overwritten while in use") {
    Program p = good;
    // A third free credit lets the producer refill a slot the core still reads.
    for (BufDecl& b : p.stages[0].bufs)
      if (b.mem == Mem::Core && b.name.rfind("in", 0) == 0) b.free_init = 3;
    const std::string e = run_error(p, img, m);
    CHECK_THAT(e, Catch::Contains("stage 0 'conv1.conv'") && Catch::Contains("overwritten while in use"));
  }
  SECTION("an access without the lock") {
    Program p = good;
    Instr* in = find_record(p, 2, Opc::Acq, static_cast<int>(QKind::CoreMM2S), 1);
    REQUIRE(in);
    in->a[4] = 0;  // the output queue acquires the staging buffer for reading, then writes it
    const std::string e = run_error(p, img, m);
    CHECK_THAT(e, Catch::Contains("stage 2") && Catch::Contains("without holding its lock"));
  }
  SECTION("a deadlock") {
    Program p = good;
    Instr* in = find_record(p, 3, Opc::Rel, static_cast<int>(QKind::Core));
    REQUIRE(in);
    in->op = Opc::Acq;  // the core waits for a lock nobody releases
    const std::string e = run_error(p, img, m);
    CHECK_THAT(e, Catch::Contains("stage 3") && Catch::Contains("deadlock") && Catch::Contains("waits at record"));
  }
  SECTION("bad lock operands, on an acquire and on a release") {
    for (Opc op : {Opc::Acq, Opc::Rel}) {
      INFO((op == Opc::Acq ? "acquire" : "release"));
      const std::pair<int, const char*> bad[] = {{2, "lock must be 0 (free) or 1 (full)"},
                                                 {3, "lock value"},
                                                 {1, "has no slot"},
                                                 {4, "mode must be 0 (read) or 1 (write)"}};
      for (const auto& [field, message] : bad) {
        Program p = good;
        Instr* in = find_record(p, 1, op, static_cast<int>(QKind::Core));
        REQUIRE(in);
        in->a[field] = field == 3 ? 0 : 7;
        const std::string e = run_error(p, img, m);
        CHECK_THAT(e, Catch::Contains("stage 1") && Catch::Contains(message));
      }
    }
  }
  SECTION("a weight chunk that disagrees with the instruction") {
    Program p = good;
    Instr* in = find_record(p, 1, Opc::Comp);
    REQUIRE(in);
    in->a[9] += 1;  // nnz
    const std::string e = run_error(p, img, m);
    CHECK_THAT(e, Catch::Contains("(COMP)") && Catch::Contains("blocks"));
  }
  SECTION("a wrong weight image") {
    std::vector<uint8_t> short_img(img.begin(), img.end() - 4);
    CHECK_THAT(run_error(good, short_img, m), Catch::Contains("weight image"));
  }
}

TEST_CASE("input tiles split over a core's two input channels stay exact and checked", "[aie2][sim]") {
  // Dense fmnist-resnet on 2x2 splits the input channels of a conv's tiles
  // between the two channels (a buffer with a second writer and lock pair).
  Model m = test::aie2_model("fmnist-resnet");
  test::make_int8(m);
  test::PipelineResult r = test::run_pipeline(m, "aie2:2x2");
  CHECK(r.max_diff == 0.0);
  size_t s = 0;
  int32_t split_buf = -1;
  for (; s < r.program.stages.size() && split_buf < 0; ++s)
    for (const BufDecl& b : r.program.stages[s].bufs)
      if (b.split > 0 && !(b.flags & kBufLinear)) split_buf = b.id;
  REQUIRE(split_buf >= 0);
  --s;
  const Program& good = r.program;
  auto second_half = [&](Program& p) { return into_second_half(p, s, split_buf, Opc::LoadFM, 8, 12); };
  SECTION("a box across the split") {
    Program p = good;
    Instr* in = second_half(p);
    REQUIRE(in);
    in->a[12] -= 8;  // destination channel: now it starts in the first half
    CHECK_THAT(run_error(p, r.image, m), Catch::Contains("straddles the split"));
  }
  SECTION("both writers under the first lock pair") {
    Program p = good;
    second_writer_to_first_pair(p, s, split_buf, second_half(p));
    CHECK_THAT(run_error(p, r.image, m), Catch::Contains("overwritten while in use"));
  }
  SECTION("locks 2 and 3 exist only on split buffers") {
    Program p = good;
    for (BufDecl& b : p.stages[s].bufs) b.split = 0;
    CHECK_THAT(run_error(p, r.image, m), Catch::Contains("lock must be 0 (free) or 1 (full)"));
  }
}

TEST_CASE("weights straight from DDR into the cores stay exact and checked", "[aie2][sim]") {
  // Weights that arrive once go from DDR into the cores, each of the part's
  // two shim streams writing half of the core buffer (a linear buffer split
  // by bytes, two lock pairs), under both cost models.
  int direct = 0, direct_overlap = 0;
  for (bool paper : {false, true})
    for (const char* target : {"aie2:2x2", "aie2:4x4"}) {
      INFO(target << " paper " << paper);
      Model m = test::aie2_model("fmnist-resnet", 0.5);
      test::make_int8(m);
      Hardware hw = load_target(target);
      if (paper) apply_paper_model(hw);
      const Schedule S = run_exact_int8(m, hw, 3);
      int here = 0;
      for (const StagePlan& sp : S.stages) here += sp.w_direct ? 1 : 0;
      if (paper) CHECK(here > 0);
      (paper ? direct : direct_overlap) += here;
    }
  CHECK(direct > 0);
  CHECK(direct_overlap > 0);
  {
    // Cores without the locks for the second half stage those weights as
    // before rather than losing the plans that load them once.
    Model m = test::aie2_model("fmnist-resnet", 0.5);
    test::make_int8(m);
    Hardware hw = load_target("aie2:2x2");
    apply_paper_model(hw);
    int once_full = 0, once_few = 0, direct_few = 0;
    for (const StagePlan& sp : make_schedule(m, hw, DType::Int8).stages) once_full += sp.w_loads == 1 ? 1 : 0;
    hw.core_locks = 10;
    Schedule S = make_schedule(m, hw, DType::Int8);
    for (const StagePlan& sp : S.stages) once_few += sp.w_loads == 1 ? 1 : 0, direct_few += sp.w_direct ? 1 : 0;
    INFO("weights loaded once: " << once_full << " stages with 16 locks, " << once_few << " with 10 (" << direct_few
                                 << " direct)");
    CHECK(once_few > 0);
    CHECK(direct_few < once_few);
    Program p = generate_program(S);
    std::vector<uint8_t> img = build_const_image(S, m, &p);
    CHECK(run_error(p, img, m).empty());
  }
  // The checks, on the first stage of the 2x2 paper program that does it.
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  test::make_int8(m);
  Hardware hw = load_target("aie2:2x2");
  apply_paper_model(hw);
  Schedule S = make_schedule(m, hw, DType::Int8);
  const Program good = generate_program(S);
  std::vector<uint8_t> img = build_const_image(S, m, nullptr);
  size_t s = 0;
  int32_t wb = -1;
  for (; s < good.stages.size() && wb < 0; ++s)
    for (const BufDecl& b : good.stages[s].bufs)
      if (b.split > 0 && (b.flags & kBufLinear) && b.mem == Mem::Core) wb = b.id;
  REQUIRE(wb >= 0);
  --s;
  Program with_consts = good;
  img = build_const_image(S, m, &with_consts);
  auto second_half = [&](Program& p) { return into_second_half(p, s, wb, Opc::LoadW, 4, 6); };
  SECTION("a transfer across the split") {
    Program p = with_consts;
    Instr* in = second_half(p);
    REQUIRE(in);
    in->a[6] -= 4;  // now it starts in the first half
    CHECK_THAT(run_error(p, img, m), Catch::Contains("straddles the split"));
  }
  SECTION("both halves under the first lock pair") {
    Program p = with_consts;
    second_writer_to_first_pair(p, s, wb, second_half(p));
    // The halves' writers now wait for the one free lock, and the cores for
    // the second half's full lock, which nobody releases.
    CHECK_THAT(run_error(p, img, m), Catch::Contains("deadlock") && Catch::Contains("w.q"));
  }
}

TEST_CASE("weights loaded from DDR on two streams stay exact", "[aie2][sim]") {
  // Under the paper's model (DDR time adds) every conv part's weight loads
  // alternate over two shim channels: by slot, chunk by chunk into a
  // resident part, or in halves of a single load.
  // (Weights loaded once go straight into the cores instead, so a core
  // memory of 16 KB also makes chunks that take turns.)
  int by_slot = 0, resident = 0, halves = 0;
  for (double density : {1.0, 0.5})
    for (const char* target : {"aie2:2x2", "aie2:4x4", "small"}) {
      INFO(target << " density " << density);
      Model m = test::aie2_model("fmnist-resnet", density);
      test::make_int8(m);
      const bool small = std::string(target) == "small";
      Hardware hw = load_target(small ? "aie2:2x2" : target);
      if (small) hw.core_memory = 16384;
      apply_paper_model(hw);
      const Schedule S = run_exact_int8(m, hw, 5);
      for (const StagePlan& sp : S.stages) {
        if (sp.ldw_streams != 2) continue;
        if (sp.d.w_resident) ++resident;
        else if (sp.w_loads == 1) halves += sp.w_direct ? 0 : 1;
        else ++by_slot;
      }
    }
  CHECK(by_slot > 0);
  CHECK(resident + halves > 0);
  CHECK(halves > 0);  // a single load staged in halves (a part under 1 KiB)
}

TEST_CASE("tuned schedules stay exact", "[aie2][sim]") {
  for (const char* target : {"aie2:2x2", "aie2:4x4"}) {
    INFO(target);
    Model m = test::aie2_model("fmnist-resnet", 0.5);
    test::make_int8(m);
    test::PipelineResult r = test::run_pipeline(m, target, true, 11, 4);
    CHECK(r.max_diff == 0.0);
  }
}

TEST_CASE("strided 1x1 convolutions take only the input they read", "[aie2][sim]") {
  // fmnist-resnet's shortcut convolutions (1x1, stride 2) read their
  // resident input with LOADFMS: every second row and column.
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  test::make_int8(m);
  test::PipelineResult r = test::run_pipeline(m, "aie2:2x2");
  CHECK(r.max_diff == 0.0);
  size_t s = 0;
  for (; s < r.schedule.stages.size() && !r.schedule.stages[s].subsample; ++s) {
  }
  REQUIRE(s < r.schedule.stages.size());
  const Stage& st = r.schedule.graph.stages[s];
  CHECK(st.kh == 1);
  CHECK(st.sh == 2);
  CHECK(r.schedule.stages[s].ih == r.schedule.stages[s].d.th);  // the input tile is the output tile's size
  CHECK(r.program.stages[s].kernels[0].sh == 1);
  const Program& good = r.program;
  SECTION("a zero step") {
    Program p = good;
    Instr* in = find_record(p, s, Opc::LoadFMS);
    REQUIRE(in);
    in->a[13] = 0;
    CHECK_THAT(run_error(p, r.image, m), Catch::Contains("(LOADFMS)") && Catch::Contains("steps must be at least 1"));
  }
  SECTION("steps that run past the source") {
    Program p = good;
    Instr* in = find_record(p, s, Opc::LoadFMS);
    REQUIRE(in);
    in->a[13] = 200 | (200 << 8);
    CHECK_THAT(run_error(p, r.image, m), Catch::Contains("out-of-range address"));
  }
}

TEST_CASE("whole-map average pools too big for a core sum their window in row passes", "[aie2][sim]") {
  // One 8-channel block of the map in two input slots does not fit a core's
  // 64 KB: [96, 96, 16] int8 (2 x 72 KB), [48, 48, 16] fp32 (2 x 72 KB); a
  // global average and an avgpool whose window is the map. The pool sums
  // rows into its accumulator over passes and divides (int8: rescales the
  // int32 sum) once, in the last pass.
  const Hardware hw = load_target("aie2:2x2");
  for (bool int8 : {true, false})
    for (bool global : {true, false}) {
      const int64_t n = int8 ? 96 : 48;
      INFO((int8 ? "int8 " : "fp32 ") << (global ? "global_avgpool" : "avgpool"));
      GraphBuilder b("big-pool", n, n, 16);
      const std::string y = global ? b.global_avgpool("pool", "input") : b.flatten("flat", b.avgpool("pool", "input", n, 1));
      b.dense("logits", y, 10);
      Model m = b.finish();
      init_weights(m, 5);
      if (int8) test::make_int8(m);
      test::PipelineResult r = test::run_pipeline(m, "aie2:2x2");
      if (int8)
        CHECK(r.max_diff == 0.0);
      else
        CHECK(r.max_diff <= 1e-5 * r.max_ref);
      const size_t s = 0;
      REQUIRE(r.schedule.graph.stages[s].kind == StageKind::Pool);
      const Stage& st = r.schedule.graph.stages[s];
      const StagePlan& p = r.schedule.stages[s];
      CHECK(whole_map_pool(st));
      CHECK(p.K > 1);
      CHECK(p.ih == pass_rows(st, p.d));
      CHECK(p.ih * p.K >= n);
      CHECK(p.ih * (p.K - 1) < n);
      CHECK(p.core_acc.bytes() > 0);
      CHECK(p.core_used <= hw.core_memory);
      const KernelDecl& k = r.program.stages[s].kernels[0];
      CHECK((k.flags & kKRows) != 0);
      CHECK(k.acc_buf == kFamAcc);
      CHECK(k.kh == n);
      // The estimate charges every pass: a COMP per pass and core, together
      // at least the whole window's work plus a kernel call per extra pass.
      const Estimate e = estimate_program(r.program, &r.schedule, false);
      const ClassStats& comp = e.layers[s].cls[kClsComp];
      CHECK(comp.count == p.K * p.d.ps * p.d.pc);
      int64_t co = 0;
      for (size_t g = 1; g < p.d.cbounds.size(); ++g) co = std::max(co, p.d.cbounds[g] - p.d.cbounds[g - 1]);
      const DType dt = int8 ? DType::Int8 : DType::FP32;
      const double whole = static_cast<double>(comp_cycles(hw, dt, st, 1, co, co, 0) +
                                               (p.K - 1) * hw.kernel_overhead_cycles) / (hw.clock_ghz * 1e9);
      CHECK(e.layers[s].queue_max[kClsComp] >= 0.999 * whole);
      if (int8 && global) {  // a row pass that holds no rows is an error
        Program bad = r.program;
        Instr* in = find_record(bad, s, Opc::Comp);
        REQUIRE(in);
        in->a[11] = static_cast<int32_t>(n);  // pt: every row of the window before the pass
        CHECK_THAT(run_error(bad, r.image, m), Catch::Contains("(COMP)") && Catch::Contains("a row pass of"));
      }
    }
  // A map that fits a core keeps one pass.
  GraphBuilder b("small-pool", 16, 16, 16);
  b.dense("logits", b.global_avgpool("pool", "input"), 10);
  Model m = b.finish();
  init_weights(m, 5);
  test::make_int8(m);
  test::PipelineResult r = test::run_pipeline(m, "aie2:2x2");
  CHECK(r.max_diff == 0.0);
  CHECK(r.schedule.stages[0].K == 1);
  CHECK((r.program.stages[0].kernels[0].flags & kKRows) == 0);
}

namespace {

// Gives every conv2d and dense layer (the first conv too) an activation rule
// whose threshold is the q-quantile of its input's block maxima on x (the
// fp32 reference without rules): a real share of zero blocks, whatever the
// weights.
void set_quantile_rules(Model& m, const Tensor& x, const std::array<int64_t, 3>& block, double q) {
  std::vector<std::vector<float>> maxima(m.nodes.size());
  reference_forward(m, x, [&](size_t node, const Tensor& out) {
    const std::array<int64_t, 3> hwc = act_image_shape(out.shape());
    const int64_t H = hwc[0], W = hwc[1], C = hwc[2];
    for (int64_t n = 0; n < out.dim(0); ++n)
      for (int64_t y0 = 0; y0 < H; y0 += block[0])
        for (int64_t x0 = 0; x0 < W; x0 += block[1])
          for (int64_t c0 = 0; c0 < C; c0 += block[2]) {
            float mx = 0;
            for (int64_t y = y0; y < std::min(H, y0 + block[0]); ++y)
              for (int64_t xx = x0; xx < std::min(W, x0 + block[1]); ++xx)
                for (int64_t c = c0; c < std::min(C, c0 + block[2]); ++c)
                  mx = std::max(mx, std::fabs(out[static_cast<size_t>(((n * H + y) * W + xx) * C + c)]));
            maxima[node].push_back(mx);
          }
  });
  for (Node& n : m.nodes) {
    if (n.op != Op::Conv2d && n.op != Op::Dense) continue;
    std::vector<float> v = maxima[m.index_of(n.inputs.at(0))];
    REQUIRE(!v.empty());
    std::sort(v.begin(), v.end());
    const float t = v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
    set_act_rule(n, std::max(1e-3, static_cast<double>(t)), block);
  }
}

// The images of x as an ImageSet (float32 pixels) for measure_act_fractions.
ImageSet image_set(const Tensor& x) {
  ImageSet s;
  s.n = x.dim(0), s.h = x.dim(1), s.w = x.dim(2), s.c = x.dim(3);
  s.f32 = x.clone();
  s.labels = Array<int64_t>({s.n});
  return s;
}
Normalization identity_norm(int64_t c) {
  return Normalization{std::vector<double>(static_cast<size_t>(c), 0.0), std::vector<double>(static_cast<size_t>(c), 1.0)};
}

}  // namespace

TEST_CASE("activation rules: int8 programs stay bit-exact and zero what the reference zeroes", "[aie2][sim][act]") {
  struct ActCase {
    const char* arch;
    double density;
    const char* target;
    bool resident;
    std::array<int64_t, 3> block;
  };
  for (const ActCase& k : {ActCase{"fmnist-cnn", 1.0, "aie2:2x2", true, {1, 8, 8}},
                           ActCase{"fmnist-cnn", 0.5, "aie2:2x2", true, {1, 8, 8}},
                           ActCase{"fmnist-cnn", 1.0, "aie2:4x4", true, {1, 8, 8}},
                           ActCase{"fmnist-cnn", 0.5, "aie2:4x4", false, {1, 8, 8}},
                           ActCase{"fmnist-cnn", 0.5, "aie2:4x4", true, {2, 4, 16}},
                           ActCase{"fmnist-resnet", 0.5, "aie2:2x2", true, {1, 8, 8}}}) {
    INFO(k.arch << " density " << k.density << " " << k.target << (k.resident ? " resident" : " through DDR")
                << " block " << k.block[0] << "x" << k.block[1] << "x" << k.block[2]);
    Model m = test::aie2_model(k.arch, k.density);
    const Shape sh = m.input_shape();
    const Tensor x = test::random_tensor({2, sh[0], sh[1], sh[2]}, 5);
    set_quantile_rules(m, x, k.block, 0.4);
    test::make_int8(m);
    // A real share of each layer's input blocks is zero after its rule.
    ActMeasureOptions mo;
    const std::vector<LayerActStats> st = measure_act_fractions(m, image_set(x), identity_norm(sh[2]), 0, mo);
    REQUIRE(st.size() == static_cast<size_t>(std::count_if(m.nodes.begin(), m.nodes.end(), [](const Node& n) {
              return n.op == Op::Conv2d || n.op == Op::Dense;
            })));
    double mean = 0;
    for (const LayerActStats& l : st) {
      INFO(l.name << " zero fraction " << l.fraction());
      CHECK(l.fraction() > 0.05);
      CHECK(l.tq >= 1);
      mean += l.fraction() / static_cast<double>(st.size());
    }
    CHECK(mean > 0.2);
    ScheduleOptions so;
    so.resident = k.resident;
    Schedule S = make_schedule(m, load_target(k.target), DType::Int8, so);
    Program p = generate_program(S);
    std::vector<uint8_t> img = build_const_image(S, m, &p);
    CHECK(p.uses_act());
    int64_t z = 0;
    for (const StageProg& sp : p.stages) {
      if (!sp.act) continue;
      CHECK(sp.act->threshold >= 1);
      for (const QueueProg& q : sp.queues)
        for (const Instr& in : q.code) z += act_form(in.op);
    }
    CHECK(z > 0);
    SimRun run = simulate(p, img, x, m);
    const Tensor ref = q8::reference_forward(m, *m.compact->int8, x);
    REQUIRE(ref.size() == run.output.size());
    int64_t off = 0;
    for (size_t i = 0; i < ref.size(); ++i) off += ref[i] != run.output[i];
    CHECK(off == 0);
    // On a target with the extension: the same output, in less simulated
    // time (the zero blocks of the input are not moved nor multiplied).
    Program px = p;
    px.hw.act_block_skip = true;
    SimRun rx = simulate(px, img, x, m);
    CHECK(test::max_abs_diff(rx.output, run.output) == 0);
    double t0 = 0, t1 = 0;
    int64_t macs0 = 0, macs1 = 0;
    for (size_t i = 0; i < run.stages.size(); ++i) {
      t0 += run.stages[i].seconds, t1 += rx.stages[i].seconds;
      macs0 += run.stages[i].cls[kClsComp].macs, macs1 += rx.stages[i].cls[kClsComp].macs;
    }
    CHECK(t1 < t0);
    CHECK(macs1 < macs0);
    // The rules matter: the program with its Z forms made plain transfers
    // (no block zeroed) computes another output.
    Program plain = p;
    for (StageProg& sp : plain.stages) {
      sp.act.reset();
      for (QueueProg& q : sp.queues)
        for (Instr& in : q.code) in.op = base_form(in.op);
    }
    CHECK(test::max_abs_diff(simulate(plain, img, x, m).output, ref) > 0);
  }
}

TEST_CASE("activation rules: fp32 programs match the fp32 reference with the rules", "[aie2][sim][act]") {
  Model m = test::aie2_model("fmnist-cnn", 0.5);
  const Shape sh = m.input_shape();
  const Tensor x = test::random_tensor({1, sh[0], sh[1], sh[2]}, 11);  // run_pipeline's input
  set_quantile_rules(m, x, {1, 8, 8}, 0.4);
  auto r = test::run_pipeline(m, "aie2:2x2");
  CHECK(r.program.uses_act());
  CHECK(r.max_diff <= 1e-5 * r.max_ref);
}

TEST_CASE("activation rules: two readers of one value, each with its own rule or none, stay exact", "[aie2][sim][act]") {
  // stage2.0.a and stage2.0.shortcut read the same value: the rule lives on
  // each reader, so the program applies each on its own reads, and the
  // residual add that reads stage2.0's output reads it unthresholded.
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  const Shape sh = m.input_shape();
  const Tensor x = test::random_tensor({1, sh[0], sh[1], sh[2]}, 9);
  set_quantile_rules(m, x, {1, 8, 8}, 0.4);
  for (const char* n : {"stage2.0.shortcut.conv", "stage3.0.shortcut.conv"}) {
    Node& s = *m.find(n);
    set_act_rule(s, act_rule(s)->threshold * 2.5, {1, 4, 8});
  }
  set_act_rule(*m.find("stage3.0.a.conv"), 0.0, kDefaultActBlock);  // stage3.0's input: one ruled reader, one not
  test::make_int8(m);
  for (const char* t : {"aie2:2x2", "aie2:4x4"}) {
    INFO(t);
    Schedule S = make_schedule(m, load_target(t), DType::Int8);
    Program p = generate_program(S);
    std::vector<uint8_t> img = build_const_image(S, m, &p);
    int32_t ta = 0, ts = 0;
    for (const StageProg& sp : p.stages) {
      if (sp.name == "stage2.0.a.conv") ta = sp.act.value().threshold;
      if (sp.name == "stage2.0.shortcut.conv") ts = sp.act.value().threshold;
      if (sp.name == "stage3.0.a.conv") CHECK_FALSE(sp.act.has_value());
    }
    CHECK(ts > ta);
    CHECK(ta >= 1);
    const Tensor ref = q8::reference_forward(m, *m.compact->int8, x);
    CHECK(test::max_abs_diff(simulate(p, img, x, m).output, ref) == 0);
  }
}
