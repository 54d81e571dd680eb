// bsp -> ONNX (the conventions are in export.hpp).
#include "onnx/export.hpp"

#include <fstream>
#include <unordered_map>

#include <onnx/onnx_pb.h>

#include "compact/compact.hpp"
#include "core/error.hpp"
#include "core/shapes.hpp"
#include "onnx/metadata.hpp"

namespace bsp::onnx_io {

namespace {

class Exporter {
 public:
  Exporter(const Model& m, const q8::QModel* q, onnx::ModelProto& mp)
      : m_(m), q_(q), mp_(mp), g_(*mp.mutable_graph()), shapes_(infer_shapes(m)), tensor_(m.nodes.size()) {}

  void run() {
    mp_.set_ir_version(7);
    mp_.set_producer_name("bsp");
    mp_.set_producer_version(BSP_VERSION);
    auto* op = mp_.add_opset_import();
    op->set_domain("");
    op->set_version(kExportOpset);
    g_.set_name(m_.arch.empty() ? "bsp" : m_.arch);
    for (size_t i = 0; i < m_.nodes.size(); ++i) {
      tensor_[i] = m_.nodes[i].name;
      if (q_)
        node_int8(i);
      else
        node(i);
    }
    output(m_.nodes.size() - 1);
    for (const auto& [k, v] : bsp_metadata(m_)) {
      auto* p = mp_.add_metadata_props();
      p->set_key(k);
      p->set_value(v);
    }
  }

 private:
  // The ONNX tensor that holds input k's value.
  const std::string& in(const Node& n, size_t k) { return tensor_[m_.index_of(n.inputs.at(k))]; }
  std::vector<std::string> ins(const Node& n) {
    std::vector<std::string> v;
    for (size_t k = 0; k < n.inputs.size(); ++k) v.push_back(in(n, k));
    return v;
  }

  onnx::NodeProto* add(const std::string& op, std::vector<std::string> inputs, const std::string& output,
                       const std::string& name) {
    onnx::NodeProto* p = g_.add_node();
    p->set_op_type(op);
    p->set_name(name);
    for (const auto& i : inputs) p->add_input(i);
    p->add_output(output);
    return p;
  }
  static void attr(onnx::NodeProto* p, const char* name, int64_t v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* p, const char* name, float v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* p, const char* name, const std::vector<int64_t>& v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  // An initializer with ONNX dimensions `dims` (float32, int8 or int32 values).
  template <class T>
  std::string weight(const std::string& name, const Shape& dims, const T* values) {
    onnx::TensorProto* t = g_.add_initializer();
    t->set_name(name);
    if constexpr (std::is_same_v<T, float>)
      t->set_data_type(onnx::TensorProto_DataType_FLOAT);
    else if constexpr (std::is_same_v<T, int8_t>)
      t->set_data_type(onnx::TensorProto_DataType_INT8);
    else
      t->set_data_type(onnx::TensorProto_DataType_INT32);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values), static_cast<size_t>(shape_numel(dims)) * sizeof(T)));
    return name;
  }
  template <class T>
  std::string weight(const std::string& name, const Array<T>& t) { return weight(name, t.shape(), t.data()); }

  // OHWI [O, kh, kw, I] -> OIHW.
  template <class T>
  static Array<T> to_oihw(const Array<T>& w) {
    const int64_t O = w.dim(0), kh = w.dim(1), kw = w.dim(2), I = w.dim(3);
    Array<T> oihw({O, I, kh, kw});
    for (int64_t o = 0; o < O; ++o)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          for (int64_t c = 0; c < I; ++c)
            oihw[static_cast<size_t>(((o * I + c) * kh + y) * kw + x)] = w[static_cast<size_t>(((o * kh + y) * kw + x) * I + c)];
    return oihw;
  }

  void window(onnx::NodeProto* p, const Node& n, std::vector<int64_t> kernel) {
    attr(p, "kernel_shape", kernel);
    attr(p, "strides", n.attrs.get_ints("stride", std::vector<int64_t>{1, 1}));
    attr(p, "pads", n.attrs.get_ints("pad", std::vector<int64_t>{0, 0, 0, 0}));
  }

  void conv(onnx::NodeProto* p, const Node& n, int64_t kh, int64_t kw) {
    window(p, n, {kh, kw});
    attr(p, "dilations", n.attrs.get_ints("dilation", std::vector<int64_t>{1, 1}));
    attr(p, "group", n.attrs.get_int("groups", 1));
  }

