#include "core/shapes.hpp"

#include <algorithm>
#include <unordered_map>

#include "core/checked.hpp"
#include "core/op_table.hpp"

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
  // The plausibility limits (bsp-format(5), LIMITS): with every term below
  // 2^24 the sums and products here cannot overflow.
  check_dim(n.name, "kernel height", kh);
  check_dim(n.name, "kernel width", kw);
  check_dim(n.name, "stride", std::max(g.sh, g.sw));
  check_dim(n.name, "dilation", std::max(g.dh, g.dw));
  for (int64_t v : p) check_dim(n.name, "pad", v, true);
  const int64_t eh = g.dh * (kh - 1) + 1, ew = g.dw * (kw - 1) + 1;
  const int64_t hp = g.H + g.pt + g.pb, wp = g.W + g.pl + g.pr;
  if (hp < eh || wp < ew)
    fail("node '{}': window {}x{} larger than the padded input {}x{}", n.name, eh, ew, hp, wp);
  // The kernels lay out the padded input (or a phase of it per stride): a
  // huge pad is refused here, by the memory it needs.
  check_activation(n.name, "padded input", {hp, wp, g.C});
  g.Ho = (hp - eh) / g.sh + 1;
  g.Wo = (wp - ew) / g.sw + 1;
  // A stride larger than the padded input (one output row or column, which
  // any stride past hp - eh gives) is clamped to hp: the output is the same,
  // and the kernels' layouts, whose size follows the stride, stay within a
  // few times the padded input.
  if (g.sh > hp) g.sh = hp;
  if (g.sw > wp) g.sw = wp;
}

}  // namespace

ConvGeom conv_geom(const Node& n, const Shape& in) {
  const Tensor& w = n.param("weight");
  if (w.rank() != 4) fail("node '{}': conv weight must be OHWI [Cout, kh, kw, Cin/groups], got {}", n.name, shape_str(w.shape()));
  ConvGeom g;
  fill_window(n, in, g, w.dim(1), w.dim(2));
  g.Cout = w.dim(0);
  g.groups = n.attrs.get_int("groups", 1);
  check_dim(n.name, "groups", g.groups);
  if (g.groups < 1 || g.C % g.groups != 0 || g.Cout % g.groups != 0)
    fail("node '{}': groups={} does not divide Cin={} and Cout={}", n.name, g.groups, g.C, g.Cout);
  if (w.dim(3) != g.C / g.groups)
    fail("node '{}': weight has {} input channels per group, input has {}", n.name, w.dim(3), g.C / g.groups);
  if (n.has_param("bias") && n.param("bias").shape() != Shape{g.Cout})
    fail("node '{}': bias has shape {}, expected [{}] for {} output channels", n.name,
         shape_str(n.param("bias").shape()), g.Cout, g.Cout);
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
  const OpEntry& e = op_entry(n.op);
  const int k = static_cast<int>(ins.size());
  if (e.max_inputs >= 0 && e.min_inputs == e.max_inputs && k != e.min_inputs)
    fail("node '{}': {} takes {} input(s), has {}", n.name, e.name, e.min_inputs, k);
  if (k < e.min_inputs)
    fail("node '{}': {} takes at least {} input{}", n.name, e.name, e.min_inputs, e.min_inputs == 1 ? "" : "s");
  if (e.max_inputs >= 0 && k > e.max_inputs)
    fail("node '{}': {} takes at most {} input(s), has {}", n.name, e.name, e.max_inputs, k);
  Shape out = e.shape(n, ins);
  // Every activation is within the memory bound (bsp-format(5), LIMITS),
  // so that no later product over it overflows.
  check_activation(n.name, "output", out);
  return out;
}

int64_t node_macs(const Node& n, const Shape& out) {
  if (n.op != Op::Conv2d && n.op != Op::Dense) return 0;
  const auto w = static_cast<int64_t>(n.param("weight").size());
  if (n.op == Op::Dense) return w;
  if (out.size() != 3) fail("node '{}': conv output {} is not [H, W, C]", n.name, shape_str(out));
  return checked_mul(checked_mul(out[0], out[1], fmt::format("node '{}': MACs", n.name)), w,
                     fmt::format("node '{}': MACs", n.name));
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
