#include "core/finite.hpp"

#include <immintrin.h>

namespace bsp {
namespace {

// The scan of finite.hpp, one lane at a time: the tail, and machines
// without AVX2.
uint32_t scan_lanes(const float* v, int64_t n, uint32_t acc) {
  for (int64_t i = 0; i < n; ++i) acc |= (std::bit_cast<uint32_t>(v[i]) & 0x7f800000u) + 0x00800000u;
  return acc;
}

// (bits & exponent) + (1 << 23) for 16 values
__attribute__((target("avx512f"))) inline __m512i lanes16(const float* v, __m512i exp, __m512i one) {
  return _mm512_add_epi32(_mm512_and_si512(_mm512_loadu_si512(v), exp), one);
}

// Four independent accumulators, so that the loads, not the chain of ORs
// into one register, bound the rate: reading a model scans every parameter
// right after it is read, while it is still in the cache (issue 24's
// validation cost; one accumulator ran at half the rate in the cache).
__attribute__((target("avx512f,avx512dq"))) bool any_avx512(const float* v, int64_t n) {
  const __m512i exp = _mm512_set1_epi32(0x7f800000), one = _mm512_set1_epi32(0x00800000);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_or_si512(a0, lanes16(v + i, exp, one));
    a1 = _mm512_or_si512(a1, lanes16(v + i + 16, exp, one));
    a2 = _mm512_or_si512(a2, lanes16(v + i + 32, exp, one));
    a3 = _mm512_or_si512(a3, lanes16(v + i + 48, exp, one));
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_or_si512(a0, lanes16(v + i, exp, one));
  const __m512i a = _mm512_or_si512(_mm512_or_si512(a0, a1), _mm512_or_si512(a2, a3));
  const uint32_t sign = _mm512_movepi32_mask(a) != 0 ? 0x80000000u : 0u;  // the sign bits (AVX-512 DQ)
  return ((scan_lanes(v + i, n - i, sign)) >> 31) != 0;
}

__attribute__((target("avx2"))) inline __m256i lanes8(const float* v, __m256i exp, __m256i one) {
  return _mm256_add_epi32(_mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v)), exp), one);
}

__attribute__((target("avx2"))) bool any_avx2(const float* v, int64_t n) {
  const __m256i exp = _mm256_set1_epi32(0x7f800000), one = _mm256_set1_epi32(0x00800000);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_or_si256(a0, lanes8(v + i, exp, one));
    a1 = _mm256_or_si256(a1, lanes8(v + i + 8, exp, one));
    a2 = _mm256_or_si256(a2, lanes8(v + i + 16, exp, one));
    a3 = _mm256_or_si256(a3, lanes8(v + i + 24, exp, one));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_or_si256(a0, lanes8(v + i, exp, one));
  const __m256i a = _mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3));
  const uint32_t sign = _mm256_movemask_ps(_mm256_castsi256_ps(a)) != 0 ? 0x80000000u : 0u;
  return ((scan_lanes(v + i, n - i, sign)) >> 31) != 0;
}

bool any_scalar(const float* v, int64_t n) { return (scan_lanes(v, n, 0) >> 31) != 0; }

bool supported(ScanIsa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case ScanIsa::Avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    case ScanIsa::Avx2: return __builtin_cpu_supports("avx2");
    case ScanIsa::Scalar: return true;
  }
  return false;
}

using ScanFn = bool (*)(const float*, int64_t);
ScanFn scan_for(ScanIsa isa) {
  switch (isa) {
    case ScanIsa::Avx512: return any_avx512;
    case ScanIsa::Avx2: return any_avx2;
    case ScanIsa::Scalar: break;
  }
  return any_scalar;
}
ScanFn pick_scan() {
  for (ScanIsa isa : {ScanIsa::Avx512, ScanIsa::Avx2})
    if (supported(isa)) return scan_for(isa);
  return any_scalar;
}
const ScanFn scan_fn = pick_scan();

}  // namespace

bool any_nonfinite_serial(const float* v, int64_t n) { return scan_fn(v, n); }

std::optional<bool> any_nonfinite_serial(const float* v, int64_t n, ScanIsa isa) {
  if (!supported(isa)) return std::nullopt;
  return scan_for(isa)(v, n);
}

}  // namespace bsp
