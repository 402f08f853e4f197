/* Scalar reference kernels: they define what every SIMD twin must compute. Summation runs
 * in index order, as llama2.c's run.c does, so the reference reproduces its numerics. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "generic.h"

static float dot_f32(const float *w, const float *x, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += w[i] * x[i];
    return s;
}

static float dot_f16(const uint16_t *w, const float *x, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += mipr_f16_to_f32(w[i]) * x[i];
    return s;
}

static float dot_bf16(const uint16_t *w, const float *x, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += mipr_bf16_to_f32(w[i]) * x[i];
    return s;
}

/* Quantized weights against quantized activations: the integer dot product of one block
 * (exact: at most 32 * 128 * 127 in magnitude). */
static int32_t isum_q8(const int8_t *w, const int8_t *x)
{
    int32_t s = 0;
    for (int i = 0; i < MIPR_QK8_0; i++)
        s += (int32_t)w[i] * x[i];
    return s;
}

/* Through the Q8_0 sum of the unpacked nibbles: compilers vectorise both loops. */
static int32_t isum_q4(const uint8_t *w, const int8_t *x)
{
    int8_t q[MIPR_QK4_0];
    for (int i = 0; i < MIPR_QK4_0 / 2; i++) {
        q[i] = (int8_t)((w[i] & 15) - 8);
        q[i + MIPR_QK4_0 / 2] = (int8_t)((w[i] >> 4) - 8);
    }
    return isum_q8(q, x);
}

/* s0 + the dot product of nb blocks of a Q8_0 or Q4_0 row (w at its first block), one float
 * step per block in block order. */
static float dot_quant(enum mipr_dtype t, float s0, const void *w, const mipr_xq8 *xq,
                       size_t nb)
{
    float s = s0;
    if (t == MIPR_DT_Q8_0)
        for (size_t b = 0; b < nb; b++) {
            const mipr_block_q8_0 *wb = (const mipr_block_q8_0 *)w + b;
            s += (mipr_f16_to_f32(wb->d) * xq[b].d) * (float)isum_q8(wb->qs, xq[b].qs);
        }
    else
        for (size_t b = 0; b < nb; b++) {
            const mipr_block_q4_0 *wb = (const mipr_block_q4_0 *)w + b;
            s += (mipr_f16_to_f32(wb->d) * xq[b].d) * (float)isum_q4(wb->qs, xq[b].qs);
        }
    return s;
}

/* mipr_arch.h's rules: d below FLT_MIN makes a zero block (1 / d could overflow); NaN or
 * an infinity anywhere makes d = NaN and q = 0, so the products are NaN, as in F32. */
static void quantize_xq8_block(mipr_xq8 *o, const float *x)
{
    float amax = 0.0f;
    int bad = 0;
    for (int i = 0; i < MIPR_QK8_0; i++) {
        amax = fmaxf(amax, fabsf(x[i]));
        bad |= !isfinite(x[i]);
    }
    float d = amax / 127.0f;
    d = d >= FLT_MIN ? d : 0.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    o->d = bad ? NAN : d;
    for (int i = 0; i < MIPR_QK8_0; i++) /* finite x: |x * id| <= 127 */
        o->qs[i] = bad ? 0 : (int8_t)roundf(x[i] * id);
}

void mipr_quantize_xq8(mipr_xq8 *out, const float *x, size_t n)
{
    mipr_quantize_xq8_with(quantize_xq8_block, out, x, n);
}

/* Quantized products: each token's row is quantized once per chunk of at most
 * MIPR_XQ8_CHUNK blocks (on the stack), then every weight row continues its sum over that
 * chunk. Chunking changes nothing in the result: a block's quantization depends on its 32
 * values only, and the float sum simply carries on from the previous chunk. */
static void gemm_quant(enum mipr_dtype t, float *y, const void *w, const float *x, size_t n,
                       size_t rows, size_t cols)
{
    mipr_xq8 xq[MIPR_XQ8_CHUNK];
    size_t nb = (cols + MIPR_QK8_0 - 1) / MIPR_QK8_0, ldw = mipr_dtype_row_bytes(t, cols);
    size_t bb = mipr_dtype_row_bytes(t, MIPR_QK8_0); /* bytes per block */
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < nb; c += MIPR_XQ8_CHUNK) {
            size_t nc = nb - c < MIPR_XQ8_CHUNK ? nb - c : MIPR_XQ8_CHUNK;
            size_t k0 = c * MIPR_QK8_0;
            size_t kn = cols - k0 < nc * MIPR_QK8_0 ? cols - k0 : nc * MIPR_QK8_0;
            mipr_quantize_xq8(xq, x + i * cols + k0, kn);
            for (size_t r = 0; r < rows; r++) {
                float *yr = &y[i * rows + r];
                *yr = dot_quant(t, c ? *yr : 0.0f, (const char *)w + r * ldw + c * bb, xq, nc);
            }
        }
}

