#include "zoo/builder.hpp"

#include "core/shapes.hpp"

namespace bsp {

GraphBuilder::GraphBuilder(std::string arch, int64_t H, int64_t W, int64_t C) {
  m_.arch = std::move(arch);
  Node n;
  n.name = "input";
  n.op = Op::Input;
  n.attrs.set("shape", std::vector<int64_t>{H, W, C});
  push(std::move(n));
}

std::string GraphBuilder::push(Node n) {
  std::vector<const Shape*> ins;
  for (const auto& i : n.inputs) {
    auto it = shapes_.find(i);
    if (it == shapes_.end()) fail("internal: builder input '{}' of '{}' does not exist", i, n.name);
    ins.push_back(&it->second);
  }
  if (shapes_.count(n.name)) fail("internal: builder node '{}' defined twice", n.name);
  shapes_[n.name] = infer_node_shape(n, ins);
  std::string name = n.name;
  m_.nodes.push_back(std::move(n));
  return name;
}

namespace {
Node make(const std::string& name, Op op, std::vector<std::string> inputs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  return n;
}
Tensor filled(int64_t c, float v) {
  Tensor t({c});
  t.fill(v);
  return t;
}
}  // namespace

std::string GraphBuilder::conv(const std::string& name, const std::string& in, const ConvSpec& s) {
  Node n = make(name, Op::Conv2d, {in});
  int64_t cin = shapes_.at(in).back();
  if (cin % s.groups) fail("internal: groups do not divide channels at '{}'", name);
  n.attrs.set("stride", std::vector<int64_t>{s.stride, s.stride});
  n.attrs.set("pad", std::vector<int64_t>(s.pad.begin(), s.pad.end()));
  n.attrs.set("dilation", std::vector<int64_t>{1, 1});
  n.attrs.set("groups", s.groups);
  n.params.emplace("weight", Tensor({s.cout, s.kh, s.kw, cin / s.groups}));
  if (s.bias) n.params.emplace("bias", Tensor({s.cout}));
  return push(std::move(n));
}

std::string GraphBuilder::batchnorm(const std::string& name, const std::string& in, double eps) {
  Node n = make(name, Op::BatchNorm, {in});
  int64_t c = shapes_.at(in).back();
  n.attrs.set("eps", eps);
  n.params.emplace("gamma", filled(c, 1.0f));
  n.params.emplace("beta", filled(c, 0.0f));
  n.params.emplace("mean", filled(c, 0.0f));
  n.params.emplace("var", filled(c, 1.0f));
  return push(std::move(n));
}

std::string GraphBuilder::node(const std::string& name, Op op, const std::vector<std::string>& ins, Attrs attrs) {
  Node n = make(name, op, ins);
  n.attrs = std::move(attrs);
  return push(std::move(n));
}

std::string GraphBuilder::clip(const std::string& name, const std::string& in, double lo, double hi) {
  Attrs a;
  a.set("min", lo);
  a.set("max", hi);
  return node(name, Op::Clip, {in}, std::move(a));
}

std::string GraphBuilder::relu(const std::string& name, const std::string& in) {
  return push(make(name, Op::Relu, {in}));
}

std::string GraphBuilder::maxpool(const std::string& name, const std::string& in, int64_t k, int64_t stride,
                                  int64_t pad) {
  Node n = make(name, Op::MaxPool, {in});
  n.attrs.set("kernel", std::vector<int64_t>{k, k});
  n.attrs.set("stride", std::vector<int64_t>{stride, stride});
  n.attrs.set("pad", std::vector<int64_t>{pad, pad, pad, pad});
  return push(std::move(n));
}

std::string GraphBuilder::avgpool(const std::string& name, const std::string& in, int64_t k, int64_t stride,
                                  int64_t pad, bool count_include_pad) {
  Node n = make(name, Op::AvgPool, {in});
  n.attrs.set("kernel", std::vector<int64_t>{k, k});
  n.attrs.set("stride", std::vector<int64_t>{stride, stride});
  n.attrs.set("pad", std::vector<int64_t>{pad, pad, pad, pad});
  n.attrs.set("count_include_pad", int64_t{count_include_pad ? 1 : 0});
  return push(std::move(n));
}

std::string GraphBuilder::global_avgpool(const std::string& name, const std::string& in) {
  return push(make(name, Op::GlobalAvgPool, {in}));
}
std::string GraphBuilder::add(const std::string& name, const std::vector<std::string>& ins) {
  return push(make(name, Op::Add, ins));
}
std::string GraphBuilder::concat(const std::string& name, const std::vector<std::string>& ins) {
  return push(make(name, Op::Concat, ins));
}
std::string GraphBuilder::flatten(const std::string& name, const std::string& in) {
  return push(make(name, Op::Flatten, {in}));
}
std::string GraphBuilder::softmax(const std::string& name, const std::string& in) {
  return push(make(name, Op::Softmax, {in}));
}

std::string GraphBuilder::dense(const std::string& name, const std::string& in, int64_t out, bool bias) {
  Node n = make(name, Op::Dense, {in});
  int64_t fin = shapes_.at(in).at(0);
  n.params.emplace("weight", Tensor({out, fin}));
  if (bias) n.params.emplace("bias", Tensor({out}));
  return push(std::move(n));
}

Model GraphBuilder::finish() {
  m_.validate();
  return std::move(m_);
}

}  // namespace bsp
