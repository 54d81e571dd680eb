// The AIE2 scheduler: balanced channel partitions, plans that fit the memories,
// weight chunks that cover exactly the stored blocks, DDR layouts without
// collisions, every zoo network on small and large arrays, and stored
// decisions that rebuild the same schedule.
#include <catch2/catch.hpp>

#include <functional>

#include "aie2/plan.hpp"
#include "aie2/schedule.hpp"
#include "aie2/store.hpp"
#include "aie2_helpers.hpp"
#include "modelfile/model_file.hpp"

using namespace bsp;
using namespace bsp::aie2;

namespace {

int64_t max_group(const std::vector<int64_t>& w, const std::vector<int64_t>& b) {
  int64_t m = 0;
  for (size_t g = 1; g < b.size(); ++g) {
    int64_t s = 0;
    for (int64_t i = b[g - 1]; i < b[g]; ++i) s += w[static_cast<size_t>(i)];
    m = std::max(m, s);
  }
  return m;
}

// The best largest group over every way of cutting w into `parts` non-empty runs.
int64_t brute(const std::vector<int64_t>& w, int64_t parts) {
  const int64_t n = static_cast<int64_t>(w.size());
  int64_t best = INT64_MAX;
  std::vector<int64_t> b{0};
  std::function<void(int64_t, int64_t)> rec = [&](int64_t at, int64_t left) {
    if (left == 1) {
      b.push_back(n);
      best = std::min(best, max_group(w, b));
      b.pop_back();
      return;
    }
    for (int64_t e = at + 1; e <= n - (left - 1); ++e) {
      b.push_back(e);
      rec(e, left - 1);
      b.pop_back();
    }
  };
  rec(0, parts);
  return best;
}

// Every invariant a schedule must satisfy.
void check_schedule(const Schedule& S) {
  const Hardware& hw = S.hw;
  REQUIRE(S.stages.size() == S.graph.stages.size());
  struct Span {
    int64_t lo, hi;
  };
  std::vector<Span> chunks;
  for (size_t i = 0; i < S.stages.size(); ++i) {
    const Stage& st = S.graph.stages[i];
    const StagePlan& p = S.stages[i];
    INFO("stage " << st.name);
    CHECK(p.d.ps * p.d.pc <= hw.cores());
    CHECK(p.core_used <= hw.core_memory);
    for (int64_t u : p.memtile_used) CHECK(u <= hw.memtile_memory);
    REQUIRE(p.d.cbounds.front() == 0);
    REQUIRE(p.d.cbounds.back() == st.Cout);
    CHECK(p.imbalance >= 1.0 - 1e-9);
    CHECK(p.est_seconds > 0);
    if (!p.d.rows.empty()) {  // a permutation of the block rows
      std::vector<int64_t> r = p.d.rows;
      std::sort(r.begin(), r.end());
      for (size_t k = 0; k < r.size(); ++k) CHECK(r[k] == static_cast<int64_t>(k));
      CHECK(static_cast<int64_t>(r.size()) * 8 == st.Cout);
    }
    // The rectangles cover the output exactly once.
    int64_t area = 0;
    for (const Rect& r : p.rects) area += r.h() * r.w();
    CHECK(area == st.Ho * st.Wo);
    if (st.kind == StageKind::Conv) {
      int64_t nnz = 0;
      for (const auto& part : p.chunks)
        for (const Chunk& c : part) {
          nnz += c.nnz;
          if (c.bytes) chunks.push_back({c.ddr_addr, c.ddr_addr + c.bytes});
          CHECK(c.bytes <= p.chunk_max);
        }
      CHECK(nnz == S.occupancy[i].nnz);  // every stored block travels exactly once
    }
  }
  std::sort(chunks.begin(), chunks.end(), [](Span a, Span b) { return a.lo < b.lo; });
  for (size_t i = 1; i < chunks.size(); ++i) CHECK(chunks[i].lo >= chunks[i - 1].hi);
  if (!chunks.empty()) CHECK(chunks.back().hi <= S.ddr_const_bytes);
  // DDR activations alive at the same time do not overlap.
  const auto& sto = S.graph.storages;
  for (size_t a = 0; a < sto.size(); ++a)
    for (size_t b = a + 1; b < sto.size(); ++b) {
      const StoragePlan &pa = S.storages[a], &pb = S.storages[b];
      if (pa.place != Place::DDR || pb.place != Place::DDR) continue;
      const int la = sto[a].is_input ? -1 : sto[a].first_stage, ha = sto[a].last_stage;
      const int lb = sto[b].is_input ? -1 : sto[b].first_stage, hb = sto[b].last_stage;
      if (ha < lb || hb < la) continue;
      const int64_t ea = pa.ddr_addr + sto[a].elements() * dtype_bytes(S.dtype);
      const int64_t eb = pb.ddr_addr + sto[b].elements() * dtype_bytes(S.dtype);
      CHECK((ea <= pb.ddr_addr || eb <= pa.ddr_addr));
      CHECK(pa.ddr_addr >= S.ddr_const_bytes);
    }
}

}  // namespace

