/* Scalar peak loops, for the generic table's point of comparison. */
#include "peak.h"

/* Ten chains of multiply then add (the generic kernels do not fuse). */
float mipr_peak_fma_scalar(long iters, double *flops_per_iter)
{
    float a[10];
    const float m = 0.999999f, c = 1e-7f;
    for (int i = 0; i < 10; i++)
        a[i] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 10; i++)
            a[i] = a[i] * m + c;
    float s = 0.0f;
    for (int i = 0; i < 10; i++)
        s += a[i];
    *flops_per_iter = 10 * 2;
    return s;
}

float mipr_peak_read_scalar(const float *x, size_t n)
{
    float s[4] = {0};
    for (size_t i = 0; i < n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += x[i + j];
    return s[0] + s[1] + s[2] + s[3];
}