static void gemm_q8_0(float *y, const void *w, const float *x, size_t n, size_t rows,
                      size_t cols)
{
    gemm_quant(MIPR_DT_Q8_0, y, w, x, n, rows, cols);
}

static void gemv_q8_0(float *y, const void *w, const float *x, size_t rows, size_t cols)
{
    gemm_quant(MIPR_DT_Q8_0, y, w, x, 1, rows, cols);
}

static void gemm_q4_0(float *y, const void *w, const float *x, size_t n, size_t rows,
                      size_t cols)
{
    gemm_quant(MIPR_DT_Q4_0, y, w, x, n, rows, cols);
}

static void gemv_q4_0(float *y, const void *w, const float *x, size_t rows, size_t cols)
{
    gemm_quant(MIPR_DT_Q4_0, y, w, x, 1, rows, cols);
}

/* One row-dot per float type; gemv and gemm both go through it so they agree bit for bit. */
static float row_dot(enum mipr_dtype t, const void *w, size_t r, const float *x, size_t cols)
{
    switch (t) {
    case MIPR_DT_F32: return dot_f32((const float *)w + r * cols, x, cols);
    case MIPR_DT_F16: return dot_f16((const uint16_t *)w + r * cols, x, cols);
    default: return dot_bf16((const uint16_t *)w + r * cols, x, cols);
    }
}

static void gemm_any(enum mipr_dtype t, float *y, const void *w, const float *x, size_t n,
                     size_t rows, size_t cols)
{
    /* rows outer: one weight row is reused for every token while it is in L1 */
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++)
            y[i * rows + r] = row_dot(t, w, r, x + i * cols, cols);
}

#define GEN_MATMUL(T, DT)                                                                   \
    static void gemv_##T(float *y, const void *w, const float *x, size_t rows, size_t cols) \
    {                                                                                       \
        gemm_any(DT, y, w, x, 1, rows, cols);                                               \
    }                                                                                       \
    static void gemm_##T(float *y, const void *w, const float *x, size_t n, size_t rows,    \
                         size_t cols)                                                       \
    {                                                                                       \
        gemm_any(DT, y, w, x, n, rows, cols);                                               \
    }
GEN_MATMUL(f32, MIPR_DT_F32)
GEN_MATMUL(f16, MIPR_DT_F16)
GEN_MATMUL(bf16, MIPR_DT_BF16)

static void row_f32(float *out, const void *w, size_t row, size_t cols)
{
    const float *p = (const float *)w + row * cols;
    for (size_t i = 0; i < cols; i++)
        out[i] = p[i];
}

static void row_f16(float *out, const void *w, size_t row, size_t cols)
{
    const uint16_t *p = (const uint16_t *)w + row * cols;
    for (size_t i = 0; i < cols; i++)
        out[i] = mipr_f16_to_f32(p[i]);
}

static void row_bf16(float *out, const void *w, size_t row, size_t cols)
{
    const uint16_t *p = (const uint16_t *)w + row * cols;
    for (size_t i = 0; i < cols; i++)
        out[i] = mipr_bf16_to_f32(p[i]);
}

static void row_q8_0(float *out, const void *w, size_t row, size_t cols)
{
    size_t nb = (cols + MIPR_QK8_0 - 1) / MIPR_QK8_0;
    const mipr_block_q8_0 *b = (const mipr_block_q8_0 *)w + row * nb;
    for (size_t i = 0; i < cols; i++) {
        const mipr_block_q8_0 *blk = &b[i / MIPR_QK8_0];
        out[i] = mipr_f16_to_f32(blk->d) * (float)blk->qs[i % MIPR_QK8_0];
    }
}

