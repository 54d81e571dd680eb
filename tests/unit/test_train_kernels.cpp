// Every kernel build (AVX-512, AVX2, scalar) against a plain reference of
// igemm8 and rowdot8 (train/kernels.hpp), over tile tails, row counts,
// offsets and the accumulate flag.
#include <catch2/catch.hpp>

#include <vector>

#include "test_helpers.hpp"
#include "train/kernels.hpp"

using namespace bsp;
using namespace bsp::train;

namespace {

std::vector<const KernelSet*> available() {
  std::vector<const KernelSet*> v;
  for (const char* n : {"avx512", "avx2", "scalar"})
    if (const KernelSet* k = kernels_named(n)) v.push_back(k);
  return v;
}

}  // namespace

TEST_CASE("igemm8 matches the reference for every build") {
  const std::vector<const KernelSet*> sets = available();
  REQUIRE(!sets.empty());
  for (const KernelSet* k : sets) {
    INFO("kernels " << k->name);
    for (int64_t P : {1, 7, 16, 33, 47, 48, 49, 95, 96, 130}) {
      for (int64_t T : {0, 1, 5, 72}) {
        for (bool acc : {false, true}) {
          const int64_t ldb = 400, ldc = P + 5;
          Tensor A = test::random_tensor({std::max<int64_t>(T, 1), 8}, 1 + T);
          Tensor B = test::random_tensor({ldb * 4 + 64}, 2 + P);
          std::vector<int64_t> off(static_cast<size_t>(T));
          for (int64_t t = 0; t < T; ++t) off[static_cast<size_t>(t)] = (t * 37) % (ldb * 4 - P) + (t % 3);
          Tensor C = test::random_tensor({8, ldc}, 3);
          Tensor want = C.clone();
          for (int64_t r = 0; r < 8; ++r)
            for (int64_t p = 0; p < P; ++p) {
              double s = acc ? want[static_cast<size_t>(r * ldc + p)] : 0.0;
              for (int64_t t = 0; t < T; ++t)
                s += static_cast<double>(A[static_cast<size_t>(t * 8 + r)]) * B[static_cast<size_t>(off[static_cast<size_t>(t)] + p)];
              want[static_cast<size_t>(r * ldc + p)] = static_cast<float>(s);
            }
          k->igemm8(A.data(), off.data(), T, B.data(), P, C.data(), ldc, acc);
          INFO("P " << P << " T " << T << " acc " << acc);
          CHECK(test::max_abs_diff(C, want) < 1e-4f);
        }
      }
    }
  }
}

TEST_CASE("rowdot8 matches the reference for every build") {
  for (const KernelSet* k : available()) {
    INFO("kernels " << k->name);
    for (int rows = 1; rows <= 8; ++rows) {
      for (int64_t P : {1, 15, 16, 17, 100, 1024}) {
        for (int64_t T : {1, 2, 3, 4, 10}) {
          for (bool with_idx : {false, true}) {
            const int64_t ldy = P + 3, ldd = 2 * T + 1;
            Tensor Y = test::random_tensor({8, ldy}, 5 + rows);
            Tensor B = test::random_tensor({P + 200}, 6 + T);
            std::vector<int64_t> off, idx;
            for (int64_t t = 0; t < T; ++t) {
              off.push_back((t * 13) % 200);
              idx.push_back(2 * t + 1);
            }
            Tensor D = test::random_tensor({8, ldd}, 7);
            Tensor want = D.clone();
            for (int r = 0; r < rows; ++r)
              for (int64_t t = 0; t < T; ++t) {
                double s = 0;
                for (int64_t p = 0; p < P; ++p)
                  s += static_cast<double>(Y[static_cast<size_t>(r * ldy + p)]) * B[static_cast<size_t>(off[static_cast<size_t>(t)] + p)];
                const int64_t d = with_idx ? idx[static_cast<size_t>(t)] : t;
                want[static_cast<size_t>(r * ldd + d)] += static_cast<float>(s);
              }
            k->rowdot8(Y.data(), ldy, rows, off.data(), with_idx ? idx.data() : nullptr, T, B.data(), P, D.data(),
                       ldd);
            INFO("rows " << rows << " P " << P << " T " << T);
            CHECK(test::max_abs_diff(D, want) < 2e-3f);
          }
        }
      }
    }
  }
}

TEST_CASE("the chosen kernel set is the best the CPU runs") {
  const KernelSet& k = kernels();
  if (kernels_named("avx512") && !std::getenv("BSP_ISA")) CHECK(std::string(k.name) == "avx512");
  CHECK(kernels_named("scalar") != nullptr);
  CHECK(kernels_named("nonsense") == nullptr);
}
