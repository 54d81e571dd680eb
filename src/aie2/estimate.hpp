// bsp estimate: the time of a generated program on its target, from the
// executor's timing (executor.hpp): per layer, per instruction class and in
// total, with transfers and compute overlapping as double buffering allows.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aie2/executor.hpp"
#include "aie2/isa.hpp"
#include "aie2/schedule.hpp"
#include "core/json.hpp"

namespace bsp::aie2 {

struct LayerEstimate {
  std::string name, kind;
  double seconds = 0;   // the stage's time
  double ddr_s = 0;     // non-overlapped DDR time (--model paper), included in seconds
  double serial_s = 0;  // the sum over classes of the busiest queue: the time without overlap
  std::array<ClassStats, kClsCount> cls{};
  std::array<double, kClsCount> queue_max{};
  int64_t executed = 0;
  int64_t macs = 0;       // dense multiply-accumulates of the layer (0 for non-conv stages)
  int64_t cores = 0;      // cores the schedule uses (0 when unknown)
  double imbalance = 0;   // max / mean core work from the schedule (0 when unknown)
  std::string bound;      // the class whose busiest queue takes longest (or "ddr")
  // The stage's activation rule: the zero-block fraction of its input used
  // for the timing, and whether the target skipped those blocks
  // (act_block_skip); act_zero -1 for a stage without a rule.
  double act_zero = -1;
  bool act_skipped = false;
};

struct Estimate {
  std::string target;
  std::string dtype;
  bool paper = false;
  double total_s = 0;
  std::vector<LayerEstimate> layers;
  std::array<ClassStats, kClsCount> cls{};
  int64_t executed = 0;
};

// Times every stage. `s` (may be null) adds the schedule's per-layer
// figures (cores, imbalance, MACs); it must be the schedule `p` came from.
// act_zero (may be null): per layer with an activation rule (by stage
// name, the conv node's), the fraction of its input blocks that are zero;
// layers it does not list are timed with none (run_stage).
Estimate estimate_program(const Program& p, const Schedule* s, bool paper,
                          const std::map<std::string, double>* act_zero = nullptr);

Json estimate_json(const Estimate& e);

// Which program bsp estimate times (bsp-estimate(1)).
struct EstimateRequest {
  std::string target;           // empty: the stored program's target, else the schedule's, else aie2:4x4
  std::optional<DType> dtype;   // nullopt: the stored schedule's, else the model's compact dtype
  bool paper_model = false;     // the paper's cost assumptions (apply_paper_model)
  bool paper_mapping = false;   // the paper compiler's data flow, scheduled in memory
  bool dense = false;           // every weight block stored: the dense counterpart
  int tune = 1;                 // for schedules made here (ScheduleOptions::tune)
  // Per layer with an activation rule (node name): its measured zero-block
  // fraction (compact/act_measure.hpp). On a target with act_block_skip,
  // every ruled layer of the program needs one (an error names the first
  // without); other targets ignore them.
  std::map<std::string, double> act_zero;
};

struct TimedProgram {
  Program program;
  std::shared_ptr<const Schedule> schedule;  // may be null (a stored program alone)
  Estimate est;
};

// The program to time and its estimate: the model's stored program when the
// request names no other target, data type or mapping (re-timed under the
// paper's assumptions with paper_model); otherwise, and for the dense
// counterpart, one scheduled and generated in memory.
TimedProgram timed_program(const Model& m, const EstimateRequest& r);

}  // namespace bsp::aie2
