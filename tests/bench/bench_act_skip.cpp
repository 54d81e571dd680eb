// Benchmark: the fp32 conv kernel (ConvF32) with and without a zero map
// (kernels/act_skip.hpp) at several zero-unit fractions, to measure what
// skipping saves and the fraction below which the masks cost more than they
// save (kMinSkipFraction). Repetitions alternate the two forms; medians.
// Usage: bench_act_skip [--reps R] [--batch N]
// Columns: without the map; with it on the usual 24-pixel tiles; with it on
// row tiles (ActZeroMap::row_tiles); ratios against the first.
// Zero units are drawn two ways: independently at random ("random"), and
// as whole 8-column stripes of every channel at the left and right of the
// image ("border", what a dark background leaves after a relu).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "kernels/act_skip.hpp"
#include "kernels/conv_f32.hpp"

using namespace bsp;
using namespace bsp::kernels;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Layer {
  const char* name;
  int64_t H, W, C, Cout, k, stride, pad;
  double density;
};

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  int64_t N = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) N = std::atoll(argv[i + 1]);
  }
  const Layer layers[] = {
      {"fmnist-cnn conv2 28x28x32 3x3", 28, 28, 32, 32, 3, 1, 1, 1.0},
      {"fmnist-cnn conv4 14x14x64 3x3", 14, 14, 64, 64, 3, 1, 1, 1.0},
      {"same, bsr 50%", 14, 14, 64, 64, 3, 1, 1, 0.5},
      {"resnet 56x56x64 1x1 -> 256", 56, 56, 64, 256, 1, 1, 0, 1.0},
      {"resnet 28x28x128 3x3", 28, 28, 128, 128, 3, 1, 1, 1.0},
      {"dense 3136 -> 256", 1, 1, 3136, 256, 1, 1, 0, 1.0},
  };
  std::printf("batch %ld, %d repetitions; ratio = time without the map / time with it\n", static_cast<long>(N), reps);
  std::printf("%-32s %-7s %6s %10s %10s %7s %10s %7s\n", "layer", "zeros", "units", "no map ms", "map ms", "ratio",
              "rows ms", "ratio");
  for (const Layer& l : layers) {
    ConvGeom g;
    g.H = l.H, g.W = l.W, g.C = l.C, g.Cout = l.Cout, g.kh = g.kw = l.k, g.sh = g.sw = l.stride;
    g.pt = g.pb = g.pl = g.pr = l.pad;
    g.Ho = (l.H + 2 * l.pad - l.k) / l.stride + 1, g.Wo = (l.W + 2 * l.pad - l.k) / l.stride + 1;
    Rng r(1);
    std::vector<float> w(static_cast<size_t>(l.Cout * l.k * l.k * l.C));
    for (auto& v : w) v = static_cast<float>(r.uniform() - 0.5);
    std::vector<int32_t> rp, ci;
    if (l.density < 1) {
      rp.push_back(0);
      for (int64_t ro = 0; ro < (l.Cout + 7) / 8; ++ro) {
        for (int64_t c = 0; c < (l.C + 7) / 8; ++c)
          if (r.uniform() < l.density) ci.push_back(static_cast<int32_t>(c));
        rp.push_back(static_cast<int32_t>(ci.size()));
      }
    }
    ConvF32 conv(g, pack_f32(w.data(), {l.Cout, l.k, l.k, l.C}, rp, ci, nullptr));
    const Shape xs = l.H == 1 && l.W == 1 ? Shape{N, l.C} : Shape{N, l.H, l.W, l.C};
    std::vector<float> y(static_cast<size_t>(N * g.Ho * g.Wo * l.Cout));
    for (const char* mode : {"random", "border"})
      for (double p : {0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9}) {
        if (!std::strcmp(mode, "border") && (p == 0.0 || l.W < 16)) continue;
        std::vector<float> x(static_cast<size_t>(N * l.H * l.W * l.C));
        for (auto& v : x) v = static_cast<float>(r.uniform() + 0.5);
        const int64_t Wu = (l.W + 7) / 8, border = static_cast<int64_t>(p * static_cast<double>(Wu) + 0.5);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t h = 0; h < l.H; ++h)
            for (int64_t u = 0; u < Wu; ++u)
              for (int64_t c = 0; c < (l.C + 7) / 8; ++c) {
                const bool zero = !std::strcmp(mode, "random") ? r.uniform() < p : (u < (border + 1) / 2 || u >= Wu - border / 2);
                if (!zero) continue;
                for (int64_t ww = u * 8; ww < std::min(l.W, u * 8 + 8); ++ww)
                  for (int64_t cc = c * 8; cc < std::min(l.C, c * 8 + 8); ++cc)
                    x[static_cast<size_t>(((n * l.H + h) * l.W + ww) * l.C + cc)] = 0;
              }
        ActZeroMap map;
        apply_act_rule(x.data(), x.data(), xs, {1, 8, 8}, 1e-30f, map);
        ActZeroMap rows = map, flat = map;
        rows.row_tiles = true;
        flat.row_tiles = false;
        std::vector<double> t0, t1, t2;
        for (int i = 0; i < reps + 2; ++i) {
          auto a = std::chrono::steady_clock::now();
          conv.run(x.data(), l.C, N, y.data(), l.Cout, nullptr, 0, Clamp{});
          auto b = std::chrono::steady_clock::now();
          conv.run(x.data(), l.C, N, y.data(), l.Cout, nullptr, 0, Clamp{}, &flat);
          auto c = std::chrono::steady_clock::now();
          conv.run(x.data(), l.C, N, y.data(), l.Cout, nullptr, 0, Clamp{}, &rows);
          auto d = std::chrono::steady_clock::now();
          if (i < 2) continue;  // warm-up
          t0.push_back(std::chrono::duration<double, std::milli>(b - a).count());
          t1.push_back(std::chrono::duration<double, std::milli>(c - b).count());
          t2.push_back(std::chrono::duration<double, std::milli>(d - c).count());
        }
        const double m0 = median(t0), m1 = median(t1), m2 = median(t2);
        std::printf("%-32s %-7s %6.3f %10.4f %10.4f %6.2fx %10.4f %6.2fx\n", l.name, mode, map.unit_fraction(), m0, m1,
                    m0 / m1, m2, m0 / m2);
      }
  }
  return 0;
}
