// Test helper: writes a zoo model whose conv/dense layers (all but the first
// conv) carry a mask of the given pattern, built directly (random blocks,
// N:M by magnitude, random tiles), for the end-to-end tests of stages that
// read pruned models.
// Usage: make_pruned_h5 ARCH PATTERN DENSITY OUT   (PATTERN: block:RxC, nm:N:M, tw:G)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/model_io.hpp"
#include "../unit/sparse_helpers.hpp"
#include "zoo/zoo.hpp"

int main(int argc, char** argv) {
  using namespace bsp;
  if (argc != 5) {
    std::fprintf(stderr, "usage: make_pruned_h5 ARCH PATTERN DENSITY OUT\n");
    return 2;
  }
  Model m = find_arch(argv[1]).build(find_arch(argv[1]).default_classes);
  init_weights(m, 1);
  const std::string p = argv[2];
  const double d = std::atof(argv[3]);
  bool first = true;
  uint64_t seed = 1;
  for (Node& n : m.nodes) {
    if (!op_has_weight(n.op)) continue;
    if (first && n.op == Op::Conv2d) {
      first = false;
      continue;
    }
    long a = 0, b = 0;
    if (std::sscanf(p.c_str(), "block:%ldx%ld", &a, &b) == 2) {
      test::block_prune(n, a, b, d, seed++);
    } else if (std::sscanf(p.c_str(), "nm:%ld:%ld", &a, &b) == 2) {
      if (n.param("weight").shape().back() % b == 0) test::nm_prune(n, a, b);
    } else if (std::sscanf(p.c_str(), "tw:%ld", &a) == 1) {
      test::tw_prune(n, a, std::sqrt(d), std::sqrt(d), seed++);
    } else {
      std::fprintf(stderr, "unknown pattern %s\n", p.c_str());
      return 2;
    }
  }
  m.history.push_back("make_pruned_h5 " + std::string(argv[1]) + " " + p + " " + argv[3]);
  save_model(m, argv[4]);
  return 0;
}
