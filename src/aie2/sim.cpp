#include "aie2/sim.hpp"

#include <cstring>

#include "core/error.hpp"

namespace bsp::aie2 {

SimRun simulate(const Program& p, const std::vector<uint8_t>& const_image, const Tensor& input,
                void (*progress)(size_t, size_t, void*), void* ctx) {
  if (p.dtype != DType::FP32) fail("simulating {} programs is not supported yet", dtype_name(p.dtype));
  if (static_cast<int64_t>(const_image.size()) != p.ddr_const_bytes)
    fail("the weight image has {} bytes, the program expects {}", const_image.size(), p.ddr_const_bytes);
  const Shape want{p.input_shape[0], p.input_shape[1], p.input_shape[2]};
  if (input.rank() != 4 || Shape(input.shape().begin() + 1, input.shape().end()) != want)
    fail("input has shape {}, the program takes [N, {}, {}, {}]", shape_str(input.shape()), want[0], want[1], want[2]);
  const int64_t N = input.dim(0);
  const int64_t in_elems = shape_numel(want);
  const int64_t out_elems = p.output_shape[0] * p.output_shape[1] * p.output_shape[2];
  SimRun r;
  r.output = Tensor({N, out_elems});
  for (int64_t n = 0; n < N; ++n) {
    Machine m(p.hw, p.ddr_bytes);
    std::memcpy(m.ddr.data(), const_image.data(), const_image.size());
    std::memcpy(m.ddr.data() + p.input_addr, input.data() + n * in_elems, static_cast<size_t>(in_elems) * 4);
    r.stages.clear();
    for (size_t s = 0; s < p.stages.size(); ++s) {
      r.stages.push_back(run_stage(p, p.stages[s], &m));
      r.executed += r.stages.back().executed;
      if (progress) progress(s + 1, p.stages.size(), ctx);
    }
    std::memcpy(r.output.data() + n * out_elems, m.ddr.data() + p.output_addr, static_cast<size_t>(out_elems) * 4);
  }
  return r;
}

}  // namespace bsp::aie2
