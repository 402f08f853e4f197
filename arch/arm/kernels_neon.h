/* The NEON kernel table (aarch64, and armv7 with neon-vfpv4). It is data, not a function, so
 * that dispatch can take its address on a CPU without NEON without running NEON code. */
#ifndef MIPR_ARCH_KERNELS_NEON_H
#define MIPR_ARCH_KERNELS_NEON_H

#include "mipr_arch.h"

extern const struct mipr_kernels mipr_kernels_neon_table;

#endif
