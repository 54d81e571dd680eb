#include "kernels/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace bsp::kernels {

namespace {
std::atomic<int> g_isa{-1};

Isa clamp_isa(Isa want) { return static_cast<int>(want) < static_cast<int>(detect_isa()) ? want : detect_isa(); }
}  // namespace

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa detect_isa() {
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni"))
      return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Scalar;
  }();
  return best;
}

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    Isa i = detect_isa();
    if (const char* e = std::getenv("BSP_ISA")) {
      if (!std::strcmp(e, "scalar")) i = clamp_isa(Isa::Scalar);
      if (!std::strcmp(e, "avx2")) i = clamp_isa(Isa::Avx2);
    }
    v = static_cast<int>(i);
    g_isa.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

void set_isa(Isa i) { g_isa.store(static_cast<int>(clamp_isa(i)), std::memory_order_relaxed); }

}  // namespace bsp::kernels
