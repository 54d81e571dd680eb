// Test helper: writes small bsp model files that the zoo cannot make, for the
// end-to-end error tests.
//   make_test_model no-weights FILE   input -> relu -> flatten (nothing to prune)
//   make_test_model nan FILE          fmnist-cnn with a NaN in conv2.conv's weight
#include <cmath>
#include <cstdio>
#include <string>

#include "core/model_io.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

int main(int argc, char** argv) {
  using namespace bsp;
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_test_model no-weights|nan FILE\n");
    return 2;
  }
  const std::string kind = argv[1];
  try {
    Model m;
    if (kind == "no-weights") {
      GraphBuilder b("no-weights", 4, 4, 3);
      b.flatten("flat", b.relu("relu", "input"));
      m = b.finish();
    } else if (kind == "nan") {
      m = build_fmnist_cnn(10);
      init_weights(m, 0);
      m.find("conv2.conv")->param("weight")[17] = std::nanf("");
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
