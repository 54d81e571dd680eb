// Times `bsp estimate`'s work (schedule, generate, time the program) for
// resnet50, inception_v3 and vgg16, dense and block:8x8 density 0.5 (first
// conv dense, as `bsp prune` does by default), int8, on every target:
// aie2:2x2 ... aie2:8x8, npu1, ve2802; under the default cost model and the
// paper's (bsp-estimate(1)). The models are built in memory, so the times
// exclude reading model files. Prints one CSV row per cell on stdout and the
// totals on stderr; a cell that fails to schedule is reported and counted.
//
// With --patterns, each listed pattern (P or P@D, D the density; e.g.
// block:8x8@0.5,nm:2:4,block:8x8+nm:2:4@0.25) instead of block:8x8 at 0.5,
// one row per pattern (its own column), every one against the dense model:
// the issue-27 table (int8, so 2:4 layers use the sparse operand).
//
// Usage: bench_aie2_estimate [--model default|paper|both] [--mapping bsp|paper]
//                            [--nets a,b,...] [--targets t1,t2,...] [--tune N]
//                            [--patterns P[@D],...]
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
  std::vector<std::string> patterns;  // empty: block:8x8 at 0.5, the original table
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--nets")
      nets = split(v);
    else if (a == "--targets")
      targets = split(v);
    else if (a == "--mapping")
      paper_mapping = v == "paper";
    else if (a == "--patterns")
      patterns = split(v);
    else if (a == "--tune")
      tune = std::atoi(v.c_str());
    else if (a == "--model")
      models = v == "both" ? std::vector<std::string>{"default", "paper"} : std::vector<std::string>{v};
    else {
      std::fprintf(stderr, "bench_aie2_estimate: unknown option '%s'\n", a.c_str());
      return 2;
    }
  }
  const bool by_pattern = !patterns.empty();
  if (!by_pattern) patterns = {"block:8x8@0.5"};
  std::printf("net,target,model,%sdense_s,sparse_s,speedup,estimate_wall_s\n", by_pattern ? "pattern," : "");
  double total_wall = 0;
  int failed = 0, cells = 0;
  for (const std::string& net : nets) {
    const ArchInfo& arch = find_arch(net);
    std::vector<Model> pruned;  // Models do not copy: one build (the same seed) per pattern
    for (const std::string& pd : patterns) {
      Model m = arch.build(arch.default_classes);
      init_weights(m, 0);
      PruneOptions po;
      const size_t at = pd.find('@');
      po.pattern = parse_pattern(pd.substr(0, at));
      if (at != std::string::npos) po.density = std::atof(pd.c_str() + at + 1);
      prune_model(m, po);
      pruned.push_back(std::move(m));
    }
    for (const std::string& model : models)
      for (const std::string& target : targets) {
        aie2::Hardware hw = aie2::load_target(target);
        if (model == "paper") aie2::apply_paper_model(hw);
        double dense_s = 0;
        const auto t0 = Clock::now();
        bool dense_ok = true;
        ++cells;
        try {
          dense_s = estimate(pruned[0], hw, true);
        } catch (const Error& e) {
          dense_ok = false;
          ++failed;
          std::fprintf(stderr, "FAIL %s %s %s dense: %s\n", net.c_str(), target.c_str(), model.c_str(), e.what());
        }
        for (size_t k = 0; k < patterns.size(); ++k) {
          const auto t1 = Clock::now();
          double sparse_s = 0;
          bool ok = dense_ok;
          ++cells;
          try {
            sparse_s = estimate(pruned[k], hw, false);
          } catch (const Error& e) {
            ok = false;
            ++failed;
            std::fprintf(stderr, "FAIL %s %s %s %s: %s\n", net.c_str(), target.c_str(), model.c_str(),
                         patterns[k].c_str(), e.what());
          }
          // The dense model's time is counted with the first pattern's row.
          const double wall = seconds_since(k == 0 ? t0 : t1);
          total_wall += wall;
          if (by_pattern)
            std::printf("%s,%s,%s,%s,%.6g,%.6g,%.4f,%.3f\n", net.c_str(), target.c_str(), model.c_str(),
                        patterns[k].c_str(), dense_s, sparse_s, ok && sparse_s > 0 ? dense_s / sparse_s : 0.0, wall);
          else
            std::printf("%s,%s,%s,%.6g,%.6g,%.4f,%.3f\n", net.c_str(), target.c_str(), model.c_str(), dense_s,
                        sparse_s, ok && sparse_s > 0 ? dense_s / sparse_s : 0.0, wall);
          std::fflush(stdout);
        }
      }
  }
  std::fprintf(stderr, "%d cells (net x target x model x dense/sparse), %d failed; estimating took %.2f s in total\n",
               cells, failed, total_wall);
  std::fprintf(stderr, "of which: schedule %.2f s, codegen %.2f s, timing the programs %.2f s\n", phase_s[0], phase_s[1],
               phase_s[2]);
  return failed ? 1 : 0;
}
