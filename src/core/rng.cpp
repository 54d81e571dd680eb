#include "core/rng.hpp"

#include <cmath>

namespace bsp {

namespace {
constexpr double kTwoPi = 6.283185307179586476925286766559;

// Two uniforms in (0, 1] and [0, 1) from a counter.
inline void uniforms(uint64_t key, uint64_t counter, double& u1, double& u2) {
  uint64_t a = mix64(key ^ mix64(counter * 2 + 1));
  uint64_t b = mix64(key ^ mix64(counter * 2 + 2));
  u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1.0p-53;
  u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
}
}  // namespace

uint64_t Rng::below(uint64_t n) {
  // Lemire's multiply-shift; the tiny bias is irrelevant for shuffling data.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

double Rng::normal() {
  double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;
  double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

void fill_normal(float* p, size_t n, double stddev, uint64_t key) {
  // Box-Muller: each counter gives a pair of normals.
  const int64_t pairs = static_cast<int64_t>((n + 1) / 2);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < pairs; ++c) {
    double u1, u2;
    uniforms(key, static_cast<uint64_t>(c), u1, u2);
    double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
    size_t i = static_cast<size_t>(c) * 2;
    p[i] = static_cast<float>(r * std::cos(kTwoPi * u2));
    if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(kTwoPi * u2));
  }
}

}  // namespace bsp
