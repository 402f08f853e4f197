/* Scalar kernels, shared with SIMD tables for operations they do not specialise. */
#ifndef MIPR_ARCH_GENERIC_H
#define MIPR_ARCH_GENERIC_H

#include <string.h>

#include "mipr_arch.h"

/* One block of 32 activations quantized for the Q8_0 integer dot product. Quantized like
 * mipr_quantize_q8_0 (d = max|x| / 127, q = round(x / d) half away from zero), but d stays
 * a float: rounding it to fp16 would only add error. */
typedef struct {
    float d;
    int8_t qs[MIPR_QK8_0];
} mipr_xq8;

/* Q8_0 products quantize a token's activations in chunks of at most this many blocks (8192
 * columns, 9 KiB of stack); longer rows take several chunks with the same result. */
#define MIPR_XQ8_CHUNK 256

/* The reference quantization of the n values at x into ceil(n / 32) blocks, the last one
 * zero-padded; SIMD twins must match it bit for bit. */
void mipr_quantize_xq8(mipr_xq8 *out, const float *x, size_t n);

/* A row of quantized blocks as floats, with a (SIMD) dequantizer of block b of row p; a
 * partial last block goes through a full block's floats. */
static inline void mipr_row_blocks_with(float *out, const char *p, size_t cols,
                                        void (*block)(float *, const char *, size_t))
{
    size_t full = cols / MIPR_QK8_0;
    for (size_t b = 0; b < full; b++)
        block(out + b * MIPR_QK8_0, p, b);
    if (cols % MIPR_QK8_0) {
        float t[MIPR_QK8_0];
        block(t, p, full);
        memcpy(out + full * MIPR_QK8_0, t, cols % MIPR_QK8_0 * sizeof *t);
    }
}

/* mipr_quantize_xq8 with another (SIMD) quantizer of one full block. */
static inline void mipr_quantize_xq8_with(void (*block)(mipr_xq8 *, const float *),
                                          mipr_xq8 *out, const float *x, size_t n)
{
    size_t full = n / MIPR_QK8_0;
    for (size_t b = 0; b < full; b++)
        block(out + b, x + b * MIPR_QK8_0);
    if (n % MIPR_QK8_0) {
        float pad[MIPR_QK8_0] = {0};
        memcpy(pad, x + full * MIPR_QK8_0, n % MIPR_QK8_0 * sizeof *pad);
        block(out + full, pad);
    }
}

/* The integer-dot kernels of one SIMD table, for mipr_gemm_quant_with. The chunk kernels
 * add every row's dot over nb blocks to y[t * ldy + row] for tokens t < n; sums8 stores each
 * block's sum of quants times 8, the offset Q4_0's nibbles carry. */
typedef struct mipr_quant_kernels {
    void (*quantize)(mipr_xq8 *out, const float *x, size_t n);
    void (*sums8)(int32_t *xs, const mipr_xq8 *xq, size_t nb);
    void (*q8_chunk)(float *y, size_t ldy, const char *w, size_t ldw, const mipr_xq8 *xq,
                     size_t n, size_t nb, size_t rows);
    void (*q4_chunk)(float *y, size_t ldy, const char *w, size_t ldw, const mipr_xq8 *xq,
                     const int32_t *xs, size_t n, size_t nb, size_t rows);
} mipr_quant_kernels;

/* Q8_0 and Q4_0 (type) gemm with a table's kernels k: columns in chunks of MIPR_XQ8_CHUNK
 * blocks, tokens in groups that fit the caller's buffers xq and xs (cap blocks each, at
 * least MIPR_XQ8_CHUNK); every output's float sum carries on across chunks, so the result
 * depends on neither split (nor on whether gemv or gemm asked). */
static inline void mipr_gemm_quant_with(const mipr_quant_kernels *k, mipr_xq8 *xq, int32_t *xs,
                                        size_t cap, enum mipr_dtype type, float *y,
                                        const void *w, const float *x, size_t n, size_t rows,
                                        size_t cols)
{
    size_t nb = (cols + MIPR_QK8_0 - 1) / MIPR_QK8_0, ldw = mipr_dtype_row_bytes(type, cols);
    size_t bb = mipr_dtype_row_bytes(type, MIPR_QK8_0);
    memset(y, 0, n * rows * sizeof *y);
    for (size_t c = 0; c < nb; c += MIPR_XQ8_CHUNK) {
        size_t nc = nb - c < MIPR_XQ8_CHUNK ? nb - c : MIPR_XQ8_CHUNK;
        size_t k0 = c * MIPR_QK8_0;
        size_t kn = cols - k0 < nc * MIPR_QK8_0 ? cols - k0 : nc * MIPR_QK8_0;
        size_t tg = cap / nc;
        const char *wc = (const char *)w + c * bb;
        for (size_t t0 = 0; t0 < n; t0 += tg) {
            size_t tn = n - t0 < tg ? n - t0 : tg;
            for (size_t t = 0; t < tn; t++)
                k->quantize(xq + t * nc, x + (t0 + t) * cols + k0, kn);
            if (type == MIPR_DT_Q8_0) {
                k->q8_chunk(y + t0 * rows, rows, wc, ldw, xq, tn, nc, rows);
            } else {
                k->sums8(xs, xq, tn * nc);
                k->q4_chunk(y + t0 * rows, rows, wc, ldw, xq, xs, tn, nc, rows);
            }
        }
    }
}

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
void mipr_colstats_generic(const float *x, size_t n, size_t d, size_t ld, double *sum,
                           double *sumsq, double *sumabs, float *mn, float *mx);

void mipr_attn_mix_generic(float *out, const float *a, const float *v, size_t stride, size_t n,
                           size_t hs);

#endif