  // A maxpool or avgpool node as MaxPool / AveragePool, into `out`.
  void pool(const Node& n, const std::string& out) {
    const bool max = n.op == Op::MaxPool;
    onnx::NodeProto* p = add(max ? "MaxPool" : "AveragePool", {in(n, 0)}, out, n.name);
    window(p, n, n.attrs.get_ints("kernel"));
    if (max)
      attr(p, "dilations", n.attrs.get_ints("dilation", std::vector<int64_t>{1, 1}));
    else
      attr(p, "count_include_pad", n.attrs.get_int("count_include_pad", 1));
  }

  // Global average pool as GlobalAveragePool + Flatten ([N, C]), into `out`.
  void global_pool(const Node& n, const std::string& out) {
    add("GlobalAveragePool", {in(n, 0)}, n.name + ".pooled", n.name);
    attr(add("Flatten", {n.name + ".pooled"}, out, n.name + ".flatten"), "axis", int64_t{1});
  }

  // A flatten of a map of more than one position goes NCHW -> NHWC first, so
  // that the features come in bsp's H, W, C order.
  void flatten(const Node& n, const std::string& out) {
    const Shape& s = shapes_[m_.index_of(n.inputs.at(0))];
    std::string x = in(n, 0);
    if (s.size() == 3 && s[0] * s[1] > 1) {
      attr(add("Transpose", {x}, n.name + ".nhwc", n.name + ".transpose"), "perm", std::vector<int64_t>{0, 2, 3, 1});
      x = n.name + ".nhwc";
    }
    attr(add("Flatten", {x}, out, n.name), "axis", int64_t{1});
  }

  // The float form of sigmoid, hardsigmoid, hardswish and mul on `xs`, into
  // `out`. HardSwish is an opset-14 operator: at opset 13 it is
  // HardSigmoid(alpha 1/6, beta 1/2) times its input, as torch writes it.
  void elementwise(const Node& n, const std::vector<std::string>& xs, const std::string& out) {
    switch (n.op) {
      case Op::Sigmoid: add("Sigmoid", xs, out, n.name); return;
      case Op::HardSigmoid: {
        onnx::NodeProto* p = add("HardSigmoid", xs, out, n.name);
        attr(p, "alpha", static_cast<float>(n.attrs.get_double("alpha")));
        attr(p, "beta", static_cast<float>(n.attrs.get_double("beta")));
        return;
      }
      case Op::HardSwish: {
        onnx::NodeProto* p = add("HardSigmoid", xs, n.name + ".hardsigmoid", n.name + ".hardsigmoid");
        attr(p, "alpha", 1.0f / 6.0f);
        attr(p, "beta", 0.5f);
        add("Mul", {xs.at(0), n.name + ".hardsigmoid"}, out, n.name);
        return;
      }
      case Op::Mul: add("Mul", xs, out, n.name); return;
      default: fail("internal: node '{}' is not elementwise", n.name);
    }
  }

  // ---- int8: the QDQ form of the int8 program (export.hpp) ----

  // QuantizeLinear + DequantizeLinear of `x` on `scale` (zero point int8 0):
  // the node's value as bsp's int8 tensor holds it, dequantised, in the tensor
  // named after the node.
  void qdq(const std::string& x, const Node& n, double scale, const std::string& out = {}) {
    const float s = static_cast<float>(scale);
    const int8_t zero = 0;
    const std::string sc = weight(n.name + ".scale", Shape{}, &s), zp = weight(n.name + ".zero_point", Shape{}, &zero);
    add("QuantizeLinear", {x, sc, zp}, n.name + ".q", n.name + ".quantize");
    add("DequantizeLinear", {n.name + ".q", sc, zp}, out.empty() ? n.name : out, n.name + ".dequantize");
  }

  // The clamp [lo, hi] of a quantised value with scale `scale` before its
  // QuantizeLinear: Relu for [0, 127], Clip on the bounds' real values
  // otherwise, nothing for the full range (QuantizeLinear saturates).
  std::string clamp(const std::string& x, const Node& n, const q8::QNode& q) {
    if (q.lo <= -128 && q.hi >= 127) return x;
    if (q.lo == 0 && q.hi >= 127) {
      add("Relu", {x}, n.name + ".clamped", n.name + ".relu");
    } else {
      const float lo = static_cast<float>(q.lo * q.scale), hi = static_cast<float>(q.hi * q.scale);
      add("Clip", {x, weight(n.name + ".min", Shape{}, &lo), weight(n.name + ".max", Shape{}, &hi)}, n.name + ".clamped",
          n.name + ".clip");
    }
    return n.name + ".clamped";
  }