TEST_CASE("linear partitions are optimal", "[aie2][schedule]") {
  Rng rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng.below(9));
    std::vector<int64_t> w(static_cast<size_t>(n));
    for (auto& x : w) x = static_cast<int64_t>(rng.below(20));
    const int64_t parts = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
    auto b = linear_partition(w, parts);
    REQUIRE(b.size() == static_cast<size_t>(parts + 1));
    for (size_t g = 1; g < b.size(); ++g) CHECK(b[g] > b[g - 1]);  // non-empty
    CHECK(b.back() == n);
    CHECK(max_group(w, b) == brute(w, parts));
  }
}

namespace {
// fmnist-cnn with conv3 (32 -> 64) skewed: the first 4 block rows keep every
// block, the last 4 one each.
Model skewed_cnn(double density = 0.5) {
  Model m = test::aie2_model("fmnist-cnn", density);
  Node& n = *m.find("conv3.conv");
  Mask mk;
  mk.pattern = "block:8x8";
  mk.block_rows = mk.block_cols = 8;
  mk.bits = Array<uint8_t>({8, 4});
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t c = 0; c < 4; ++c) mk.bits[static_cast<size_t>(r * 4 + c)] = r < 4 || c == 0;
  mk.density = 20.0 / 32.0;
  n.mask = std::move(mk);
  apply_mask(n);
  return m;
}
}  // namespace

TEST_CASE("channel groups follow the stored blocks, not the channel count", "[aie2][schedule]") {
  Model m = skewed_cnn(1.0);  // only conv3 pruned
  Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::FP32);
  size_t i = 0;
  while (S.graph.stages[i].name != "conv3.conv") ++i;
  const Hardware hw = S.hw;
  PlanContext c{hw, DType::FP32, S.graph.stages[i], S.occupancy[i], {Place::DDR}, Place::DDR, Place::DDR, hw.memtile_memory};
  auto b = balanced_groups(c, 2, 1);
  REQUIRE(b.size() == 3);
  // Even channel halves would give 16 and 4 blocks; balanced: 12 and 8 (rows 0-2 | 3-7).
  CHECK(b[1] == 24);
}

