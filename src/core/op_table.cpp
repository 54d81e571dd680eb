// The op table (op_table.hpp has the recipe for adding an op).
#include "core/op_table.hpp"

#include <algorithm>
#include <cmath>

#include "core/act_sparsity.hpp"
#include "core/checked.hpp"
#include "core/reference_ops.hpp"
#include "core/shapes.hpp"

namespace bsp {

namespace {

Shape without_batch(const Tensor& x) { return Shape(x.shape().begin() + 1, x.shape().end()); }
const Tensor* opt_param(const Node& n, const char* p) { return n.has_param(p) ? &n.param(p) : nullptr; }

// A layer's input with its activation rule applied (core/act_sparsity.hpp):
// x itself without a rule, else `copy` holding x with its small blocks zeroed.
const Tensor& act_input(const Node& n, const Tensor& x, Tensor& copy) {
  const std::optional<ActRule> r = act_rule(n);
  if (!r) return x;
  copy = zero_small_blocks(x, r->block, r->t());
  return copy;
}

Shape same_shape(const Node&, const ShapeList& in) { return *in[0]; }

Shape pool_shape(const Node& n, const ShapeList& in) {
  const WindowGeom g = pool_geom(n, *in[0]);
  if (g.pt >= g.kh || g.pb >= g.kh || g.pl >= g.kw || g.pr >= g.kw)
    fail("node '{}': padding must be smaller than the window", n.name);
  return {g.Ho, g.Wo, g.C};
}

// avgpool's count_include_pad (bsp-format(5), OPS) is the integer 0 or 1:
// the stages read it as "!= 0", so any other value would mean 1 to them.
Shape avgpool_shape(const Node& n, const ShapeList& in) {
  const auto& all = n.attrs.all();
  if (auto it = all.find("count_include_pad"); it != all.end()) {
    const int64_t* v = std::get_if<int64_t>(&it->second);
    if (!v) fail("node '{}': avgpool count_include_pad must be the integer 0 or 1, not of another type", n.name);
    if (*v != 0 && *v != 1) fail("node '{}': avgpool count_include_pad is {}, not 0 or 1", n.name, *v);
  }
  return pool_shape(n, in);
}

constexpr Handling native{Run::Native};
constexpr Handling reference{Run::Reference};
constexpr Handling lookup{Run::Native, "a 256-entry lookup table on the int8 input"};
constexpr Handling aie2_lookup{Run::Native, "an elementwise stage: the int8 table as kernel constants (fp32: the function)"};

const std::vector<OpEntry> kOps = {
    {.op = Op::Input, .name = "input", .min_inputs = 0, .max_inputs = 0,
     .shape = [](const Node& n, const ShapeList&) -> Shape {
       Shape out = n.attrs.get_ints("shape");
       if (out.size() != 3) fail("node '{}': input shape must be [H, W, C]", n.name);
       for (auto d : out)
         if (d < 1) fail("node '{}': input shape {} has a non-positive size", n.name, shape_str(out));
       for (auto d : out) check_dim(n.name, "input dimension", d);
       return out;
     },
     .reference = [](const Node&, const TensorList& in) { return in.at(0)->clone(); },
     .trainer = native, .fp32 = native, .int8 = {Run::Native, "quantised with its scale"}, .aie2 = native},

    {.op = Op::Conv2d, .name = "conv2d", .min_inputs = 1, .max_inputs = 1,
     .required = {"weight"}, .optional = {"bias"}, .weighted = true, .act_rule = true, .role = Role::Layer,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       const ConvGeom g = conv_geom(n, *in[0]);
       return {g.Ho, g.Wo, g.Cout};
     },
     .reference = [](const Node& n, const TensorList& in) {
       Tensor zeroed;
       return ref::conv2d(act_input(n, *in.at(0), zeroed), n.param("weight"), opt_param(n, "bias"),
                          conv_geom(n, without_batch(*in[0])));
     },
     .trainer = native,
     .fp32 = {Run::Native, "depthwise convs on their own kernel; other groups > 1 run the reference op"},
     .int8 = {Run::Native, "depthwise convs on their own kernel; other groups > 1 run the int8 reference op"},
     .aie2 = {Run::Native, "groups > 1 as a conv whose weight is zero outside each group (8x8 blocks skipped)"}},

