// Which vector instruction set the CPU kernels use, chosen at run time: the
// library is compiled for baseline x86-64 and only the kernel files are built
// with AVX2 or AVX-512 flags.
#pragma once

namespace bsp::kernels {

enum class Isa { Scalar, Avx2, Avx512 };

const char* isa_name(Isa i);
// What this CPU supports best (AVX-512 needs F, BW, VL, DQ and VNNI; AVX2 needs FMA).
Isa detect_isa();
// The ISA in use: detect_isa(), lowered by the environment variable
// BSP_ISA=scalar|avx2|avx512 (never raised above what the CPU supports), or
// by set_isa() (tests run every path).
Isa active_isa();
void set_isa(Isa i);  // clamped to detect_isa()

}  // namespace bsp::kernels
