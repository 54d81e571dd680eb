// The portable kernels compiled with -mavx2 -mfma (see kernels_generic.inc).
#define BSP_KERNEL_SET kKernelsAvx2
#define BSP_KERNEL_NAME "avx2"
#include "train/kernels_generic.inc"
