// AIE2 hardware descriptions: the shipped targets, aie2:RxC, user files with
// a base, and every kind of bad description.
#include <catch2/catch.hpp>

#include <fstream>

#include "aie2/hardware.hpp"
#include "core/error.hpp"
#include "test_helpers.hpp"

using namespace bsp;
using namespace bsp::aie2;

namespace {
std::string write(const test::TempDir& d, const std::string& name, const std::string& text) {
  std::string p = d.file(name);
  std::ofstream(p) << text;
  return p;
}
}  // namespace

TEST_CASE("shipped targets describe the paper's meshes and the real parts", "[aie2][hw]") {
  for (int n = 2; n <= 8; ++n) {
    Hardware h = load_target("aie2:" + std::to_string(n) + "x" + std::to_string(n));
    CHECK(h.rows == n);
    CHECK(h.cols == n);
    CHECK(h.name == "aie2-" + std::to_string(n) + "x" + std::to_string(n));
    CHECK(h.core_memory == 65536);
    CHECK(h.core_banks == 8);
    CHECK(h.memtile_memory == 524288);
    CHECK(h.macs_int8 == 256);
    CHECK(h.macs_bf16 == 128);
    CHECK(h.clock_ghz == 1.0);
    CHECK(h.stream_gbps == 4.0);
    CHECK(h.ddr_channel_gbps == 4.0);
  }
  Hardware npu = load_target("npu1");
  CHECK(npu.rows == 4);
  CHECK(npu.cols == 4);
  Hardware ve = load_target("ve2802");
  CHECK(ve.cols == 38);
  CHECK(ve.rows == 8);
  CHECK(ve.clock_ghz == 1.25);
  CHECK(ve.cores() == 304);
  // A size without a shipped file comes from the template.
  Hardware odd = load_target("aie2:3x5");
  CHECK(odd.rows == 3);
  CHECK(odd.cols == 5);
  CHECK(odd.name == "aie2-3x5");
  CHECK(odd.core_memory == 65536);
}

TEST_CASE("a description survives JSON and a user file can start from a base", "[aie2][hw]") {
  test::TempDir d;
  Hardware h = load_target("aie2:4x4");
  Hardware back = hardware_from_json(Json::parse(hardware_to_json(h).dump()), "x");
  CHECK(hardware_to_json(back).dump() == hardware_to_json(h).dump());
  std::string p = write(d, "mine.json", R"({"base": "npu1", "name": "mine", "cols": 8,
      "shim": {"channel_gbps": 8.0}, "compute_efficiency": 0.5})");
  Hardware m = load_target(p);
  CHECK(m.name == "mine");
  CHECK(m.cols == 8);
  CHECK(m.rows == 4);
  CHECK(m.ddr_channel_gbps == 8.0);
  CHECK(m.shim_mm2s == 2);  // untouched fields of a nested object keep the base's value
  CHECK(m.compute_efficiency == 0.5);
}

TEST_CASE("bad targets and descriptions are refused with a reason", "[aie2][hw]") {
  test::TempDir d;
  CHECK_THROWS_AS(load_target("nosuchpart"), UsageError);
  CHECK_THROWS_AS(load_target("aie2:0x4"), UsageError);
  CHECK_THROWS_AS(load_target("aie2:4"), UsageError);
  CHECK_THROWS_AS(load_target("aie2:65x1"), UsageError);
  CHECK_THROWS_WITH(load_target(d.file("missing.json")), Catch::Contains("no such file"));
  CHECK_THROWS_WITH(load_target(write(d, "a.json", R"({"base": "aie2", "colz": 3})")), Catch::Contains("unknown key 'colz'"));
  CHECK_THROWS_WITH(load_target(write(d, "b.json", R"({"base": "aie2", "rows": 0})")), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(load_target(write(d, "c.json", R"({"base": "aie2", "core": {"banks": 7}})")),
                    Catch::Contains("multiple of its bank count"));
  CHECK_THROWS_WITH(load_target(write(d, "e.json", R"({"base": "aie2", "compute_efficiency": 1.5})")),
                    Catch::Contains("compute_efficiency"));
  CHECK_THROWS_WITH(load_target(write(d, "f.json", "{ not json")), Catch::Contains("f.json"));
  CHECK_THROWS_WITH(load_target(write(d, "g.json", R"({"name": "x", "rows": 2})")), Catch::Contains("missing or invalid"));
  const std::string loop = d.file("loop.json");
  std::ofstream(loop) << R"({"base": ")" + loop + R"("})";
  CHECK_THROWS_WITH(load_target(loop), Catch::Contains("nest too deeply"));
}

TEST_CASE("the paper's assumptions", "[aie2][hw]") {
  Hardware h = load_target("ve2802");
  apply_paper_model(h);
  CHECK(h.clock_ghz == 1.0);
  CHECK(h.compute_efficiency == 1.0);
  CHECK(h.stream_gbps == 4.0);
  CHECK(h.ddr_channel_gbps == 4.0);
  CHECK(h.macs_int8 == 256);
  CHECK(h.kernel_overhead_cycles == 0);
  CHECK(h.dma_overhead_cycles == 0);
  CHECK_FALSE(h.ddr_overlap);
  CHECK(h.name == "ve2802+paper");
}
