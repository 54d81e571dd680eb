#include "kernels/conv_blas.hpp"

#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

namespace bsp::kernels {

namespace {

// OpenBLAS is loaded on first use rather than linked: the pthread build
// Debian installs starts its thread pool when the library loads, and the
// pool's threads spin (sched_yield) for about 2^28 cycles before they
// sleep. On a 2-core machine that took every bsp command, BLAS or not, from
// 86 ms to 160 ms on `bsp info resnet50.h5` (measured with and without
// OPENBLAS_NUM_THREADS=1). Only bench's baseline calls BLAS.
struct OpenBlas {
  decltype(&cblas_sgemm) sgemm;
  decltype(&openblas_set_num_threads) set_num_threads;
};

const OpenBlas& openblas() {
  static const OpenBlas lib = [] {
    void* h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) fail("cannot load OpenBLAS 'libopenblas.so.0': {}", dlerror());
    OpenBlas b{};
    b.sgemm = reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(h, "cblas_sgemm"));
    b.set_num_threads = reinterpret_cast<decltype(&openblas_set_num_threads)>(dlsym(h, "openblas_set_num_threads"));
    if (!b.sgemm || !b.set_num_threads) fail("cannot load OpenBLAS 'libopenblas.so.0': a function is missing");
    return b;
  }();
  return lib;
}

}  // namespace

void set_blas_threads(int n) { openblas().set_num_threads(n); }

ConvBlas::ConvBlas(const ConvGeom& g, const float* w, const float* bias) : g_(g) {
  if (g.groups != 1) fail("internal: the BLAS convolution takes groups = 1");
  w_.assign(w, w + g.Cout * g.kh * g.kw * g.C);
  bias_.assign(static_cast<size_t>(g.Cout), 0.0f);
  if (bias) std::copy(bias, bias + g.Cout, bias_.begin());
}

void ConvBlas::run(const float* x, int64_t N, float* y, const float* z, Clamp clamp) const {
  const ConvGeom& g = g_;
  const int64_t P = N * g.Ho * g.Wo, K = g.kh * g.kw * g.C;
  const bool plain = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.pb == 0 &&
                     g.pr == 0;
  std::vector<float> col;
  const float* a = x;
  if (!plain) {
    col.resize(static_cast<size_t>(P * K));
    float* cp = col.data();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          float* row = cp + ((n * g.Ho + oh) * g.Wo + ow) * K;
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              float* dst = row + (i * g.kw + j) * g.C;
              const int64_t ih = oh * g.sh - g.pt + i * g.dh, iw = ow * g.sw - g.pl + j * g.dw;
              if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
                std::memset(dst, 0, static_cast<size_t>(g.C) * 4);
              else
                std::memcpy(dst, x + ((n * g.H + ih) * g.W + iw) * g.C, static_cast<size_t>(g.C) * 4);
            }
        }
    a = cp;
  }
  openblas().sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(P), static_cast<int>(g.Cout),
              static_cast<int>(K), 1.0f, a, static_cast<int>(K), w_.data(), static_cast<int>(K), 0.0f, y,
              static_cast<int>(g.Cout));
  const int64_t C = g.Cout;
  const float* b = bias_.data();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; ++p) {
    float* yr = y + p * C;
    const float* zr = z ? z + p * C : nullptr;
    for (int64_t c = 0; c < C; ++c) {
      float v = yr[c] + b[c] + (zr ? zr[c] : 0.0f);
      yr[c] = clamp.on ? std::min(std::max(v, clamp.lo), clamp.hi) : v;
    }
  }
}

}  // namespace bsp::kernels
