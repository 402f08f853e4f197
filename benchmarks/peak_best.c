/* The best single-thread FMA throughput of the ISAs this CPU runs, for benchmarks that
 * report their speed as a share of the machine's own peak measured in the same run. */
#define _POSIX_C_SOURCE 200809L
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
