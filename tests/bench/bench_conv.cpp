// Acceptance benchmark of the block-sparse fp32 kernel: every distinct conv
// shape of ResNet-50 (the first conv excepted: it stays dense), batch 1 and 8,
// OpenBLAS dense (im2col + sgemm) against bsp's kernel at block:8x8 density
// 1 (bsp's dense path), 0.5 and 0.25. Medians over repetitions, all
// variants of a shape measured in alternating rounds (main, below).
// Usage: bench_conv [--reps R] [--threads T] [--batch B]... > conv.csv
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "compact/weights.hpp"
#include "core/shapes.hpp"
#include "kernels/conv_blas.hpp"
#include "kernels/conv_f32.hpp"
#include "kernels/conv_i8.hpp"
#include "../unit/sparse_helpers.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS's threads and OpenMP's share the cores. Idle OpenMP threads
  // must not spin while OpenBLAS runs (OMP_WAIT_POLICY=passive; see
  // bsp-bench(1), ENVIRONMENT), and OpenBLAS's idle threads must not spin
  // while bsp's kernels run: by default they do for 2^28 cycles (about 0.1 s)
  // after each call, through the bsp calls that follow. OPENBLAS_THREAD_TIMEOUT
  // 22 (2^22 cycles, under 2 ms) keeps them awake between the back-to-back
  // calls of an OpenBLAS block (below) and lets them sleep in the pause after
  // it. Set either variable to choose otherwise.
  bool reexec = false;
  if (!std::getenv("OMP_WAIT_POLICY")) reexec = !setenv("OMP_WAIT_POLICY", "passive", 1);
  if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) reexec = !setenv("OPENBLAS_THREAD_TIMEOUT", "22", 1) || reexec;
  if (reexec) {
    execv("/proc/self/exe", argv);
    return 1;
  }
  int reps = 7, threads = 0;
  std::vector<int64_t> batches;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batches.push_back(std::atoll(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench_conv [--reps R] [--threads T] [--batch B]...\n");
      return 2;
    }
  }
  if (batches.empty()) batches = {1, 8};
  if (threads > 0) omp_set_num_threads(threads);
  kernels::set_blas_threads(omp_get_max_threads());

  Model m = build_resnet50(1000);
  const auto shapes = infer_shapes(m);
  std::set<std::string> seen;
  std::printf("layer,batch,H,W,Cin,Cout,k,stride,gflop,blas_ms,dense_ms,sparse50_ms,sparse25_ms,int8_sparse50_ms,"
              "blas_gflops,dense_gflops,speedup_dense,speedup50,speedup25,fp32_over_int8_sparse50\n");
  std::map<int64_t, std::vector<double>> s50, s25, sd, si8;
  bool first = true;
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    Node& n = m.nodes[i];
    if (n.op != Op::Conv2d) continue;
    if (first) {
      first = false;
      continue;
    }
    const Shape& in = shapes[m.index_of(n.inputs[0])];
    const ConvGeom g = conv_geom(n, in);
    const std::string key = fmt::format("{}x{}x{}-{}-{}x{}-s{}", g.H, g.W, g.C, g.Cout, g.kh, g.kw, g.sh);
    if (!seen.insert(key).second) continue;
    n.param("weight") = test::random_tensor(n.param("weight").shape(), i, 0.05);
    const Tensor w0 = n.param("weight").clone();
    for (int64_t B : batches) {
      Tensor x = test::random_tensor({B, g.H, g.W, g.C}, 7);
      Tensor y({B, g.Ho, g.Wo, g.Cout});
      const double gflop = 2.0 * static_cast<double>(B * g.Ho * g.Wo * g.Cout * g.kh * g.kw * g.C) * 1e-9;
      kernels::ConvBlas blas(g, w0.data(), nullptr);
      // The four variants of a shape alternate within every repetition, so
      // that they share the machine's noise.
      const double dens[3] = {1.0, 0.5, 0.25};
      std::vector<std::unique_ptr<kernels::ConvF32>> convs;
      for (int d = 0; d < 3; ++d) {
        n.param("weight") = w0.clone();
        test::block_prune(n, 8, 8, dens[d], 100 + i);
        const Tensor& w = n.param("weight");
        auto l = compact::compress(w.data(), w.shape(), element_mask(n).data(),
                                   compact::spec_for(n, compact::Format::Bsr));
        convs.push_back(std::make_unique<kernels::ConvF32>(
            g, kernels::pack_f32(w.data(), l.geom(), l.row_ptr, l.col_idx, nullptr)));
      }
      // int8 at density 0.5: the same blocks, random int8 values.
      n.param("weight") = w0.clone();
      test::block_prune(n, 8, 8, 0.5, 100 + i);
      Array<int8_t> wq(w0.shape()), xq({B, g.H, g.W, g.C}), yq({B, g.Ho, g.Wo, g.Cout});
      for (size_t k = 0; k < wq.size(); ++k) wq[k] = n.param("weight")[k] == 0.0f ? 0 : static_cast<int8_t>(k % 200 - 100);
      for (size_t k = 0; k < xq.size(); ++k) xq[k] = static_cast<int8_t>(k % 251 - 125);
      auto lq = compact::compress(wq.data(), wq.shape(), element_mask(n).data(),
                                  compact::spec_for(n, compact::Format::Bsr));
      std::vector<int32_t> bias_q(static_cast<size_t>(g.Cout), 0);
      std::vector<q8::Requant> rq(static_cast<size_t>(g.Cout), q8::make_requant(1.0 / 4096));
      kernels::ConvI8 conv8(g, wq.data(), lq.row_ptr, lq.col_idx, bias_q.data(), rq, -128, 127);
      std::vector<std::function<void()>> runs = {[&] { blas.run(x.data(), B, y.data(), nullptr, Clamp{}); }};
      for (auto& c : convs) runs.push_back([&, cp = c.get()] { cp->run(x.data(), g.C, B, y.data(), g.Cout, nullptr, 0, Clamp{}); });
      runs.push_back([&] { conv8.run(xq.data(), B, yq.data()); });
      std::vector<std::vector<double>> times(runs.size());
      for (auto& r : runs) r();  // warm up
      // Rounds of kBlock calls per variant, OpenBLAS then bsp's four, so
      // that all share the machine's noise round by round. Before each
      // library's first block, a pause lets the other library's threads
      // fall asleep and an untimed call wakes its own.
      constexpr int kBlock = 4;
      for (int done = 0; done < reps; done += kBlock)
        for (size_t k = 0; k < runs.size(); ++k) {
          if (k <= 1) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            runs[k]();
          }
          for (int rep = done; rep < std::min(reps, done + kBlock); ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            runs[k]();
            times[k].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
          }
        }
      const double t_blas = median(times[0]);
      const double t[3] = {median(times[1]), median(times[2]), median(times[3])};
      const double t_i8 = median(times[4]);
      std::printf("%s,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f\n", n.name.c_str(),
                  static_cast<long>(B), static_cast<long>(g.H), static_cast<long>(g.W), static_cast<long>(g.C),
                  static_cast<long>(g.Cout), static_cast<long>(g.kh), static_cast<long>(g.sh), gflop, t_blas, t[0], t[1],
                  t[2], t_i8, gflop / t_blas * 1e3, gflop / t[0] * 1e3, t_blas / t[0], t_blas / t[1], t_blas / t[2],
                  t[1] / t_i8);
      std::fflush(stdout);
      sd[B].push_back(t_blas / t[0]);
      s50[B].push_back(t_blas / t[1]);
      s25[B].push_back(t_blas / t[2]);
      si8[B].push_back(t_i8 / t[1]);
    }
  }
  for (int64_t B : batches)
    std::fprintf(stderr,
                 "batch %ld: median speedup over OpenBLAS: bsp dense %.2fx, block:8x8 d=0.5 %.2fx, d=0.25 %.2fx "
                 "(%zu shapes); int8 / fp32 block-sparse d=0.5 time %.2f\n",
                 static_cast<long>(B), median(sd[B]), median(s50[B]), median(s25[B]), s50[B].size(), median(si8[B]));
  return 0;
}
