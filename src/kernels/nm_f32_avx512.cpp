// nm fp32 kernel pieces, AVX-512: one zmm per 16 pixels.
#include <immintrin.h>

#include <algorithm>

#include "kernels/nm_f32.hpp"

namespace bsp::kernels {
namespace {
struct V {
  __m512 v;
};
inline V vload(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void vstore(float* p, V a) { _mm512_storeu_ps(p, a.v); }
inline V vzero() { return {_mm512_setzero_ps()}; }
inline V vset1(float s) { return {_mm512_set1_ps(s)}; }
inline V vadd(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V vmin(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
inline V vmax(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
inline V vfma(float s, V x, V acc) { return {_mm512_fmadd_ps(_mm512_set1_ps(s), x.v, acc.v)}; }

// r[16] -> its transpose, in registers. Rows in 4 groups of 4: unpack and
// shuffle_ps leave, in each 128-bit lane l of u[g][m], rows 4g..4g+3 of
// column 4l + m; two shuffle_f32x4 stages gather lane l of the 4 groups into
// output row 4l + m.
inline void transpose_regs(const __m512* r, __m512* out) {
  __m512 u[4][4];
  for (int g = 0; g < 4; ++g) {
    const __m512 t0 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]), t1 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]), t3 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    u[g][0] = _mm512_shuffle_ps(t0, t2, 0x44);
    u[g][1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    u[g][2] = _mm512_shuffle_ps(t1, t3, 0x44);
    u[g][3] = _mm512_shuffle_ps(t1, t3, 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 v01 = _mm512_shuffle_f32x4(u[0][m], u[1][m], 0x88);  // lanes 0, 2 of groups 0, 1
    const __m512 w01 = _mm512_shuffle_f32x4(u[0][m], u[1][m], 0xDD);  // lanes 1, 3
    const __m512 v23 = _mm512_shuffle_f32x4(u[2][m], u[3][m], 0x88);
    const __m512 w23 = _mm512_shuffle_f32x4(u[2][m], u[3][m], 0xDD);
    out[0 + m] = _mm512_shuffle_f32x4(v01, v23, 0x88);
    out[4 + m] = _mm512_shuffle_f32x4(w01, w23, 0x88);
    out[8 + m] = _mm512_shuffle_f32x4(v01, v23, 0xDD);
    out[12 + m] = _mm512_shuffle_f32x4(w01, w23, 0xDD);
  }
}

void transpose16(const float* const* src, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src[i]);
  transpose_regs(r, t);
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ldd, t[i]);
}

// The epilogue with the transpose in registers (no round trip through memory).
void store16_avx512(const float* acc, int nco, int npix, float* y, int64_t ldy, const float* z, Clamp clamp) {
  __m512 r[16], t[16];
  for (int c = 0; c < 16; ++c) r[c] = c < nco ? _mm512_loadu_ps(acc + c * kNmTile) : _mm512_setzero_ps();
  transpose_regs(r, t);
  const __mmask16 m = static_cast<__mmask16>((1u << nco) - 1);
  const __m512 lo = _mm512_set1_ps(clamp.lo), hi = _mm512_set1_ps(clamp.hi);
  for (int j = 0; j < npix; ++j) {
    __m512 v = t[j];
    if (z) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, z + j * ldy));
    if (clamp.on) v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    _mm512_mask_storeu_ps(y + j * ldy, m, v);
  }
}
constexpr int kChains = 8;
}  // namespace
#include "kernels/nm_f32_impl.inc"

NmKernelsF32 nm_f32_avx512() { return {&accumulate, &transpose16, &store16_avx512}; }
}  // namespace bsp::kernels
