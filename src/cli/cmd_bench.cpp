// bsp bench: time a model on the dense baseline and on its compact (sparse)
// kernels, per layer and in total (man/bsp-bench.1).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include <omp.h>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "compact/compact.hpp"
#include "core/rng.hpp"
#include "kernels/conv_blas.hpp"
#include "kernels/isa.hpp"
#include "kernels/runner.hpp"

namespace bsp::cli {

namespace {
struct BenchOptions {
  std::string input;
  int64_t batch = 1;
  int threads = 0;
  int reps = 10;
  std::string baseline = "blas";
  bool json = false;
  uint64_t seed = 0;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

// One row of the report: a step of either runner, matched by name.
struct Row {
  std::string name, op, dense_kernel, sparse_kernel;
  int64_t macs = 0;
  std::vector<double> dense, sparse;  // per repetition, ms
};

Json ms_or_null(const std::vector<double>& v) { return v.empty() ? Json() : Json(median(v)); }

void run_bench(const BenchOptions& o) {
  if (o.batch < 1) fail_usage("--batch must be at least 1");
  if (o.reps < 1) fail_usage("--reps must be at least 1");
  kernels::Path base;
  if (o.baseline == "blas")
    base = kernels::Path::Blas;
  else if (o.baseline == "dense")
    base = kernels::Path::Dense;
  else
    fail_usage("unknown --baseline '{}' (blas, dense)", o.baseline);
  // With OpenBLAS in the same process, idle threads of either library that
  // spin steal the cores the other's threads run on: libgomp's by default
  // (OMP_WAIT_POLICY=passive stops that), OpenBLAS's for 2^28 cycles (about
  // 0.1 s) after each call, well into the sparse pass that follows
  // (OPENBLAS_THREAD_TIMEOUT=22, under 2 ms, and a pause before that pass
  // stop that). Set them, re-executing once, unless the user chose.
  const bool blas_env = base == kernels::Path::Blas && raw_argv();
  if (blas_env && (!std::getenv("OMP_WAIT_POLICY") || !std::getenv("OPENBLAS_THREAD_TIMEOUT"))) {
    setenv("OMP_WAIT_POLICY", "passive", 0);
    setenv("OPENBLAS_THREAD_TIMEOUT", "22", 0);
    execv("/proc/self/exe", raw_argv());
    fail("cannot re-execute bsp with OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT set: {}", errno_message(errno));
  }
  apply_threads(o.threads);
  const int threads = omp_get_max_threads();
  kernels::set_blas_threads(threads);

  Model m = read_model(o.input);
  kernels::Runner dense(m, base), sparse(m, kernels::Path::Auto);
  const Shape in = m.input_shape();
  Tensor x({o.batch, in[0], in[1], in[2]});
  fill_normal(x.data(), x.size(), 1.0, o.seed);

  // Rows in the sparse runner's step order, then steps only the baseline has.
  std::vector<Row> rows;
  std::map<std::string, size_t> by_name;
  auto row_for = [&](const kernels::StepInfo& s) -> Row& {
    auto it = by_name.find(s.name);
    if (it != by_name.end()) return rows[it->second];
    by_name[s.name] = rows.size();
    rows.push_back(Row{s.name, op_name(s.op), "", "", s.macs, {}, {}});
    return rows.back();
  };
  std::vector<size_t> dense_row, sparse_row;
  for (const auto& s : sparse.steps()) {
    Row& r = row_for(s);
    r.sparse_kernel = s.kernel;
    sparse_row.push_back(by_name[s.name]);
  }
  for (const auto& s : dense.steps()) {
    Row& r = row_for(s);
    r.dense_kernel = s.kernel;
    dense_row.push_back(by_name[s.name]);
  }

  const double load_before = load_average();
  const bool progress = isatty(STDERR_FILENO) && !o.json;
  std::vector<double> dense_total, sparse_total;
  // One warm-up run each, then alternate so that both see the same noise.
  dense.forward(x);
  sparse.forward(x);
  for (int rep = 0; rep < o.reps; ++rep) {
    if (progress) std::fprintf(stderr, "\rbench: repetition %d/%d", rep + 1, o.reps);
    std::vector<double> d(rows.size(), 0.0), s(rows.size(), 0.0);
    auto t0 = std::chrono::steady_clock::now();
    dense.forward(x, [&](size_t k, double ms) { d[dense_row[k]] += ms; });
    auto t1 = std::chrono::steady_clock::now();
    // OpenBLAS's idle threads fall asleep (above) before bsp's pass.
    if (base == kernels::Path::Blas) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto t2 = std::chrono::steady_clock::now();
    sparse.forward(x, [&](size_t k, double ms) { s[sparse_row[k]] += ms; });
    auto t3 = std::chrono::steady_clock::now();
    dense_total.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    sparse_total.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!rows[i].dense_kernel.empty()) rows[i].dense.push_back(d[i]);
      if (!rows[i].sparse_kernel.empty()) rows[i].sparse.push_back(s[i]);
    }
  }
  if (progress) std::fprintf(stderr, "\r%40s\r", "");
  const double load_after = load_average();
  const double td = median(dense_total), ts = median(sparse_total);
  auto gflops = [&](int64_t macs, double ms) { return ms > 0 ? 2.0 * static_cast<double>(macs * o.batch) / ms * 1e-6 : 0.0; };

