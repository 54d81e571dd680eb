// SGD with momentum (PyTorch's torch.optim.SGD semantics) and the learning
// rate schedules of bsp-finetune(1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/net.hpp"

namespace bsp::train {

enum class Schedule { OneCycle, Cosine, Step, Constant };
Schedule schedule_from_name(const std::string& s);  // throws UsageError
const char* schedule_name(Schedule s);

struct SgdConfig {
  double lr = 0.1;  // peak (onecycle) or initial learning rate
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  Schedule schedule = Schedule::OneCycle;
  int64_t total_steps = 1;
};

struct StepHyper {
  double lr, momentum;
};

// Learning rate and momentum of optimizer step `step` (0-based):
//   onecycle: PyTorch's OneCycleLR defaults (pct_start 0.3, cosine
//     annealing, div_factor 25, final_div_factor 1e4) with the momentum
//     cycled between momentum + 0.05 and momentum - 0.05 (0.95 / 0.85 for 0.9,
//     PyTorch's base_momentum / max_momentum);
//   cosine: lr * (1 + cos(pi * step / total)) / 2;
//   step: lr, times 0.1 after half and again after three quarters of the steps;
//   constant: lr.
StepHyper hyper_at(const SgdConfig& c, int64_t step);

// Per-parameter extras for one step.
struct ParamRule {
  const uint8_t* hold = nullptr;   // held mask: gradient, momentum and weight zero where 0
  const uint8_t* srste = nullptr;  // BDWP forward mask: add srste_decay * (1 - m) * w to the gradient
};
constexpr double kSrsteDecay = 2e-4;

// One SGD step on every parameter (rules[i] for params[i], may be shorter):
//   d = g + wd * w (+ SR-STE term);  buf = momentum * buf + d;
//   d = nesterov ? d + momentum * buf : buf;  w -= lr * d
// Returns the index of the first parameter that holds a non-finite value
// after the step (params.size() when all are finite): the check rides on
// the update loop, which has the values in registers, so it costs nothing
// measurable.
size_t sgd_step(std::vector<Param>& params, const std::vector<ParamRule>& rules, const SgdConfig& c,
                const StepHyper& h);

}  // namespace bsp::train
