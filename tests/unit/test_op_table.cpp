// The op table (core/op_table.hpp) against the back ends: every op has an
// entry, and every back end that the entry says runs an op does run the op's
// example model and agrees with the reference forward; where the entry says
// it does not, the user gets the error naming the node, the op and the back
// end. A new op without an example model, or with a back-end column that
// the back end does not honour, fails here.
#include <catch2/catch.hpp>

#include <set>

#include "aie2_helpers.hpp"
#include "core/fusion.hpp"
#include "core/op_table.hpp"
#include "kernels/runner.hpp"
#include "train_helpers.hpp"

using namespace bsp;

namespace {

using G = GraphBuilder;

// The smallest model that runs `op` on an [8, 8, 16] input (the result of
// node "op" is read by what follows), or nullopt when the test knows no
// example for it.
std::optional<Model> example(Op op) {
  G b("example-" + std::string(op_name(op)), 8, 8, 16);
  const std::string x = "input";
  auto conv = [&](const std::string& name, const std::string& in) { return b.conv(name, in, G::square(16, 3, 1, 1, true)); };
  std::string y;
  switch (op) {
    case Op::Input: y = conv("op.next", x); break;
    case Op::Conv2d: {
      // groups 1, then a depthwise conv with relu6 (the CPU's depthwise
      // kernels), then groups 4 (4 channels per group: the reference op).
      y = b.relu("op.relu", b.batchnorm("op.bn", b.conv("op", x, G::square(16, 3, 1, 1))));
      G::ConvSpec dw = G::square(16, 3, 2, 1, true), grouped = G::square(16, 3, 1, 1);
      dw.groups = 16;
      grouped.groups = 4;
      y = b.clip("op.dw.clip", b.batchnorm("op.dw.bn", b.conv("op.dw", y, dw)), 0, 6);
      y = b.conv("op.g", y, grouped);
      break;
    }
    case Op::Dense: y = b.relu("op.relu", b.dense("op", b.flatten("flat", x), 24)); break;
    case Op::BatchNorm: {
      // Folded into its conv, and alone after a concat (with a relu).
      y = b.concat("cat", {b.batchnorm("op", conv("conv", x)), conv("conv2", x)});
      y = b.relu("op2.relu", b.batchnorm("op2", y));
      break;
    }
    case Op::Relu: y = b.relu("op", conv("conv", x)); break;
    case Op::MaxPool: y = b.maxpool("op", conv("conv", x), 3, 2, 1); break;
    case Op::AvgPool: y = b.avgpool("op", conv("conv", x), 3, 2, 1, false); break;
    case Op::GlobalAvgPool: y = b.global_avgpool("op", conv("conv", x)); break;
    case Op::Add: y = b.relu("op.relu", b.add("op", {conv("a", x), conv("b", x)})); break;
    case Op::Concat: y = conv("after", b.concat("op", {conv("a", x), conv("b", x)})); break;
    case Op::Flatten: y = b.flatten("op", conv("conv", x)); break;
    case Op::Clip: {
      Attrs a;
      a.set("min", -1.0);  // both bounds cut (relu6 would be [0, 6])
      a.set("max", 1.0);
      y = b.node("op", Op::Clip, {conv("conv", x)}, a);
      break;
    }
    case Op::Sigmoid: y = b.node("op", Op::Sigmoid, {conv("conv", x)}); break;
    case Op::HardSigmoid: {
      Attrs a;
      a.set("alpha", 0.25);  // not torch's 1/6: the attributes are read
      a.set("beta", 0.4);
      y = b.node("op", Op::HardSigmoid, {conv("conv", x)}, a);
      break;
    }
    case Op::HardSwish: y = b.node("op", Op::HardSwish, {conv("conv", x)}); break;
    case Op::Mul: {
      // A squeeze-excitation scale (the whole map's average, a 1x1 conv)
      // broadcast over H and W, then the same shape (x * sigmoid(x), a SiLU).
      const std::string c = conv("conv", x);
      const std::string s = b.conv("se.fc", b.avgpool("se.pool", c, 8, 1), G::square(16, 1, 1, 0, true));
      const std::string se = b.node("op", Op::Mul, {c, s});
      y = b.node("op.silu", Op::Mul, {se, b.node("sig", Op::Sigmoid, {se})});
      break;
    }
    case Op::Softmax: {
      const std::string d = b.dense("dense", b.flatten("flat", conv("conv", x)), 10);
      b.softmax("op", d);
      return b.finish();
    }
  }
  if (y.empty()) return std::nullopt;
  if (b.shape(y).size() == 3) y = b.global_avgpool("gap", y);
  b.dense("logits", y, 10);
  return b.finish();
}

Model with_weights(Model m, uint64_t seed) {
  init_weights(m, seed);
  test::randomise_batchnorms(m, seed + 1);
  return m;
}

Tensor images(const Model& m, int64_t n, uint64_t seed) {
  const Shape s = m.input_shape();
  return test::random_tensor({n, s[0], s[1], s[2]}, seed);
}

double rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.size() == b.size());
  double range = 1e-6, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    range = std::max(range, static_cast<double>(std::abs(b[i])));
    d = std::max(d, static_cast<double>(std::abs(a[i] - b[i])));
  }
  return d / range;
}

