// The portable kernels for baseline x86-64 (see kernels_generic.inc).
#define BSP_KERNEL_SET kKernelsScalar
#define BSP_KERNEL_NAME "scalar"
#include "train/kernels_generic.inc"
