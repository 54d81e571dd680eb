#include "core/reference_forward.hpp"

#include <unordered_map>

#include "core/op_table.hpp"

namespace bsp {

namespace {
Shape without_batch(const Tensor& x) { return Shape(x.shape().begin() + 1, x.shape().end()); }
}  // namespace

Tensor reference_node(const Node& n, const std::vector<const Tensor*>& in) { return op_entry(n.op).reference(n, in); }

Tensor reference_forward(const Model& m, const Tensor& input,
                         const std::function<void(size_t, const Tensor&)>& observe) {
  Shape want = m.input_shape();
  if (input.rank() != 4 || without_batch(input) != want)
    fail("input has shape {}, the model takes [N, {}, {}, {}]", shape_str(input.shape()), want[0], want[1], want[2]);
  const size_t count = m.nodes.size();
  std::unordered_map<std::string, size_t> index;
  std::vector<size_t> last_use(count, 0);
  for (size_t i = 0; i < count; ++i) {
    index[m.nodes[i].name] = i;
    for (const auto& src : m.nodes[i].inputs) last_use[index.at(src)] = i;
  }
  last_use[count - 1] = count;  // the result is never freed
  std::vector<Tensor> out(count);
  for (size_t i = 0; i < count; ++i) {
    const Node& n = m.nodes[i];
    std::vector<const Tensor*> ins;
    if (n.op == Op::Input) ins.push_back(&input);
    for (const auto& src : n.inputs) ins.push_back(&out[index.at(src)]);
    out[i] = reference_node(n, ins);
    if (observe) observe(i, out[i]);
    for (const auto& src : n.inputs) {
      size_t j = index.at(src);
      if (last_use[j] == i) out[j] = Tensor();
    }
  }
  return std::move(out[count - 1]);
}

}  // namespace bsp