// The trainer's eval-mode forward on x [n, H, W, C], and a backward pass
// that must give finite gradients.
Tensor trainer_forward(Model& m, const Tensor& x) {
  train::NetOptions o;
  o.max_batch = x.dim(0);
  train::Net net(m, o);
  test::to_channel_major(x, net.input());
  net.forward(x.dim(0), train::Mode::Eval);
  Tensor y = test::from_channel_major(net.output(), x.dim(0), net.output().act.data());
  net.forward(x.dim(0), train::Mode::Train);
  std::fill(net.output().grad.begin(), net.output().grad.end(), 1.0f);
  net.backward();
  for (const train::Param& p : net.params())
    for (float g : p.grad) REQUIRE(std::isfinite(g));
  return y;
}

}  // namespace

TEST_CASE("the op table has one entry per op, in enum order, with unique names", "[op_table]") {
  const auto& t = op_table();
  std::set<std::string> names;
  for (size_t i = 0; i < t.size(); ++i) {
    INFO("entry " << i << " " << t[i].name);
    CHECK(static_cast<size_t>(t[i].op) == i);
    CHECK(names.insert(t[i].name).second);
    CHECK(op_from_name(t[i].name) == t[i].op);
    CHECK(t[i].shape != nullptr);
    CHECK(t[i].reference != nullptr);
    for (Backend b : kBackends) {
      const Handling& h = t[i].on(b);
      // Where a back end runs an op only somewhere, the note says where.
      if (h.run == Run::LastOnly || h.run == Run::Folded) CHECK(std::string(h.note).rfind("only", 0) == 0);
      if (h.run == Run::Reference) CHECK(b == Backend::Fp32);
    }
  }
  // Every op of the enum has its entry (op_entry refuses an op it does not know).
  CHECK(t.size() == kOpCount);
  for (size_t i = 0; i < kOpCount; ++i) CHECK_NOTHROW(op_entry(static_cast<Op>(i)));
  CHECK_THROWS_WITH(op_entry(static_cast<Op>(kOpCount)), Catch::Contains("no entry in the op table"));
}

TEST_CASE("every op runs where the op table says it does, and agrees with its reference", "[op_table]") {
  for (const OpEntry& e : op_table()) {
    INFO("op " << e.name);
    REQUIRE(example(e.op));  // a new op needs its example model above
    auto make = [&] { return with_weights(*example(e.op), 5); };
    const Model m = make();
    const Tensor x = images(m, 2, 9);
    const Tensor ref = reference_forward(m, x);

    if (e.trainer.run == Run::Native || e.trainer.run == Run::LastOnly) {
      Model t = make();
      Tensor y = trainer_forward(t, x);
      if (e.op != Op::Softmax) CHECK(rel_diff(y, ref) < 1e-4);  // the trainer's output is the logits
    }
    if (e.fp32.run != Run::Unsupported) {
      kernels::Runner r(m, kernels::Path::Dense);
      CHECK(rel_diff(r.forward(x), ref) < 1e-4);
    }
    Model q = make();
    if (e.int8.run != Run::Unsupported) {
      compact::CompactOptions co;
      co.dtype = DType::Int8;
      q.compact = std::make_shared<compact::CompactModel>(compact::compact_model(q, co, &x));  // calibrated on x
      const Tensor yq = q8::reference_forward(q, *q.compact->int8, x);
      // Quantisation error (pools keep their input scale, so averages lose
      // levels), not a different computation.
      CHECK(rel_diff(yq, ref) < 0.25);
      kernels::Runner r(q);
      REQUIRE(r.is_int8());
      const Tensor yk = r.forward(x);
      CHECK(std::equal(yk.begin(), yk.end(), yq.begin()));
    }
    if (e.aie2.run == Run::Unsupported) {  // refused by the table, naming the node, op and back end
      CHECK_THROWS_WITH(test::run_pipeline(m, "aie2:2x2"),
                        Catch::Contains(fmt::format("{} does not run op '{}': {}", backend_name(Backend::Aie2), e.name,
                                                    e.aie2.note)));
    }
    if (e.aie2.run != Run::Unsupported) {
      auto fp = test::run_pipeline(m, "aie2:2x2");
      CHECK(fp.max_diff <= 1e-4 * fp.max_ref);
      if (e.op != Op::Softmax) {  // "fp32 programs only"
        auto i8 = test::run_pipeline(q, "aie2:2x2");
        CHECK(i8.max_diff == 0);
      }
    }
  }
}

