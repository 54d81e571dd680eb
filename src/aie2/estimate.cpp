#include "aie2/estimate.hpp"

#include <exception>
#include <string>
#include <vector>

#include "aie2/codegen.hpp"
#include "aie2/store.hpp"
#include "core/error.hpp"

namespace bsp::aie2 {

Estimate estimate_program(const Program& p, const Schedule* s, bool paper, const std::map<std::string, double>* act_zero) {
  if (s && s->stages.size() != p.stages.size()) fail("internal: the schedule and the program differ");
  Estimate e;
  e.target = p.hw.name;
  e.dtype = dtype_name(p.dtype);
  e.paper = paper;
  // Stages are timed independently: in parallel, first error reported.
  const size_t n = p.stages.size();
  std::vector<StageTiming> timings(n);
  std::vector<std::string> errors(n);
  std::vector<double> zero(n, -1.0);  // the fraction of each ruled stage
  for (size_t i = 0; i < n; ++i) {
    if (!p.stages[i].act) continue;
    zero[i] = 0;
    if (!act_zero) continue;
    const auto it = act_zero->find(p.stages[i].name);
    if (it != act_zero->end()) zero[i] = it->second;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < n; ++i) {
    try {
      timings[i] = run_stage(p, p.stages[i], nullptr, std::max(0.0, zero[i]));
    } catch (const std::exception& ex) {
      errors[i] = ex.what();
    }
  }
  for (const std::string& x : errors)
    if (!x.empty()) fail("{}", x);
  for (size_t i = 0; i < n; ++i) {
    const StageTiming& t = timings[i];
    LayerEstimate l;
    l.name = p.stages[i].name;
    l.kind = p.stages[i].kernels.empty() ? "?" : kkind_name(p.stages[i].kernels[0].kind);
    l.seconds = t.seconds;
    l.ddr_s = t.ddr_s;
    l.cls = t.cls;
    l.queue_max = t.queue_max;
    l.executed = t.executed;
    l.act_zero = zero[i];
    l.act_skipped = zero[i] > 0 && p.hw.act_block_skip;
    double worst = -1;
    for (int c = 0; c < kClsCount; ++c) {
      const bool ddr = c == kClsLoad || c == kClsLoadW || c == kClsWrite;
      double v = t.queue_max[static_cast<size_t>(c)];
      if (!(ddr && !p.hw.ddr_overlap)) l.serial_s += v;
      if (v > worst) {
        worst = v;
        l.bound = instr_class_name(c);
      }
    }
    l.serial_s += t.ddr_s;
    if (t.ddr_s > worst) l.bound = "ddr";
    if (s) {
      const Stage& st = s->graph.stages[i];
      const StagePlan& sp = s->stages[i];
      l.macs = st.macs();
      l.cores = sp.d.ps * sp.d.pc;
      l.imbalance = sp.imbalance;
      l.kind = stage_kind_name(st.kind);
    }
    e.total_s += l.seconds;
    e.executed += l.executed;
    for (int c = 0; c < kClsCount; ++c) {
      ClassStats& a = e.cls[static_cast<size_t>(c)];
      const ClassStats& b = l.cls[static_cast<size_t>(c)];
      a.busy_s += b.busy_s;
      a.bytes += b.bytes;
      a.count += b.count;
      a.macs += b.macs;
    }
    e.layers.push_back(std::move(l));
  }
  return e;
}

namespace {
Json classes_json(const std::array<ClassStats, kClsCount>& cls, const std::array<double, kClsCount>* qmax) {
  Json j = Json::object();
  for (int c = 0; c < kClsCount; ++c) {
    const ClassStats& s = cls[static_cast<size_t>(c)];
    Json x = Json::object();
    x["count"] = s.count;
    x["busy_s"] = s.busy_s;
    if (qmax) x["busiest_queue_s"] = (*qmax)[static_cast<size_t>(c)];
    if (c == kClsComp)
      x["macs"] = s.macs;
    else
      x["bytes"] = s.bytes;
    j[instr_class_name(c)] = std::move(x);
  }
  return j;
}
}  // namespace

Json estimate_json(const Estimate& e) {
  Json j = Json::object();
  j["target"] = e.target;
  j["dtype"] = e.dtype;
  j["model"] = e.paper ? "paper" : "default";
  j["total_s"] = e.total_s;
  Json layers = Json::array();
  for (const LayerEstimate& l : e.layers) {
    Json x = Json::object();
    x["name"] = l.name;
    x["kind"] = l.kind;
    x["time_s"] = l.seconds;
    x["ddr_s"] = l.ddr_s;
    x["serial_s"] = l.serial_s;
    x["overlap"] = l.seconds > 0 ? l.serial_s / l.seconds : 1.0;
    x["bound"] = l.bound;
    x["macs"] = l.macs;
    x["cores"] = l.cores;
    x["imbalance"] = l.imbalance;
    x["instructions"] = l.executed;
    x["act_zero_fraction"] = l.act_zero >= 0 ? Json(l.act_zero) : Json();
    x["act_skipped"] = l.act_skipped;
    x["classes"] = classes_json(l.cls, &l.queue_max);
    layers.push_back(std::move(x));
  }
  j["layers"] = std::move(layers);
  j["classes"] = classes_json(e.cls, nullptr);
  j["instructions"] = e.executed;
  return j;
}

}  // namespace bsp::aie2