TEST_CASE("weights loaded once go straight into the cores when the locks allow", "[aie2][schedule]") {
  // A plan whose weights arrive once takes them from DDR into the cores in
  // halves (a second lock pair); with one lock pair too few for that it
  // stages them instead of failing.
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  Hardware hw = load_target("aie2:2x2");
  apply_paper_model(hw);
  Schedule S = make_schedule(m, hw, DType::Int8);
  size_t i = 0;
  while (i < S.stages.size() && !S.stages[i].w_direct) ++i;
  REQUIRE(i < S.stages.size());
  int64_t fewest = 0;
  for (int64_t locks = 2; locks <= hw.core_locks && !fewest; locks += 2) {
    Hardware h = hw;
    h.core_locks = locks;
    PlanContext c{h, DType::Int8, S.graph.stages[i], S.occupancy[i], {Place::DDR}, Place::DDR, Place::DDR,
                  h.memtile_memory};
    StagePlan p;
    p.d = S.stages[i].d;
    if (!derive_plan(c, p)) continue;
    fewest = locks;
    CHECK_FALSE(p.w_direct);  // the fewest locks that fit: staged
    h.core_locks = locks + 2;
    PlanContext c2{h, DType::Int8, S.graph.stages[i], S.occupancy[i], {Place::DDR}, Place::DDR, Place::DDR,
                   h.memtile_memory};
    StagePlan q;
    q.d = S.stages[i].d;
    REQUIRE(derive_plan(c2, q));
    CHECK(q.w_direct);  // one pair more: straight into the cores
  }
  CHECK(fewest > 0);
}

TEST_CASE("block rows trade places between channel parts when contiguous parts cannot balance", "[aie2][schedule]") {
  Model m = skewed_cnn();
  Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::FP32);
  size_t i = 0;
  while (S.graph.stages[i].name != "conv3.conv") ++i;
  const Hardware hw = S.hw;
  const Occupancy& occ = S.occupancy[i];
  PlanContext c{hw, DType::FP32, S.graph.stages[i], occ, {Place::DDR}, Place::DDR, Place::DDR, hw.memtile_memory};
  // Two parts of whole block rows: contiguous, 12 | 8 blocks (rows 0-2 | 3-7);
  // trading row 0 (4 blocks) for row 4 (1 block): 9 | 11, the best with
  // three rows in the first part.
  Decision d;
  d.cbounds = balanced_groups(c, 2, 1, &d.rows);
  REQUIRE(d.cbounds == std::vector<int64_t>{0, 24, 64});
  REQUIRE(d.rows.size() == 8);
  std::vector<int64_t> sorted = d.rows;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  const int64_t a = rows_count(occ, d, 0, 3, 0, occ.cols), b = rows_count(occ, d, 3, 8, 0, occ.cols);
  CHECK(a + b == occ.nnz);
  CHECK(std::max(a, b) == 11);
  // Each part's rows stay in their natural order: the fewest output runs.
  CHECK(std::is_sorted(d.rows.begin(), d.rows.begin() + 3));
  CHECK(std::is_sorted(d.rows.begin() + 3, d.rows.end()));
  // The imbalance the plan reports drops from 12 / 10 to 11 / 10.
  d.ps = 1, d.pc = 2, d.ny = d.nx = 1, d.th = d.tw = 1, d.ci_t = 32;
  StagePlan with, without;
  with.d = d;
  without.d = d;
  without.d.rows.clear();
  REQUIRE(derive_plan(c, with));
  REQUIRE(derive_plan(c, without));
  CHECK(without.imbalance == Approx(1.2));
  CHECK(with.imbalance == Approx(1.1));
  // Output channels of the reordered positions, in runs of consecutive channels.
  const auto runs = channel_runs(with.d, 0, 24);
  int64_t n = 0;
  for (const ChannelRun& r : runs) {
    CHECK(r.off == n);
    for (int64_t k = 0; k < r.n; ++k) CHECK(out_channel(with.d, r.off + k) == r.c0 + k);
    n += r.n;
  }
  CHECK(n == 24);
  CHECK(runs.size() >= 2);
  // A stored order that is not a permutation is refused.
  StagePlan bad;
  bad.d = d;
  bad.d.rows[0] = bad.d.rows[1];
  std::string why;
  CHECK_FALSE(derive_plan(c, bad, &why));
  CHECK_THAT(why, Catch::Contains("permutation"));
  // A plan to beat: refused when it cannot be faster (nothing beats 0 s),
  // the same plan when it can.
  StagePlan slow = with, fast = with;
  CHECK_FALSE(derive_plan(c, slow, &why, 0.0));
  CHECK_THAT(why, Catch::Contains("slower"));
  REQUIRE(derive_plan(c, fast, &why, with.est_seconds * 1.0001));
  CHECK(fast.est_seconds == with.est_seconds);
  CHECK(fast.core_used == with.core_used);
  // Another tile, order and residency of the same split derive the same plan
  // whether they copy the split's fields from `with` or derive them again.
  for (char order : {'A', 'B'}) {
    StagePlan copied, derived;
    copied.d = with.d;
    copied.d.th = copied.d.tw = 2;
    copied.d.order = order;
    copied.d.w_resident = order == 'A';
    derived.d = copied.d;
    REQUIRE(derive_plan(c, copied, &why, std::numeric_limits<double>::infinity(), &with));
    REQUIRE(derive_plan(c, derived, &why));
    CHECK(copied.est_seconds == derived.est_seconds);
    CHECK(copied.core_macs == derived.core_macs);
    CHECK(copied.imbalance == derived.imbalance);
    CHECK(copied.out_runs == derived.out_runs);
    CHECK(copied.chunk_max == derived.chunk_max);
    CHECK(copied.part_bytes == derived.part_bytes);
    CHECK(copied.worst_nnz == derived.worst_nnz);
    CHECK(copied.worst_ch == derived.worst_ch);
    CHECK(copied.rects == derived.rects);  // all four bounds of each
    REQUIRE(copied.chunks.size() == derived.chunks.size());
    for (size_t q = 0; q < copied.chunks.size(); ++q) {
      REQUIRE(copied.chunks[q].size() == derived.chunks[q].size());
      for (size_t j = 0; j < copied.chunks[q].size(); ++j) {
        CHECK(copied.chunks[q][j].nnz == derived.chunks[q][j].nnz);
        CHECK(copied.chunks[q][j].bytes == derived.chunks[q][j].bytes);
      }
    }
  }
  // Dense layers and the contiguous fallbacks keep the natural order.
  Schedule D = make_schedule(m, load_target("aie2:2x2"), DType::FP32, ScheduleOptions{true, false, true});
  for (const StagePlan& p : D.stages) CHECK(p.d.rows.empty());
}