  // A layer's int8 weight and int32 bias, dequantised by DequantizeLinear per
  // output channel (axis 0): weight scale w_scale[o], bias scale
  // s_in * w_scale[o], as bsp computes them.
  std::vector<std::string> qweights(const Node& n, const q8::QNode& q, Array<int8_t> w) {
    const size_t O = q.w_scale.size();
    const double s_in = q_->nodes[m_.index_of(n.inputs.at(0))].scale;
    std::vector<float> ws(O), bs(O);
    for (size_t o = 0; o < O; ++o) {
      ws[o] = static_cast<float>(q.w_scale[o]);
      bs[o] = static_cast<float>(s_in * q.w_scale[o]);
    }
    const std::vector<int8_t> wz(O, 0);
    const std::vector<int32_t> bz(O, 0);
    const Shape dim{static_cast<int64_t>(O)};
    const std::string wq = weight(n.name + ".weight_q", w), bq = weight(n.name + ".bias_q", q.bias);
    onnx::NodeProto* dw = add("DequantizeLinear",
                              {wq, weight(n.name + ".weight_scale", dim, ws.data()), weight(n.name + ".weight_zero_point", dim, wz.data())},
                              n.name + ".weight", n.name + ".weight_dequantize");
    attr(dw, "axis", int64_t{0});
    onnx::NodeProto* db = add("DequantizeLinear",
                              {bq, weight(n.name + ".bias_scale", dim, bs.data()), weight(n.name + ".bias_zero_point", dim, bz.data())},
                              n.name + ".bias", n.name + ".bias_dequantize");
    attr(db, "axis", int64_t{0});
    return {in(n, 0), n.name + ".weight", n.name + ".bias"};
  }

  void node_int8(size_t i) {
    const Node& n = m_.nodes[i];
    const q8::QNode& q = q_->nodes[i];
    const std::string f = n.name + ".f";  // the float value before its clamp and quantisation
    switch (q.kind) {
      case q8::Kind::Input:  // the graph input is the float image
        input(n);
        tensor_[i] = n.name + ".dequantized";
        return qdq(n.name, n, q.scale, tensor_[i]);
      case q8::Kind::Identity:  // folded or fused: the value of its input
        tensor_[i] = in(n, 0);
        return;
      case q8::Kind::Conv: {
        Array<int8_t> w = to_oihw(q.weight);
        const int64_t kh = q.weight.dim(1), kw = q.weight.dim(2);
        conv(add("Conv", qweights(n, q, std::move(w)), f, n.name), n, kh, kw);
        return qdq(clamp(f, n, q), n, q.scale);
      }
      case q8::Kind::Affine: {  // a per-channel affine: a 1x1 depthwise conv
        const int64_t C = q.weight.dim(0);
        Array<int8_t> w = q.weight.clone();
        w.reshape({C, 1, 1, 1});
        onnx::NodeProto* p = add("Conv", qweights(n, q, std::move(w)), f, n.name);
        attr(p, "kernel_shape", std::vector<int64_t>{1, 1});
        attr(p, "group", C);
        return qdq(clamp(f, n, q), n, q.scale);
      }
      case q8::Kind::Dense:
        attr(add("Gemm", qweights(n, q, q.weight.clone()), f, n.name), "transB", int64_t{1});
        return qdq(clamp(f, n, q), n, q.scale);
      case q8::Kind::Relu: add("Relu", {in(n, 0)}, f, n.name); break;
      case q8::Kind::Clip: qdq(clamp(in(n, 0), n, q), n, q.scale); return;
      case q8::Kind::MaxPool:
      case q8::Kind::AvgPool: pool(n, f); break;
      case q8::Kind::GlobalAvgPool: global_pool(n, f); break;
      case q8::Kind::Add:
        add(n.inputs.size() == 2 ? "Add" : "Sum", ins(n), f, n.name);
        return qdq(clamp(f, n, q), n, q.scale);
      case q8::Kind::Concat: attr(add("Concat", ins(n), f, n.name), "axis", int64_t{1}); break;
      case q8::Kind::Flatten: flatten(n, f); break;
      case q8::Kind::Softmax:  // float, on the dequantised input
        attr(add("Softmax", {in(n, 0)}, n.name, n.name), "axis", int64_t{shapes_[i].size() == 3 ? 1 : -1});
        return;
      case q8::Kind::Lut:  // the table's function on the dequantised input, quantised on the output scale
      case q8::Kind::Mul:  // the product of the dequantised inputs, quantised on the output scale
        elementwise(n, ins(n), f);
        break;
      case q8::Kind::kCount: break;
    }
    qdq(f, n, q.scale);
  }

