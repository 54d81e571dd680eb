// Several models' fast forwards (bsp's runner: compact kernels, int8 program)
// timed in one process, in alternating repetitions so that all see the same
// machine noise: the int8 dense model beside its block-pruned variants, for
// example (bsp bench compares one model with a baseline of the same model).
// Per step: the median time of each model and its speedup over the first
// model; then the totals, and the median over the conv/dense steps of the
// per-step speedups.
// With --cpu, times are the main thread's CPU time (CLOCK_THREAD_CPUTIME_ID):
// with --threads 1 on a loaded machine, time slices taken by other processes
// then do not count. --process-cpu: the CPU time of every thread (with
// OMP_WAIT_POLICY=passive, waiting threads sleep instead of spinning: the
// sum is the work and the cost of splitting it).
// Usage: bench_models [--reps R] [--threads T] [--batch B] [--warmup W] [--cpu | --process-cpu] A.h5 B.h5 ...
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "modelfile/model_file.hpp"
#include "core/rng.hpp"
#include "kernels/bench.hpp"
#include "kernels/runner.hpp"

using namespace bsp;

namespace {
clockid_t cpu_clock = CLOCK_THREAD_CPUTIME_ID;
double cpu_ms() {
  timespec ts;
  clock_gettime(cpu_clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}
}  // namespace

int main(int argc, char** argv) {
  bool cpu = false;
  int reps = 10, threads = 0, warmup = 2;
  int64_t batch = 1;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--cpu")) cpu = true;
    else if (!std::strcmp(argv[i], "--process-cpu")) cpu = true, cpu_clock = CLOCK_PROCESS_CPUTIME_ID;
    else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: bench_models [--reps R] [--threads T] [--batch B] [--warmup W] A.h5 B.h5 ...\n");
      return 2;
    } else {
      paths.push_back(argv[i]);
    }
  }
  if (paths.empty() || reps < 1 || batch < 1) {
    std::fprintf(stderr, "usage: bench_models [--reps R] [--threads T] [--batch B] [--warmup W] A.h5 B.h5 ...\n");
    return 2;
  }
  if (threads > 0) omp_set_num_threads(threads);
  try {
    std::vector<Model> models;
    for (const auto& p : paths) models.push_back(load_model(p, p));
    std::vector<std::unique_ptr<kernels::Runner>> runners;
    for (const Model& m : models) runners.push_back(std::make_unique<kernels::Runner>(m));
    const Shape in = models[0].input_shape();
    Tensor x({batch, in[0], in[1], in[2]});
    fill_normal(x.data(), x.size(), 1.0, 0);
    const size_t K = models.size();
    // Rows by step name, in the first model's order.
    std::vector<std::string> names;
    std::map<std::string, size_t> row;
    std::vector<std::vector<size_t>> step_row(K);
    std::vector<std::string> kernel_of;
    std::vector<std::vector<std::string>> kernels(K);
    for (size_t k = 0; k < K; ++k)
      for (const auto& s : runners[k]->steps()) {
        auto [it, fresh] = row.emplace(s.name, names.size());
        if (fresh) names.push_back(s.name), kernel_of.push_back(op_name(s.op));
        step_row[k].push_back(it->second);
      }
    for (size_t k = 0; k < K; ++k) {
      kernels[k].assign(names.size(), "-");
      for (size_t j = 0; j < runners[k]->steps().size(); ++j) kernels[k][step_row[k][j]] = runners[k]->steps()[j].kernel;
    }
    std::vector<std::vector<std::vector<double>>> t(K, std::vector<std::vector<double>>(names.size()));
    std::vector<std::vector<double>> total(K);
    for (int w = 0; w < warmup; ++w)
      for (size_t k = 0; k < K; ++k) runners[k]->forward(x);
    for (int r = 0; r < reps; ++r)
      for (size_t k = 0; k < K; ++k) {
        std::vector<double> d(names.size(), 0.0);
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_ms();
        double last = c0;
        runners[k]->forward(x, [&](size_t s, double ms) {
          if (cpu) {
            const double now = cpu_ms();
            ms = now - last;
            last = now;
          }
          d[step_row[k][s]] += ms;
        });
        total[k].push_back(cpu ? cpu_ms() - c0
                               : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        for (size_t i = 0; i < names.size(); ++i) t[k][i].push_back(d[i]);
      }
    std::printf("%-24s %-8s", "step", "op");
    for (size_t k = 0; k < K; ++k) std::printf(" %16.16s", paths[k].c_str());
    for (size_t k = 1; k < K; ++k) std::printf("  x%zu", k);
    std::printf("  kernels\n");
    std::vector<std::vector<double>> ratios(K);
    for (size_t i = 0; i < names.size(); ++i) {
      std::printf("%-24s %-8s", names[i].c_str(), kernel_of[i].c_str());
      std::vector<double> med(K);
      for (size_t k = 0; k < K; ++k) std::printf(" %16.3f", med[k] = kernels::median(t[k][i]));
      const bool layer = kernel_of[i] == "conv2d" || kernel_of[i] == "dense";
      for (size_t k = 1; k < K; ++k) {
        const double s = med[k] > 0 ? med[0] / med[k] : 0;
        std::printf(" %5.2f", s);
        if (layer) ratios[k].push_back(s);
      }
      std::printf("  ");
      for (size_t k = 0; k < K; ++k) std::printf("%s%s", k ? "," : "", kernels[k][i].c_str());
      std::printf("\n");
    }
    std::printf("total (median ms):");
    for (size_t k = 0; k < K; ++k) std::printf(" %s %.3f", paths[k].c_str(), kernels::median(total[k]));
    std::printf("\n");
    for (size_t k = 1; k < K; ++k)
      std::printf("%s over %s: whole model %.2fx, per-layer median %.2fx\n", paths[k].c_str(), paths[0].c_str(),
                  kernels::median(total[0]) / kernels::median(total[k]), kernels::median(ratios[k]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_models: %s\n", e.what());
    return 1;
  }
  return 0;
}