/* Exact: an fp16 scale times an integer in [-8, 7] fits float's 24 bits. */
static void row_q4_0(float *out, const void *w, size_t row, size_t cols)
{
    size_t nb = (cols + MIPR_QK4_0 - 1) / MIPR_QK4_0;
    const mipr_block_q4_0 *b = (const mipr_block_q4_0 *)w + row * nb;
    for (size_t i = 0; i < cols; i++) {
        const mipr_block_q4_0 *blk = &b[i / MIPR_QK4_0];
        size_t j = i % MIPR_QK4_0;
        int q = j < 16 ? blk->qs[j] & 15 : blk->qs[j - 16] >> 4;
        out[i] = mipr_f16_to_f32(blk->d) * (float)(q - 8);
    }
}

float mipr_dot_generic(const float *a, const float *b, size_t n)
{
    return dot_f32(a, b, n);
}

void mipr_axpy_generic(float *y, float a, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

void mipr_rmsnorm_generic(float *out, const float *x, const float *w, size_t n, float eps)
{
    float ss = 0.0f;
    for (size_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (size_t i = 0; i < n; i++)
        out[i] = w[i] * (ss * x[i]);
}

void mipr_softmax_generic(float *x, size_t n)
{
    float max = x[0];
    for (size_t i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] /= sum;
}

void mipr_rope_generic(float *v, size_t n_heads, size_t head_size, size_t n_rot, const float *cs)
{
    for (size_t h = 0; h < n_heads; h++) {
        float *p = v + h * head_size;
        for (size_t i = 0; i < n_rot / 2; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1];
            float a = p[2 * i], b = p[2 * i + 1];
            p[2 * i] = a * c - b * s;
            p[2 * i + 1] = a * s + b * c;
        }
    }
}

void mipr_swiglu_generic(float *h, const float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
    }
}

void mipr_gauss_block_generic(float *out, const float *xi, size_t ni, const float *xj,
                              size_t nj, float inv)
{
    for (size_t u = 0; u < ni; u++)
        for (size_t v = 0; v < nj; v++) {
            float d = xi[u] - xj[v];
            out[u * nj + v] = expf(-(d * d) * inv);
        }
}

void mipr_attn_scores_generic(float *out, const float *q, const float *k, size_t stride,
                              size_t n, size_t hs, float div)
{
    for (size_t t = 0; t < n; t++)
        out[t] = dot_f32(q, k + t * stride, hs) / div;
}

void mipr_attn_mix_generic(float *out, const float *a, const float *v, size_t stride, size_t n,
                           size_t hs)
{
    for (size_t i = 0; i < hs; i++)
        out[i] = 0.0f;
    for (size_t t = 0; t < n; t++)
        mipr_axpy_generic(out, a[t], v + t * stride, hs);
}

void mipr_colstats_generic(const float *x, size_t n, size_t d, size_t ld, double *sum,
                           double *sumsq, double *sumabs, float *mn, float *mx)
{
    for (size_t j = 0; j < d; j++) {
        sum[j] = sumsq[j] = sumabs[j] = 0.0;
        mn[j] = INFINITY;
        mx[j] = -INFINITY;
    }
    for (size_t t = 0; t < n; t++, x += ld) /* rows outer: memory order */
        for (size_t j = 0; j < d; j++) {
            double v = x[j];
            sum[j] += v;
            sumsq[j] += v * v;
            sumabs[j] += fabs(v);
            mn[j] = x[j] < mn[j] ? x[j] : mn[j];
            mx[j] = x[j] > mx[j] ? x[j] : mx[j];
        }
}

const struct mipr_kernels *mipr_kernels_generic(void)
{
    static const struct mipr_kernels table = {
        .isa = "generic",
        .gemv = {gemv_f32, gemv_f16, gemv_bf16, gemv_q8_0, gemv_q4_0},
        .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0},
        .row_to_f32 = {row_f32, row_f16, row_bf16, row_q8_0, row_q4_0},
        .dot = mipr_dot_generic,
        .axpy = mipr_axpy_generic,
        .rmsnorm = mipr_rmsnorm_generic,
        .softmax = mipr_softmax_generic,
        .rope = mipr_rope_generic,
        .swiglu = mipr_swiglu_generic,
        .gauss_block = mipr_gauss_block_generic,
        .attn_scores = mipr_attn_scores_generic,
        .attn_mix = mipr_attn_mix_generic,
        .colstats = mipr_colstats_generic,
    };
    return &table;
}
