// ONNX -> bsp (the conventions are in import.hpp).
#include "onnx/import.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include <onnx/onnx_pb.h>

#include "core/error.hpp"
#include "core/shapes.hpp"
#include "onnx/metadata.hpp"
#include "onnx/tensors.hpp"

namespace bsp::onnx_io {

namespace {

// An activation: the bsp node holding it, and how ONNX sees it.
struct Act {
  std::string node;
  // A bsp vector [F] that ONNX sees as [N, C, 1, 1] (a GlobalAveragePool).
  bool one_by_one = false;
  // A bsp vector flattened from a map of C channels and H x W > 1 positions:
  // bsp holds its features in H, W, C order, ONNX counts them in C, H, W.
  std::array<int64_t, 3> chw{0, 0, 0};
  // A map ONNX sees transposed to [N, H, W, C] (Transpose 0, 2, 3, 1): a
  // flatten of it is in bsp's own order (what bsp export writes).
  bool nhwc = false;
  // Zero padding [top, left, bottom, right] a Pad node put around the map,
  // which the convolution or average pool reading it takes over.
  std::array<int64_t, 4> pad{0, 0, 0, 0};
  bool padded() const { return pad[0] || pad[1] || pad[2] || pad[3]; }
};

// The readable name of a node: torch's scoped names
// "/layer1/layer1.0/conv1/Conv" become "layer1.0.conv1" and
// "/features/features.1/conv/conv.0/conv.0.0/Conv" "features.1.conv.0.0"
// (each scope that extends the one before replaces it, others append; the
// op type goes): torchvision's module paths.
std::string readable_name(const onnx::NodeProto& n) {
  std::string raw = !n.name().empty() ? n.name() : n.output_size() ? n.output(0) : n.op_type();
  std::vector<std::string> parts;
  size_t at = 0;
  while (at <= raw.size()) {
    size_t next = raw.find('/', at);
    if (next == std::string::npos) next = raw.size();
    if (next > at) parts.push_back(raw.substr(at, next - at));
    at = next + 1;
  }
  if (!parts.empty() && (parts.back() == n.op_type() || parts.back().rfind(n.op_type() + "_", 0) == 0))
    parts.pop_back();
  // A scope that extends the one before it ("conv.0" after "conv": torch
  // names a child relative to its parent) replaces it; others append.
  std::string path, last;
  for (const std::string& p : parts) {
    if (!last.empty() && p.rfind(last + ".", 0) == 0)
      path = path.substr(0, path.size() - last.size()) + p;
    else
      path = path.empty() ? p : path + "." + p;
    last = p;
  }
  if (path.empty()) {
    path = n.op_type();
    std::transform(path.begin(), path.end(), path.begin(), [](unsigned char ch) { return std::tolower(ch); });
  }
  for (char& ch : path)
    if (ch == '/' || std::isspace(static_cast<unsigned char>(ch))) ch = '_';
  return path;
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
int64_t attr_int(const onnx::NodeProto& n, const char* name, int64_t def) {
  const auto* a = find_attr(n, name);
  return a ? a->i() : def;
}
double attr_float(const onnx::NodeProto& n, const char* name, double def) {
  const auto* a = find_attr(n, name);
  return a ? static_cast<double>(a->f()) : def;
}
std::string attr_string(const onnx::NodeProto& n, const char* name, const std::string& def) {
  const auto* a = find_attr(n, name);
  return a ? a->s() : def;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name, std::vector<int64_t> def) {
  const auto* a = find_attr(n, name);
  if (!a) return def;
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

class Importer {
 public:
  Importer(onnx::ModelProto& mp, std::string dir, const ImportOptions& opt)
      : mp_(mp), g_(mp.graph()), dir_(std::move(dir)), opt_(opt) {
    for (const auto& o : mp.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  }

  Model run() {
    if (opset_ < kMinOpset || opset_ > kMaxOpset)
      fail("opset {} of the default domain: bsp reads opsets {} to {}", opset_, kMinOpset, kMaxOpset);
    // Each initializer's bytes are freed from the proto once read, and each
    // weight from consts_ once converted (take()): peak memory stays near
    // one copy of the weights.
    for (auto& t : *mp_.mutable_graph()->mutable_initializer()) {
      consts_[t.name()] = read_tensor(t, dir_);
      std::string().swap(*t.mutable_raw_data());
    }
    for (const auto& n : g_.node())
      for (const auto& i : n.input()) {
        ++uses_[i];
        readers_[i].push_back(n.op_type());
      }
    add_input();
    for (const auto& n : g_.node()) convert(n);
    return finish();
  }

  int64_t opset() const { return opset_; }

  // The converter of each ONNX operator (the supported ones).
  using Handler = void (Importer::*)(const onnx::NodeProto&);
  static const std::map<std::string, Handler>& handlers();

 private:
  // ---- values ----

  bool is_const(const std::string& name) const { return consts_.count(name) != 0; }
  const onnx_io::Const& cst(const onnx::NodeProto& n, int k) const {
    if (k >= n.input_size() || n.input(k).empty()) fail("node '{}': input {} is missing", n.name(), k);
    auto it = consts_.find(n.input(k));
    if (it == consts_.end())
      fail("node '{}' ({}): input '{}' must be a constant (a weight or a folded shape)", n.name(), n.op_type(), n.input(k));
    return it->second;
  }
  const onnx_io::Const* opt_cst(const onnx::NodeProto& n, int k) const {
    return k < n.input_size() && !n.input(k).empty() ? &cst(n, k) : nullptr;
  }
  const Act& act(const onnx::NodeProto& n, int k) const {
    if (k >= n.input_size()) fail("node '{}': input {} is missing", n.name(), k);
    auto it = acts_.find(n.input(k));
    if (it == acts_.end()) {
      if (is_const(n.input(k)))
        fail("node '{}' ({}): input '{}' is a constant where bsp takes an activation", n.name(), n.op_type(), n.input(k));
      fail("node '{}' ({}): input '{}' is not produced by an earlier node", n.name(), n.op_type(), n.input(k));
    }
    return it->second;
  }
  const Shape& shape_of(const Act& a) const { return shapes_.at(a.node); }
  // An activation for an op that reads it in NCHW (anything but a flatten),
  // with no pending padding unless `padding_ok` (conv, average pool).
  const Act& nchw(const onnx::NodeProto& n, int k, bool padding_ok = false) const {
    const Act& a = act(n, k);
    if (a.nhwc) fail("node '{}' ({}): an NHWC-transposed input is supported only for Flatten", n.name(), n.op_type());
    if (a.padded() && !padding_ok)
      fail("node '{}' ({}): a padded input is supported only for Conv and AveragePool", n.name(), n.op_type());
    return a;
  }
  // pads [t, l, b, r] plus an input's pending zero padding.
  static std::vector<int64_t> with_padding(std::vector<int64_t> pads, const Act& x) {
    for (int k = 0; k < 4; ++k) pads[static_cast<size_t>(k)] += x.pad[static_cast<size_t>(k)];
    return pads;
  }
  bool is_map(const Act& a) const { return shape_of(a).size() == 3; }
  // The shape ONNX sees, batch 1 (what a Shape node of it gives).
  std::vector<int64_t> onnx_shape(const Act& a) const {
    const Shape& s = shape_of(a);
    if (s.size() == 3) return {1, s[2], s[0], s[1]};
    if (a.one_by_one) return {1, s[0], 1, 1};
    return {1, s[0]};
  }
  void set_act(const std::string& name, Act a) { acts_[name] = std::move(a); }
  void set_const(const std::string& name, onnx_io::Const c) { consts_[name] = std::move(c); }
  void alias(const onnx::NodeProto& n) { set_act(n.output(0), act(n, 0)); }

  // A new bsp node (its name from the ONNX node, unique), shape-checked.
  std::string add(const onnx::NodeProto& src, Node node, const std::string& suffix = "") {
    std::string name = readable_name(src) + suffix;
    if (used_.count(name)) {
      int k = 2;
      while (used_.count(name + "_" + std::to_string(k))) ++k;
      name += "_" + std::to_string(k);
    }
    used_.insert(name);
    node.name = name;
    std::vector<const Shape*> ins;
    for (const auto& i : node.inputs) ins.push_back(&shapes_.at(i));
    try {
      shapes_[name] = infer_node_shape(node, ins);
    } catch (const Error& e) {
      fail("node '{}' ({}): {}", src.name(), src.op_type(), e.what());
    }
    m_.nodes.push_back(std::move(node));
    return name;
  }
  Node make(Op op, std::vector<std::string> inputs) {
    Node n;
    n.op = op;
    n.inputs = std::move(inputs);
    return n;
  }

  // ---- the graph's input and output ----

  void add_input() {
    const onnx::ValueInfoProto* in = nullptr;
    for (const auto& v : g_.input())
      if (!is_const(v.name())) {
        if (in) fail("the graph has more than one input ('{}', '{}'): bsp models take one image input", in->name(), v.name());
        in = &v;
      }
    if (!in) fail("the graph has no input");
    const auto& tt = in->type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto_DataType_FLOAT)
      fail("input '{}' is not float32", in->name());
    const auto& dims = tt.shape().dim();
    if (dims.size() != 4) fail("input '{}' has {} dimensions: bsp takes an image batch [N, C, H, W]", in->name(), dims.size());
    Shape hwc(3, 0);
    const int chw_at[3] = {2, 3, 1};  // ONNX index of H, W, C
    for (int k = 0; k < 3; ++k) {
      const auto& d = dims[chw_at[k]];
      if (d.has_dim_value() && d.dim_value() > 0) hwc[static_cast<size_t>(k)] = d.dim_value();
    }
    if (opt_.input_shape) {
      const Shape& want = *opt_.input_shape;
      for (int k = 0; k < 3; ++k)
        if (hwc[static_cast<size_t>(k)] && hwc[static_cast<size_t>(k)] != want[static_cast<size_t>(k)])
          fail("--input-shape {}x{}x{} does not match the graph's input, {}x{}x{} (HxWxC)", want[0], want[1], want[2],
               hwc[0] ? std::to_string(hwc[0]) : "?", hwc[1] ? std::to_string(hwc[1]) : "?",
               hwc[2] ? std::to_string(hwc[2]) : "?");
      hwc = want;
    }
    for (int k = 0; k < 3; ++k)
      if (!hwc[static_cast<size_t>(k)])
        fail("input '{}' has a dynamic {} dimension: give --input-shape HxWxC", in->name(), "HWC"[k]);
    Node n = make(Op::Input, {});
    n.attrs.set("shape", hwc);
    n.name = "input";
    used_.insert("input");
    shapes_["input"] = hwc;
    m_.nodes.push_back(std::move(n));
    set_act(in->name(), Act{"input"});
  }

  // The graph's one output; nodes it does not depend on go.
  Model finish() {
    if (g_.output_size() != 1) fail("the graph has {} outputs: bsp models have one", g_.output_size());
    const std::string& out = g_.output(0).name();
    auto it = acts_.find(out);
    if (it == acts_.end()) fail("the graph's output '{}' is a constant", out);
    if (it->second.node == "input") fail("the graph's output is its input");
    std::set<std::string> keep{it->second.node};
    for (size_t i = m_.nodes.size(); i-- > 0;)
      if (keep.count(m_.nodes[i].name))
        for (const auto& s : m_.nodes[i].inputs) keep.insert(s);
    keep.insert("input");
    Model m;
    for (Node& n : m_.nodes)
      if (keep.count(n.name)) m.nodes.push_back(std::move(n));
    if (m.nodes.back().name != it->second.node) fail("internal: the output is not the last node");
    m.validate();
    return m;
  }

  void convert(const onnx::NodeProto& n) {
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      fail("unsupported operator '{}' of domain '{}' at node '{}'", n.op_type(), n.domain(), n.name());
    const auto& h = handlers();
    auto it = h.find(n.op_type());
    if (it == h.end()) {
      std::string list;
      for (const auto& [k, v] : h) list += (list.empty() ? "" : ", ") + k;
      fail("unsupported operator '{}' at node '{}' (supported: {})", n.op_type(), n.name(), list);
    }
    (this->*(it->second))(n);
  }

  // ---- layers ----

  // Pads [top, left, bottom, right] from ONNX pads/auto_pad for an input of
  // h x w and a window of effective size eh x ew.
  std::vector<int64_t> window_pads(const onnx::NodeProto& n, int64_t h, int64_t w, int64_t eh, int64_t ew,
                                   const std::vector<int64_t>& stride) {
    const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
    if (auto_pad == "NOTSET") {
      std::vector<int64_t> p = attr_ints(n, "pads", {0, 0, 0, 0});
      if (p.size() != 4) fail("node '{}': pads must have 4 values", n.name());
      return p;
    }
    if (auto_pad == "VALID") return {0, 0, 0, 0};
    if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") fail("node '{}': unknown auto_pad '{}'", n.name(), auto_pad);
    std::vector<int64_t> p(4);
    const int64_t size[2] = {h, w}, eff[2] = {eh, ew};
    for (int k = 0; k < 2; ++k) {
      const int64_t out = (size[k] + stride[static_cast<size_t>(k)] - 1) / stride[static_cast<size_t>(k)];
      const int64_t total = std::max<int64_t>(0, (out - 1) * stride[static_cast<size_t>(k)] + eff[k] - size[k]);
      const int64_t small = total / 2, big = total - small;
      p[static_cast<size_t>(k)] = auto_pad == "SAME_UPPER" ? small : big;
      p[static_cast<size_t>(k + 2)] = auto_pad == "SAME_UPPER" ? big : small;
    }
    return p;
  }

  void conv(const onnx::NodeProto& n) {
    const Act& x = nchw(n, 0, true);
    if (!is_map(x)) fail("node '{}' (Conv): the input is not a feature map", n.name());
    const onnx_io::Const& w = cst(n, 1);
    if (w.dims.size() != 4) fail("node '{}' (Conv): only 2-D convolutions are supported (weight {})", n.name(), shape_str(w.dims));
    const int64_t O = w.dims[0], I = w.dims[1], kh = w.dims[2], kw = w.dims[3];
    const std::vector<int64_t> stride = attr_ints(n, "strides", {1, 1}), dil = attr_ints(n, "dilations", {1, 1});
    const Shape& s = shape_of(x);
    Node c = make(Op::Conv2d, {x.node});
    c.attrs.set("stride", stride);
    c.attrs.set("dilation", dil);
    c.attrs.set("pad", with_padding(window_pads(n, s[0], s[1], (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1, stride), x));
    c.attrs.set("groups", attr_int(n, "group", 1));
    // OIHW -> OHWI
    const Tensor wf_int = w.is_int ? w.floats() : Tensor();
    const Tensor& wf = w.is_int ? wf_int : w.f;
    Tensor ohwi({O, kh, kw, I});
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t z = 0; z < kw; ++z)
            ohwi[static_cast<size_t>(((o * kh + y) * kw + z) * I + i)] = wf[static_cast<size_t>(((o * I + i) * kh + y) * kw + z)];
    c.params["weight"] = std::move(ohwi);
    if (const onnx_io::Const* b = opt_cst(n, 2)) c.params["bias"] = vector_of(*b, O, n, "bias");
    set_act(n.output(0), Act{add(n, std::move(c))});
    release(n, 1);
    release(n, 2);
  }

  // Frees input k's constant when this node is its last reader.
  void release(const onnx::NodeProto& n, int k) {
    if (k < n.input_size() && --uses_[n.input(k)] == 0) consts_.erase(n.input(k));
  }

  Tensor vector_of(const onnx_io::Const& c, int64_t len, const onnx::NodeProto& n, const char* what) {
    if (c.numel() != len) fail("node '{}': {} has {} values, expected {}", n.name(), what, c.numel(), len);
    Tensor t = c.floats();
    t.reshape({len});
    return t;
  }

  void batchnorm(const onnx::NodeProto& n) {
    if (n.output_size() > 1 && !n.output(1).empty()) fail("node '{}': BatchNormalization in training mode is not supported", n.name());
    const Act& x = nchw(n, 0);
    const int64_t C = shape_of(x).back();
    Node b = make(Op::BatchNorm, {x.node});
    b.attrs.set("eps", attr_float(n, "epsilon", 1e-5));
    const char* keys[4] = {"gamma", "beta", "mean", "var"};
    for (int k = 0; k < 4; ++k) b.params[keys[k]] = vector_of(cst(n, k + 1), C, n, keys[k]);
    set_act(n.output(0), Act{add(n, std::move(b)), x.one_by_one, x.chw});
    for (int k = 1; k <= 4; ++k) release(n, k);
  }

  // An elementwise op on x: its output keeps x's layout (one_by_one, chw).
  void elementwise(const onnx::NodeProto& n, const Act& x, Node node) {
    set_act(n.output(0), Act{add(n, std::move(node)), x.one_by_one, x.chw});
  }
  void unary(const onnx::NodeProto& n, Op op) {
    const Act& x = nchw(n, 0);
    elementwise(n, x, make(op, {x.node}));
  }

  void relu(const onnx::NodeProto& n) { unary(n, Op::Relu); }

  // Clip(x, 0, +inf) is a relu, other bounds a clip (relu6: [0, 6]).
  void clip(const onnx::NodeProto& n) {
    double lo = -INFINITY, hi = INFINITY;
    if (opset_ < 11) {
      lo = attr_float(n, "min", -INFINITY);
      hi = attr_float(n, "max", INFINITY);
    } else {
      if (const onnx_io::Const* c = opt_cst(n, 1)) lo = c->floats()[0];
      if (const onnx_io::Const* c = opt_cst(n, 2)) hi = c->floats()[0];
    }
    if (lo == 0 && std::isinf(hi) && hi > 0) return relu(n);
    const Act& x = nchw(n, 0);
    Node c = make(Op::Clip, {x.node});
    c.attrs.set("min", lo);
    c.attrs.set("max", hi);
    set_act(n.output(0), Act{add(n, std::move(c)), x.one_by_one, x.chw});
  }

  void pool(const onnx::NodeProto& n, bool is_max) {
    const Act& x = nchw(n, 0, !is_max);
    if (!is_map(x)) fail("node '{}' ({}): the input is not a feature map", n.name(), n.op_type());
    if (n.output_size() > 1 && !n.output(1).empty()) fail("node '{}': MaxPool indices are not supported", n.name());
    const std::vector<int64_t> k = attr_ints(n, "kernel_shape", {});
    if (k.size() != 2) fail("node '{}' ({}): only 2-D pools are supported", n.name(), n.op_type());
    const std::vector<int64_t> stride = attr_ints(n, "strides", {1, 1}), dil = attr_ints(n, "dilations", {1, 1});
    if (!is_max && (dil[0] != 1 || dil[1] != 1)) fail("node '{}': AveragePool with dilations is not supported", n.name());
    const Shape& s = shape_of(x);
    const int64_t eff[2] = {(k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1};
    std::vector<int64_t> pad = window_pads(n, s[0], s[1], eff[0], eff[1], stride);
    bool include_pad = !is_max && attr_int(n, "count_include_pad", 0) != 0;
    if (x.padded()) {
      // Zeros padded by a Pad are real elements of the pool's input: they
      // count, as bsp's count_include_pad counts padding.
      if (!include_pad && (pad[0] || pad[1] || pad[2] || pad[3]))
        fail("node '{}': AveragePool of a padded input with padding it does not count is not supported", n.name());
      pad = with_padding(pad, x);
      include_pad = true;
    }
    if (attr_int(n, "ceil_mode", 0)) {
      // Output sizes rounded up: the last window may start in the input or
      // its padding but not beyond; extra bottom/right padding makes the
      // floor formula give the same size (padding never wins a max, and an
      // average without count_include_pad counts real elements only).
      for (int a = 0; a < 2; ++a) {
        const int64_t size = s[static_cast<size_t>(a)], st = stride[static_cast<size_t>(a)];
        const int64_t span = size + pad[static_cast<size_t>(a)] + pad[static_cast<size_t>(a + 2)] - eff[a];
        int64_t out = (span + st - 1) / st + 1;
        if ((out - 1) * st >= size + pad[static_cast<size_t>(a)]) --out;
        const int64_t need = (out - 1) * st + eff[a] - size - pad[static_cast<size_t>(a)];
        if (need > pad[static_cast<size_t>(a + 2)]) {
          if (include_pad)
            fail("node '{}': AveragePool with ceil_mode and count_include_pad past the padding is not supported", n.name());
          pad[static_cast<size_t>(a + 2)] = need;
        }
      }
    }
    Node p = make(is_max ? Op::MaxPool : Op::AvgPool, {x.node});
    p.attrs.set("kernel", k);
    p.attrs.set("stride", stride);
    p.attrs.set("pad", pad);
    if (is_max && (dil[0] != 1 || dil[1] != 1))
      p.attrs.set("dilation", dil);
    else if (!is_max)
      p.attrs.set("count_include_pad", int64_t{include_pad});
    set_act(n.output(0), Act{add(n, std::move(p))});
  }
  void maxpool(const onnx::NodeProto& n) { pool(n, true); }
  void avgpool(const onnx::NodeProto& n) { pool(n, false); }

  // A GlobalAveragePool that a Flatten or Reshape reads (a classifier head)
  // is a global_avgpool ([C]); one that something else reads as the
  // [N, C, 1, 1] map it is (squeeze-excitation: a 1x1 Conv, a Mul) is an
  // avgpool whose window is the whole map ([1, 1, C]).
  void global_avgpool(const onnx::NodeProto& n) {
    const Act& x = nchw(n, 0);
    if (!is_map(x)) fail("node '{}' (GlobalAveragePool): the input is not a feature map", n.name());
    bool as_map = false;
    for (const std::string& r : readers_[n.output(0)]) as_map = as_map || (r != "Flatten" && r != "Reshape");
    if (as_map) {
      const Shape& s = shape_of(x);
      Node p = make(Op::AvgPool, {x.node});
      p.attrs.set("kernel", std::vector<int64_t>{s[0], s[1]});
      p.attrs.set("stride", std::vector<int64_t>{1, 1});
      p.attrs.set("pad", std::vector<int64_t>{0, 0, 0, 0});
      p.attrs.set("count_include_pad", int64_t{1});
      return set_act(n.output(0), Act{add(n, std::move(p))});
    }
    Act a{add(n, make(Op::GlobalAvgPool, {x.node}))};
    a.one_by_one = true;
    set_act(n.output(0), a);
  }

  // A map flattened to a vector (Flatten, or a Reshape to [N, -1]).
  void flatten_into(const onnx::NodeProto& n, const Act& x) {
    if (!is_map(x)) return set_act(n.output(0), Act{x.node, false, x.chw});  // already [N, F]
    const Shape& s = shape_of(x);
    Act a{add(n, make(Op::Flatten, {x.node}))};
    if (s[0] * s[1] > 1 && !x.nhwc) a.chw = {s[2], s[0], s[1]};
    set_act(n.output(0), a);
  }

  // Pad of a map with zeros on height and width: pending on the value until
  // the convolution or average pool that reads it takes it over.
  void pad(const onnx::NodeProto& n) {
    const Act& x = nchw(n, 0);
    if (!is_map(x)) fail("node '{}': Pad of a vector is not supported", n.name());
    if (attr_string(n, "mode", "constant") != "constant") fail("node '{}': Pad mode '{}' is not supported", n.name(), attr_string(n, "mode", "constant"));
    std::vector<int64_t> p = opset_ >= 11 ? cst(n, 1).ints("pads") : attr_ints(n, "pads", {});
    double value = opset_ >= 11 ? (opt_cst(n, 2) ? static_cast<double>(opt_cst(n, 2)->floats()[0]) : 0.0) : attr_float(n, "value", 0.0);
    if (p.size() != 8 || p[0] || p[1] || p[4] || p[5])
      fail("node '{}': Pad is supported on height and width only", n.name());
    for (int64_t v : p)
      if (v < 0) fail("node '{}': Pad with negative pads (a crop) is not supported", n.name());
    if (value != 0) fail("node '{}': Pad with the value {} is not supported (zeros are)", n.name(), value);
    Act a = x;
    a.pad = {p[2], p[3], p[6], p[7]};
    set_act(n.output(0), a);
  }

  // Transpose(0, 2, 3, 1) of a map: the NHWC view a flatten in bsp's order reads.
  void transpose(const onnx::NodeProto& n) {
    const Act& x = nchw(n, 0);
    if (!is_map(x) || attr_ints(n, "perm", {}) != std::vector<int64_t>{0, 2, 3, 1})
      fail("node '{}': Transpose is supported only as perm (0, 2, 3, 1) of a feature map before a Flatten", n.name());
    Act a = x;
    a.nhwc = true;
    set_act(n.output(0), a);
  }

  void sum(const onnx::NodeProto& n) {
    std::vector<std::string> ins;
    for (int k = 0; k < n.input_size(); ++k) {
      const Act& x = nchw(n, k);
      if (shape_of(x) != shape_of(nchw(n, 0))) fail("node '{}': Sum of inputs of different shapes", n.name());
      ins.push_back(x.node);
    }
    if (ins.size() == 1) return alias(n);
    const Act& first = nchw(n, 0);
    set_act(n.output(0), Act{add(n, make(Op::Add, ins)), first.one_by_one, first.chw});
  }

  void flatten(const onnx::NodeProto& n) {
    if (attr_int(n, "axis", 1) != 1) fail("node '{}': Flatten with axis {} is not supported (axis 1)", n.name(), attr_int(n, "axis", 1));
    flatten_into(n, act(n, 0));
  }

  void reshape(const onnx::NodeProto& n) {
    if (is_const(n.input(0))) return const_reshape(n);
    const Act& x = act(n, 0);
    if (x.nhwc) fail("node '{}': Reshape of a transposed map is not supported (Flatten is)", n.name());
    std::vector<int64_t> to = cst(n, 1).ints("Reshape's shape");
    const std::vector<int64_t> from = onnx_shape(x);
    const int64_t numel = shape_numel(Shape(from.begin() + 1, from.end()));
    // The first dimension is the batch (any value); the rest must be the
    // features in one dimension, or the shape as it is.
    std::vector<int64_t> rest(to.begin() + (to.empty() ? 0 : 1), to.end());
    if (rest == std::vector<int64_t>(from.begin() + 1, from.end())) return alias(n);
    if (rest.size() == 1 && (rest[0] == -1 || rest[0] == numel)) return flatten_into(n, x);
    fail("node '{}': Reshape of {} to {} is not supported (only to [N, -1])", n.name(), shape_str(from), shape_str(to));
  }

  // Gemm / MatMul: a dense layer on a vector, its weight [out, in] built in
  // one pass: w(o, f) gives the value for output o and input f in ONNX's
  // feature order, which a flattened map's CHW order turns into bsp's HWC.
  template <typename W>
  void dense(const onnx::NodeProto& n, const Act& x, int64_t O, int64_t F, W w, Tensor* bias) {
    const Shape& s = shape_of(x);
    if (s.size() != 1) fail("node '{}' ({}): the input is not a vector (flatten first)", n.name(), n.op_type());
    if (F != s[0]) fail("node '{}' ({}): the weight takes {} inputs, the input has {}", n.name(), n.op_type(), F, s[0]);
    Tensor weight({O, F});
    const int64_t C = x.chw[0] ? x.chw[0] : F, HW = x.chw[0] ? x.chw[1] * x.chw[2] : 1;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t hw = 0; hw < HW; ++hw)  // ONNX feature c*HW + hw is bsp's hw*C + c
          weight[static_cast<size_t>(o * F + hw * C + c)] = w(o, c * HW + hw);
    Node d = make(Op::Dense, {x.node});
    d.params["weight"] = std::move(weight);
    if (bias) d.params["bias"] = std::move(*bias);
    set_act(n.output(0), Act{add(n, std::move(d))});
  }

  void gemm(const onnx::NodeProto& n) {
    if (attr_int(n, "transA", 0)) fail("node '{}': Gemm with transA is not supported", n.name());
    const onnx_io::Const& b = cst(n, 1);
    if (b.dims.size() != 2) fail("node '{}': Gemm weight must be 2-D, is {}", n.name(), shape_str(b.dims));
    const bool tb = attr_int(n, "transB", 0) != 0;
    const int64_t O = tb ? b.dims[0] : b.dims[1], F = tb ? b.dims[1] : b.dims[0];
    const float alpha = static_cast<float>(attr_float(n, "alpha", 1.0)), beta = static_cast<float>(attr_float(n, "beta", 1.0));
    const Tensor bf_int = b.is_int ? b.floats() : Tensor();
    const float* bf = b.is_int ? bf_int.data() : b.f.data();
    std::optional<Tensor> bias;
    if (const onnx_io::Const* c = opt_cst(n, 2)) {
      bias = Tensor({O});
      const Tensor cf = c->floats();
      if (cf.size() != 1 && static_cast<int64_t>(cf.size()) != O) fail("node '{}': Gemm bias has {} values for {} outputs", n.name(), cf.size(), O);
      for (int64_t o = 0; o < O; ++o) (*bias)[static_cast<size_t>(o)] = beta * cf[cf.size() == 1 ? 0 : static_cast<size_t>(o)];
    }
    // (alpha 1 multiplies exactly)
    dense(n, nchw(n, 0), O, F, [&](int64_t o, int64_t f) { return alpha * bf[tb ? o * F + f : f * O + o]; },
          bias ? &*bias : nullptr);
    release(n, 1);
    release(n, 2);
  }

  void matmul(const onnx::NodeProto& n) {
    const onnx_io::Const& b = cst(n, 1);  // [in, out]
    if (b.dims.size() != 2) fail("node '{}': MatMul weight must be 2-D, is {}", n.name(), shape_str(b.dims));
    const int64_t F = b.dims[0], O = b.dims[1];
    const Tensor bf_int = b.is_int ? b.floats() : Tensor();
    const float* bf = b.is_int ? bf_int.data() : b.f.data();
    dense(n, nchw(n, 0), O, F, [&](int64_t o, int64_t f) { return bf[f * O + o]; }, nullptr);
    if (uses_[n.output(0)] == 1) bias_free_.insert(acts_.at(n.output(0)).node);
    release(n, 1);
  }

  void add_op(const onnx::NodeProto& n) {
    if (n.input_size() != 2) fail("node '{}': Add takes two inputs", n.name());
    if (is_const(n.input(0)) && is_const(n.input(1))) return const_arith(n);
    const int k = is_const(n.input(0)) ? 0 : is_const(n.input(1)) ? 1 : -1;
    if (k >= 0) {
      // A dense layer's bias (MatMul + Add).
      const Act& x = nchw(n, 1 - k);
      if (!bias_free_.count(x.node))
        fail("node '{}': Add of a constant is supported only as the bias of a MatMul", n.name());
      Node* d = find_node(x.node);
      d->params["bias"] = vector_of(consts_.at(n.input(k)), d->param("weight").dim(0), n, "bias");
      bias_free_.erase(x.node);
      return set_act(n.output(0), x);
    }
    const Act &a = nchw(n, 0), &b = nchw(n, 1);
    if (shape_of(a) != shape_of(b))
      fail("node '{}': Add of {} and {} (broadcasting is not supported)", n.name(), shape_str(onnx_shape(a)), shape_str(onnx_shape(b)));
    set_act(n.output(0), Act{add(n, make(Op::Add, {a.node, b.node})), a.one_by_one, a.chw});
  }

  void sigmoid(const onnx::NodeProto& n) { unary(n, Op::Sigmoid); }
  void hardswish(const onnx::NodeProto& n) { unary(n, Op::HardSwish); }

  void hardsigmoid(const onnx::NodeProto& n) {
    const Act& x = nchw(n, 0);
    Node h = make(Op::HardSigmoid, {x.node});
    h.attrs.set("alpha", attr_float(n, "alpha", 0.2));
    h.attrs.set("beta", attr_float(n, "beta", 0.5));
    elementwise(n, x, std::move(h));
  }

  // Mul of two activations: elementwise, or a map times a [N, C, 1, 1]
  // per-channel scale (either order; bsp's mul takes the scale second).
  // Mul(x, HardSigmoid(x)) with torch's alpha 1/6 and beta 1/2 is a
  // hardswish (how torch writes one below opset 14).
  void mul_op(const onnx::NodeProto& n) {
    if (n.input_size() != 2) fail("node '{}': Mul takes two inputs", n.name());
    if (is_const(n.input(0)) && is_const(n.input(1))) return const_arith(n);
    if (is_const(n.input(0)) || is_const(n.input(1)))
      fail("unsupported operator 'Mul' by a constant at node '{}' (Mul of two activations is supported)", n.name());
    const Act &a = nchw(n, 0), &b = nchw(n, 1);
    for (int k = 0; k < 2; ++k) {
      const Act &x = k ? b : a, &h = k ? a : b;
      const Node* hn = find_node(h.node);
      if (hn->op == Op::HardSigmoid && hn->inputs.at(0) == x.node && uses_[n.input(1 - k)] == 1 &&
          std::abs(hn->attrs.get_double("alpha") - 1.0 / 6) < 1e-6 && hn->attrs.get_double("beta") == 0.5) {
        const Act xin = x;
        if (m_.nodes.back().name == h.node) {  // the hardsigmoid only this reads goes (and its name with it)
          used_.erase(h.node);
          shapes_.erase(h.node);
          m_.nodes.pop_back();
        }
        return elementwise(n, xin, make(Op::HardSwish, {xin.node}));
      }
    }
    const Shape &sa = shape_of(a), &sb = shape_of(b);
    auto scale_of = [&](const Shape& map, const Shape& s) { return map.size() == 3 && s == Shape{1, 1, map[2]}; };
    if (sa != sb && scale_of(sb, sa)) return elementwise(n, b, make(Op::Mul, {b.node, a.node}));
    if (sa != sb && !scale_of(sa, sb))
      fail("node '{}': Mul of {} and {} (only the same shapes or a [N, C, 1, 1] scale broadcast over a map)", n.name(),
           shape_str(onnx_shape(a)), shape_str(onnx_shape(b)));
    elementwise(n, a, make(Op::Mul, {a.node, b.node}));
  }

  void concat(const onnx::NodeProto& n) {
    bool all_const = true;
    for (const auto& i : n.input()) all_const = all_const && is_const(i);
    if (all_const) return const_concat(n);
    std::vector<std::string> ins;
    int64_t rank = 0;
    for (int k = 0; k < n.input_size(); ++k) {
      const Act& x = nchw(n, k);
      if (x.chw[0] || x.one_by_one) fail("node '{}': Concat of flattened values is not supported", n.name());
      rank = static_cast<int64_t>(onnx_shape(x).size());
      ins.push_back(x.node);
    }
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < 0) axis += rank;
    if (axis != 1) fail("node '{}': Concat along axis {} is not supported (channels, axis 1)", n.name(), axis);
    set_act(n.output(0), Act{add(n, make(Op::Concat, ins))});
  }

  void softmax(const onnx::NodeProto& n) {
    const Act& x = nchw(n, 0);
    const int64_t rank = static_cast<int64_t>(onnx_shape(x).size());
    int64_t axis = attr_int(n, "axis", opset_ < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    if (rank != 2 || axis != 1) fail("node '{}': Softmax over axis {} of a rank-{} value is not supported", n.name(), axis, rank);
    set_act(n.output(0), Act{add(n, make(Op::Softmax, {x.node}))});
  }

  void identity(const onnx::NodeProto& n) {
    if (n.output_size() > 1 && !n.output(1).empty() && uses_[n.output(1)] > 0)
      fail("node '{}' ({}): its second output is used", n.name(), n.op_type());
    if (is_const(n.input(0))) return set_const(n.output(0), consts_.at(n.input(0)).clone());
    alias(n);
  }

  Node* find_node(const std::string& name) {
    for (Node& x : m_.nodes)
      if (x.name == name) return &x;
    fail("internal: no node '{}'", name);
  }

  // ---- constants (shape subgraphs) ----

  static onnx_io::Const int_const(Shape dims, std::vector<int64_t> v) {
    onnx_io::Const c;
    c.dims = std::move(dims);
    c.is_int = true;
    c.i = std::move(v);
    return c;
  }

  void constant(const onnx::NodeProto& n) {
    if (const auto* a = find_attr(n, "value")) return set_const(n.output(0), read_tensor(a->t(), dir_));
    if (const auto* a = find_attr(n, "value_int")) return set_const(n.output(0), int_const({}, {a->i()}));
    if (const auto* a = find_attr(n, "value_ints"))
      return set_const(n.output(0), int_const({a->ints_size()}, std::vector<int64_t>(a->ints().begin(), a->ints().end())));
    if (const auto* a = find_attr(n, "value_float")) {
      onnx_io::Const c;
      c.f = Tensor(Shape{1}, std::vector<float>{a->f()});
      return set_const(n.output(0), std::move(c));
    }
    fail("node '{}': Constant of this kind is not supported", n.name());
  }

  void shape(const onnx::NodeProto& n) {
    std::vector<int64_t> s = is_const(n.input(0)) ? consts_.at(n.input(0)).dims : onnx_shape(act(n, 0));
    const int64_t r = static_cast<int64_t>(s.size());
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r), end = std::clamp<int64_t>(end, start, r);
    std::vector<int64_t> v(s.begin() + start, s.begin() + end);
    set_const(n.output(0), int_const({static_cast<int64_t>(v.size())}, v));
  }

  // Rank-0 and rank-1 integer constants are what shape subgraphs compute with.
  static const std::vector<int64_t>& small_ints(const onnx_io::Const& c, const onnx::NodeProto& n) {
    if (!c.is_int || c.dims.size() > 1) fail("node '{}' ({}): only 1-D integer constants are folded", n.name(), n.op_type());
    return c.i;
  }

  void gather(const onnx::NodeProto& n) {
    const std::vector<int64_t>& data = small_ints(cst(n, 0), n);
    const onnx_io::Const& idx = cst(n, 1);
    if (attr_int(n, "axis", 0) != 0) fail("node '{}': Gather along axis {} is not folded", n.name(), attr_int(n, "axis", 0));
    std::vector<int64_t> v;
    for (int64_t k : small_ints(idx, n)) {
      if (k < 0) k += static_cast<int64_t>(data.size());
      if (k < 0 || k >= static_cast<int64_t>(data.size())) fail("node '{}': Gather index out of range", n.name());
      v.push_back(data[static_cast<size_t>(k)]);
    }
    set_const(n.output(0), int_const(idx.dims, v));
  }

  std::vector<int64_t> axes_of(const onnx::NodeProto& n) {
    if (opset_ >= 13 && n.input_size() > 1) return cst(n, 1).ints("axes");
    return attr_ints(n, "axes", {});
  }

  void unsqueeze(const onnx::NodeProto& n) {
    const onnx_io::Const& c = cst(n, 0);
    Shape dims = c.dims;
    std::vector<int64_t> axes = axes_of(n);
    const int64_t r = static_cast<int64_t>(dims.size() + axes.size());
    for (auto& a : axes)
      if (a < 0) a += r;
    std::sort(axes.begin(), axes.end());
    for (int64_t a : axes) dims.insert(dims.begin() + std::min<int64_t>(a, static_cast<int64_t>(dims.size())), 1);
    onnx_io::Const out = c.is_int ? int_const(dims, c.i) : onnx_io::Const{dims, false, c.f.clone(), {}};
    set_const(n.output(0), std::move(out));
  }

  void squeeze(const onnx::NodeProto& n) {
    const onnx_io::Const& c = cst(n, 0);
    Shape dims;
    std::vector<int64_t> axes = axes_of(n);
    for (auto& a : axes)
      if (a < 0) a += static_cast<int64_t>(c.dims.size());
    for (size_t k = 0; k < c.dims.size(); ++k) {
      const bool drop = axes.empty() ? c.dims[k] == 1 : std::count(axes.begin(), axes.end(), static_cast<int64_t>(k)) > 0;
      if (!drop) dims.push_back(c.dims[k]);
    }
    onnx_io::Const out = c.is_int ? int_const(dims, c.i) : onnx_io::Const{dims, false, c.f.clone(), {}};
    set_const(n.output(0), std::move(out));
  }

  void const_concat(const onnx::NodeProto& n) {
    std::vector<int64_t> v;
    for (int k = 0; k < n.input_size(); ++k) {
      const std::vector<int64_t>& x = small_ints(cst(n, k), n);
      v.insert(v.end(), x.begin(), x.end());
    }
    set_const(n.output(0), int_const({static_cast<int64_t>(v.size())}, v));
  }

  void const_reshape(const onnx::NodeProto& n) {
    const onnx_io::Const& c = cst(n, 0);
    std::vector<int64_t> to = cst(n, 1).ints("Reshape's shape");
    int64_t known = 1, infer = -1;
    for (size_t k = 0; k < to.size(); ++k) {
      if (to[k] == 0 && k < c.dims.size()) to[k] = c.dims[k];
      if (to[k] == -1)
        infer = static_cast<int64_t>(k);
      else
        known *= to[k];
    }
    if (infer >= 0 && known > 0) to[static_cast<size_t>(infer)] = c.numel() / known;
    if (shape_numel(to) != c.numel()) fail("node '{}': Reshape of {} values to {}", n.name(), c.numel(), shape_str(to));
    onnx_io::Const out = c.is_int ? int_const(to, c.i) : onnx_io::Const{to, false, c.f.clone(), {}};
    set_const(n.output(0), std::move(out));
  }

  void cast(const onnx::NodeProto& n) {
    const onnx_io::Const& c = cst(n, 0);
    const int64_t to = attr_int(n, "to", onnx::TensorProto_DataType_FLOAT);
    const bool to_float = to == onnx::TensorProto_DataType_FLOAT || to == onnx::TensorProto_DataType_DOUBLE;
    onnx_io::Const out;
    out.dims = c.dims;
    if (to_float) {
      out.f = c.floats();
    } else {
      out.is_int = true;
      if (c.is_int)
        out.i = c.i;
      else
        for (float x : c.f) out.i.push_back(static_cast<int64_t>(x));
    }
    set_const(n.output(0), std::move(out));
  }

  void slice(const onnx::NodeProto& n) {
    const std::vector<int64_t>& data = small_ints(cst(n, 0), n);
    std::vector<int64_t> starts, ends, steps{1};
    if (opset_ >= 10) {
      starts = cst(n, 1).ints("starts");
      ends = cst(n, 2).ints("ends");
      if (const onnx_io::Const* s = opt_cst(n, 4)) steps = s->ints("steps");
    } else {
      starts = attr_ints(n, "starts", {});
      ends = attr_ints(n, "ends", {});
    }
    if (starts.size() != 1 || ends.size() != 1 || steps.size() != 1 || steps[0] == 0)
      fail("node '{}': only 1-D Slice of a constant is folded", n.name());
    const int64_t len = static_cast<int64_t>(data.size());
    auto norm = [&](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + len : v, lo, hi); };
    std::vector<int64_t> v;
    if (steps[0] > 0)
      for (int64_t k = norm(starts[0], 0, len); k < norm(ends[0], 0, len); k += steps[0]) v.push_back(data[static_cast<size_t>(k)]);
    else
      for (int64_t k = norm(starts[0], -1, len - 1); k > norm(ends[0], -1, len - 1); k += steps[0]) v.push_back(data[static_cast<size_t>(k)]);
    set_const(n.output(0), int_const({static_cast<int64_t>(v.size())}, v));
  }

  // Elementwise integer arithmetic of shape subgraphs (a scalar broadcasts).
  void const_arith(const onnx::NodeProto& n) {
    const std::vector<int64_t>& a = small_ints(cst(n, 0), n);
    const std::vector<int64_t>& b = small_ints(cst(n, 1), n);
    if (a.size() != b.size() && a.size() != 1 && b.size() != 1) fail("node '{}': {} of constants of different lengths", n.name(), n.op_type());
    const size_t len = std::max(a.size(), b.size());
    std::vector<int64_t> v(len);
    for (size_t k = 0; k < len; ++k) {
      const int64_t x = a[a.size() == 1 ? 0 : k], y = b[b.size() == 1 ? 0 : k];
      const std::string& op = n.op_type();
      if (op == "Div" && y == 0) fail("node '{}': division by zero", n.name());
      v[k] = op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y;
    }
    const onnx_io::Const& big = a.size() >= b.size() ? cst(n, 0) : cst(n, 1);
    set_const(n.output(0), int_const(big.dims, v));
  }
  void arith(const onnx::NodeProto& n) {
    if (n.input_size() == 2 && is_const(n.input(0)) && is_const(n.input(1))) return const_arith(n);
    fail("unsupported operator '{}' on activations at node '{}'", n.op_type(), n.name());
  }

  onnx::ModelProto& mp_;
  const onnx::GraphProto& g_;
  std::string dir_;
  const ImportOptions& opt_;
  int64_t opset_ = 0;
  Model m_;
  std::unordered_map<std::string, Shape> shapes_;           // per bsp node
  std::unordered_map<std::string, onnx_io::Const> consts_;  // per ONNX tensor name
  std::unordered_map<std::string, Act> acts_;               // per ONNX tensor name
  std::unordered_map<std::string, int> uses_;               // readers of each ONNX tensor
  std::unordered_map<std::string, std::vector<std::string>> readers_;  // their op types
  std::set<std::string> used_;                              // bsp node names taken
  std::set<std::string> bias_free_;                         // dense layers from a MatMul, waiting for their bias
};

const std::map<std::string, Importer::Handler>& Importer::handlers() {
  static const std::map<std::string, Handler> h = {
      {"Add", &Importer::add_op},
      {"AveragePool", &Importer::avgpool},
      {"BatchNormalization", &Importer::batchnorm},
      {"Cast", &Importer::cast},
      {"Clip", &Importer::clip},
      {"Concat", &Importer::concat},
      {"Constant", &Importer::constant},
      {"Conv", &Importer::conv},
      {"Div", &Importer::arith},
      {"Dropout", &Importer::identity},
      {"Flatten", &Importer::flatten},
      {"Gather", &Importer::gather},
      {"Gemm", &Importer::gemm},
      {"GlobalAveragePool", &Importer::global_avgpool},
      {"HardSigmoid", &Importer::hardsigmoid},
      {"HardSwish", &Importer::hardswish},
      {"Identity", &Importer::identity},
      {"MatMul", &Importer::matmul},
      {"MaxPool", &Importer::maxpool},
      {"Mul", &Importer::mul_op},
      {"Pad", &Importer::pad},
      {"Relu", &Importer::relu},
      {"Reshape", &Importer::reshape},
      {"Shape", &Importer::shape},
      {"Sigmoid", &Importer::sigmoid},
      {"Slice", &Importer::slice},
      {"Softmax", &Importer::softmax},
      {"Squeeze", &Importer::squeeze},
      {"Sub", &Importer::arith},
      {"Sum", &Importer::sum},
      {"Transpose", &Importer::transpose},
      {"Unsqueeze", &Importer::unsqueeze},
  };
  return h;
}

// The normalisation the options give, on the input node (after a bsp
// export's own, which the metadata restores: the options win).
void apply_normalization(Model& m, const ImportOptions& opt) {
  if (opt.mean.empty() && opt.std.empty()) return;
  Node& in = m.nodes.at(0);
  const int64_t C = in.attrs.get_ints("shape").at(2);
  auto per_channel = [&](std::vector<double> v, const char* what) {
    if (v.size() == 1) v.assign(static_cast<size_t>(C), v[0]);
    if (static_cast<int64_t>(v.size()) != C) fail("--input-{} has {} values for {} channels", what, v.size(), C);
    return v;
  };
  in.attrs.set("norm_mean", per_channel(opt.mean.empty() ? std::vector<double>{0.0} : opt.mean, "mean"));
  std::vector<double> sd = per_channel(opt.std.empty() ? std::vector<double>{1.0} : opt.std, "std");
  for (double s : sd)
    if (!(s > 0)) fail("--input-std must be positive");
  in.attrs.set("norm_std", sd);
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

}  // namespace

std::vector<std::string> supported_operators() {
  std::vector<std::string> v;
  for (const auto& [k, h] : Importer::handlers()) v.push_back(k);
  return v;
}

Model import_onnx(const std::string& path, const std::string& display, const ImportOptions& opt) {
  try {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("{}", errno_message(errno));
    onnx::ModelProto mp;
    if (!mp.ParseFromIstream(&f) || !mp.has_graph() || mp.graph().node_size() == 0) fail("not an ONNX model");
    f.close();
    Importer im(mp, directory_of(path), opt);
    Model m = im.run();
    Metadata md;
    for (const auto& p : mp.metadata_props()) md[p.key()] = p.value();
    if (restore_bsp_metadata(md, m)) {  // a model bsp exported: its arch, history, masks, normalisation
      apply_normalization(m, opt);
      return m;
    }
    apply_normalization(m, opt);
    std::string base = display.substr(display.rfind('/') == std::string::npos ? 0 : display.rfind('/') + 1);
    const std::string& gname = mp.graph().name();
    const bool generic = gname.empty() || gname == "torch_jit" || gname == "main_graph" || gname == "torch-jit-export";
    m.arch = generic ? base.substr(0, base.rfind(".onnx") == std::string::npos ? base.size() : base.rfind(".onnx")) : gname;
    std::string producer = mp.producer_name();
    if (!mp.producer_version().empty()) producer += " " + mp.producer_version();
    m.history.push_back(fmt::format("onnx '{}': producer {}, opset {}", base, producer.empty() ? "unknown" : producer,
                                    im.opset()));
    return m;
  } catch (const Error& e) {
    throw Error(fmt::format("cannot import '{}': {}", display, e.what()), e.exit_code());
  }
}

}  // namespace bsp::onnx_io
