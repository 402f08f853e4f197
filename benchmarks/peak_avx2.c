/* AVX2 peak loops; this file alone is compiled with -mavx2 -mfma and runs only after
 * mipr_kernels_for("avx2") said the CPU has them. */
#include <immintrin.h>

#include "peak.h"

/* 12 independent chains: more than FMA latency x FMA units (5 x 2 on Zen 2, 4 x 2 on
 * Skylake), so the units never wait. */
float mipr_peak_fma_avx2(long iters, double *flops_per_iter)
{
    __m256 a[12];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    *flops_per_iter = 12 * 8 * 2;
    return _mm_cvtss_f32(_mm256_castps256_ps128(s));
}

float mipr_peak_read_avx2(const float *x, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    return _mm_cvtss_f32(_mm256_castps256_ps128(s));
}
