// Training-step benchmark of the trainer (src/train): forward + backward +
// SGD of a zoo network on random data, dense or with block masks, and the
// time per layer. Timings only; correctness is the unit tests' job.
//   bench_train ARCH [--batch N] [--steps N] [--density D] [--im2col] [--threads N]
// --density D: prune every conv/dense layer but the first to block:8x8 at D.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "sparsity/pattern.hpp"
#include "sparsity/prune.hpp"
#include "train/loss.hpp"
#include "train/net.hpp"
#include "train/optimizer.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using namespace bsp::train;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_train ARCH [--batch N] [--steps N] [--density D] [--im2col] [--threads N]\n");
    return 2;
  }
  std::string arch = argv[1];
  int64_t batch = 128, steps = 20;
  double density = 1.0;
  bool im2col = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) batch = std::atol(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atol(argv[++i]);
    else if (a == "--density" && i + 1 < argc) density = std::atof(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) omp_set_num_threads(std::atoi(argv[++i]));
    else if (a == "--im2col") im2col = true;
    else {
      std::fprintf(stderr, "bench_train: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  setenv("BSP_PROFILE", "1", 1);
  const ArchInfo& info = find_arch(arch);
  Model m = info.build(info.default_classes);
  init_weights(m, 1);
  if (density < 1.0) {
    PruneOptions po;
    po.pattern = parse_pattern("block:8x8");
    po.density = density;
    prune_model(m, po);
  }
  NetOptions o;
  o.max_batch = batch;
  o.conv_path = im2col ? ConvPath::Im2col : ConvPath::Auto;
  Net net(m, o);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  Rng r(3);
  for (auto& l : labels) l = static_cast<int64_t>(r.below(static_cast<uint64_t>(net.classes())));
  fill_normal(net.input().act.data(), net.input().act.size(), 1.0, 7);
  SgdConfig sgd;
  sgd.lr = 0.01;
  std::vector<double> ms;
  for (int64_t s = 0; s < steps + 2; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    net.forward(batch, Mode::Train);
    Value& out = net.output();
    softmax_xent(out.act.data(), net.classes(), batch, labels.data(), out.grad.data());
    net.backward();
    sgd_step(net.params(), {}, sgd, StepHyper{0.01, 0.9});
    net.weights_changed();
    if (s >= 2) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%s batch %lld density %.2f%s threads %d kernels %s: median %.1f ms/step, %.0f images/s\n", arch.c_str(),
              static_cast<long long>(batch), density, im2col ? " im2col" : "", omp_get_max_threads(),
              net.kernels().name, ms[ms.size() / 2], 1000.0 * static_cast<double>(batch) / ms[ms.size() / 2]);
  std::printf("%s", net.profile_report().c_str());
  return 0;
}
