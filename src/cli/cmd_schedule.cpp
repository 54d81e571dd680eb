// bsp schedule: plan a model for an AIE2 array (man/bsp-schedule.1).
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "aie2/schedule.hpp"
#include "aie2/store.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"
#include "modelfile/model_file.hpp"

namespace bsp::cli {

namespace {
struct ScheduleCliOptions {
  std::string input;
  OutputOptions out;
  std::string target;
  std::string dtype;
  bool no_resident = false;
  bool json = false;
  bool table = false;
  int tune = 1;
};

void print_table(const aie2::Schedule& s) {
  std::printf("target %s: %ld rows x %ld columns, %s; DDR %s bytes (weights %s)\n\n", s.hw.name.c_str(),
              static_cast<long>(s.hw.rows), static_cast<long>(s.hw.cols), dtype_name(s.dtype),
              with_commas(s.ddr_bytes).c_str(), with_commas(s.ddr_const_bytes).c_str());
  size_t w = 5;
  for (const auto& st : s.graph.stages) w = std::max(w, st.name.size());
  std::printf("%-*s  %-7s  %5s  %-9s  %-11s  %-6s  %6s  %-11s  %5s  %9s\n", static_cast<int>(w), "layer", "kind",
              "cores", "split", "tile", "loops", "passes", "in/res/out", "imbal", "est(us)");
  double total = 0;
  auto pl = [&](int storage) {
    return s.storages[static_cast<size_t>(storage)].place == aie2::Place::DDR ? "D" : "M";
  };
  for (size_t i = 0; i < s.stages.size(); ++i) {
    const auto& st = s.graph.stages[i];
    const auto& p = s.stages[i];
    total += p.est_seconds;
    std::string split = fmt::format("{}x{}", p.d.ps, p.d.pc);
    std::string tile = fmt::format("{}x{}", p.d.th, p.d.tw);
    std::string loops = fmt::format("{}{}x{}", p.d.order, p.T, p.J);
    std::string places = fmt::format("{}/{}/{}", pl(st.in[0].storage), st.add ? pl(st.add->storage) : "-",
                                     pl(st.out.storage));
    std::printf("%-*s  %-7s  %5ld  %-9s  %-11s  %-6s  %6ld  %-11s  %5.2f  %9.1f\n", static_cast<int>(w),
                st.name.c_str(), aie2::stage_kind_name(st.kind), static_cast<long>(p.d.ps * p.d.pc), split.c_str(),
                tile.c_str(), loops.c_str(), static_cast<long>(p.K), places.c_str(), p.imbalance, p.est_seconds * 1e6);
  }
  std::printf("\n%zu stages; analytic estimate %.3f ms (bsp estimate times the generated program)\n", s.stages.size(),
              total * 1e3);
}

void run_schedule(const ScheduleCliOptions& o) {
  if (o.tune < 1 || o.tune > aie2::kMaxTune) fail_usage("--tune must be 1 to {}", aie2::kMaxTune);
  if (o.target.empty()) fail_usage("--target is required (a name such as aie2:4x4, npu1, or a .json path)");
  const std::string out = resolve_output(o.input, o.out);
  if ((o.json || o.table) && out == "-") fail_usage("--json and --table print on stdout: give -o FILE");
  aie2::Hardware hw = aie2::load_target(o.target);
  Model m = read_model(o.input);
  const DType dtype = o.dtype.empty() ? aie2::model_dtype(m) : parse_dtype(o.dtype);
  if (dtype == DType::Int8 && !(m.compact && m.compact->int8) && !quiet())
    std::fprintf(stderr,
                 "bsp schedule: note: planning int8 without int8 weights: the schedule can be estimated; "
                 "'bsp codegen' needs 'bsp compact --dtype int8' first\n");
  aie2::ScheduleOptions opt;
  opt.resident = !o.no_resident;
  opt.tune = o.tune;
  auto s = std::make_shared<aie2::Schedule>(aie2::make_schedule(m, hw, dtype, opt));
  s->source_hash = aie2::model_hash(m, dtype);
  set_schedule(m, s);
  write_model(m, out);
  if (o.json) print_json(aie2::schedule_json(*s));
  if (o.table) print_table(*s);
}
}  // namespace

Runner setup_schedule(CLI::App& sub) {
  auto o = std::make_shared<ScheduleCliOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  add_output_options(sub, o->out);
  sub.add_option("--target", o->target, "the array: aie2:RxC, a name in the data directory (npu1, ve2802, ...) or a .json file")
      ->type_name("T");
  sub.add_option("--dtype", o->dtype, "data type on the device: int8, bf16, fp32 (default: the model's compact type, else fp32)")
      ->type_name("T");
  sub.add_flag("--no-resident", o->no_resident, "keep every activation in DDR instead of the memtiles");
  sub.add_option("--tune", o->tune,
                 "time the N best plans of each layer (by the analytic cost, within 10% of the best) as generated "
                 "programs and keep the fastest (default 1: the analytic choice)")
      ->type_name("N");
  sub.add_flag("--json", o->json, "print the schedule as JSON (schema in bsp-schedule(1))");
  sub.add_flag("--table", o->table, "print one line per layer: split, tile, loops, placement, imbalance");
  return [o] { run_schedule(*o); };
}

}  // namespace bsp::cli
