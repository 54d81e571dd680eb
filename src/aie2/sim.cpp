#include "aie2/sim.hpp"

#include <cmath>
#include <cstring>

#include "compact/compact.hpp"
#include "compact/int8.hpp"
#include "core/error.hpp"
#include "core/reference_forward.hpp"

namespace bsp::aie2 {

SimRun simulate(const Program& p, const std::vector<uint8_t>& const_image, const Tensor& input, const Model& m,
                void (*progress)(size_t, size_t, void*), void* ctx) {
  const bool int8 = p.dtype == DType::Int8;
  if (!int8 && p.dtype != DType::FP32) fail("simulating {} programs is not supported yet", dtype_name(p.dtype));
  const q8::QModel* q = nullptr;
  if (int8) {
    if (!(m.compact && m.compact->int8)) fail("an int8 program needs the model's int8 program (/compact)");
    q = &*m.compact->int8;
  }
  if (static_cast<int64_t>(const_image.size()) != p.ddr_const_bytes)
    fail("the weight image has {} bytes, the program expects {}", const_image.size(), p.ddr_const_bytes);
  const Shape want{p.input_shape[0], p.input_shape[1], p.input_shape[2]};
  if (input.rank() != 4 || Shape(input.shape().begin() + 1, input.shape().end()) != want)
    fail("input has shape {}, the program takes [N, {}, {}, {}]", shape_str(input.shape()), want[0], want[1], want[2]);
  const int64_t N = input.dim(0);
  const int64_t in_elems = shape_numel(want);
  const int64_t out_elems = p.output_shape[0] * p.output_shape[1] * p.output_shape[2];
  const int64_t es = dtype_bytes(p.dtype);
  if (p.input_addr < 0 || p.input_addr + in_elems * es > p.ddr_bytes || p.output_addr < 0 ||
      p.output_addr + out_elems * es > p.ddr_bytes)
    fail("the program's input or output lies outside its DDR");
  SimRun r;
  r.output = Tensor({N, out_elems});
  for (int64_t n = 0; n < N; ++n) {
    Machine mach(p.hw, p.ddr_bytes);
    std::memcpy(mach.ddr.data(), const_image.data(), const_image.size());
    const float* x = input.data() + n * in_elems;
    if (int8) {
      Tensor one({1, want[0], want[1], want[2]});
      std::memcpy(one.data(), x, static_cast<size_t>(in_elems) * 4);
      Array<int8_t> xq = q8::quantize_input(one, q->nodes.at(0).scale);
      std::memcpy(mach.ddr.data() + p.input_addr, xq.data(), static_cast<size_t>(in_elems));
    } else {
      std::memcpy(mach.ddr.data() + p.input_addr, x, static_cast<size_t>(in_elems) * 4);
    }
    r.stages.clear();
    for (size_t s = 0; s < p.stages.size(); ++s) {
      r.stages.push_back(run_stage(p, p.stages[s], &mach));
      r.executed += r.stages.back().executed;
      if (progress) progress(s + 1, p.stages.size(), ctx);
    }
    float* y = r.output.data() + n * out_elems;
    if (int8) {
      const double scale = q->nodes.back().scale;
      const int8_t* yq = reinterpret_cast<const int8_t*>(mach.ddr.data() + p.output_addr);
      for (int64_t i = 0; i < out_elems; ++i) y[i] = static_cast<float>(yq[i] * scale);
    } else {
      std::memcpy(y, mach.ddr.data() + p.output_addr, static_cast<size_t>(out_elems) * 4);
    }
  }
  return r;
}

SimCheck check_output(const Program& p, const Model& m, const Tensor& x, const Tensor& output, double rel_tolerance) {
  const bool int8 = p.dtype == DType::Int8;
  if (int8 && !(m.compact && m.compact->int8)) fail("the int8 program needs the model's int8 weights (/compact)");
  const Tensor ref = int8 ? q8::reference_forward(m, *m.compact->int8, x) : reference_forward(m, x);
  if (static_cast<int64_t>(ref.size()) != static_cast<int64_t>(output.size()))
    fail("the program returns {} values, the reference {}", output.size(), ref.size());
  SimCheck c;
  for (size_t i = 0; i < ref.size(); ++i) {
    c.max_abs_reference = std::max(c.max_abs_reference, static_cast<double>(std::fabs(ref[i])));
    double d = std::fabs(static_cast<double>(ref[i]) - static_cast<double>(output[i]));
    if (!(d <= c.max_abs_diff)) {  // NaN counts as the worst
      c.max_abs_diff = std::isnan(d) ? INFINITY : d;
      c.worst = static_cast<int64_t>(i);
    }
  }
  c.got = output[static_cast<size_t>(c.worst)];
  c.want = ref[static_cast<size_t>(c.worst)];
  c.tolerance = int8 ? 0.0 : rel_tolerance * c.max_abs_reference;
  c.match = c.max_abs_diff <= c.tolerance;
  return c;
}

}  // namespace bsp::aie2
