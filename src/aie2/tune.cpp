// Tuning a schedule by timing it: the planner ranks a stage's candidate plans
// by an analytic cost that is within a few percent of the executor's timing
// on average but can order close candidates wrongly. tune_schedule generates
// and times a stage's best plan and its runners-up and keeps the fastest.
#include <algorithm>
#include <cstddef>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "aie2/codegen.hpp"
#include "aie2/executor.hpp"
#include "aie2/schedule.hpp"
#include "core/error.hpp"

namespace bsp::aie2 {

void tune_schedule(Schedule& S, const std::vector<std::vector<StagePlan>>& runners_up) {
  const size_t n = S.stages.size();
  if (runners_up.size() != n) fail("internal: runners-up for {} stages, the schedule has {}", runners_up.size(), n);
  size_t rounds = 0;
  for (const auto& r : runners_up) rounds = std::max(rounds, r.size());
  if (rounds == 0) return;
  // Round 0 times the chosen plans, round r every stage's r-th runner-up.
  // Stages time independently of each other (their buffers come from the
  // residency plan, which the candidates share), so one schedule per round
  // holds that round's candidate of every stage; DDR addresses only follow.
  std::vector<double> best(n, std::numeric_limits<double>::infinity());
  std::vector<size_t> pick(n, 0);
  Program prog;
  prog.hw = S.hw;
  prog.dtype = S.dtype;
  Schedule R = S;
  for (size_t round = 0; round <= rounds; ++round) {
    for (size_t s = 0; s < n; ++s)
      if (round > 0 && round <= runners_up[s].size()) R.stages[s] = runners_up[s][round - 1];
    layout_ddr(R);
    prog.ddr_bytes = R.ddr_bytes;
    std::vector<std::string> errors(n);
    // (A stage without runners-up keeps its plan untimed; a runner-up that
    // fails to generate or run is skipped, the chosen plan's failure is an
    // error as it would be without tuning.)
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t s = 0; s < n; ++s) {
      if (runners_up[s].empty() || round > runners_up[s].size()) continue;
      try {
        const StageProg sp = generate_stage(R, s);
        const double t = run_stage(prog, sp, nullptr).seconds;
        if (t < best[s]) best[s] = t, pick[s] = round;
      } catch (const std::exception& e) {
        if (round == 0) errors[s] = e.what();
      }
    }
    for (const std::string& e : errors)
      if (!e.empty()) fail("{}", e);
  }
  for (size_t s = 0; s < n; ++s)
    if (pick[s] > 0) S.stages[s] = runners_up[s][pick[s] - 1];
  layout_ddr(S);
}

}  // namespace bsp::aie2
