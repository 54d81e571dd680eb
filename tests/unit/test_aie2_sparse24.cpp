// The AIE-ML sparse operand (man/bsp-isa.7, SPARSE OPERAND): the compressed
// pair layout, which stages use it, bit-exact programs, their checks and
// their cost.
#include <catch2/catch.hpp>

#include <random>

#include "aie2_helpers.hpp"
#include "aie2/estimate.hpp"
#include "aie2/plan.hpp"
#include "aie2/sparse24.hpp"
#include "sparsity/prune.hpp"

using namespace bsp;
using namespace bsp::aie2;

namespace {

// A decompressed pair whose every group of 4 keeps `keep` random nonzeros (0 to 2).
std::vector<int8_t> random_pair(std::mt19937& g, int keep) {
  std::vector<int8_t> d(kPairElems, 0);
  for (int q = 0; q < kPairElems; q += 4) {
    int pos[4] = {0, 1, 2, 3};
    std::shuffle(pos, pos + 4, g);
    for (int j = 0; j < keep; ++j) d[static_cast<size_t>(q + pos[j])] = static_cast<int8_t>(1 + g() % 127) * (g() % 2 ? 1 : -1);
  }
  return d;
}

// Every conv and dense layer but the first conv pruned with `pattern` (at `density`, 0: the pattern's own).
Model pruned_int8(const std::string& arch, const std::string& pattern, double density = 0) {
  Model m = test::aie2_model(arch);
  PruneOptions po;
  po.pattern = parse_pattern(pattern);
  if (density > 0) po.density = density;
  prune_model(m, po);
  test::make_int8(m);
  return m;
}

std::string sim_error(const Program& p, const std::vector<uint8_t>& img, const Model& m) {
  const Shape s = m.input_shape();
  try {
    simulate(p, img, test::random_tensor({1, s[0], s[1], s[2]}, 5), m);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("sparse pairs: the compressed layout round-trips and holds exactly 2 of every 4", "[aie2][sparse24]") {
  std::mt19937 g(7);
  for (int keep = 0; keep <= 2; ++keep) {
    INFO("nonzeros per group " << keep);
    const std::vector<int8_t> d = random_pair(g, keep);
    uint8_t packed[kPairBytes];
    REQUIRE(pack_pair(d.data(), packed) == -1);
    for (int grp = 0; grp < 2; ++grp) {
      uint64_t mask = 0;
      for (int b = 0; b < 8; ++b) mask |= static_cast<uint64_t>(packed[grp * kGroupBytes + b]) << (8 * b);
      for (int q = 0; q < 64; q += 4) CHECK(__builtin_popcountll((mask >> q) & 0xf) == 2);
    }
    int8_t back[kPairElems];
    std::string why;
    REQUIRE(unpack_pair(packed, back, why));
    CHECK(std::equal(d.begin(), d.end(), back));
  }
}

TEST_CASE("sparse pairs: mask bit i is decompressed byte i, data in increasing order", "[aie2][sparse24]") {
  std::vector<int8_t> d(kPairElems, 0);
  d[0] = 5;    // group 0, nibble 0: bytes 0 and 2
  d[2] = -7;
  d[21] = 9;   // nibble 5: byte 21 and the lowest unused, 20
  d[64 + 3] = 3;  // group 1 (output channels 4-7), nibble 0: 3 and the lowest unused, 0
  uint8_t p[kPairBytes];
  REQUIRE(pack_pair(d.data(), p) == -1);
  CHECK(p[0] == 0x35);           // bits 0 and 2; nibble 1, all zeros, keeps its lowest two (bits 4, 5)
  CHECK((p[2] & 0x0f) == 0x03);  // bits 16, 17: the zeros filling nibble 4
  CHECK((p[2] >> 4) == 0x03);    // bits 20, 21
  CHECK(p[8] == 5);
  CHECK(static_cast<int8_t>(p[9]) == -7);
  CHECK(p[8 + 2 * 5] == 0);   // nibble 5's pair: byte 20 (zero), then 21
  CHECK(p[8 + 2 * 5 + 1] == 9);
  CHECK(p[kGroupBytes] == 0x39);  // group 1: bits 0 and 3, then 4 and 5
  CHECK(p[kGroupBytes + 8] == 0);
  CHECK(p[kGroupBytes + 9] == 3);
}

TEST_CASE("sparse pairs: more than 2 of 4, or a mask nibble without exactly 2 bits, is refused", "[aie2][sparse24]") {
  std::vector<int8_t> d(kPairElems, 0);
  d[64 + 8] = d[64 + 9] = d[64 + 11] = 1;
  uint8_t p[kPairBytes];
  CHECK(pack_pair(d.data(), p) == 64 + 8);
  d[64 + 9] = 0;
  REQUIRE(pack_pair(d.data(), p) == -1);
  p[kGroupBytes + 1] |= 0x04;  // group 1, bit 10: nibble 2 gets a third bit
  int8_t back[kPairElems];
  std::string why;
  CHECK_FALSE(unpack_pair(p, back, why));
  CHECK_THAT(why, Catch::Contains("group 1") && Catch::Contains("nibble 2 has 3 bits"));
}

TEST_CASE("sparse operand: which stages use it, and programs stay bit-exact", "[aie2][sparse24]") {
  struct Case {
    const char* pattern;
    double density;
    const char* target;
  };
  for (const Case& k : {Case{"nm:2:4", 0, "aie2:2x2"}, Case{"nm:1:4", 0, "aie2:3x3"},
                        Case{"block:8x8+nm:2:4", 0.25, "aie2:4x4"}, Case{"tw:32+nm:2:4", 0.3, "aie2:2x2"}}) {
    INFO(k.pattern << " on " << k.target);
    const Model m = pruned_int8("fmnist-resnet", k.pattern, k.density);
    auto r = test::run_pipeline(m, k.target);
    CHECK(r.max_diff == 0.0);
    int used = 0;
    for (size_t s = 0; s < r.schedule.graph.stages.size(); ++s) {
      const Stage& st = r.schedule.graph.stages[s];
      if (st.kind != StageKind::Conv) continue;
      // The first conv keeps its dense weights; every other conv is 2:4.
      CHECK(r.schedule.occupancy[s].sparse24 == (st.name != "stem.conv"));
      used += r.schedule.occupancy[s].sparse24;
    }
    CHECK(used > 0);
    CHECK(r.program.uses_sparse24());
  }
  // fp32, and int8 on a target without the operand: dense multiplies.
  Model m = pruned_int8("fmnist-cnn", "nm:2:4");
  Hardware none = load_target("aie2:2x2");
  none.macs_int8_sparse = 0;
  for (const Schedule& S : {make_schedule(m, none, DType::Int8), make_schedule(m, load_target("aie2:2x2"), DType::FP32)})
    for (const Occupancy& o : S.occupancy.all()) CHECK_FALSE(o.sparse24);
}

TEST_CASE("sparse operand: half the compute cycles, 62.5% of the weight bytes", "[aie2][sparse24]") {
  const Model m = pruned_int8("fmnist-cnn", "nm:2:4");
  const Hardware hw = load_target("aie2:2x2");
  Hardware none = hw;
  none.macs_int8_sparse = 0;
  const Schedule with = make_schedule(m, hw, DType::Int8), without = make_schedule(m, none, DType::Int8);
  const Estimate a = estimate_program(generate_program(with), &with, false);
  const Estimate b = estimate_program(generate_program(without), &without, false);
  CHECK(a.total_s < b.total_s);
  // A 3x3 layer with every block stored: 9 units a block, pairs of two.
  const Stage& st = with.graph.stages[1];
  REQUIRE(st.kh == 3);
  const Chunk& c = with.stages[1].chunks[0][0];
  const int64_t rows = (c.co1 - c.co0 + 7) / 8;
  CHECK(c.pairs == rows * ((c.nnz / rows * 9 + 1) / 2));
  CHECK(c.bytes == chunk_bytes_24(c.co1 - c.co0, rows, c.nnz, c.pairs));
  // Timed on the same operands the COMP of a pair takes half a dense block-tap pair's cycles.
  const int64_t dense = comp_cycles(hw, DType::Int8, st, 16, 8, st.Cin, 2) - hw.kernel_overhead_cycles;
  const int64_t sparse = comp_cycles(hw, DType::Int8, st, 16, 8, st.Cin, 2, 9) - hw.kernel_overhead_cycles;
  CHECK(std::abs(static_cast<double>(2 * sparse) - static_cast<double>(dense)) <= 2);
}

TEST_CASE("sparse operand: a corrupted mask or pair count is an error, not another result", "[aie2][sparse24]") {
  const Model m = pruned_int8("fmnist-cnn", "nm:2:4");
  const Schedule S = make_schedule(m, load_target("aie2:2x2"), DType::Int8);
  Program good = generate_program(S);
  const std::vector<uint8_t> img = build_const_image(S, m, &good);
  REQUIRE(sim_error(good, img, m).empty());
  const StagePlan& p = S.stages[1];
  REQUIRE(S.occupancy[1].sparse24);
  const Chunk& c = p.chunks[0][0];
  // The first pair starts after the parameters, counts and indices.
  const int64_t rows = (c.co1 - c.co0 + 7) / 8;
  const int64_t pair0 = c.ddr_addr + (12 * (c.co1 - c.co0) + 3) / 4 * 4 + (2 * rows + 2 * c.nnz + 3) / 4 * 4;
  SECTION("a mask nibble with a third bit") {
    std::vector<uint8_t> bad = img;
    bad[static_cast<size_t>(pair0)] |= 0x0f;
    CHECK_THAT(sim_error(good, bad, m), Catch::Contains("(COMP)") && Catch::Contains("block row 0, pair 0") &&
                                            Catch::Contains("4 bits set"));
  }
  SECTION("a pair count that disagrees with the chunk") {
    Program bad = good;
    for (QueueProg& q : bad.stages[1].queues)
      for (Instr& in : q.code)
        if (in.op == Opc::Comp) in.a[11] += 1;
    CHECK_THAT(sim_error(bad, img, m), Catch::Contains("sparse pairs, the instruction says"));
  }
}

TEST_CASE("sparse operand: tvw layers use it exactly where their weights keep 2 of every 4 aligned", "[aie2][sparse24]") {
  const Model m = pruned_int8("fmnist-resnet", "tvw:16", 0.25);
  auto r = test::run_pipeline(m, "aie2:2x2");
  CHECK(r.max_diff == 0.0);
  int used = 0, refused = 0;
  for (size_t s = 0; s < r.schedule.graph.stages.size(); ++s) {
    const Stage& st = r.schedule.graph.stages[s];
    if (st.kind != StageKind::Conv || st.name == "stem.conv") continue;
    const Tensor& w = m.nodes[static_cast<size_t>(st.conv_node)].param("weight");
    bool keeps = true;
    for (size_t g = 0; g < w.size(); g += 4) {
      int nz = 0;
      for (size_t i = g; i < g + 4; ++i) nz += w[i] != 0.0f;
      keeps &= nz <= 2;
    }
    INFO(st.name);
    CHECK(r.schedule.occupancy[s].sparse24 == keeps);
    (keeps ? used : refused) += 1;
  }
  CHECK(used + refused > 0);
}