TEST_CASE("small networks schedule within the memories on every kind of array", "[aie2][schedule]") {
  for (const char* arch : {"fmnist-cnn", "fmnist-resnet"})
    for (double density : {1.0, 0.5})
      for (const char* target : {"aie2:1x1", "aie2:2x2", "aie2:3x5", "aie2:8x8", "npu1", "aie2:8x2"})
        for (DType dt : {DType::FP32, DType::Int8}) {
          INFO(arch << " " << density << " " << target << " " << dtype_name(dt));
          Model m = test::aie2_model(arch, density);
          check_schedule(make_schedule(m, load_target(target), dt));
          ScheduleOptions o;
          o.resident = false;
          Schedule S = make_schedule(m, load_target(target), dt, o);
          for (const StoragePlan& p : S.storages) CHECK(p.place == Place::DDR);
          check_schedule(S);
        }
}

TEST_CASE("every layer of the paper's networks schedules on small and large arrays", "[aie2][schedule]") {
  for (const char* arch : {"resnet50", "inception_v3", "vgg16"}) {
    const ArchInfo& a = find_arch(arch);
    Model m = a.build(a.default_classes);
    for (Node& n : m.nodes)
      if (op_has_weight(n.op)) n.param("weight").fill(1.0f);
    for (const char* target : {"aie2:2x2", "aie2:8x8"}) {
      INFO(arch << " " << target);
      check_schedule(make_schedule(m, load_target(target), DType::Int8));
    }
  }
}

