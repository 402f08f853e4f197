/* Scalar kernels, shared with SIMD tables for operations they do not specialise. */
#ifndef MIPR_ARCH_GENERIC_H
#define MIPR_ARCH_GENERIC_H

#include "mipr_arch.h"

float mipr_dot_generic(const float *a, const float *b, size_t n);
void mipr_axpy_generic(float *y, float a, const float *x, size_t n);
void mipr_rmsnorm_generic(float *out, const float *x, const float *w, size_t n, float eps);
void mipr_softmax_generic(float *x, size_t n);
void mipr_rope_generic(float *v, size_t n_heads, size_t head_size, size_t n_rot, const float *cs);
void mipr_swiglu_generic(float *h, const float *gate, const float *up, size_t n);

void mipr_gauss_block_generic(float *out, const float *xi, size_t ni, const float *xj,
                              size_t nj, float inv);

void mipr_attn_scores_generic(float *out, const float *q, const float *k, size_t stride,
                              size_t n, size_t hs, float div);
void mipr_attn_mix_generic(float *out, const float *a, const float *v, size_t stride, size_t n,
                           size_t hs);

#endif
