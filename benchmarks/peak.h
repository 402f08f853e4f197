/* Loops that measure this machine's peak: floating-point multiply-add throughput and
 * streaming read bandwidth, per instruction set. Each returns a value derived from its work so
 * the compiler cannot drop it. */
#ifndef MIPR_BENCH_PEAK_H
#define MIPR_BENCH_PEAK_H

#include <stddef.h>

/* iters rounds of independent multiply-add chains; flops per round in *flops_per_iter. */
float mipr_peak_fma_scalar(long iters, double *flops_per_iter);
/* Sum of n floats (n % 32 == 0), read once. */
float mipr_peak_read_scalar(const float *x, size_t n);

/* Built only where the ISA is (MIPR_BENCH_AVX2, MIPR_BENCH_NEON); call only when
 * mipr_kernels_for() said the CPU runs it. */
float mipr_peak_fma_avx2(long iters, double *flops_per_iter);
float mipr_peak_read_avx2(const float *x, size_t n);
float mipr_peak_fma_neon(long iters, double *flops_per_iter);
float mipr_peak_read_neon(const float *x, size_t n);

/* Best single-thread GFLOP/s over the ISAs this CPU runs (peak_best.c); *isa names it. */
double mipr_peak_fma_best(int quick, const char **isa);
/* Streaming read bandwidth in GB/s (256 MiB buffer; 32 MiB when quick), best ISA. */
double mipr_peak_read_best(int quick);

#endif
