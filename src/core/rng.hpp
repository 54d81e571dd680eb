// Deterministic random numbers that do not depend on the standard library's
// implementation-defined distributions or on the thread count: the same seed
// gives the same numbers everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bsp {

// SplitMix64's finaliser: a strong 64-bit mixing function.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// FNV-1a hash of a string, for deriving per-layer streams from names.
constexpr uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// A small sequential generator (SplitMix64).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return mix64(s_ += 0x9e3779b97f4a7c15ULL); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  double normal();

 private:
  uint64_t s_;
};

// Fills p[0..n) with N(0, stddev^2) draws. Element i depends only on (key, i)
// (a counter-based generator), so the result is the same for any thread count.
void fill_normal(float* p, size_t n, double stddev, uint64_t key);

}  // namespace bsp