TEST_CASE("a back end that does not run an op there says which node, op and back end", "[op_table]") {
  // A softmax before the end: the trainer and int8 take it only last.
  G b("mid-softmax", 4, 4, 8);
  b.dense("logits", b.softmax("sm", b.dense("d", b.flatten("f", "input"), 10)), 10);
  Model m = with_weights(b.finish(), 1);
  for (Backend be : {Backend::Trainer, Backend::Int8}) {
    const std::string want =
        fmt::format("node 'sm': {} runs op 'softmax' {}", backend_name(be), op_entry(Op::Softmax).on(be).note);
    if (be == Backend::Trainer)
      CHECK_THROWS_WITH(train::Net(m, {}), want);
    else
      CHECK_THROWS_WITH(test::make_int8(m), want);
  }
}

TEST_CASE("the fusion pass: groups per option", "[op_table][fusion]") {
  // conv -> bn -> add(., skip) -> relu, skip computed first; a lone bn + relu; an add + relu.
  G b("fusion", 6, 6, 8);
  const std::string skip = b.conv("skip", "input", G::square(8, 1, 1, 0));
  const std::string main = b.batchnorm("c.bn", b.conv("c", "input", G::square(8, 3, 1, 1)));
  const std::string r = b.relu("res.relu", b.add("res", {main, skip}));
  const std::string lone = b.relu("lone.relu", b.batchnorm("lone", b.concat("cat", {r, skip})));
  b.relu("end.relu", b.add("end", {lone, lone}));
  const Model m = b.finish();
  auto nodes = [&](const Fusion& f, const std::string& head) {
    std::vector<std::string> v;
    for (size_t j : f.groups[f.group_of[m.index_of(head)]].nodes) v.push_back(m.nodes[j].name);
    return v;
  };
  using V = std::vector<std::string>;
  const Fusion inf = fuse(m);
  CHECK(nodes(inf, "c") == V{"c", "c.bn", "res", "res.relu"});
  const FusedGroup& g = inf.groups[inf.group_of[m.index_of("c")]];
  CHECK(m.nodes[g.addend].name == "skip");
  CHECK(g.add_self == 0);
  CHECK(nodes(inf, "skip") == V{"skip"});  // its add goes to "c": skip's consumers are two
  CHECK(nodes(inf, "lone") == V{"lone", "lone.relu"});
  CHECK(nodes(inf, "end") == V{"end", "end.relu"});  // add(x, x): x has two reads
  const Fusion q = fuse(m, {.fold_layers = true, .fuse_add = false});
  CHECK(nodes(q, "c") == V{"c", "c.bn"});
  CHECK(nodes(q, "res") == V{"res", "res.relu"});
  const Fusion t = fuse(m, {.fold_layers = false, .fuse_add = false});
  CHECK(nodes(t, "c") == V{"c"});
  CHECK(nodes(t, "c.bn") == V{"c.bn"});
  CHECK(nodes(t, "res") == V{"res", "res.relu"});
  CHECK(nodes(t, "lone") == V{"lone", "lone.relu"});
  // An add whose other operand comes later joins that operand's layer instead.
  G d("later", 6, 6, 8);
  const std::string a = d.batchnorm("a.bn", d.conv("a", "input", G::square(8, 3, 1, 1)));
  const std::string s = d.batchnorm("s.bn", d.conv("s", "input", G::square(8, 1, 1, 0)));
  d.add("sum", {a, s});
  const Model md = d.finish();
  const Fusion fd = fuse(md);
  CHECK(fd.groups[fd.group_of[md.index_of("a")]].nodes.size() == 2);
  CHECK(fd.groups[fd.group_of[md.index_of("sum")]].head == md.index_of("s"));
}
