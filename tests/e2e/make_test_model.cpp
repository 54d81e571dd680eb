// Test helper: writes small bsp model files that the zoo cannot make, for the
// end-to-end error tests.
//   make_test_model no-weights FILE   input -> relu -> flatten (nothing to prune)
//   make_test_model batchnorms FILE   convs with folded batchnorms and one batchnorm
//                                     that cannot fold (after a concat), all with
//                                     random statistics, as training leaves them
#include <cmath>
#include <cstdio>
#include <string>

#include "core/rng.hpp"
#include "modelfile/model_file.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

int main(int argc, char** argv) {
  using namespace bsp;
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_test_model no-weights|batchnorms FILE\n");
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
      Rng rng(5);
      for (Node& n : m.nodes)
        for (auto& [k, t] : n.params)
          for (float& v : t) {
            const double u = rng.uniform();
            if (k == "gamma") v = static_cast<float>(0.5 + u);
            if (k == "beta" || k == "bias") v = static_cast<float>(u - 0.5);
            if (k == "mean") v = static_cast<float>(0.4 * (u - 0.5));
            if (k == "var") v = static_cast<float>(0.2 + u);
          }
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