TEST_CASE("the paper's mapping: output width across columns, channels across rows, activations in DDR",
          "[aie2][schedule]") {
  ScheduleOptions o;
  o.fixed_mapping = true;
  o.resident = false;
  for (const char* target : {"aie2:2x2", "aie2:4x4", "aie2:3x5", "ve2802"}) {
    const Hardware hw = load_target(target);
    Model m = test::aie2_model("fmnist-resnet", 0.5);
    Schedule S = make_schedule(m, hw, DType::Int8, o);
    check_schedule(S);
    for (const StoragePlan& p : S.storages) CHECK(p.place == Place::DDR);
    for (size_t i = 0; i < S.stages.size(); ++i) {
      const Stage& st = S.graph.stages[i];
      const Decision& d = S.stages[i].d;
      INFO(target << " " << st.name);
      CHECK(d.ny == 1);
      CHECK(d.nx == d.ps);
      CHECK(d.ps == std::min(hw.cols, st.Wo));  // fmnist-resnet fits every core's memory
      if (st.kind != StageKind::Softmax) CHECK(d.pc == std::min(hw.rows, (st.Cout + 7) / 8));
    }
  }
}

TEST_CASE("stored decisions rebuild the same schedule; other masks are refused", "[aie2][schedule]") {
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  Schedule S = make_schedule(m, load_target("aie2:3x3"), DType::FP32);
  std::vector<Decision> ds;
  for (const auto& p : S.stages) ds.push_back(p.d);
  Schedule R = rebuild_schedule(m, S.hw, S.dtype, ds, S.storages, S.fingerprint);
  REQUIRE(R.stages.size() == S.stages.size());
  for (size_t i = 0; i < S.stages.size(); ++i) {
    CHECK(R.stages[i].est_seconds == S.stages[i].est_seconds);
    CHECK(R.stages[i].core_used == S.stages[i].core_used);
    CHECK(R.stages[i].chunk_max == S.stages[i].chunk_max);
  }
  CHECK(R.ddr_bytes == S.ddr_bytes);
  Model other = test::aie2_model("fmnist-resnet", 0.5, 2);  // other masks
  CHECK_THROWS_WITH(rebuild_schedule(other, S.hw, S.dtype, ds, S.storages, S.fingerprint),
                    Catch::Contains("does not match the model"));
  // A decision that no longer fits is refused, not trusted.
  ds[1].th = 1000;
  CHECK_THROWS(rebuild_schedule(m, S.hw, S.dtype, ds, S.storages, S.fingerprint));
}

namespace {
// Schedules m on aie2:2x2 (fp32), generates its program and attaches both,
// as bsp schedule and bsp codegen would before saving.
std::pair<std::shared_ptr<Schedule>, std::shared_ptr<ProgramFile>> attach_program(Model& m) {
  auto s = std::make_shared<Schedule>(make_schedule(m, load_target("aie2:2x2"), DType::FP32));
  s->source_hash = model_hash(m, DType::FP32);
  auto pf = std::make_shared<ProgramFile>();
  pf->program = generate_program(*s);
  pf->const_image = build_const_image(*s, m, &pf->program);
  pf->source_hash = s->source_hash;
  m.schedule = s;
  m.program = pf;
  return {s, pf};
}
}  // namespace

TEST_CASE("the schedule and program go through a file and are dropped when the weights change", "[aie2][schedule]") {
  test::TempDir d;
  Model m = test::aie2_model("fmnist-cnn", 0.5);
  auto [s, pf] = attach_program(m);
  save_model(m, d.file("p.h5"));
  Model r = load_model(d.file("p.h5"), "p.h5");
  REQUIRE(r.schedule);
  REQUIRE(r.program);
  CHECK(r.aie2_dropped.empty());
  CHECK(r.schedule->stages.size() == s->stages.size());
  CHECK(r.schedule->ddr_bytes == s->ddr_bytes);
  for (size_t i = 0; i < s->stages.size(); ++i) CHECK(r.schedule->stages[i].d.rows == s->stages[i].d.rows);
  CHECK(r.program->const_image == pf->const_image);
  CHECK(r.program->program.stages.size() == pf->program.stages.size());
  // A later stage that changes a weight leaves the stale groups out of its file.
  r.nodes[1].param("weight")[0] += 1.0f;
  save_model(r, d.file("q.h5"));
  Model q = load_model(d.file("q.h5"), "q.h5");
  CHECK_FALSE(q.schedule);
  CHECK_FALSE(q.program);
  CHECK(q.aie2_dropped.empty());
  // A file whose weights another tool changed: the reader drops the stale
  // groups and says why.
  test::edit_weight_in_file(d.file("p.h5"), r.nodes[1].name, 0, 1.0f);
  Model e = load_model(d.file("p.h5"), "p.h5");
  CHECK_FALSE(e.schedule);
  CHECK_FALSE(e.program);
  CHECK_THAT(e.aie2_dropped, Catch::Contains("other weights or masks"));
  // A new schedule replaces the program made from the old one.
  set_schedule(r, s);
  CHECK_FALSE(r.program);
}

