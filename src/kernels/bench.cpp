#include "kernels/bench.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "core/act_sparsity.hpp"

namespace bsp::kernels {

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

namespace {

double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

namespace {
BenchResult bench_runners(const Runner& dense, const Runner& sparse, Runner* noskip, bool blas,
                          const std::vector<Tensor>& xs, int reps, const std::function<void(int)>& progress) {
  BenchResult r;
  const Tensor& x0 = xs.at(0);
  std::map<std::string, size_t> by_name;
  auto row_for = [&](const StepInfo& s) -> BenchRow& {
    auto it = by_name.find(s.name);
    if (it != by_name.end()) return r.rows[it->second];
    by_name[s.name] = r.rows.size();
    r.rows.push_back(BenchRow{s.name, op_name(s.op), "", "", s.macs, {}, {}, {}, -1});
    return r.rows.back();
  };
  std::vector<size_t> dense_row, sparse_row;  // per step: its row
  for (const auto& s : sparse.steps()) {
    row_for(s).sparse_kernel = s.kernel;
    sparse_row.push_back(by_name[s.name]);
  }
  for (const auto& s : dense.steps()) {
    row_for(s).dense_kernel = s.kernel;
    dense_row.push_back(by_name[s.name]);
  }

  // The zero-block fractions: one untimed pass over every batch.
  if (noskip) {
    r.act = true;
    noskip->reset_act_stats();
    for (const Tensor& b : xs) {
      noskip->forward(b);
      r.act_images += b.dim(0);
    }
    const std::vector<ActStat>& st = noskip->act_stats();
    for (size_t k = 0; k < st.size(); ++k)
      if (st[k].blocks) r.rows[sparse_row[k]].zero_fraction = st[k].fraction();
  }

  r.load_before = load_average();
  dense.forward(x0);
  sparse.forward(x0);
  if (noskip) noskip->forward(x0);
  for (int rep = 0; rep < reps; ++rep) {
    if (progress) progress(rep);
    const Tensor& x = xs[static_cast<size_t>(rep) % xs.size()];
    std::vector<double> d(r.rows.size(), 0.0), s(r.rows.size(), 0.0), ns(r.rows.size(), 0.0);
    auto t0 = std::chrono::steady_clock::now();
    dense.forward(x, [&](size_t k, double ms) { d[dense_row[k]] += ms; });
    auto t1 = std::chrono::steady_clock::now();
    // OpenBLAS's idle threads fall asleep before bsp's pass.
    if (blas) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // The sparse runner's kernels with every block multiplied, before the
    // sparse pass in odd repetitions and after it in even ones: the pass
    // that follows the other on the same batch ran 5-7% faster (measured,
    // both skipping), which alternating cancels in the medians.
    auto run_noskip = [&] {
      const auto t4 = std::chrono::steady_clock::now();
      noskip->forward(x, [&](size_t k, double ms) { ns[sparse_row[k]] += ms; });
      r.noskip_total.push_back(ms_between(t4, std::chrono::steady_clock::now()));
    };
    if (noskip && rep % 2) run_noskip();
    auto t2 = std::chrono::steady_clock::now();
    sparse.forward(x, [&](size_t k, double ms) { s[sparse_row[k]] += ms; });
    auto t3 = std::chrono::steady_clock::now();
    r.dense_total.push_back(ms_between(t0, t1));
    r.sparse_total.push_back(ms_between(t2, t3));
    if (noskip && rep % 2 == 0) run_noskip();
    for (size_t i = 0; i < r.rows.size(); ++i) {
      if (!r.rows[i].dense_kernel.empty()) r.rows[i].dense.push_back(d[i]);
      if (!r.rows[i].sparse_kernel.empty()) r.rows[i].sparse.push_back(s[i]);
      if (noskip && !r.rows[i].sparse_kernel.empty()) r.rows[i].noskip.push_back(ns[i]);
    }
  }
  r.load_after = load_average();
  return r;
}

}  // namespace

namespace {
// The runner without skipping, for a model with activation rules.
std::unique_ptr<Runner> noskip_runner(const Model& m) {
  if (!has_act_rules(m)) return nullptr;
  auto r = std::make_unique<Runner>(m, Path::Auto);
  r->set_act_skip(false);
  return r;
}
}  // namespace

BenchResult bench_model(const Model& m, Path base, const std::vector<Tensor>& xs, int reps,
                        const std::function<void(int)>& progress) {
  const Runner dense(m, base), sparse(m, Path::Auto);
  const auto noskip = noskip_runner(m);
  return bench_runners(dense, sparse, noskip.get(), base == Path::Blas, xs, reps, progress);
}

BenchResult bench_models(const Model& base, const Model& m, const std::vector<Tensor>& xs, int reps,
                         const std::function<void(int)>& progress) {
  const Runner dense(base, Path::Auto), sparse(m, Path::Auto);
  const auto noskip = noskip_runner(m);
  return bench_runners(dense, sparse, noskip.get(), false, xs, reps, progress);
}

}  // namespace bsp::kernels
