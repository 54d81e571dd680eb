// Times `bsp estimate`'s work (schedule, generate, time the program) for
// resnet50, inception_v3 and vgg16, dense and block:8x8 density 0.5 (first
// conv dense, as `bsp prune` does by default), int8, on every target:
// aie2:2x2 ... aie2:8x8, npu1, ve2802; under the default cost model and the
// paper's (bsp-estimate(1)). The models are built in memory, so the times
// exclude reading model files. Prints one CSV row per cell on stdout and the
// totals on stderr; a cell that fails to schedule is reported and counted.
//
// Usage: bench_aie2_estimate [--model default|paper|both] [--mapping bsp|paper]
//                            [--nets a,b,...] [--targets t1,t2,...] [--tune N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "aie2/codegen.hpp"
#include "aie2/estimate.hpp"
#include "aie2/hardware.hpp"
#include "aie2/schedule.hpp"
#include "core/allocator.hpp"
#include "core/error.hpp"
#include "sparsity/pattern.hpp"
#include "sparsity/prune.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using Clock = std::chrono::steady_clock;

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) v.push_back(x);
  return v;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double phase_s[3] = {0, 0, 0};  // schedule, codegen, timing: wall seconds summed over the cells

// Schedules, generates and times one model; returns the total seconds.
bool paper_mapping = false;  // --mapping paper (bsp-estimate(1))
int tune = 1;                // --tune N (bsp-schedule(1), Tuning)

double estimate(const Model& m, const aie2::Hardware& hw, bool dense) {
  aie2::ScheduleOptions opt;
  opt.dense = dense;
  opt.fixed_mapping = paper_mapping;
  opt.resident = !paper_mapping;
  opt.tune = tune;
  auto t0 = Clock::now();
  const aie2::Schedule s = aie2::make_schedule(m, hw, DType::Int8, opt);
  phase_s[0] += seconds_since(t0);
  t0 = Clock::now();
  const aie2::Program p = aie2::generate_program(s);
  phase_s[1] += seconds_since(t0);
  t0 = Clock::now();
  const double total = aie2::estimate_program(p, &s, !hw.ddr_overlap).total_s;
  phase_s[2] += seconds_since(t0);
  return total;
}
}  // namespace

int main(int argc, char** argv) {
  keep_large_allocations();  // as bsp does (core/allocator.hpp)
  std::vector<std::string> nets = {"resnet50", "inception_v3", "vgg16"};
  std::vector<std::string> targets = {"aie2:2x2", "aie2:3x3", "aie2:4x4", "aie2:5x5", "aie2:6x6",
                                      "aie2:7x7", "aie2:8x8", "npu1",     "ve2802"};
  std::vector<std::string> models = {"default", "paper"};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--nets")
      nets = split(v);
    else if (a == "--targets")
      targets = split(v);
    else if (a == "--mapping")
      paper_mapping = v == "paper";
    else if (a == "--tune")
      tune = std::atoi(v.c_str());
    else if (a == "--model")
      models = v == "both" ? std::vector<std::string>{"default", "paper"} : std::vector<std::string>{v};
    else {
      std::fprintf(stderr, "bench_aie2_estimate: unknown option '%s'\n", a.c_str());
      return 2;
    }
  }
  std::printf("net,target,model,dense_s,sparse_s,speedup,estimate_wall_s\n");
  double total_wall = 0;
  int failed = 0, cells = 0;
  for (const std::string& net : nets) {
    const ArchInfo& arch = find_arch(net);
    Model m = arch.build(arch.default_classes);
    init_weights(m, 0);
    PruneOptions po;
    po.pattern = parse_pattern("block:8x8");
    po.density = 0.5;
    prune_model(m, po);
    for (const std::string& model : models)
      for (const std::string& target : targets) {
        aie2::Hardware hw = aie2::load_target(target);
        if (model == "paper") aie2::apply_paper_model(hw);
        double t[2] = {0, 0};
        const auto t0 = Clock::now();
        bool ok = true;
        for (int dense = 1; dense >= 0; --dense) {
          ++cells;
          try {
            t[1 - dense] = estimate(m, hw, dense != 0);
          } catch (const Error& e) {
            ok = false;
            ++failed;
            std::fprintf(stderr, "FAIL %s %s %s %s: %s\n", net.c_str(), target.c_str(), model.c_str(),
                         dense ? "dense" : "sparse", e.what());
          }
        }
        const double wall = seconds_since(t0);
        total_wall += wall;
        std::printf("%s,%s,%s,%.6g,%.6g,%.4f,%.3f\n", net.c_str(), target.c_str(), model.c_str(), t[0], t[1],
                    ok && t[1] > 0 ? t[0] / t[1] : 0.0, wall);
        std::fflush(stdout);
      }
  }
  std::fprintf(stderr, "%d cells (net x target x model x dense/sparse), %d failed; estimating took %.2f s in total\n",
               cells, failed, total_wall);
  std::fprintf(stderr, "of which: schedule %.2f s, codegen %.2f s, timing the programs %.2f s\n", phase_s[0], phase_s[1],
               phase_s[2]);
  return failed ? 1 : 0;
}
