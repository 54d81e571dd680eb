// Helpers for the AIE2 back-end tests: small models (optionally pruned), the
// whole pipeline schedule -> program -> image -> simulation, and comparisons.
#pragma once

#include <cmath>
#include <string>

#include "aie2/codegen.hpp"
#include "aie2/schedule.hpp"
#include "aie2/sim.hpp"
#include "compact/compact.hpp"
#include "kernels/runner.hpp"
#include "core/rng.hpp"
#include "core/reference_forward.hpp"
#include "sparse_helpers.hpp"
#include "zoo/zoo.hpp"

namespace bsp::test {

// A zoo model with He-normal weights, non-trivial batchnorms and, with
// density < 1, 8x8 block masks on every weighted layer but the first conv.
inline Model aie2_model(const std::string& arch, double density = 1.0, uint64_t seed = 1) {
  const ArchInfo& a = find_arch(arch);
  Model m = a.build(a.default_classes);
  init_weights(m, seed);
  randomise_batchnorms(m, seed + 7);
  if (density < 1.0) {
    bool first = true;
    uint64_t s = seed * 100;
    for (Node& n : m.nodes) {
      if (!op_has_weight(n.op)) continue;
      if (first && n.op == Op::Conv2d) {
        first = false;
        continue;
      }
      block_prune(n, 8, 8, density, ++s);
    }
  }
  return m;
}

// Makes `m` an int8 model (bsp compact --dtype int8) calibrated on random images.
inline void make_int8(Model& m, uint64_t seed = 3) {
  compact::CompactOptions opt;
  opt.dtype = DType::Int8;
  const Shape s = m.input_shape();
  Tensor calib = random_tensor({4, s[0], s[1], s[2]}, seed);
  opt.calib_forward = kernels::calibration_forward(m);  // as bsp compact calibrates
  m.compact = std::make_shared<compact::CompactModel>(compact::compact_model(m, opt, &calib));
}

struct PipelineResult {
  aie2::Schedule schedule;
  aie2::Program program;
  std::vector<uint8_t> image;
  double max_diff = 0, max_ref = 0;
  double sim_seconds = 0;
};

// Schedules, generates, simulates one random image and compares with the
// reference forward (fp32 or int8 by the model's compact type).
inline PipelineResult run_pipeline(const Model& m, const std::string& target, bool resident = true,
                                   uint64_t seed = 11, int tune = 1) {
  PipelineResult r;
  aie2::ScheduleOptions opt;
  opt.resident = resident;
  opt.tune = tune;
  const DType dt = m.compact && m.compact->int8 ? DType::Int8 : DType::FP32;
  r.schedule = aie2::make_schedule(m, aie2::load_target(target), dt, opt);
  r.program = aie2::generate_program(r.schedule);
  r.image = aie2::build_const_image(r.schedule, m, &r.program);
  const Shape s = m.input_shape();
  Tensor x = random_tensor({1, s[0], s[1], s[2]}, seed);
  aie2::SimRun run = aie2::simulate(r.program, r.image, x, m);
  Tensor ref = dt == DType::Int8 ? q8::reference_forward(m, *m.compact->int8, x) : reference_forward(m, x);
  REQUIRE(ref.size() == run.output.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    r.max_ref = std::max(r.max_ref, static_cast<double>(std::fabs(ref[i])));
    r.max_diff = std::max(r.max_diff, static_cast<double>(std::fabs(ref[i] - run.output[i])));
  }
  for (const auto& st : run.stages) r.sim_seconds += st.seconds;
  return r;
}

}  // namespace bsp::test