    {.op = Op::Dense, .name = "dense", .min_inputs = 1, .max_inputs = 1,
     .required = {"weight"}, .optional = {"bias"}, .weighted = true, .act_rule = true, .role = Role::Layer,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       const Tensor& w = n.param("weight");
       if (w.rank() != 2) fail("node '{}': dense weight must be [out, in]", n.name);
       if (in[0]->size() != 1)
         fail("node '{}': dense needs a vector input (flatten first), got {}", n.name, shape_str(*in[0]));
       if ((*in[0])[0] != w.dim(1)) fail("node '{}': weight takes {} inputs, input has {}", n.name, w.dim(1), (*in[0])[0]);
       if (n.has_param("bias") && n.param("bias").shape() != Shape{w.dim(0)})
         fail("node '{}': bias has shape {}, expected [{}] for {} outputs", n.name, shape_str(n.param("bias").shape()),
              w.dim(0), w.dim(0));
       return {w.dim(0)};
     },
     .reference = [](const Node& n, const TensorList& in) {
       Tensor zeroed;
       return ref::dense(act_input(n, *in.at(0), zeroed), n.param("weight"), opt_param(n, "bias"));
     },
     .trainer = native, .fp32 = native, .int8 = native, .aie2 = native},

    {.op = Op::BatchNorm, .name = "batchnorm", .min_inputs = 1, .max_inputs = 1,
     .required = {"beta", "gamma", "mean", "var"}, .role = Role::Norm,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       const int64_t c = in[0]->back();
       // The shape [C] exactly, not just C values: a [1, C] gamma is not one.
       for (const char* p : {"gamma", "beta", "mean", "var"})
         if (n.param(p).shape() != Shape{c})
           fail("node '{}': '{}' has shape {}, expected [{}] for {} channels", n.name, p, shape_str(n.param(p).shape()),
                c, c);
       return *in[0];
     },
     .reference = [](const Node& n, const TensorList& in) { return ref::batchnorm(*in.at(0), batchnorm_affine(n)); },
     .trainer = native,
     .fp32 = {Run::Native, "folded into the conv2d or dense layer before it, else the reference op"},
     .int8 = {Run::Native, "folded into the layer before it, else a per-channel affine"},
     .aie2 = {Run::Native, "folded into the conv2d or dense layer before it, else a 1x1 depthwise conv"}},

    {.op = Op::Relu, .name = "relu", .min_inputs = 1, .max_inputs = 1, .role = Role::Activation,
     .shape = same_shape,
     .reference = [](const Node&, const TensorList& in) { return ref::relu(*in.at(0)); },
     .trainer = native, .fp32 = {Run::Native, "in the epilogue of the layer it follows, else the reference op"},
     .int8 = native, .aie2 = native},

    {.op = Op::MaxPool, .name = "maxpool", .min_inputs = 1, .max_inputs = 1,
     .shape = pool_shape,
     .reference = [](const Node& n, const TensorList& in) {
       return ref::maxpool(*in.at(0), pool_geom(n, without_batch(*in[0])));
     },
     .trainer = native, .fp32 = native, .int8 = native, .aie2 = native},

    {.op = Op::AvgPool, .name = "avgpool", .min_inputs = 1, .max_inputs = 1,
     .shape = avgpool_shape,
     .reference = [](const Node& n, const TensorList& in) {
       return ref::avgpool(*in.at(0), pool_geom(n, without_batch(*in[0])), n.attrs.get_int("count_include_pad", 1));
     },
     .trainer = native, .fp32 = native, .int8 = native, .aie2 = native},

    {.op = Op::GlobalAvgPool, .name = "global_avgpool", .min_inputs = 1, .max_inputs = 1,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       if (in[0]->size() != 3) fail("node '{}': global_avgpool needs a [H, W, C] input", n.name);
       return {(*in[0])[2]};
     },
     .reference = [](const Node&, const TensorList& in) { return ref::global_avgpool(*in.at(0)); },
     .trainer = native, .fp32 = native, .int8 = native, .aie2 = native},

    {.op = Op::Add, .name = "add", .min_inputs = 2, .max_inputs = -1, .role = Role::Residual,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       for (auto* s : in)
         if (*s != *in[0])
           fail("node '{}': add inputs differ in shape: {} and {}", n.name, shape_str(*in[0]), shape_str(*s));
       return *in[0];
     },
     .reference = [](const Node&, const TensorList& in) { return ref::add(in); },
     .trainer = native, .fp32 = {Run::Native, "in the epilogue of the layer it follows, else the reference op"},
     .int8 = native, .aie2 = native},

    {.op = Op::Concat, .name = "concat", .min_inputs = 1, .max_inputs = -1,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       Shape out = *in[0];
       int64_t c = 0;
       for (auto* s : in) {
         if (s->size() != out.size() || !std::equal(s->begin(), s->end() - 1, out.begin()))
           fail("node '{}': concat inputs differ outside the channel axis: {} and {}", n.name, shape_str(out),
                shape_str(*s));
         c = checked_add(c, s->back(), fmt::format("node '{}': concat channels", n.name));
       }
       out.back() = c;
       return out;
     },
     .reference = [](const Node&, const TensorList& in) { return ref::concat(in); },
     .trainer = native, .fp32 = reference, .int8 = native,
     .aie2 = {Run::Free, "its inputs' producers write their channel slices in place"}},

    {.op = Op::Flatten, .name = "flatten", .min_inputs = 1, .max_inputs = 1,
     .shape = [](const Node&, const ShapeList& in) -> Shape { return {shape_numel(*in[0])}; },
     .reference = [](const Node&, const TensorList& in) { return ref::flatten(*in.at(0)); },
     .trainer = native, .fp32 = reference, .int8 = native, .aie2 = {Run::Free, "the same NHWC bytes seen as a vector"}},

    {.op = Op::Softmax, .name = "softmax", .min_inputs = 1, .max_inputs = 1,
     .shape = same_shape,
     .reference = [](const Node&, const TensorList& in) { return ref::softmax(*in.at(0)); },
     .trainer = {Run::LastOnly, "only as the last node: the loss takes the logits before it"},
     .fp32 = reference,
     .int8 = {Run::LastOnly, "only as the last node, in float on the dequantised logits"},
     .aie2 = {Run::Native, "fp32 programs only"}},

    {.op = Op::Clip, .name = "clip", .min_inputs = 1, .max_inputs = 1, .role = Role::Activation,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       const double lo = n.attrs.get_double("min"), hi = n.attrs.get_double("max");
       if (!(lo <= hi)) fail("node '{}': clip bounds [{}, {}] are empty", n.name, lo, hi);
       return *in[0];
     },
     .reference = [](const Node& n, const TensorList& in) {
       return ref::clip(*in.at(0), n.attrs.get_double("min"), n.attrs.get_double("max"));
     },
     .trainer = native, .fp32 = {Run::Native, "in the epilogue of the layer it follows, else the reference op"},
     .int8 = native, .aie2 = {Run::Native, "in the epilogue of the layer it follows, else an elementwise stage"}},

    {.op = Op::Sigmoid, .name = "sigmoid", .min_inputs = 1, .max_inputs = 1,
     .shape = same_shape,
     .reference = [](const Node&, const TensorList& in) { return ref::sigmoid(*in.at(0)); },
     .trainer = native, .fp32 = reference, .int8 = lookup, .aie2 = aie2_lookup},

    {.op = Op::HardSigmoid, .name = "hardsigmoid", .min_inputs = 1, .max_inputs = 1,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       const double a = n.attrs.get_double("alpha"), b = n.attrs.get_double("beta");
       if (!std::isfinite(a) || !std::isfinite(b)) fail("node '{}': hardsigmoid alpha {} and beta {} must be finite", n.name, a, b);
       return *in[0];
     },
     .reference = [](const Node& n, const TensorList& in) {
       return ref::hardsigmoid(*in.at(0), n.attrs.get_double("alpha"), n.attrs.get_double("beta"));
     },
     .trainer = native, .fp32 = reference, .int8 = lookup, .aie2 = aie2_lookup},

    {.op = Op::HardSwish, .name = "hardswish", .min_inputs = 1, .max_inputs = 1,
     .shape = same_shape,
     .reference = [](const Node&, const TensorList& in) { return ref::hardswish(*in.at(0)); },
     .trainer = native, .fp32 = reference, .int8 = lookup, .aie2 = aie2_lookup},

    {.op = Op::Mul, .name = "mul", .min_inputs = 2, .max_inputs = 2,
     .shape = [](const Node& n, const ShapeList& in) -> Shape {
       const Shape &a = *in[0], &b = *in[1];
       if (a == b) return a;
       // The squeeze-excitation scale: a [1, 1, C] per-channel factor, second.
       if (a.size() == 3 && b == Shape{1, 1, a[2]}) return a;
       if (b.size() == 3 && a == Shape{1, 1, b[2]})
         fail("node '{}': mul broadcasts its second input, not its first: swap {} and {}", n.name, shape_str(a), shape_str(b));
       fail("node '{}': mul inputs {} and {} are neither the same shape nor a map and a [1, 1, C] scale", n.name,
            shape_str(a), shape_str(b));
     },
     .reference = [](const Node&, const TensorList& in) { return ref::mul(*in.at(0), *in.at(1)); },
     .trainer = native, .fp32 = reference,
     .int8 = {Run::Native, "the int32 product requantised to the output scale"},
     .aie2 = {Run::Native, "an elementwise stage; a [1, 1, C] scale goes whole to every core"}},
};

}  // namespace

