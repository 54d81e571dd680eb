#include "aie2/estimate.hpp"

#include <exception>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace bsp::aie2 {

Estimate estimate_program(const Program& p, const Schedule* s, bool paper) {
  if (s && s->stages.size() != p.stages.size()) fail("internal: the schedule and the program differ");
  Estimate e;
  e.target = p.hw.name;
  e.dtype = dtype_name(p.dtype);
  e.paper = paper;
  // Stages are timed independently: in parallel, first error reported.
  const size_t n = p.stages.size();
  std::vector<StageTiming> timings(n);
  std::vector<std::string> errors(n);
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < n; ++i) {
    try {
      timings[i] = run_stage(p, p.stages[i], nullptr);
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
    x["classes"] = classes_json(l.cls, &l.queue_max);
    layers.push_back(std::move(x));
  }
  j["layers"] = std::move(layers);
  j["classes"] = classes_json(e.cls, nullptr);
  j["instructions"] = e.executed;
  return j;
}

}  // namespace bsp::aie2
