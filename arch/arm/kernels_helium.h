/* The Helium (MVE) kernel table, for Armv8.1-M cores with MVE floating point (Cortex-M55,
 * M85). Bare metal has no cpuinfo: it is compiled in only when the whole program targets MVE,
 * and then it is the default table. */
#ifndef MIPR_ARCH_KERNELS_HELIUM_H
#define MIPR_ARCH_KERNELS_HELIUM_H

#include "mipr_arch.h"

extern const struct mipr_kernels mipr_kernels_helium_table;

#endif
