// The two GEMM-like kernels every trainer layer runs on, in three builds
// (AVX-512, AVX2+FMA, portable scalar) chosen at run time.
//
// Activations are channel-major: one row of P contiguous floats per channel
// (or per feature), so a kernel tile is 8 rows (one 8-row block of a weight
// matrix: 8 output channels, 8 input channels, 8 neurons) by P positions.
//
// igemm8: C = A . B over an *indirect* K list: row t of B starts at
//   B + off[t]. With off[t] = ci * plane + tap shift, B is a padded feature
//   map and the product is a convolution without an im2col copy; with
//   off[t] = k * ld, B is an ordinary matrix. Block sparsity lives in the K
//   list: a row block lists only the K entries of its nonzero 8x8 blocks.
//     C[r * ldc + p] = (accumulate ? C[r * ldc + p] : 0) + sum_t A[t * 8 + r] * B[off[t] + p]
//   A [T, 8] (rows past the real row count are zero), r < 8, p < P. All 8
//   rows of C are written.
//
// rowdot8: the weight gradient: dot products of rows over positions.
//     D[r * ldd + didx[t]] += sum_p Y[r * ldy + p] * B[off[t] + p]
//   for r < rows (1..8), t < T, p < P.
#pragma once

#include <cstdint>
#include <string>

namespace bsp::train {

struct KernelSet {
  const char* name;  // "avx512", "avx2", "scalar"
  void (*igemm8)(const float* A, const int64_t* off, int64_t T, const float* B, int64_t P, float* C, int64_t ldc,
                 bool accumulate);
  void (*rowdot8)(const float* Y, int64_t ldy, int rows, const int64_t* off, const int64_t* didx, int64_t T,
                  const float* B, int64_t P, float* D, int64_t ldd);
};

// The set of the ISA in use (kernels/isa.hpp: the best the CPU runs, lowered
// by BSP_ISA=avx2|scalar or kernels::set_isa()).
const KernelSet& kernels();
// A named set, or nullptr when the CPU cannot run it (for tests and benchmarks).
const KernelSet* kernels_named(const std::string& name);

// The builds (each in its own translation unit with its own target flags).
extern const KernelSet kKernelsAvx512;
extern const KernelSet kKernelsAvx2;
extern const KernelSet kKernelsScalar;

}  // namespace bsp::train