TEST_CASE("stored activation plans are checked against the model and the hardware", "[aie2][schedule]") {
  Model m = test::aie2_model("fmnist-resnet", 0.5);
  Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::FP32);
  std::vector<Decision> ds;
  for (const auto& p : S.stages) ds.push_back(p.d);
  REQUIRE_NOTHROW(rebuild_schedule(m, S.hw, S.dtype, ds, S.storages, S.fingerprint));
  size_t res = S.storages.size(), ddr = S.storages.size();
  for (size_t i = 0; i < S.storages.size(); ++i)
    (S.storages[i].place == Place::Memtile ? res : ddr) = std::min(i, S.storages[i].place == Place::Memtile ? res : ddr);
  REQUIRE(res < S.storages.size());
  REQUIRE(ddr < S.storages.size());
  auto refused = [&](const std::function<void(std::vector<StoragePlan>&)>& edit, const std::string& why) {
    std::vector<StoragePlan> sp = S.storages;
    edit(sp);
    CHECK_THROWS_WITH(rebuild_schedule(m, S.hw, S.dtype, ds, sp, S.fingerprint), Catch::Contains(why));
  };
  refused([&](auto& sp) { sp[res].memtile_addr += 3; }, "is not a 64-aligned place");
  refused([&](auto& sp) { sp[res].memtile_addr = S.hw.memtile_memory; }, "is not a 64-aligned place");
  refused([&](auto& sp) { sp[res].band_rows += 1; }, "bands of");
  refused([&](auto& sp) { sp[res].band_bytes = 0; }, "bands of");
  refused([&](auto& sp) { sp[res].ddr_addr = 0; }, "is resident but has DDR address 0");
  refused([&](auto& sp) { sp[ddr].memtile_addr = 64; }, "is in DDR but has memtile bands");
  refused([&](auto& sp) { sp[0] = sp[res]; }, "cannot be resident");  // the network input
  // two resident activations alive together at one address
  for (size_t j = res + 1; j < S.storages.size(); ++j)
    if (S.storages[j].place == Place::Memtile && S.storages[j].band_bytes == S.storages[res].band_bytes &&
        S.storages[j].memtile_addr != S.storages[res].memtile_addr) {
      const Storage &a = S.graph.storages[res], &b = S.graph.storages[j];
      if (a.last_stage < b.first_stage || b.last_stage < a.first_stage) continue;
      refused([&](auto& sp) { sp[j].memtile_addr = sp[res].memtile_addr; }, "overlap in the memtiles");
      break;
    }
}

TEST_CASE("a stored program is run only for the model it was generated from", "[aie2][schedule]") {
  Model m = test::aie2_model("fmnist-cnn", 0.5);
  Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::FP32);
  Program p = generate_program(S);
  CHECK_NOTHROW(check_program_fits(m, p));
  Program q = p;
  q.fingerprint ^= 1;
  CHECK_THROWS_WITH(check_program_fits(m, q), Catch::Contains("the stored program's fingerprint does not match"));
  Model other = test::aie2_model("fmnist-cnn", 0.5, 2);  // other masks
  CHECK_THROWS_WITH(check_program_fits(other, p), Catch::Contains("does not match the model"));
}

