/* The best single-thread FMA throughput of the ISAs this CPU runs, for benchmarks that
 * report their speed as a share of the machine's own peak measured in the same run. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "mipr_arch.h"
#include "peak.h"

static volatile float sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double gflops(float (*f)(long, double *), long iters)
{
    double best = 0.0, fpi = 0.0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        sink = f(iters, &fpi);
        double g = fpi * (double)iters / (now() - t0) * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

double mipr_peak_fma_best(int quick, const char **isa)
{
    long iters = quick ? 2000000 : 20000000;
    *isa = "generic";
    double g = gflops(mipr_peak_fma_scalar, iters);
#if defined(MIPR_BENCH_AVX2)
    if (mipr_kernels_for("avx2"))
        *isa = "avx2", g = gflops(mipr_peak_fma_avx2, iters);
#endif
#if defined(MIPR_BENCH_NEON)
    if (mipr_kernels_for("neon"))
        *isa = "neon", g = gflops(mipr_peak_fma_neon, iters);
#endif
    return g;
}

/* Streaming read of a buffer far larger than the caches, best of 3. */
double mipr_peak_read_best(int quick)
{
    float (*f)(const float *, size_t) = mipr_peak_read_scalar;
#if defined(MIPR_BENCH_AVX2)
    if (mipr_kernels_for("avx2"))
        f = mipr_peak_read_avx2;
#endif
#if defined(MIPR_BENCH_NEON)
    if (mipr_kernels_for("neon"))
        f = mipr_peak_read_neon;
#endif
    size_t n = (quick ? 32u : 256u) << 20 >> 2;
    float *x = malloc(n * sizeof *x);
    if (!x)
        return 0.0;
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f; /* every page touched before timing */
    double best = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        sink = f(x, n);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(x);
    return (double)(n * sizeof *x) / best * 1e-9;
}