namespace bsp::aie2 {

// --mapping paper schedules in memory the way the paper's compiler did:
// output width across columns, channels across rows, and every activation
// read from and written back to DDR by each layer.
TimedProgram timed_program(const Model& m, const EstimateRequest& r) {
  TimedProgram t;
  const bool stored = m.program && r.target.empty() && !r.dtype && !r.paper_mapping;
  if (stored) check_program_fits(m, m.program->program);
  if (stored && !r.dense) {
    t.program = m.program->program;
    if (m.schedule && m.schedule->fingerprint == t.program.fingerprint &&
        m.schedule->stages.size() == t.program.stages.size())
      t.schedule = m.schedule;
  } else {
    Hardware hw;
    DType dtype;
    if (stored) {  // the dense counterpart of a stored program: same target and dtype
      hw = m.program->program.hw;
      dtype = m.program->program.dtype;
    } else {
      if (!r.target.empty())
        hw = load_target(r.target);
      else if (m.program)
        hw = m.program->program.hw;
      else if (m.schedule)
        hw = m.schedule->hw;
      else
        hw = load_target("aie2:4x4");
      dtype = r.dtype ? *r.dtype : m.schedule ? m.schedule->dtype : model_dtype(m);
      if (r.paper_model) apply_paper_model(hw);
    }
    if (!stored && !r.dense && !r.paper_model && !r.paper_mapping && r.target.empty() && !r.dtype && m.schedule) {
      t.schedule = m.schedule;
    } else {
      ScheduleOptions opt;
      opt.dense = r.dense;
      opt.fixed_mapping = r.paper_mapping;
      opt.resident = !r.paper_mapping;
      opt.tune = r.tune;
      t.schedule = std::make_shared<Schedule>(make_schedule(m, hw, dtype, opt));
    }
    t.program = generate_program(*t.schedule);
  }
  if (r.paper_model && stored) apply_paper_model(t.program.hw);
  if (t.program.hw.act_block_skip)
    for (const StageProg& sp : t.program.stages)
      if (sp.act && !r.act_zero.count(sp.name))
        fail("layer '{}' has an activation rule and target '{}' skips zero activation blocks (act_block_skip), but its "
             "zero-block fraction is not known: measure it on data (bsp estimate --data D)",
             sp.name, t.program.hw.name);
  t.est = estimate_program(t.program, t.schedule.get(), r.paper_model, &r.act_zero);
  return t;
}

}  // namespace bsp::aie2