  void node(size_t i) {
    const Node& n = m_.nodes[i];
    const std::string& name = n.name;
    switch (n.op) {
      case Op::Input: return input(n);
      case Op::Conv2d: {
        const Tensor& w = n.param("weight");
        std::vector<std::string> args{in(n, 0), weight(name + ".weight", to_oihw(w))};
        if (n.has_param("bias")) args.push_back(weight(name + ".bias", n.param("bias")));
        conv(add("Conv", args, name, name), n, w.dim(1), w.dim(2));
        return;
      }
      case Op::Dense: {
        std::vector<std::string> args{in(n, 0), weight(name + ".weight", n.param("weight"))};
        if (n.has_param("bias")) args.push_back(weight(name + ".bias", n.param("bias")));
        attr(add("Gemm", args, name, name), "transB", int64_t{1});
        return;
      }
      case Op::BatchNorm: {
        std::vector<std::string> args{in(n, 0)};
        for (const char* k : {"gamma", "beta", "mean", "var"}) args.push_back(weight(name + "." + k, n.param(k)));
        attr(add("BatchNormalization", args, name, name), "epsilon", static_cast<float>(n.attrs.get_double("eps", 1e-5)));
        return;
      }
      case Op::Relu: add("Relu", {in(n, 0)}, name, name); return;
      case Op::Clip: {  // opset 13: the bounds are scalar inputs
        const float lo = static_cast<float>(n.attrs.get_double("min")), hi = static_cast<float>(n.attrs.get_double("max"));
        add("Clip", {in(n, 0), weight(name + ".min", Shape{}, &lo), weight(name + ".max", Shape{}, &hi)}, name, name);
        return;
      }
      case Op::MaxPool:
      case Op::AvgPool: pool(n, name); return;
      case Op::GlobalAvgPool: global_pool(n, name); return;
      case Op::Add:
        add(n.inputs.size() == 2 ? "Add" : "Sum", ins(n), name, name);
        return;
      case Op::Concat: attr(add("Concat", ins(n), name, name), "axis", int64_t{1}); return;
      case Op::Flatten: flatten(n, name); return;
      case Op::Softmax:
        attr(add("Softmax", {in(n, 0)}, name, name), "axis", int64_t{shapes_[i].size() == 3 ? 1 : -1});
        return;
      case Op::Sigmoid:
      case Op::HardSigmoid:
      case Op::HardSwish:
      case Op::Mul: return elementwise(n, ins(n), name);
    }
    fail("node '{}': op '{}' has no ONNX form", n.name, op_name(n.op));
  }

  static void set_dims(onnx::ValueInfoProto* v, const std::vector<int64_t>& dims) {
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d < 0)
        dim->set_dim_param("N");
      else
        dim->set_dim_value(d);
    }
  }

  // [N, C, H, W] with the batch dynamic.
  void input(const Node& n) {
    const Shape s = n.attrs.get_ints("shape");
    onnx::ValueInfoProto* v = g_.add_input();
    v->set_name(n.name);
    set_dims(v, {-1, s[2], s[0], s[1]});
  }

  void output(size_t i) {
    const Shape& s = shapes_[i];
    onnx::ValueInfoProto* v = g_.add_output();
    v->set_name(tensor_[i]);
    if (s.size() == 3)
      set_dims(v, {-1, s[2], s[0], s[1]});
    else
      set_dims(v, {-1, s[0]});
  }

  const Model& m_;
  const q8::QModel* q_;  // int8: the program to write in QDQ form; null: fp32
  onnx::ModelProto& mp_;
  onnx::GraphProto& g_;
  std::vector<Shape> shapes_;
  std::vector<std::string> tensor_;  // per node: the ONNX tensor holding its value
};

}  // namespace

void export_onnx(const Model& m, const std::string& path, const ExportOptions& opt) {
  m.validate();
  const q8::QModel* q = nullptr;
  if (opt.int8) {
    if (!m.compact || !m.compact->int8)
      fail("the model has no int8 program{}: run bsp compact --dtype int8 first",
           m.compact_dropped.empty() ? "" : " (" + m.compact_dropped + ")");
    q = &*m.compact->int8;
  }
  onnx::ModelProto mp;
  Exporter(m, q, mp).run();
  std::ofstream f(path, std::ios::binary);
  if (!f || !mp.SerializeToOstream(&f)) fail("cannot write '{}': {}", path, errno_message(errno));
}

}  // namespace bsp::onnx_io
