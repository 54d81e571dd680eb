// Training-step benchmark of the trainer (src/train): forward + backward +
// SGD of a zoo network on random data, dense, with block masks, or BDWP on
// nm:2:8, and the time per phase and per layer. Timings only; correctness is
// the unit tests' job.
//   bench_train ARCH [--batch N] [--steps N] [--reps N] [--density D] [--im2col] [--threads N]
//               [--modes LIST] [--layers]
// --density D: prune every conv/dense layer but the first to block:8x8 at D.
// --modes LIST: comma-separated runs compared in one process, interleaved
//   (REPS rounds of STEPS steps of each, so load changes hit all alike):
//   dense; bdwp (nm:2:8, per-channel masks, the paper); bdwpS (--bdwp-shared S,
//   e.g. bdwp8); a suffix /K updates the masks every K steps (bdwp8/4), a
//   suffix gG computes the convolutions' pruned weight gradient every G
//   steps (bdwp8/4g4, --bdwp-grad-every).
//   Prints per mode the median step time and its phases (forward, backward =
//   data + weight gradient, optimizer, masks = mask update + repack), as wall
//   and as process CPU time, and the ratio to the first mode. Without
//   --modes: the single run of --density with the per-layer table.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "sparsity/pattern.hpp"
#include "sparsity/prune.hpp"
#include "train/loss.hpp"
#include "train/net.hpp"
#include "train/optimizer.hpp"
#include "train/sparsity_schedule.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using namespace bsp::train;

