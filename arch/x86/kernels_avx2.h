/* The AVX2+FMA+F16C kernel table. It is data, not a function, so that dispatch can take its
 * address on any x86-64 CPU without running a byte of code compiled for AVX2. */
#ifndef MIPR_ARCH_KERNELS_AVX2_H
#define MIPR_ARCH_KERNELS_AVX2_H

#include "mipr_arch.h"

extern const struct mipr_kernels mipr_kernels_avx2_table;

#endif
