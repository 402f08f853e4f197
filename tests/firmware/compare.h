/* A SIMD kernel table against the generic one on pseudo-random inputs (tests/firmware). */
#ifndef MIPR_FW_COMPARE_H
#define MIPR_FW_COMPARE_H

#include "mipr_arch.h"

/* Runs every kernel of k and of the generic table on the same inputs and compares them with
 * the tolerances of tests/unit/test_kernels.c. Prints a FAIL line per mismatch; returns the
 * number of mismatches, and the number of comparisons made in *checks. */
int fw_compare_tables(const struct mipr_kernels *k, unsigned long *checks);

#endif
