#include "core/reference_forward.hpp"

#include "core/op_table.hpp"

namespace bsp {

Tensor reference_node(const Node& n, const std::vector<const Tensor*>& in) { return op_entry(n.op).reference(n, in); }

Tensor reference_forward(const Model& m, const Tensor& input,
                         const std::function<void(size_t, const Tensor&)>& observe) {
  check_batch_input(m, input.shape());
  const size_t count = m.nodes.size();
  const Wiring w = wiring(m);
  std::vector<Tensor> out(count);
  for (size_t i = 0; i < count; ++i) {
    const Node& n = m.nodes[i];
    std::vector<const Tensor*> ins;
    if (n.op == Op::Input) ins.push_back(&input);
    for (size_t j : w.inputs[i]) ins.push_back(&out[j]);
    out[i] = reference_node(n, ins);
    if (observe) observe(i, out[i]);
    for (size_t j : w.inputs[i])
      if (w.last_use[j] == i) out[j] = Tensor();
  }
  return std::move(out[count - 1]);
}

}  // namespace bsp