  if (o.json) {
    Json j = Json::object();
    j["model"] = o.input;
    j["arch"] = m.arch;
    j["cpu"] = cpu_model();
    j["isa"] = kernels::isa_name(kernels::active_isa());
    j["threads"] = threads;
    j["batch"] = o.batch;
    j["reps"] = o.reps;
    j["baseline"] = o.baseline;
    j["compact"] = m.compact ? Json(dtype_name(m.compact->dtype)) : Json();
    j["load_before"] = load_before;
    j["load_after"] = load_after;
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    j["omp_wait_policy"] = wait ? Json(wait) : Json();
    const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
    j["openblas_thread_timeout"] = timeout ? Json(timeout) : Json();
    Json layers = Json::array();
    for (const Row& r : rows) {
      Json e = Json::object();
      e["name"] = r.name;
      e["op"] = r.op;
      e["dense_kernel"] = r.dense_kernel.empty() ? Json() : Json(r.dense_kernel);
      e["sparse_kernel"] = r.sparse_kernel.empty() ? Json() : Json(r.sparse_kernel);
      e["macs"] = r.macs;
      e["dense_ms"] = ms_or_null(r.dense);
      e["sparse_ms"] = ms_or_null(r.sparse);
      const double dm = median(r.dense), sm = median(r.sparse);
      e["speedup"] = !r.dense.empty() && !r.sparse.empty() && sm > 0 ? Json(dm / sm) : Json();
      e["dense_gflops"] = r.macs && !r.dense.empty() ? Json(gflops(r.macs, dm)) : Json();
      e["sparse_gflops"] = r.macs && !r.sparse.empty() ? Json(gflops(r.macs, sm)) : Json();
      layers.push_back(std::move(e));
    }
    j["layers"] = std::move(layers);
    Json t = Json::object();
    t["dense_ms"] = td;
    t["sparse_ms"] = ts;
    t["speedup"] = ts > 0 ? td / ts : 0.0;
    int64_t macs = 0;
    for (const Row& r : rows) macs += r.macs;
    t["macs"] = macs;
    t["dense_gflops"] = gflops(macs, td);
    t["sparse_gflops"] = gflops(macs, ts);
    j["total"] = std::move(t);
    print_json(j);
    return;
  }
  std::printf("model: %s (%s)   batch %ld, %d threads, %d repetitions, %s kernels\n", o.input.c_str(),
              m.arch.c_str(), static_cast<long>(o.batch), threads, o.reps, kernels::isa_name(kernels::active_isa()));
  std::printf("cpu: %s   load average %.2f before, %.2f after\n", cpu_model().c_str(), load_before, load_after);
  std::printf("dense: %s   sparse: %s\n\n", o.baseline == "blas" ? "OpenBLAS (im2col + sgemm)" : "bsp's dense kernel",
              m.compact ? fmt::format("the {} compact kernels", dtype_name(m.compact->dtype)).c_str()
                        : "not compacted: bsp's dense kernel");
  size_t w = 5;
  for (const Row& r : rows) w = std::max(w, r.name.size());
  std::printf("%-*s  %-14s  %-14s  %14s  %10s  %10s  %8s  %9s  %9s\n", static_cast<int>(w), "layer", "op", "kernel",
              "MACs", "dense ms", "sparse ms", "speedup", "dense GF/s", "eff GF/s");
  for (const Row& r : rows) {
    const double dm = median(r.dense), sm = median(r.sparse);
    auto ms = [](const std::vector<double>& v, double x) { return v.empty() ? std::string("-") : fmt::format("{:.3f}", x); };
    std::string line = fmt::format("{:<{}}  {:<14}  {:<14}  {:>14}  {:>10}  {:>10}  {:>8}  {:>9}  {:>9}", r.name, w, r.op,
                                   r.sparse_kernel.empty() ? r.dense_kernel : r.sparse_kernel,
                                   r.macs ? with_commas(r.macs) : "-", ms(r.dense, dm), ms(r.sparse, sm),
                                   !r.dense.empty() && !r.sparse.empty() && sm > 0 ? fmt::format("{:.2f}x", dm / sm) : "-",
                                   r.macs && !r.dense.empty() ? fmt::format("{:.1f}", gflops(r.macs, dm)) : "-",
                                   r.macs && !r.sparse.empty() ? fmt::format("{:.1f}", gflops(r.macs, sm)) : "-");
    std::printf("%s\n", line.c_str());
  }
  int64_t macs = 0;
  for (const Row& r : rows) macs += r.macs;
  std::printf("\ntotal: dense %.3f ms (%.1f GFLOP/s), sparse %.3f ms (%.1f effective GFLOP/s), speedup %.2fx\n", td,
              gflops(macs, td), ts, gflops(macs, ts), ts > 0 ? td / ts : 0.0);
}
}  // namespace

Runner setup_bench(CLI::App& sub) {
  auto o = std::make_shared<BenchOptions>();
  sub.add_option("model", o->input, "model file ('-' for stdin)")->required()->type_name("MODEL");
  sub.add_option("--batch", o->batch, "images per forward pass (default 1)")->type_name("N");
  add_threads_option(sub, o->threads);
  sub.add_option("--reps", o->reps, "timed repetitions; times are medians (default 10)")->type_name("R");
  sub.add_option("--baseline", o->baseline, "the dense side: blas (OpenBLAS, default) or dense (bsp's dense kernel)")
      ->type_name("B");
  sub.add_option("--seed", o->seed, "seed of the random input images (default 0)")->type_name("N");
  sub.add_flag("--json", o->json, "print a JSON document instead of the table (schema in bsp-bench(1))");
  return [o] { run_bench(*o); };
}

}  // namespace bsp::cli
