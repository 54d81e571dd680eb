#include "core/shapes.hpp"

#include <algorithm>
#include <unordered_map>

namespace bsp {

namespace {

std::vector<int64_t> pair_attr(const Node& n, const char* key, int64_t def) {
  auto v = n.attrs.get_ints(key, std::vector<int64_t>{def, def});
  if (v.size() != 2) fail("node '{}': attribute '{}' must have 2 values", n.name, key);
  return v;
}

void fill_window(const Node& n, const Shape& in, WindowGeom& g, int64_t kh, int64_t kw) {
  if (in.size() != 3) fail("node '{}': expects a [H, W, C] input, got {}", n.name, shape_str(in));
  g.H = in[0];
  g.W = in[1];
  g.C = in[2];
  g.kh = kh;
  g.kw = kw;
  auto s = pair_attr(n, "stride", 1);
  auto d = pair_attr(n, "dilation", 1);
  auto p = n.attrs.get_ints("pad", std::vector<int64_t>{0, 0, 0, 0});
  if (p.size() != 4) fail("node '{}': attribute 'pad' must have 4 values (top, left, bottom, right)", n.name);
  g.sh = s[0];
  g.sw = s[1];
  g.dh = d[0];
  g.dw = d[1];
  g.pt = p[0];
  g.pl = p[1];
  g.pb = p[2];
  g.pr = p[3];
  if (g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || kh < 1 || kw < 1)
    fail("node '{}': kernel, stride and dilation must be positive", n.name);
  for (int64_t v : p)
    if (v < 0) fail("node '{}': negative padding", n.name);
  int64_t eh = g.dh * (kh - 1) + 1, ew = g.dw * (kw - 1) + 1;
  int64_t hp = g.H + g.pt + g.pb, wp = g.W + g.pl + g.pr;
  if (hp < eh || wp < ew)
    fail("node '{}': window {}x{} larger than the padded input {}x{}", n.name, eh, ew, hp, wp);
  g.Ho = (hp - eh) / g.sh + 1;
  g.Wo = (wp - ew) / g.sw + 1;
}

}  // namespace

ConvGeom conv_geom(const Node& n, const Shape& in) {
  const Tensor& w = n.param("weight");
  if (w.rank() != 4) fail("node '{}': conv weight must be OHWI [Cout, kh, kw, Cin/groups], got {}", n.name, shape_str(w.shape()));
  ConvGeom g;
  fill_window(n, in, g, w.dim(1), w.dim(2));
  g.Cout = w.dim(0);
  g.groups = n.attrs.get_int("groups", 1);
  if (g.groups < 1 || g.C % g.groups != 0 || g.Cout % g.groups != 0)
    fail("node '{}': groups={} does not divide Cin={} and Cout={}", n.name, g.groups, g.C, g.Cout);
  if (w.dim(3) != g.C / g.groups)
    fail("node '{}': weight has {} input channels per group, input has {}", n.name, w.dim(3), g.C / g.groups);
  if (n.has_param("bias") && n.param("bias").size() != static_cast<size_t>(g.Cout))
    fail("node '{}': bias has {} values for {} output channels", n.name, n.param("bias").size(), g.Cout);
  return g;
}

WindowGeom pool_geom(const Node& n, const Shape& in) {
  auto k = n.attrs.get_ints("kernel");
  if (k.size() != 2) fail("node '{}': attribute 'kernel' must have 2 values", n.name);
  WindowGeom g;
  fill_window(n, in, g, k[0], k[1]);
  return g;
}

Shape infer_node_shape(const Node& n, const std::vector<const Shape*>& ins) {
  auto need_inputs = [&](size_t k) {
    if (ins.size() != k) fail("node '{}': {} takes {} input(s), has {}", n.name, op_name(n.op), k, ins.size());
  };
  Shape out;
  switch (n.op) {
    case Op::Input: {
      need_inputs(0);
      out = n.attrs.get_ints("shape");
      if (out.size() != 3) fail("node '{}': input shape must be [H, W, C]", n.name);
      for (auto d : out)
        if (d < 1) fail("node '{}': input shape {} has a non-positive size", n.name, shape_str(out));
      break;
    }
    case Op::Conv2d: {
      need_inputs(1);
      auto g = conv_geom(n, *ins[0]);
      out = {g.Ho, g.Wo, g.Cout};
      break;
    }
    case Op::Dense: {
      need_inputs(1);
      const Tensor& w = n.param("weight");
      if (w.rank() != 2) fail("node '{}': dense weight must be [out, in]", n.name);
      if (ins[0]->size() != 1)
        fail("node '{}': dense needs a vector input (flatten first), got {}", n.name, shape_str(*ins[0]));
      if ((*ins[0])[0] != w.dim(1))
        fail("node '{}': weight takes {} inputs, input has {}", n.name, w.dim(1), (*ins[0])[0]);
      if (n.has_param("bias") && n.param("bias").size() != static_cast<size_t>(w.dim(0)))
        fail("node '{}': bias has {} values for {} outputs", n.name, n.param("bias").size(), w.dim(0));
      out = {w.dim(0)};
      break;
    }
    case Op::BatchNorm: {
      need_inputs(1);
      out = *ins[0];
      int64_t c = out.back();
      for (const char* p : {"gamma", "beta", "mean", "var"})
        if (n.param(p).size() != static_cast<size_t>(c))
          fail("node '{}': '{}' has {} values for {} channels", n.name, p, n.param(p).size(), c);
      break;
    }
    case Op::Relu:
    case Op::Softmax:
      need_inputs(1);
      out = *ins[0];
      break;
    case Op::MaxPool:
    case Op::AvgPool: {
      need_inputs(1);
      auto g = pool_geom(n, *ins[0]);
      if (g.pt >= g.kh || g.pb >= g.kh || g.pl >= g.kw || g.pr >= g.kw)
        fail("node '{}': padding must be smaller than the window", n.name);
      out = {g.Ho, g.Wo, g.C};
      break;
    }
    case Op::GlobalAvgPool:
      need_inputs(1);
      if (ins[0]->size() != 3) fail("node '{}': global_avgpool needs a [H, W, C] input", n.name);
      out = {(*ins[0])[2]};
      break;
    case Op::Add:
      if (ins.size() < 2) fail("node '{}': add takes at least 2 inputs", n.name);
      for (auto* s : ins)
        if (*s != *ins[0])
          fail("node '{}': add inputs differ in shape: {} and {}", n.name, shape_str(*ins[0]), shape_str(*s));
      out = *ins[0];
      break;
    case Op::Concat: {
      if (ins.empty()) fail("node '{}': concat takes at least 1 input", n.name);
      out = *ins[0];
      int64_t c = 0;
      for (auto* s : ins) {
        if (s->size() != out.size() || !std::equal(s->begin(), s->end() - 1, out.begin()))
          fail("node '{}': concat inputs differ outside the channel axis: {} and {}", n.name, shape_str(out),
               shape_str(*s));
        c += s->back();
      }
      out.back() = c;
      break;
    }
    case Op::Flatten:
      need_inputs(1);
      out = {shape_numel(*ins[0])};
      break;
  }
  return out;
}

std::vector<Shape> infer_shapes(const Model& m) {
  std::vector<Shape> shapes;
  shapes.reserve(m.nodes.size());
  std::unordered_map<std::string_view, size_t> index;
  for (const Node& n : m.nodes) {
    std::vector<const Shape*> ins;
    for (const auto& i : n.inputs) {
      auto it = index.find(i);
      if (it == index.end()) fail("node '{}': input '{}' is not an earlier node", n.name, i);
      ins.push_back(&shapes[it->second]);
    }
    Shape out = infer_node_shape(n, ins);
    index.emplace(n.name, shapes.size());
    shapes.push_back(std::move(out));
  }
  return shapes;
}

}  // namespace bsp
