// Timing a model's two CPU forwards side by side, as bsp bench reports
// them: a dense baseline and the runner of its compact forms, per step and
// in total, over repetitions that alternate between the two so that both see
// the same noise.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernels/runner.hpp"

namespace bsp::kernels {

// One row of the report: a step of either runner, matched by name.
struct BenchRow {
  std::string name, op, dense_kernel, sparse_kernel;  // a kernel is empty where that runner has no such step
  int64_t macs = 0;
  std::vector<double> dense, sparse;  // per repetition, ms
  // Models with activation rules (BenchResult::act): the sparse runner with
  // its kernels' skipping of zero input blocks off (the rule still
  // applied), per repetition, ms; and the zero-block fraction of the step's
  // input over all the images (-1: the step has no rule).
  std::vector<double> noskip;
  double zero_fraction = -1;
};

struct BenchResult {
  std::vector<BenchRow> rows;  // in the sparse runner's step order, then steps only the baseline has
  std::vector<double> dense_total, sparse_total;  // per repetition, ms
  bool act = false;                  // the measured model has activation rules: noskip and zero fractions below
  std::vector<double> noskip_total;  // per repetition, ms
  int64_t act_images = 0;            // images the zero fractions were measured on
  double load_before = -1, load_after = -1;       // the 1-minute load average (/proc/loadavg)
};

// Times Runner(m, base) against Runner(m, Path::Auto) on xs (batches of the
// same size; repetition r runs xs[r % xs.size()]): one warm-up pass each,
// then `reps` alternating repetitions. With an OpenBLAS baseline a 5 ms
// pause after its pass lets OpenBLAS's idle threads fall asleep before
// bsp's pass (bsp-bench(1)). `progress(rep)` is called before each
// repetition. When m has activation rules, a third runner, Runner(m,
// Path::Auto) with set_act_skip(false), runs after the sparse one in each
// repetition, and one untimed pass over every batch first measures each
// step's zero-block fraction.
BenchResult bench_model(const Model& m, Path base, const std::vector<Tensor>& xs, int reps,
                        const std::function<void(int rep)>& progress = {});
// The same with another model as the baseline, run on its own kernels
// (Path::Auto): two compact forms of one network compared in one run, e.g.
// an int8 block-sparse model against the int8 dense one (bsp bench
// --against). Steps are matched by node name; both take x.
BenchResult bench_models(const Model& base, const Model& m, const std::vector<Tensor>& xs, int reps,
                         const std::function<void(int rep)>& progress = {});

double median(std::vector<double> v);  // 0 for none
std::string cpu_model();                // from /proc/cpuinfo, "unknown" elsewhere

}  // namespace bsp::kernels
