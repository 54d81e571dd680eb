#include "infer/reference_forward.hpp"

#include <unordered_map>

#include "infer/reference_ops.hpp"

namespace bsp {

namespace {
Shape without_batch(const Tensor& x) { return Shape(x.shape().begin() + 1, x.shape().end()); }
const Tensor* opt_param(const Node& n, const char* p) { return n.has_param(p) ? &n.param(p) : nullptr; }
}  // namespace

Tensor reference_node(const Node& n, const std::vector<const Tensor*>& in) {
  switch (n.op) {
    case Op::Input:
      return in.at(0)->clone();
    case Op::Conv2d:
      return ref::conv2d(*in.at(0), n.param("weight"), opt_param(n, "bias"), conv_geom(n, without_batch(*in[0])));
    case Op::Dense:
      return ref::dense(*in.at(0), n.param("weight"), opt_param(n, "bias"));
    case Op::BatchNorm:
      return ref::batchnorm(*in.at(0), n.param("gamma"), n.param("beta"), n.param("mean"), n.param("var"),
                            n.attrs.get_double("eps", 1e-5));
    case Op::Relu:
      return ref::relu(*in.at(0));
    case Op::MaxPool:
      return ref::maxpool(*in.at(0), pool_geom(n, without_batch(*in[0])));
    case Op::AvgPool:
      return ref::avgpool(*in.at(0), pool_geom(n, without_batch(*in[0])), n.attrs.get_int("count_include_pad", 1));
    case Op::GlobalAvgPool:
      return ref::global_avgpool(*in.at(0));
    case Op::Add:
      return ref::add(in);
    case Op::Concat:
      return ref::concat(in);
    case Op::Flatten:
      return ref::flatten(*in.at(0));
    case Op::Softmax:
      return ref::softmax(*in.at(0));
  }
  fail("node '{}': op not supported by the reference forward", n.name);
}

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
