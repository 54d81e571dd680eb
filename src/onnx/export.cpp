// bsp -> ONNX (the conventions are in export.hpp).
#include "onnx/export.hpp"

#include <fstream>
#include <unordered_map>

#include <onnx/onnx_pb.h>

#include "core/error.hpp"
#include "core/shapes.hpp"
#include "onnx/metadata.hpp"

namespace bsp::onnx_io {

namespace {

class Exporter {
 public:
  Exporter(const Model& m, onnx::ModelProto& mp) : m_(m), mp_(mp), g_(*mp.mutable_graph()), shapes_(infer_shapes(m)) {}

  void run() {
    mp_.set_ir_version(7);
    mp_.set_producer_name("bsp");
    mp_.set_producer_version(BSP_VERSION);
    auto* op = mp_.add_opset_import();
    op->set_domain("");
    op->set_version(kExportOpset);
    g_.set_name(m_.arch.empty() ? "bsp" : m_.arch);
    for (size_t i = 0; i < m_.nodes.size(); ++i) node(i);
    output(m_.nodes.size() - 1);
    for (const auto& [k, v] : bsp_metadata(m_)) {
      auto* p = mp_.add_metadata_props();
      p->set_key(k);
      p->set_value(v);
    }
  }

 private:
  const std::string& in(const Node& n, size_t k) { return n.inputs.at(k); }

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

  // An initializer of float32 values with ONNX dimensions `dims`.
  std::string weight(const std::string& name, const Shape& dims, const float* values) {
    onnx::TensorProto* t = g_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values), static_cast<size_t>(shape_numel(dims)) * sizeof(float)));
    return name;
  }
  std::string weight(const std::string& name, const Tensor& t) { return weight(name, t.shape(), t.data()); }

  void window(onnx::NodeProto* p, const Node& n, std::vector<int64_t> kernel) {
    attr(p, "kernel_shape", kernel);
    attr(p, "strides", n.attrs.get_ints("stride", std::vector<int64_t>{1, 1}));
    attr(p, "pads", n.attrs.get_ints("pad", std::vector<int64_t>{0, 0, 0, 0}));
  }

  void node(size_t i) {
    const Node& n = m_.nodes[i];
    const std::string& name = n.name;
    switch (n.op) {
      case Op::Input: return input(n);
      case Op::Conv2d: {
        const Tensor& w = n.param("weight");  // OHWI -> OIHW
        const int64_t O = w.dim(0), kh = w.dim(1), kw = w.dim(2), I = w.dim(3);
        Tensor oihw({O, I, kh, kw});
        for (int64_t o = 0; o < O; ++o)
          for (int64_t y = 0; y < kh; ++y)
            for (int64_t x = 0; x < kw; ++x)
              for (int64_t c = 0; c < I; ++c)
                oihw[static_cast<size_t>(((o * I + c) * kh + y) * kw + x)] = w[static_cast<size_t>(((o * kh + y) * kw + x) * I + c)];
        std::vector<std::string> ins{in(n, 0), weight(name + ".weight", oihw)};
        if (n.has_param("bias")) ins.push_back(weight(name + ".bias", n.param("bias")));
        onnx::NodeProto* p = add("Conv", ins, name, name);
        window(p, n, {kh, kw});
        attr(p, "dilations", n.attrs.get_ints("dilation", std::vector<int64_t>{1, 1}));
        attr(p, "group", n.attrs.get_int("groups", 1));
        return;
      }
      case Op::Dense: {
        std::vector<std::string> ins{in(n, 0), weight(name + ".weight", n.param("weight"))};
        if (n.has_param("bias")) ins.push_back(weight(name + ".bias", n.param("bias")));
        attr(add("Gemm", ins, name, name), "transB", int64_t{1});
        return;
      }
      case Op::BatchNorm: {
        std::vector<std::string> ins{in(n, 0)};
        for (const char* k : {"gamma", "beta", "mean", "var"}) ins.push_back(weight(name + "." + k, n.param(k)));
        attr(add("BatchNormalization", ins, name, name), "epsilon", static_cast<float>(n.attrs.get_double("eps", 1e-5)));
        return;
      }
      case Op::Relu: add("Relu", {in(n, 0)}, name, name); return;
      case Op::Clip: {  // opset 13: the bounds are scalar inputs
        const float lo = static_cast<float>(n.attrs.get_double("min")), hi = static_cast<float>(n.attrs.get_double("max"));
        add("Clip", {in(n, 0), weight(name + ".min", Shape{}, &lo), weight(name + ".max", Shape{}, &hi)}, name, name);
        return;
      }
      case Op::MaxPool: {
        onnx::NodeProto* p = add("MaxPool", {in(n, 0)}, name, name);
        window(p, n, n.attrs.get_ints("kernel"));
        attr(p, "dilations", n.attrs.get_ints("dilation", std::vector<int64_t>{1, 1}));
        return;
      }
      case Op::AvgPool: {
        onnx::NodeProto* p = add("AveragePool", {in(n, 0)}, name, name);
        window(p, n, n.attrs.get_ints("kernel"));
        attr(p, "count_include_pad", n.attrs.get_int("count_include_pad", 1));
        return;
      }
      case Op::GlobalAvgPool:
        add("GlobalAveragePool", {in(n, 0)}, name + ".pooled", name);
        attr(add("Flatten", {name + ".pooled"}, name, name + ".flatten"), "axis", int64_t{1});
        return;
      case Op::Add:
        add(n.inputs.size() == 2 ? "Add" : "Sum", n.inputs, name, name);
        return;
      case Op::Concat: attr(add("Concat", n.inputs, name, name), "axis", int64_t{1}); return;
      case Op::Flatten: {
        const Shape& s = shapes_[m_.index_of(in(n, 0))];
        std::string x = in(n, 0);
        if (s.size() == 3 && s[0] * s[1] > 1) {  // NCHW -> NHWC, so that the features come in bsp's H, W, C order
          attr(add("Transpose", {x}, name + ".nhwc", name + ".transpose"), "perm", std::vector<int64_t>{0, 2, 3, 1});
          x = name + ".nhwc";
        }
        attr(add("Flatten", {x}, name, name), "axis", int64_t{1});
        return;
      }
      case Op::Softmax:
        attr(add("Softmax", {in(n, 0)}, name, name), "axis", int64_t{shapes_[i].size() == 3 ? 1 : -1});
        return;
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
    v->set_name(m_.nodes[i].name);
    if (s.size() == 3)
      set_dims(v, {-1, s[2], s[0], s[1]});
    else
      set_dims(v, {-1, s[0]});
  }

  const Model& m_;
  onnx::ModelProto& mp_;
  onnx::GraphProto& g_;
  std::vector<Shape> shapes_;
};

}  // namespace

void export_onnx(const Model& m, const std::string& path) {
  m.validate();
  onnx::ModelProto mp;
  Exporter(m, mp).run();
  std::ofstream f(path, std::ios::binary);
  if (!f || !mp.SerializeToOstream(&f)) fail("cannot write '{}': {}", path, errno_message(errno));
}

}  // namespace bsp::onnx_io