const std::vector<OpEntry>& op_table() { return kOps; }

const OpEntry& op_entry(Op op) {
  const size_t i = static_cast<size_t>(op);
  if (i >= kOps.size() || kOps[i].op != op) fail("internal: op {} has no entry in the op table", static_cast<int>(op));
  return kOps[i];
}

const Handling& OpEntry::on(Backend b) const {
  switch (b) {
    case Backend::Trainer: return trainer;
    case Backend::Fp32: return fp32;
    case Backend::Int8: return int8;
    case Backend::Aie2: return aie2;
  }
  fail("internal: unknown back end");
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Trainer: return "the trainer";
    case Backend::Fp32: return "the fp32 kernels";
    case Backend::Int8: return "the int8 program";
    case Backend::Aie2: return "the AIE2 back end";
  }
  return "?";
}

void fail_unsupported(const Node& n, Backend b) {
  const Handling& h = op_entry(n.op).on(b);
  if (h.run != Run::Unsupported)  // LastOnly, Folded: the note says where it runs ("only ...")
    fail("node '{}': {} runs op '{}' {}", n.name, backend_name(b), op_name(n.op), h.note);
  if (*h.note) fail("node '{}': {} does not run op '{}': {}", n.name, backend_name(b), op_name(n.op), h.note);
  fail("node '{}': {} does not run op '{}'", n.name, backend_name(b), op_name(n.op));
}

void require_backend(const Node& n, Backend b, bool last) {
  const Run r = op_entry(n.op).on(b).run;
  if (r == Run::Unsupported || (r == Run::LastOnly && !last)) fail_unsupported(n, b);
}

}  // namespace bsp