namespace {

double cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double wall_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

enum Phase { kFwd, kBwd, kOpt, kMask, kPhases };
const char* kPhaseName[kPhases] = {"forward", "backward", "optimizer", "masks"};

struct Run {
  std::string name;
  Model m;
  std::unique_ptr<Net> net;
  std::unique_ptr<Bdwp> bdwp;
  std::vector<ParamRule> rules;
  std::vector<int64_t> labels;
  int64_t done = 0;
  std::vector<double> wall[kPhases + 1], cpu[kPhases + 1];  // per step; [kPhases] = the whole step
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_train ARCH [--batch N] [--steps N] [--reps N] [--density D] [--im2col] [--threads N] "
                 "[--modes LIST]\n");
    return 2;
  }
  std::string arch = argv[1], modes;
  int64_t batch = 128, steps = 20, reps = 1;
  double density = 1.0;
  bool im2col = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) batch = std::atol(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atol(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atol(argv[++i]);
    else if (a == "--density" && i + 1 < argc) density = std::atof(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) omp_set_num_threads(std::atoi(argv[++i]));
    else if (a == "--modes" && i + 1 < argc) modes = argv[++i];
    else if (a == "--im2col") im2col = true;
    else {
      std::fprintf(stderr, "bench_train: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  const bool single = modes.empty();
  if (single) {
    setenv("BSP_PROFILE", "1", 1);
    modes = density < 1.0 ? "block" : "dense";
  }
  const ArchInfo& info = find_arch(arch);
  std::vector<std::unique_ptr<Run>> runs;
  for (size_t p = 0; p <= modes.size();) {
    size_t q = modes.find(',', p);
    if (q == std::string::npos) q = modes.size();
    const std::string name = modes.substr(p, q - p);
    p = q + 1;
    auto r = std::make_unique<Run>();
    r->name = name;
    r->m = info.build(info.default_classes);
    init_weights(r->m, 1);
    BdwpConfig bc;
    bool bdwp = false;
    if (name == "block") {
      PruneOptions po;
      po.pattern = parse_pattern("block:8x8");
      po.density = density;
      prune_model(r->m, po);
    } else if (name.rfind("bdwp", 0) == 0) {
      bdwp = true;
      std::string rest = name.substr(4);
      const size_t gpos = rest.find('g');
      if (gpos != std::string::npos) {
        bc.grad_every = std::atol(rest.c_str() + gpos + 1);
        rest = rest.substr(0, gpos);
      }
      const size_t slash = rest.find('/');
      if (slash != std::string::npos) {
        bc.every = std::atol(rest.c_str() + slash + 1);
        rest = rest.substr(0, slash);
      }
      if (!rest.empty()) bc.shared = std::atol(rest.c_str());
      PruneOptions po;
      po.pattern = parse_pattern("nm:2:8");
      prune_model(r->m, po);
    } else if (name != "dense") {
      std::fprintf(stderr, "bench_train: unknown mode '%s'\n", name.c_str());
      return 2;
    }
    NetOptions o;
    o.max_batch = batch;
    o.conv_path = im2col ? ConvPath::Im2col : ConvPath::Auto;
    r->net = std::make_unique<Net>(r->m, o);
    r->rules.assign(r->net->params().size(), ParamRule{});
    if (bdwp) {
      r->bdwp = std::make_unique<Bdwp>(r->m, bc);
      r->bdwp->attach(*r->net, r->rules, r->net->params());
    }
    r->labels.resize(static_cast<size_t>(batch));
    Rng g(3);
    for (auto& l : r->labels) l = static_cast<int64_t>(g.below(static_cast<uint64_t>(r->net->classes())));
    fill_normal(r->net->input().act.data(), r->net->input().act.size(), 1.0, 7);
    runs.push_back(std::move(r));
  }
  SgdConfig sgd;
  sgd.lr = 0.01;
  for (int64_t rep = 0; rep < reps; ++rep)
    for (auto& rp : runs) {
      Run& r = *rp;
      Net& net = *r.net;
      for (int64_t s = 0; s < steps + (rep == 0 ? 2 : 0); ++s) {
        double w[kPhases + 1], c[kPhases + 1];
        w[0] = wall_s(), c[0] = cpu_s();
        if (r.bdwp) r.bdwp->before_step(r.done);
        net.forward(batch, Mode::Train);
        Value& out = net.output();
        softmax_xent(out.act.data(), net.classes(), batch, r.labels.data(), out.grad.data());
        w[1] = wall_s(), c[1] = cpu_s();
        net.backward();
        if (r.bdwp) r.bdwp->after_backward(net.params());
        w[2] = wall_s(), c[2] = cpu_s();
        sgd_step(net.params(), r.rules, sgd, StepHyper{0.01, 0.9});
        w[3] = wall_s(), c[3] = cpu_s();
        if (r.bdwp) r.bdwp->after_step(++r.done);
        net.weights_changed();
        w[4] = wall_s(), c[4] = cpu_s();
        if (rep == 0 && s < 2) continue;  // warm-up
        for (int ph = 0; ph < kPhases; ++ph) {
          r.wall[ph].push_back(w[ph + 1] - w[ph]);
          r.cpu[ph].push_back(c[ph + 1] - c[ph]);
        }
        r.wall[kPhases].push_back(w[kPhases] - w[0]);
        r.cpu[kPhases].push_back(c[kPhases] - c[0]);
      }
    }
  std::printf("%s batch %lld threads %d kernels %s, %lld x %lld steps per mode, interleaved; medians in ms\n",
              arch.c_str(), static_cast<long long>(batch), omp_get_max_threads(), runs[0]->net->kernels().name,
              static_cast<long long>(reps), static_cast<long long>(steps));
  const double w0 = median(runs[0]->wall[kPhases]), c0 = median(runs[0]->cpu[kPhases]);
  for (auto& rp : runs) {
    Run& r = *rp;
    const double w = median(r.wall[kPhases]), c = median(r.cpu[kPhases]);
    std::printf("%-10s step wall %7.1f (%.3fx)  cpu %7.1f (%.3fx) |", r.name.c_str(), 1e3 * w, w / w0, 1e3 * c, c / c0);
    for (int ph = 0; ph < kPhases; ++ph) std::printf(" %s %.1f/%.1f", kPhaseName[ph], 1e3 * median(r.wall[ph]),
                                                     1e3 * median(r.cpu[ph]));
    std::printf("\n");
  }
  if (single) std::printf("%s", runs[0]->net->profile_report().c_str());
  return 0;
}
