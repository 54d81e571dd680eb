// Finiteness scans for the finiteness policy of bsp-format(5) (VALUES):
// cheap enough to run on every batch of activations.
#pragma once

#include <bit>
#include <cstdint>

namespace bsp {

// Whether any of v[0..n) is NaN or infinite. A float is non-finite when its
// exponent bits are all ones, and then only adding 1 to the exponent field
// carries into bit 31: OR-ing (bits & exponent) + (1 << 23) over the array
// is three integer operations a lane, no early exit, no widening, so the
// loop vectorises even for SSE2 (a counting loop ran 5-10 times slower), and
// large arrays share the cores.
inline bool any_nonfinite(const float* v, int64_t n) {
  uint32_t acc = 0;
#pragma omp parallel for reduction(| : acc) schedule(static) if (n > (int64_t{1} << 20))
  for (int64_t i = 0; i < n; ++i) acc |= (std::bit_cast<uint32_t>(v[i]) & 0x7f800000u) + 0x00800000u;
  return (acc >> 31) != 0;
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
