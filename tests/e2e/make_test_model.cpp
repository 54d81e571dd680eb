// Test helper: writes small bsp model files that the zoo cannot make, for the
// end-to-end error tests.
//   make_test_model no-weights FILE   input -> relu -> flatten (nothing to prune)
//   make_test_model batchnorms FILE   convs with folded batchnorms and one batchnorm
//                                     that cannot fold (after a concat), all with
//                                     random statistics, as training leaves them
//   make_test_model tiny FILE         an 8x8x3 network with one node of nearly
//                                     every op (grouped and depthwise convs, add,
//                                     concat, clip, avg/max/global pools, squeeze-
//                                     excitation mul, sigmoid, hardswish,
//                                     hardsigmoid, an unfolded batchnorm), a few
//                                     thousand weights:
//                                     the base of the adversarial corpus
//                                     (tests/corpus), cheap for every stage
#include <cmath>
#include <cstdio>
#include <string>

#include "core/rng.hpp"
#include "modelfile/model_file.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

namespace {
// Batchnorm statistics and biases as training leaves them (init gives gamma 1,
// beta 0, mean 0, var 1 and zero biases).
void randomise_statistics(bsp::Model& m) {
  bsp::Rng rng(5);
  for (bsp::Node& n : m.nodes)
    for (auto& [k, t] : n.params)
      for (float& v : t) {
        const double u = rng.uniform();
        if (k == "gamma") v = static_cast<float>(0.5 + u);
        if (k == "beta" || k == "bias") v = static_cast<float>(u - 0.5);
        if (k == "mean") v = static_cast<float>(0.4 * (u - 0.5));
        if (k == "var") v = static_cast<float>(0.2 + u);
      }
}
}  // namespace

int main(int argc, char** argv) {
  using namespace bsp;
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_test_model no-weights|batchnorms|tiny FILE\n");
    return 2;
  }
  const std::string kind = argv[1];
  try {
    Model m;
    if (kind == "no-weights") {
      GraphBuilder b("no-weights", 4, 4, 3);
      b.flatten("flat", b.relu("relu", "input"));
      m = b.finish();
    } else if (kind == "batchnorms") {
      using G = GraphBuilder;
      G b("batchnorms", 12, 12, 3);
      auto cbr = [&](const std::string& name, const std::string& in, int64_t cout) {
        return b.relu(name + ".relu", b.batchnorm(name + ".bn", b.conv(name, in, G::square(cout, 3, 1, 1, true))));
      };
      const std::string x = cbr("stem", "input", 16);
      const std::string cat = b.concat("cat", {cbr("a", x, 16), cbr("b", x, 8)});
      const std::string y = b.relu("cat.relu", b.batchnorm("cat.bn", cat));
      b.dense("fc", b.global_avgpool("gap", cbr("c", y, 24)), 10);
      m = b.finish();
      init_weights(m, 1);
      randomise_statistics(m);
    } else if (kind == "tiny") {
      using G = GraphBuilder;
      G b("tiny", 8, 8, 3);
      auto cb = [&](const std::string& name, const std::string& in, G::ConvSpec spec) {
        return b.batchnorm(name + ".bn", b.conv(name, in, spec));
      };
      std::string x = b.relu("stem.relu", cb("stem", "input", G::square(16, 3, 1, 1, true)));
      const std::string a = b.clip("a.clip", cb("a", x, G::square(16, 3, 1, 1)), 0, 6);
      const std::string dw =
          b.node("dw.hswish", Op::HardSwish, {cb("dw", a, G::ConvSpec{16, 3, 3, 1, {1, 1, 1, 1}, 16, false})});
      const std::string g = cb("g", dw, G::ConvSpec{16, 1, 1, 1, {0, 0, 0, 0}, 2, false});
      x = b.relu("res.relu", b.add("res", {x, g}));
      x = b.maxpool("pool1", x, 2, 2);                                        // [4, 4, 16]
      const std::string c = b.relu("c.relu", cb("c", x, G::square(32, 3, 1, 1)));  // [4, 4, 32]
      Attrs hs;
      hs.set("alpha", 0.2);
      hs.set("beta", 0.5);
      const std::string se = b.node("se.gate", Op::HardSigmoid, {b.avgpool("se.pool", c, 4, 4)}, hs);  // [1, 1, 32]
      const std::string scaled = b.node("se.mul", Op::Mul, {c, se});
      const std::string d = b.node("d.sig", Op::Sigmoid, {b.conv("d", c, G::square(16, 1, 1, 0, true))});
      x = b.concat("cat", {scaled, d});                                          // [4, 4, 48]
      x = b.batchnorm("cat.bn", b.avgpool("pool2", x, 3, 2, 1, false));  // [2, 2, 48], not foldable
      // e is the last conv before the global pool: any stride >= 2 gives the
      // same 1x1 map (the adversarial corpus's legitimate huge strides).
      x = b.relu("e.relu", b.conv("e", x, G::square(32, 1, 1, 0, true)));
      x = b.global_avgpool("gap", x);  // [32]
      b.dense("fc", b.relu("fc1.relu", b.dense("fc1", x, 32)), 10);
      m = b.finish();
      init_weights(m, 3);
      randomise_statistics(m);
    } else {
      std::fprintf(stderr, "make_test_model: unknown kind '%s'\n", argv[1]);
      return 2;
    }
    save_model(m, argv[2]);
  } catch (const Error& e) {
    std::fprintf(stderr, "make_test_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
