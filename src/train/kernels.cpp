#include "train/kernels.hpp"

#include "kernels/isa.hpp"

namespace bsp::train {

namespace {
const KernelSet* for_isa(kernels::Isa i) {
  switch (i) {
    case kernels::Isa::Avx512: return &kKernelsAvx512;
    case kernels::Isa::Avx2: return &kKernelsAvx2;
    case kernels::Isa::Scalar: return &kKernelsScalar;
  }
  return &kKernelsScalar;
}
}  // namespace

const KernelSet* kernels_named(const std::string& name) {
  const int best = static_cast<int>(kernels::detect_isa());
  for (kernels::Isa i : {kernels::Isa::Avx512, kernels::Isa::Avx2, kernels::Isa::Scalar})
    if (name == kernels::isa_name(i)) return static_cast<int>(i) <= best ? for_isa(i) : nullptr;
  return nullptr;
}

const KernelSet& kernels() { return *for_isa(kernels::active_isa()); }

}  // namespace bsp::train
