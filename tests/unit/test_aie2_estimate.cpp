// The AIE2 estimator: the total is the sum of the layers, sparsity and more
// cores pay, the paper's assumptions add the DDR time, and the scheduler's
// analytic model agrees with the timed program.
#include <catch2/catch.hpp>

#include "aie2/estimate.hpp"
#include "aie2_helpers.hpp"

using namespace bsp;
using namespace bsp::aie2;

namespace {
Estimate estimate(const Model& m, Hardware hw, DType dt, bool paper = false, bool dense = false, int tune = 1) {
  if (paper) apply_paper_model(hw);
  ScheduleOptions o;
  o.dense = dense;
  o.tune = tune;
  Schedule S = make_schedule(m, hw, dt, o);
  return estimate_program(generate_program(S), &S, paper);
}
}  // namespace

TEST_CASE("the total is the sum of the layers and the classes add up", "[aie2][estimate]") {
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  Estimate e = estimate(m, load_target("aie2:4x4"), DType::Int8);
  double sum = 0;
  int64_t exec = 0;
  for (const auto& l : e.layers) {
    sum += l.seconds;
    exec += l.executed;
    CHECK(l.seconds > 0);
    CHECK(l.serial_s >= l.seconds * 0.999);  // overlap only ever saves time
    CHECK(l.cores > 0);
  }
  CHECK(e.total_s == Approx(sum));
  CHECK(e.executed == exec);
  CHECK(e.cls[kClsComp].macs > 0);
  Json j = estimate_json(e);
  CHECK(j.at("target").as_string() == "aie2-4x4");
  CHECK(j.at("layers").size() == e.layers.size());
}

TEST_CASE("sparsity and more cores make a network faster", "[aie2][estimate]") {
  Model dense = test::aie2_model("fmnist-resnet");
  Model sparse = test::aie2_model("fmnist-resnet", 0.5);
  for (const char* t : {"aie2:2x2", "aie2:4x4"}) {
    INFO(t);
    const Hardware hw = load_target(t);
    const double d = estimate(dense, hw, DType::Int8).total_s;
    const double s = estimate(sparse, hw, DType::Int8).total_s;
    CHECK(s < d);
    // The dense counterpart of the sparse model is the dense model's schedule.
    CHECK(estimate(sparse, hw, DType::Int8, false, true).total_s == Approx(d).epsilon(1e-9));
  }
  const double small = estimate(dense, load_target("aie2:2x2"), DType::Int8).total_s;
  const double large = estimate(dense, load_target("aie2:4x4"), DType::Int8).total_s;
  CHECK(large < small);
}

TEST_CASE("the paper's assumptions add the DDR time; the analytic model agrees", "[aie2][estimate]") {
  Model m = test::aie2_model("fmnist-cnn", 0.5);
  Hardware hw = load_target("aie2:2x2");
  apply_paper_model(hw);
  Schedule S = make_schedule(m, hw, DType::Int8);
  Program p = generate_program(S);
  Estimate paper = estimate_program(p, &S, true);
  double ddr = 0;
  for (const auto& l : paper.layers) ddr += l.ddr_s;
  CHECK(ddr > 0);
  // The same program with DDR overlapped is never slower.
  p.hw.ddr_overlap = true;
  Estimate overlapped = estimate_program(p, &S, false);
  CHECK(overlapped.total_s <= paper.total_s);
  // Per stage, the scheduler's analytic time is within a factor of 2 of the timed program.
  for (size_t i = 0; i < S.stages.size(); ++i) {
    INFO(S.graph.stages[i].name);
    CHECK(S.stages[i].est_seconds < 2.0 * paper.layers[i].seconds);
    CHECK(S.stages[i].est_seconds > 0.5 * paper.layers[i].seconds);
  }
}

TEST_CASE("tuning keeps each stage's fastest timed plan", "[aie2][estimate]") {
  // Round 0 of the tuning times the analytic choice itself, so no stage can
  // get slower; on ResNet-50 the runners-up win often enough to matter
  // (4x4 int8 block:8x8 0.5, default model: 1.351 -> 1.280 ms with 4).
  for (bool paper : {false, true}) {
    INFO("paper " << paper);
    Model m = test::aie2_model("fmnist-resnet", 0.5);
    const Hardware hw = load_target("aie2:4x4");
    Estimate one = estimate(m, hw, DType::Int8, paper), four = estimate(m, hw, DType::Int8, paper, false, 4);
    REQUIRE(one.layers.size() == four.layers.size());
    for (size_t i = 0; i < one.layers.size(); ++i) {
      INFO(one.layers[i].name);
      CHECK(four.layers[i].seconds <= one.layers[i].seconds * (1 + 1e-12));
    }
  }
  Model r50 = test::aie2_model("resnet50", 0.5);
  const Hardware hw = load_target("aie2:4x4");
  const double one = estimate(r50, hw, DType::Int8).total_s, four = estimate(r50, hw, DType::Int8, false, false, 4).total_s;
  CHECK(four < 0.98 * one);
  CHECK(four > 0.5 * one);
}

TEST_CASE("a core's input channel carries one transfer at a time", "[aie2][estimate]") {
  // Two memtile channels each send 4 KB of weights into core 0: on one core
  // input channel the transfers queue, on two they overlap.
  Program p;
  p.hw = load_target("aie2:2x2");
  p.hw.dma_overhead_cycles = 0;
  StageProg s;
  s.name = "two streams";
  auto buf = [&](Mem mem, int64_t addr, int32_t port) {
    BufDecl b;
    b.id = static_cast<int32_t>(s.bufs.size());
    b.mem = mem;
    b.addr = addr;
    b.slot_bytes = 4096;
    b.flags = kBufLinear;
    b.free_init = 1;
    b.full_init = mem == Mem::Memtile ? 1 : 0;
    b.port = port;
    b.name = "b" + std::to_string(b.id);
    s.bufs.push_back(b);
    return b.id;
  };
  auto stream = [&](int32_t src, int32_t dst, int32_t channel) {
    QueueProg q;
    q.kind = QKind::MemtileMM2S;
    q.channel = channel;
    q.code = {make(Opc::Acq, {src, 0, 1, 1, 0, -1}), make(Opc::Acq, {dst, 0, 0, 1, 1, -1}),
              make(Opc::LoadWM, {src, 0, 0, 4096, dst, 0, 0, -1}), make(Opc::Rel, {dst, 0, 1, 1, 1, -1}),
              make(Opc::Rel, {src, 0, 1, 1, 0, -1})};
    s.queues.push_back(q);
  };
  const int32_t m0 = buf(Mem::Memtile, 0, 0), m1 = buf(Mem::Memtile, 4096, 0);
  const int32_t c0 = buf(Mem::Core, 8192, 0), c1 = buf(Mem::Core, 16384, 0);
  stream(m0, c0, 0);
  stream(m1, c1, 1);
  p.stages.push_back(s);
  const double one = 4096 / (p.hw.stream_gbps * 1e9);
  CHECK(run_stage(p, p.stages[0], nullptr).seconds == Approx(2 * one));
  p.stages[0].bufs[static_cast<size_t>(c1)].port = 1;
  CHECK(run_stage(p, p.stages[0], nullptr).seconds == Approx(one));
  p.stages[0].bufs[static_cast<size_t>(c1)].port = 2;
  CHECK_THROWS_WITH(run_stage(p, p.stages[0], nullptr), Catch::Contains("no core input channel 2"));
}
