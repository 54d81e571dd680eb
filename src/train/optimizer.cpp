#include "train/optimizer.hpp"

#include <cmath>
#include <limits>

namespace bsp::train {

Schedule schedule_from_name(const std::string& s) {
  if (s == "onecycle") return Schedule::OneCycle;
  if (s == "cosine") return Schedule::Cosine;
  if (s == "step") return Schedule::Step;
  if (s == "constant") return Schedule::Constant;
  fail_usage("unknown schedule '{}' (known: onecycle, cosine, step, constant)", s);
}

const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::OneCycle: return "onecycle";
    case Schedule::Cosine: return "cosine";
    case Schedule::Step: return "step";
    case Schedule::Constant: return "constant";
  }
  return "?";
}

namespace {
constexpr double kPi = 3.14159265358979323846;
// PyTorch's _annealing_cos.
double anneal_cos(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0); }
}  // namespace

StepHyper hyper_at(const SgdConfig& c, int64_t step) {
  const double T = static_cast<double>(std::max<int64_t>(c.total_steps, 1));
  const double s = static_cast<double>(step);
  switch (c.schedule) {
    case Schedule::OneCycle: {
      // torch.optim.lr_scheduler.OneCycleLR (1.13), three_phase=False.
      const double initial = c.lr / 25.0, min_lr = initial / 1e4;
      const double max_m = c.momentum + 0.05, base_m = c.momentum - 0.05;
      const double end1 = 0.3 * T - 1.0, end2 = T - 1.0;
      if (s <= end1) {
        const double pct = end1 > 0 ? s / end1 : 1.0;
        return {anneal_cos(initial, c.lr, pct), anneal_cos(max_m, base_m, pct)};
      }
      const double pct = end2 > end1 ? (s - end1) / (end2 - end1) : 1.0;
      return {anneal_cos(c.lr, min_lr, pct), anneal_cos(base_m, max_m, pct)};
    }
    case Schedule::Cosine: return {c.lr * 0.5 * (1.0 + std::cos(kPi * s / T)), c.momentum};
    case Schedule::Step: {
      double lr = c.lr;
      if (s >= 0.5 * T) lr *= 0.1;
      if (s >= 0.75 * T) lr *= 0.1;
      return {lr, c.momentum};
    }
    case Schedule::Constant: return {c.lr, c.momentum};
  }
  return {c.lr, c.momentum};
}

size_t sgd_step(std::vector<Param>& params, const std::vector<ParamRule>& rules, const SgdConfig& c,
                const StepHyper& h) {
  size_t first_bad = params.size();
  const float lr = static_cast<float>(h.lr), mom = static_cast<float>(h.momentum);
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = params[i];
    const ParamRule rule = i < rules.size() ? rules[i] : ParamRule{};
    const float wd = p.decay ? static_cast<float>(c.weight_decay) : 0.0f;
    const float sr = static_cast<float>(kSrsteDecay);
    float* w = p.value->data();
    const float* g = p.grad.data();
    float* buf = p.momentum.data();
    const int64_t n = static_cast<int64_t>(p.value->size());
    const bool nesterov = c.nesterov;
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static)
    for (int64_t e = 0; e < n; ++e) {
      if (rule.hold && !rule.hold[e]) {
        w[e] = 0.0f;
        buf[e] = 0.0f;
        continue;
      }
      float d = g[e] + wd * w[e];
      if (rule.srste && !rule.srste[e]) d += sr * w[e];
      const float b = mom * buf[e] + d;
      buf[e] = b;
      if (nesterov) d += mom * b;
      else d = b;
      w[e] -= lr * d;
      // NaN fails the compare; a non-finite momentum makes w non-finite too.
      bad |= !(std::fabs(w[e]) <= std::numeric_limits<float>::max());
    }
    if (bad && first_bad == params.size()) first_bad = i;
  }
  return first_bad;
}

}  // namespace bsp::train
