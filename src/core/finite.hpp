// Finiteness scans for the finiteness policy of bsp-format(5) (VALUES):
// cheap enough to run on every batch of activations.
#pragma once

#include <bit>
#include <cstdint>

namespace bsp {

// How many of v[0..n) are NaN or infinite. A float is non-finite when its
// exponent bits are all ones; counted over the bits (no early exit, integer
// compares) the loop vectorises even for SSE2, and large arrays share the
// cores.
inline int64_t count_nonfinite(const float* v, int64_t n) {
  int64_t bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static) if (n > (int64_t{1} << 20))
  for (int64_t i = 0; i < n; ++i) bad += (std::bit_cast<uint32_t>(v[i]) & 0x7f800000u) == 0x7f800000u;
  return bad;
}

// The index of the first non-finite value of v[0..n), or n.
inline int64_t first_nonfinite(const float* v, int64_t n) {
  if (!count_nonfinite(v, n)) return n;
  for (int64_t i = 0; i < n; ++i)
    if ((std::bit_cast<uint32_t>(v[i]) & 0x7f800000u) == 0x7f800000u) return i;
  return n;
}

// "nan" or "infinite" (for messages).
inline const char* nonfinite_word(float v) { return v != v ? "nan" : "infinite"; }

}  // namespace bsp
