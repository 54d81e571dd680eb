// Finiteness scans for the finiteness policy of bsp-format(5) (VALUES):
// cheap enough to run on every batch of activations.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <optional>

namespace bsp {

// Whether any of v[0..n) is NaN or infinite. A float is non-finite when its
// exponent bits are all ones, and then only adding 1 to the exponent field
// carries into bit 31: OR-ing (bits & exponent) + (1 << 23) over the array
// is three integer operations a lane, no early exit, no widening (a counting
// loop ran 5-10 times slower). The serial scan is compiled for AVX-512,
// AVX2 and the baseline, chosen at run time (finite.cpp); arrays over 2^20
// values share the cores.
bool any_nonfinite_serial(const float* v, int64_t n);
// The same scan on a given instruction set (tests); nullopt when this
// machine lacks it.
enum class ScanIsa { Scalar, Avx2, Avx512 };
std::optional<bool> any_nonfinite_serial(const float* v, int64_t n, ScanIsa isa);
inline bool any_nonfinite(const float* v, int64_t n) {
  constexpr int64_t kChunk = int64_t{1} << 18;
  if (n <= 4 * kChunk) return any_nonfinite_serial(v, n);
  bool bad = false;
#pragma omp parallel for reduction(|| : bad) schedule(static)
  for (int64_t i = 0; i < n; i += kChunk) bad = bad || any_nonfinite_serial(v + i, std::min(kChunk, n - i));
  return bad;
}

// The index of the first non-finite value of v[0..n), or n.
inline int64_t first_nonfinite(const float* v, int64_t n) {
  if (!any_nonfinite(v, n)) return n;
  for (int64_t i = 0; i < n; ++i)
    if ((std::bit_cast<uint32_t>(v[i]) & 0x7f800000u) == 0x7f800000u) return i;
  return n;
}

// "nan" or "infinite" (for messages).
inline const char* nonfinite_word(float v) { return v != v ? "nan" : "infinite"; }

}  // namespace bsp
