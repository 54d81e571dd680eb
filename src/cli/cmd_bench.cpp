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
#include <optional>
#include <thread>

#include <omp.h>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "plot/svg.hpp"
#include "compact/compact.hpp"
#include "core/act_sparsity.hpp"
#include "core/rng.hpp"
#include "data/batch.hpp"
#include "data/dataset.hpp"
#include "kernels/bench.hpp"
#include "kernels/conv_blas.hpp"
#include "kernels/isa.hpp"
#include "kernels/runner.hpp"
#include "train/model_data.hpp"

namespace bsp::cli {

namespace {
struct BenchOptions {
  std::string input;
  int64_t batch = 1;
  int threads = 0;
  int reps = 10;
  std::string baseline = "blas";
  std::string against;  // another model as the baseline (--against)
  bool json = false;
  std::string svg;  // --svg: per-layer speedup bars
  uint64_t seed = 0;
  std::string data;    // images to drive the bench (--data), else random ones
  int64_t limit = -1;  // --limit: images of --data used (-1: kDefaultLimit)
};
constexpr int64_t kDefaultLimit = 100;

// What drove the bench: batches of real images or one of random values.
struct BenchInput {
  std::vector<Tensor> batches;
  std::string data;  // the data set's name, empty for random inputs
};

Json ms_or_null(const std::vector<double>& v) { return v.empty() ? Json() : Json(kernels::median(v)); }

// GFLOP/s of `macs` multiply-accumulates per image in `ms`.
double gflops(int64_t macs, int64_t batch, double ms) {
  return ms > 0 ? 2.0 * static_cast<double>(macs * batch) / ms * 1e-6 : 0.0;
}

// With OpenBLAS in the same process, idle threads of either library that
// spin steal the cores the other's threads run on: libgomp's by default
// (OMP_WAIT_POLICY=passive stops that), OpenBLAS's for 2^28 cycles (about
// 0.1 s) after each call, well into the sparse pass that follows
// (OPENBLAS_THREAD_TIMEOUT=22, under 2 ms, and a pause before that pass
// stop that). Sets them, re-executing once, unless the user chose.
void quiet_blas_threads() {
  if (!raw_argv() || (std::getenv("OMP_WAIT_POLICY") && std::getenv("OPENBLAS_THREAD_TIMEOUT"))) return;
  setenv("OMP_WAIT_POLICY", "passive", 0);
  setenv("OPENBLAS_THREAD_TIMEOUT", "22", 0);
  execv("/proc/self/exe", raw_argv());
  fail("cannot re-execute bsp with OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT set: {}", errno_message(errno));
}

// Per-layer speedup (median dense / median sparse) as bars, the total in the
// title; layers without both times are left out.
void write_svg(const BenchOptions& o, const kernels::BenchResult& r) {
  std::vector<std::string> labels;
  std::vector<double> speedups;
  for (const kernels::BenchRow& row : r.rows) {
    if (row.dense.empty() || row.sparse.empty()) continue;
    const double sm = kernels::median(row.sparse);
    labels.push_back(row.name);
    speedups.push_back(sm > 0 ? kernels::median(row.dense) / sm : NAN);
  }
  const double td = kernels::median(r.dense_total), ts = kernels::median(r.sparse_total);
  plot::Svg svg(900, 60);
  plot::bar_chart(svg, 4,
                  fmt::format("{}: per-layer speedup of the sparse kernels over {} (total {:.2f}x, batch {}, {} reps)",
                              o.input, o.against.empty() ? o.baseline : o.against, ts > 0 ? td / ts : 0.0, o.batch,
                              o.reps),
                  labels, speedups, 1.0, "x");
  svg.write(o.svg);
}

void print_json(const BenchOptions& o, const Model& m, const kernels::BenchResult& r, const BenchInput& in,
                int threads) {
  const double td = kernels::median(r.dense_total), ts = kernels::median(r.sparse_total);
  Json j = Json::object();
  j["model"] = o.input;
  j["arch"] = m.arch;
  j["cpu"] = kernels::cpu_model();
  j["isa"] = kernels::isa_name(kernels::active_isa());
  j["threads"] = threads;
  j["batch"] = o.batch;
  j["reps"] = o.reps;
  j["baseline"] = o.against.empty() ? o.baseline : "model";
  j["baseline_model"] = o.against.empty() ? Json() : Json(o.against);
  j["compact"] = m.compact ? Json(dtype_name(m.compact->dtype)) : Json();
  j["load_before"] = r.load_before;
  j["load_after"] = r.load_after;
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  j["omp_wait_policy"] = wait ? Json(wait) : Json();
  const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  j["openblas_thread_timeout"] = timeout ? Json(timeout) : Json();
  Json layers = Json::array();
  int64_t macs = 0;
  for (const kernels::BenchRow& row : r.rows) {
    Json e = Json::object();
    e["name"] = row.name;
    e["op"] = row.op;
    e["dense_kernel"] = row.dense_kernel.empty() ? Json() : Json(row.dense_kernel);
    e["sparse_kernel"] = row.sparse_kernel.empty() ? Json() : Json(row.sparse_kernel);
    e["macs"] = row.macs;
    e["dense_ms"] = ms_or_null(row.dense);
    e["sparse_ms"] = ms_or_null(row.sparse);
    const double dm = kernels::median(row.dense), sm = kernels::median(row.sparse);
    e["speedup"] = !row.dense.empty() && !row.sparse.empty() && sm > 0 ? Json(dm / sm) : Json();
    e["dense_gflops"] = row.macs && !row.dense.empty() ? Json(gflops(row.macs, o.batch, dm)) : Json();
    e["sparse_gflops"] = row.macs && !row.sparse.empty() ? Json(gflops(row.macs, o.batch, sm)) : Json();
    if (r.act) {  // activation rules (bsp-bench(1)): skipping measured
      const double nm = kernels::median(row.noskip);
      e["zero_block_fraction"] = row.zero_fraction >= 0 ? Json(row.zero_fraction) : Json();
      e["noskip_ms"] = ms_or_null(row.noskip);
      e["skip_speedup"] = !row.noskip.empty() && !row.sparse.empty() && sm > 0 ? Json(nm / sm) : Json();
    }
    layers.push_back(std::move(e));
    macs += row.macs;
  }
  j["layers"] = std::move(layers);
  Json t = Json::object();
  t["dense_ms"] = td;
  t["sparse_ms"] = ts;
  t["speedup"] = ts > 0 ? td / ts : 0.0;
  t["macs"] = macs;
  t["dense_gflops"] = gflops(macs, o.batch, td);
  t["sparse_gflops"] = gflops(macs, o.batch, ts);
  if (r.act) {
    const double tn = kernels::median(r.noskip_total);
    t["noskip_ms"] = tn;
    t["skip_speedup"] = ts > 0 ? tn / ts : 0.0;
    j["act_data"] = in.data.empty() ? Json() : Json(in.data);
    j["act_images"] = r.act_images;
  }
  j["total"] = std::move(t);
  cli::print_json(j);
}

void print_table(const BenchOptions& o, const Model& m, const kernels::BenchResult& r, const BenchInput& in,
                 int threads) {
  const double td = kernels::median(r.dense_total), ts = kernels::median(r.sparse_total);
  std::printf("model: %s (%s)   batch %ld, %d threads, %d repetitions, %s kernels\n", o.input.c_str(),
              m.arch.c_str(), static_cast<long>(o.batch), threads, o.reps, kernels::isa_name(kernels::active_isa()));
  std::printf("cpu: %s   load average %.2f before, %.2f after\n", kernels::cpu_model().c_str(), r.load_before,
              r.load_after);
  const std::string dense_side = !o.against.empty() ? fmt::format("'{}' on its own kernels", o.against)
                                 : o.baseline == "blas" ? "OpenBLAS (im2col + sgemm)"
                                                        : "bsp's dense kernel";
  std::printf("dense: %s   sparse: %s\n\n", dense_side.c_str(),
              m.compact ? fmt::format("the {} compact kernels", dtype_name(m.compact->dtype)).c_str()
                        : "not compacted: bsp's dense kernel");
  size_t w = 5;
  for (const kernels::BenchRow& row : r.rows) w = std::max(w, row.name.size());
  if (r.act)
    std::printf("activation rules: zero-block fractions over %ld %s; 'no-skip ms': the sparse kernels with the\n"
                "rules applied but no zero block skipped, 'skip': no-skip ms / sparse ms\n\n",
                static_cast<long>(r.act_images),
                in.data.empty() ? "random images (pass --data for real ones)"
                                : fmt::format("images of {}", in.data).c_str());
  std::printf("%-*s  %-14s  %-14s  %14s  %10s  %10s  %8s  %9s  %9s", static_cast<int>(w), "layer", "op", "kernel",
              "MACs", "dense ms", "sparse ms", "speedup", "dense GF/s", "eff GF/s");
  if (r.act) std::printf("  %8s  %10s  %6s", "zero blk", "no-skip ms", "skip");
  std::printf("\n");
  int64_t macs = 0;
  for (const kernels::BenchRow& row : r.rows) {
    const double dm = kernels::median(row.dense), sm = kernels::median(row.sparse);
    auto ms = [](const std::vector<double>& v, double x) { return v.empty() ? std::string("-") : fmt::format("{:.3f}", x); };
    std::string line = fmt::format(
        "{:<{}}  {:<14}  {:<14}  {:>14}  {:>10}  {:>10}  {:>8}  {:>9}  {:>9}", row.name, w, row.op,
        row.sparse_kernel.empty() ? row.dense_kernel : row.sparse_kernel, row.macs ? with_commas(row.macs) : "-",
        ms(row.dense, dm), ms(row.sparse, sm),
        !row.dense.empty() && !row.sparse.empty() && sm > 0 ? fmt::format("{:.2f}x", dm / sm) : "-",
        row.macs && !row.dense.empty() ? fmt::format("{:.1f}", gflops(row.macs, o.batch, dm)) : "-",
        row.macs && !row.sparse.empty() ? fmt::format("{:.1f}", gflops(row.macs, o.batch, sm)) : "-");
    if (r.act) {
      const double nm = kernels::median(row.noskip);
      line += fmt::format("  {:>8}  {:>10}  {:>6}",
                          row.zero_fraction >= 0 ? fmt::format("{:.3f}", row.zero_fraction) : "-",
                          row.zero_fraction >= 0 ? ms(row.noskip, nm) : "-",
                          row.zero_fraction >= 0 && !row.noskip.empty() && sm > 0 ? fmt::format("{:.2f}x", nm / sm) : "-");
    }
    std::printf("%s\n", line.c_str());
    macs += row.macs;
  }
  std::printf("\ntotal: dense %.3f ms (%.1f GFLOP/s), sparse %.3f ms (%.1f effective GFLOP/s), speedup %.2fx\n", td,
              gflops(macs, o.batch, td), ts, gflops(macs, o.batch, ts), ts > 0 ? td / ts : 0.0);
  if (r.act) {
    const double tn = kernels::median(r.noskip_total);
    std::printf("activation skipping: sparse %.3f ms, without skipping %.3f ms, saved %.3f ms (%.2fx)\n", ts, tn,
                tn - ts, ts > 0 ? tn / ts : 0.0);
  }
}

// --data: the first --limit images of the evaluation part, normalised as
// the model was trained (else by their own statistics), in batches of
// --batch (a last partial batch dropped: all batches time the same size).
BenchInput data_input(const BenchOptions& o, const Model& m) {
  BenchInput in;
  DataSet data = load_data(o.data, DataPart::Evaluation);
  ImageSet& s = *data.test;
  s.limit(o.limit > 0 ? o.limit : kDefaultLimit);
  train::check_data_fits(m, o.input, s, data.name, "test");
  if (s.n < o.batch)
    fail("{} has {} images, fewer than --batch {}", data.name, s.n, o.batch);
  auto nm = train::model_normalization(m);
  const Normalization norm = nm ? *nm : channel_stats(s);
  std::vector<int64_t> idx(static_cast<size_t>(o.batch));
  for (int64_t b = 0; b + o.batch <= s.n; b += o.batch) {
    for (int64_t j = 0; j < o.batch; ++j) idx[static_cast<size_t>(j)] = b + j;
    Tensor x({o.batch, s.h, s.w, s.c});
    assemble_batch(s, idx.data(), o.batch, norm, {}, 0, x.data(), BatchLayout::NHWC);
    in.batches.push_back(std::move(x));
  }
  in.data = data.name;
  return in;
}

void run_bench(const BenchOptions& o) {
  if (o.batch < 1) fail_usage("--batch must be at least 1");
  if (o.reps < 1) fail_usage("--reps must be at least 1");
  if (o.limit != -1 && o.limit < 1) fail_usage("--limit must be at least 1");
  if (o.limit != -1 && o.data.empty()) fail_usage("--limit needs --data");
  kernels::Path base;
  if (!o.against.empty())
    base = kernels::Path::Auto;  // the other model on its own kernels
  else if (o.baseline == "blas")
    base = kernels::Path::Blas;
  else if (o.baseline == "dense")
    base = kernels::Path::Dense;
  else
    fail_usage("unknown --baseline '{}' (blas, dense)", o.baseline);
  if (o.svg == "-") fail_usage("--svg -: the table goes to stdout; give the SVG a file name");
  if (o.against == "-" && o.input == "-") fail_usage("the model and --against cannot both be stdin");
  if (base == kernels::Path::Blas) quiet_blas_threads();
  apply_threads(o.threads);
  const int threads = omp_get_max_threads();
  if (base == kernels::Path::Blas) kernels::set_blas_threads(threads);

  Model m = read_model(o.input);
  // A pruned file that is not compacted runs bsp's dense kernels on both
  // sides (the sparse kernels take the compact forms): say so, as a sweep
  // that benches its pruned files would otherwise read 1x as "sparsity
  // does not pay".
  if (!m.compact && !quiet() &&
      std::any_of(m.nodes.begin(), m.nodes.end(), [](const Node& n) { return n.mask.has_value(); }))
    std::fprintf(stderr,
                 "bsp bench: note: '%s' has pruned layers but is not compacted: both sides run bsp's dense kernels "
                 "(time the sparse kernels on 'bsp compact' output)\n",
                 o.input.c_str());
  std::optional<Model> other;
  if (!o.against.empty()) {
    other = read_model(o.against);
    if (other->input_shape() != m.input_shape())
      fail("cannot compare '{}' with '{}': their inputs differ ({} and {})", o.input, o.against,
           shape_str(m.input_shape()), shape_str(other->input_shape()));
  }
  BenchInput input;
  if (!o.data.empty()) {
    input = data_input(o, m);
  } else {
    const Shape in = m.input_shape();
    Tensor x({o.batch, in[0], in[1], in[2]});
    fill_normal(x.data(), x.size(), 1.0, o.seed);
    input.batches.push_back(std::move(x));
  }
  const bool progress = isatty(STDERR_FILENO) && !o.json && !quiet();
  auto on_rep = [&](int rep) {
    if (progress) std::fprintf(stderr, "\rbench: repetition %d/%d", rep + 1, o.reps);
  };
  const kernels::BenchResult r =
      other ? kernels::bench_models(*other, m, input.batches, o.reps, on_rep)
            : kernels::bench_model(m, base, input.batches, o.reps, on_rep);
  if (progress) std::fprintf(stderr, "\r%40s\r", "");
  if (!o.svg.empty()) write_svg(o, r);
  if (o.json)
    print_json(o, m, r, input, threads);
  else
    print_table(o, m, r, input, threads);
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
  auto* base_opt = sub.get_option("--baseline");
  sub.add_option("--against", o->against,
                 "time MODEL2, on its own kernels, as the dense side (same input shape; e.g. the int8 dense model)")
      ->type_name("MODEL2")
      ->excludes(base_opt);
  auto* seed_opt = sub.add_option("--seed", o->seed, "seed of the random input images (default 0)")->type_name("N");
  sub.add_option("--data", o->data,
                 "drive the bench with real images: fashion-mnist, a directory of IDX files, or an HDF5 data file "
                 "(zero-block fractions of activation rules need them)")
      ->type_name("D")
      ->excludes(seed_opt);
  sub.add_option("--limit", o->limit, "images of --data used, in batches of --batch (default 100)")->type_name("N");
  sub.add_flag("--json", o->json, "print a JSON document instead of the table (schema in bsp-bench(1))");
  sub.add_option("--svg", o->svg, "also draw the per-layer speedups as bars in this SVG file")->type_name("FILE");
  return [o] { run_bench(*o); };
}

}  // namespace bsp::cli
