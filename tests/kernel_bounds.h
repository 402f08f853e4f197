/* The error bound of a reordered float dot product, shared by the kernel tests on the host
 * (tests/unit/test_kernels.c) and on firmware (tests/firmware/compare.c), so that every SIMD
 * table is held to the same tolerance against the generic one. */
#ifndef MIPR_TEST_KERNEL_BOUNDS_H
#define MIPR_TEST_KERNEL_BOUNDS_H

#include <float.h>
#include <math.h>
#include <stddef.h>

/* sum |w_i x_i| in double: the scale of the rounding error of any summation order */
static inline double abs_dot(const float *w, const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)w[i] * (double)x[i]);
    return s;
}

/* Two k-term float sums in different orders differ by at most about 2 (k + 2) eps sum|w x|. */
static inline int close_dot(float got, float ref, double absdot, size_t k)
{
    return fabs((double)got - (double)ref) <= 2.0 * (double)(k + 2) * FLT_EPSILON * absdot;
}

#endif