TEST_CASE("an edited schedule or program group is refused; a format-1.0 file is read unchecked", "[aie2][schedule]") {
  test::TempDir d;
  Model m = test::aie2_model("fmnist-cnn", 0.5);
  const auto [s, pf] = attach_program(m);
  const auto& prog = pf->program;  // (clang before 16 cannot capture a structured binding)
  save_model(m, d.file("p.h5"));
  auto edit = [&](const std::function<void(hid_t)>& f) {
    REQUIRE(std::system(("cp " + d.file("p.h5") + " " + d.file("e.h5")).c_str()) == 0);
    h5::Handle file = h5::open_file_readwrite(d.file("e.h5"));
    f(file);
  };
  auto set_int = [](hid_t g, const char* name, int64_t v) {
    H5Adelete(g, name);
    h5::write_attr(g, name, v);
  };
  // a plausible program: another output address
  edit([&](hid_t f) { set_int(h5::open_group(f, "program"), "output_addr", prog.output_addr + 64); });
  CHECK_THROWS_WITH(load_model(d.file("e.h5"), "e.h5"), Catch::Contains("/program: edited after bsp wrote it"));
  // a plausible schedule: the loop order of a stage flipped
  edit([&](hid_t f) {
    h5::Handle g = h5::open_group(f, "schedule/stages/0000");
    const std::string o = h5::read_attr_string(g, "order");
    H5Adelete(g, "order");
    h5::write_attr(g, "order", std::string(o == "A" ? "B" : "A"));
  });
  CHECK_THROWS_WITH(load_model(d.file("e.h5"), "e.h5"), Catch::Contains("/schedule: edited after bsp wrote it"));
  // the derived DDR size and weight chunks: checked against the schedule rebuilt
  edit([&](hid_t f) { set_int(h5::open_group(f, "schedule"), "ddr_bytes", -1); });
  CHECK_THROWS_WITH(load_model(d.file("e.h5"), "e.h5"), Catch::Contains("/schedule: ddr_bytes is -1, the schedule's is"));
  size_t conv = 0;
  while (conv < s->stages.size() && s->stages[conv].chunks.empty()) ++conv;
  REQUIRE(conv < s->stages.size());
  edit([&](hid_t f) {
    h5::Handle g = h5::open_group(f, fmt::format("schedule/stages/{:04d}", conv).c_str());
    Array<int64_t> t = h5::read_array<int64_t>(g, "weight_chunks");
    t[7] += 64;  // the first chunk's DDR address
    H5Ldelete(g, "weight_chunks", H5P_DEFAULT);
    h5::write_array(g, "weight_chunks", t);
  });
  CHECK_THROWS_WITH(load_model(d.file("e.h5"), "e.h5"), Catch::Contains("weight_chunks[0, 7] is"));
  // a schedule of another version: ignored, and the program generated from it with it
  edit([&](hid_t f) { set_int(h5::open_group(f, "schedule"), "version", 2); });
  {
    Model v = load_model(d.file("e.h5"), "e.h5");
    CHECK(!v.schedule);
    CHECK(!v.program);
    CHECK_THAT(v.aie2_dropped, Catch::Contains("/schedule group is of another version"));
  }
  // the hash removed: refused in 1.1, read unchecked in 1.0
  edit([&](hid_t f) {
    for (const char* g : {"schedule", "program"}) H5Adelete(h5::open_group(f, g), "content_hash");
  });
  CHECK_THROWS_WITH(load_model(d.file("e.h5"), "e.h5"), Catch::Contains("no content_hash attribute"));
  {
    h5::Handle file = h5::open_file_readwrite(d.file("e.h5"));
    H5Adelete(file, "format_version");
    h5::write_attr(file, "format_version", std::vector<int64_t>{1, 0});
  }
  Model r = load_model(d.file("e.h5"), "e.h5");
  CHECK(r.schedule);
  CHECK(r.program);
}
