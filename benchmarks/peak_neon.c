/* NEON peak loops (aarch64, armv7 with neon-vfpv4). */
#include <arm_neon.h>

#include "peak.h"

/* 12 independent chains cover FMA latency x units of the usual cores (4 x 2 on A76). */
float mipr_peak_fma_neon(long iters, double *flops_per_iter)
{
    float32x4_t a[12];
    const float32x4_t m = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = vdupq_n_f32((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = vfmaq_f32(c, a[i], m);
    float32x4_t s = a[0];
    for (int i = 1; i < 12; i++)
        s = vaddq_f32(s, a[i]);
    *flops_per_iter = 12 * 4 * 2;
    return vgetq_lane_f32(s, 0);
}

float mipr_peak_read_neon(const float *x, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < n; i += 16) {
        s0 = vaddq_f32(s0, vld1q_f32(x + i));
        s1 = vaddq_f32(s1, vld1q_f32(x + i + 4));
        s2 = vaddq_f32(s2, vld1q_f32(x + i + 8));
        s3 = vaddq_f32(s3, vld1q_f32(x + i + 12));
    }
    return vgetq_lane_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)), 0);
}
