/* NEON kernels for aarch64 and for armv7 with neon-vfpv4 (this file's own flags on armv7:
 * -mfpu=neon-vfpv4 -mfp16-format=ieee). vfmaq_f32 on both.
 *
 * Matrix products of f32, f16 and bf16. Every output y[t][r] owns one 4-lane accumulator:
 *     acc = fma(w[r][k..k+4), x[t][k..k+4), acc)    for k = 0, 4, 8, ...
 * the last partial step zero-padded, then its lanes are summed as (l0 + l1) + (l2 + l3).
 * Weights are first widened to exactly the float the generic twin uses (f16 and bf16 are
 * exact in f32). gemv and gemm differ only in how many accumulators share the registers
 * (gemv: 1 token x 8 rows; gemm: 4 tokens x 4 rows on aarch64's 32 registers, 2 x 4 on
 * armv7's 16), never in that sequence, so both give the same bits for every (token, row).
 * Q8_0 and Q4_0 are integer products with their own kernels (see "Q8_0" and "Q4_0" below),
 * partial last blocks included. */
#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "generic.h"
#include "kernels_neon.h"

#if defined(__aarch64__)
#define GEMM_MT 4
#else
#define GEMM_MT 2
#endif

/* ---- the lane-sum tree (l0 + l1) + (l2 + l3), for one and for four accumulators ---- */

#if defined(__aarch64__)
static inline float hsum4(float32x4_t a)
{
    float32x4_t p = vpaddq_f32(a, a);
    return vgetq_lane_f32(vpaddq_f32(p, p), 0);
}

static inline float32x4_t hsum4x4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d)
{
    return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
}
#else
static inline float32x2_t pair_sums(float32x4_t a)
{
    return vpadd_f32(vget_low_f32(a), vget_high_f32(a)); /* l0+l1, l2+l3 */
}

static inline float hsum4(float32x4_t a)
{
    float32x2_t p = pair_sums(a);
    return vget_lane_f32(vpadd_f32(p, p), 0);
}

static inline float32x4_t hsum4x4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d)
{
    return vcombine_f32(vpadd_f32(pair_sums(a), pair_sums(b)),
                        vpadd_f32(pair_sums(c), pair_sums(d)));
}
#endif

/* y[0..nr) = lane sums of acc[0..nr) */
static inline void store_sums(float *y, const float32x4_t *acc, int nr)
{
    for (int r = 0; r + 4 <= nr; r += 4)
        vst1q_f32(y + r, hsum4x4(acc[r], acc[r + 1], acc[r + 2], acc[r + 3]));
    for (int r = nr - nr % 4; r < nr; r++)
        y[r] = hsum4(acc[r]);
}

/* The last n < 4 floats at p, zero-padded: NEON has no masked load. */
static inline float32x4_t load_tail(const float *p, size_t n)
{
    float t[4] = {0};
    memcpy(t, p, n * sizeof *p);
    return vld1q_f32(t);
}

/* ---- four weights as floats, at element k of a row ---- */

static inline float32x4_t w4_f32(const char *row, size_t k)
{
    return vld1q_f32((const float *)row + k);
}

static inline float32x4_t f16x4_to_f32(const uint16_t *p)
{
#if defined(__aarch64__) || defined(__ARM_FP16_FORMAT_IEEE)
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
#else
    float f[4] = {mipr_f16_to_f32(p[0]), mipr_f16_to_f32(p[1]), mipr_f16_to_f32(p[2]),
                  mipr_f16_to_f32(p[3])};
    return vld1q_f32(f);
#endif
}

static inline float32x4_t bf16x4_to_f32(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

static inline float32x4_t w4_f16(const char *row, size_t k)
{
    return f16x4_to_f32((const uint16_t *)row + k);
}

static inline float32x4_t w4_bf16(const char *row, size_t k)
{
    return bf16x4_to_f32((const uint16_t *)row + k);
}

/* The last n < 4 weights, zero-padded. */
static inline float32x4_t w4t_f32(const char *row, size_t k, size_t n)
{
    return load_tail((const float *)row + k, n);
}

static inline float32x4_t w4t_f16(const char *row, size_t k, size_t n)
{
    uint16_t t[4] = {0};
    memcpy(t, (const uint16_t *)row + k, n * sizeof t[0]);
    return f16x4_to_f32(t);
}

static inline float32x4_t w4t_bf16(const char *row, size_t k, size_t n)
{
    uint16_t t[4] = {0};
    memcpy(t, (const uint16_t *)row + k, n * sizeof t[0]);
    return bf16x4_to_f32(t);
}

/* Q8_0: weights j..j+4 of block b (j % 4 == 0), times the block scale d (exact). */
static inline float32x4_t w4_q8(const char *row, size_t b, size_t j, float32x4_t d)
{
    const mipr_block_q8_0 *blk = (const mipr_block_q8_0 *)row + b;
    int16x8_t q16 = vmovl_s8(vld1_s8(blk->qs + (j & ~(size_t)7)));
    int16x4_t q = (j & 4) ? vget_high_s16(q16) : vget_low_s16(q16);
    return vmulq_f32(vcvtq_f32_s32(vmovl_s16(q)), d);
}

static inline float32x4_t q8_scale(const char *row, size_t b)
{
    return vdupq_n_f32(mipr_f16_to_f32(((const mipr_block_q8_0 *)row)[b].d));
}

/* ---- microkernels: MT tokens x NR rows, all columns ----
 * y[t * ldy + r] = W[r] . X[t]; rows are ldw bytes apart, tokens ldx floats apart. */
typedef void (*mk_fn)(float *y, size_t ldy, const char *w, size_t ldw, const float *x,
                      size_t ldx, size_t cols);

/* The accumulators must live in registers: the constant loops over them are unrolled. */
#define UNROLL _Pragma("GCC unroll 16")

/* One k-step on all MT x NR accumulators; XV(t) and WV(r) give the vectors. */
#define MK_STEP(MT, NR, XV, WV)                                                             \
    do {                                                                                    \
        float32x4_t xv[MT];                                                                 \
        UNROLL for (int t = 0; t < (MT); t++)                                               \
            xv[t] = XV(t);                                                                  \
        UNROLL for (int r = 0; r < (NR); r++) {                                             \
            float32x4_t wv = WV(r);                                                         \
            UNROLL for (int t = 0; t < (MT); t++)                                           \
                acc[t][r] = vfmaq_f32(acc[t][r], wv, xv[t]);                                \
        }                                                                                   \
    } while (0)

#define MK_ZERO(MT, NR)                                                                     \
    float32x4_t acc[MT][NR];                                                                \
    UNROLL for (int t = 0; t < (MT); t++)                                                   \
        UNROLL for (int r = 0; r < (NR); r++)                                               \
            acc[t][r] = vdupq_n_f32(0.0f)

/* Through a copy: acc's address never escapes, so it can stay in registers. */
#define MK_STORE(MT, NR)                                                                    \
    UNROLL for (int t = 0; t < (MT); t++) {                                                 \
        float32x4_t sums[NR];                                                                 \
        UNROLL for (int r = 0; r < (NR); r++)                                               \
            sums[r] = acc[t][r];                                                            \
        store_sums(y + (size_t)t * ldy, sums, NR);                                          \
    }

#define X_FULL(t) vld1q_f32(x + (size_t)(t) * ldx + k)
#define X_TAIL(t) load_tail(x + (size_t)(t) * ldx + k, cols - k)

/* f32, f16, bf16: full steps of 4, then one zero-padded step. */
#define DEFINE_MK(T, MT, NR)                                                                \
    static void mk_##T##_##MT##x##NR(float *y, size_t ldy, const char *w, size_t ldw,      \
                                     const float *x, size_t ldx, size_t cols)              \
    {                                                                                       \
        MK_ZERO(MT, NR);                                                                    \
        size_t k = 0;                                                                       \
        for (; k + 4 <= cols; k += 4)                                                       \
            MK_STEP(MT, NR, X_FULL, W_FULL_##T);                                            \
        if (k < cols)                                                                       \
            MK_STEP(MT, NR, X_TAIL, W_TAIL_##T);                                            \
        MK_STORE(MT, NR);                                                                   \
    }

#define W_FULL_f32(r) w4_f32(w + (size_t)(r) * ldw, k)
#define W_FULL_f16(r) w4_f16(w + (size_t)(r) * ldw, k)
#define W_FULL_bf16(r) w4_bf16(w + (size_t)(r) * ldw, k)
#define W_TAIL_f32(r) w4t_f32(w + (size_t)(r) * ldw, k, cols - k)
#define W_TAIL_f16(r) w4t_f16(w + (size_t)(r) * ldw, k, cols - k)
#define W_TAIL_bf16(r) w4t_bf16(w + (size_t)(r) * ldw, k, cols - k)

/* The shapes used: gemm MTx4 with its edges 1x4, MTx1, 1x1; gemv 1x8. */
#define DEFINE_MK_SET(DEF, T)                                                               \
    DEF(T, GEMM_MT, 4)                                                                      \
    DEF(T, 1, 4)                                                                            \
    DEF(T, GEMM_MT, 1)                                                                      \
    DEF(T, 1, 1)                                                                            \
    DEF(T, 1, 8)
/* one more expansion so GEMM_MT becomes a number before it is pasted into a name */
#define DEFINE_MK_(T, MT, NR) DEFINE_MK(T, MT, NR)

DEFINE_MK_SET(DEFINE_MK_, f32)
DEFINE_MK_SET(DEFINE_MK_, f16)
DEFINE_MK_SET(DEFINE_MK_, bf16)

struct mk_set {
    mk_fn mtx4, m1x4, mtx1, m1x1, m1x8;
    enum mipr_dtype type;
};

#define MK_NAME(T, MT, NR) mk_##T##_##MT##x##NR
#define MK_NAME_(T, MT, NR) MK_NAME(T, MT, NR)
#define MK_SET(T, DT)                                                                       \
    {MK_NAME_(T, GEMM_MT, 4), mk_##T##_1x4, MK_NAME_(T, GEMM_MT, 1), mk_##T##_1x1,          \
     mk_##T##_1x8, DT}
static const struct mk_set mk_sets[MIPR_DT_COUNT] = {
    MK_SET(f32, MIPR_DT_F32),
    MK_SET(f16, MIPR_DT_F16),
    MK_SET(bf16, MIPR_DT_BF16), /* Q8_0 and Q4_0 have their own integer kernels below */
};

/* ---- drivers ---- */

static void gemv_run(const struct mk_set *s, float *y, const void *w, const float *x,
                     size_t rows, size_t cols)
{
    const char *wb = w;
    size_t ldw = mipr_dtype_row_bytes(s->type, cols), r = 0;
    for (; r + 8 <= rows; r += 8)
        s->m1x8(y + r, 0, wb + r * ldw, ldw, x, 0, cols);
    for (; r + 4 <= rows; r += 4)
        s->m1x4(y + r, 0, wb + r * ldw, ldw, x, 0, cols);
    for (; r < rows; r++)
        s->m1x1(y + r, 0, wb + r * ldw, ldw, x, 0, cols);
}

/* Tokens per cache block: X of one block stays in L2 (~128 KiB, small cores' L2 is shared)
 * while every block of four weight rows (in L1) passes over it. */
static size_t tokens_per_block(size_t cols)
{
    size_t tb = (128u * 1024u / sizeof(float)) / (cols ? cols : 1);
    tb -= tb % GEMM_MT;
    return tb < GEMM_MT ? GEMM_MT : tb;
}

/* One block of rows (mt: GEMM_MT tokens, m1: 1 token) over tokens [0, n). */
static void tokens_run(mk_fn mt, mk_fn m1, float *y, size_t ldy, const char *w, size_t ldw,
                       const float *x, size_t n, size_t cols)
{
    size_t t = 0;
    for (; t + GEMM_MT <= n; t += GEMM_MT)
        mt(y + t * ldy, ldy, w, ldw, x + t * cols, cols, cols);
    for (; t < n; t++)
        m1(y + t * ldy, ldy, w, ldw, x + t * cols, cols, cols);
}

static void row_f16(float *out, const void *w, size_t row, size_t cols);
static void row_bf16(float *out, const void *w, size_t row, size_t cols);

/* Other weight types are widened once per block of four rows into a float panel, and the f32
 * microkernels run over it: the weights are the same exact floats gemv makes on the fly, so
 * the sums are too, and the conversion is paid once per token block instead of per token.
 * Wider rows than the panel (kept on the stack) take the on-the-fly microkernels. */
#define PANEL_COLS 2048

static const char *widen_rows(float *panel, enum mipr_dtype t, const void *w, size_t r,
                              size_t cols)
{
    static void (*const widen[MIPR_DT_COUNT])(float *, const void *, size_t, size_t) = {
        NULL, row_f16, row_bf16, NULL};
    for (size_t i = 0; i < 4; i++)
        widen[t](panel + i * cols, w, r + i, cols);
    return (const char *)panel;
}

static void gemm_run(const struct mk_set *s, float *y, const void *w, const float *x, size_t n,
                     size_t rows, size_t cols)
{
    float panel[4 * PANEL_COLS];
    int widen = s->type != MIPR_DT_F32 && cols <= PANEL_COLS;
    const struct mk_set *f = widen ? &mk_sets[MIPR_DT_F32] : s;
    const char *wb = w;
    size_t ldw = mipr_dtype_row_bytes(s->type, cols), tb = tokens_per_block(cols);
    for (size_t t0 = 0; t0 < n; t0 += tb) {
        size_t tn = n - t0 < tb ? n - t0 : tb, r = 0;
        float *yb = y + t0 * rows;
        const float *xb = x + t0 * cols;
        for (; r + 4 <= rows; r += 4) {
            const char *wr = widen ? widen_rows(panel, s->type, w, r, cols) : wb + r * ldw;
            tokens_run(f->mtx4, f->m1x4, yb + r, rows, wr, widen ? cols * sizeof(float) : ldw,
                       xb, tn, cols);
        }
        for (; r < rows; r++)
            tokens_run(s->mtx1, s->m1x1, yb + r, rows, wb + r * ldw, ldw, xb, tn, cols);
    }
}

#define DEFINE_MATMUL(T, DT)                                                                \
    static void gemv_##T(float *y, const void *w, const float *x, size_t rows, size_t cols) \
    {                                                                                       \
        gemv_run(&mk_sets[DT], y, w, x, rows, cols);                                        \
    }                                                                                       \
    static void gemm_##T(float *y, const void *w, const float *x, size_t n, size_t rows,    \
                         size_t cols)                                                       \
    {                                                                                       \
        gemm_run(&mk_sets[DT], y, w, x, n, rows, cols);                                     \
    }
DEFINE_MATMUL(f32, MIPR_DT_F32)
DEFINE_MATMUL(f16, MIPR_DT_F16)
DEFINE_MATMUL(bf16, MIPR_DT_BF16)

/* ---- Q8_0: integer dot products against quantized activations ----
 * Per output and block: isum = q_w . q_x exactly in int32, then acc += (d_w * d_x) * isum
 * as a multiply, a multiply and an add (no FMA), blocks in order: the generic twin's bits
 * (armv7 NEON flushes subnormal products, below 1.2e-38, to zero). Four rows share one
 * float vector, lane r for row r. Plain NEON (vmull_s8): dotprod is not guaranteed. */

/* x quantized like mipr_quantize_xq8: round(v) half away from zero. */
static inline int32x4_t round_away_s32(float32x4_t v)
{
#if defined(__aarch64__)
    return vcvtaq_s32_f32(v);
#else
    /* trunc(v) plus the sign of v when |v - trunc(v)| >= 0.5 (the difference is exact) */
    int32x4_t t = vcvtq_s32_f32(v);
    uint32x4_t half = vcageq_f32(vsubq_f32(v, vcvtq_f32_s32(t)), vdupq_n_f32(0.5f));
    int32x4_t sgn = vbslq_s32(vcltq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_s32(-1), vdupq_n_s32(1));
    return vaddq_s32(t, vandq_s32(vreinterpretq_s32_u32(half), sgn));
#endif
}

static inline float hmax4(float32x4_t a)
{
#if defined(__aarch64__)
    return vmaxvq_f32(a);
#else
    float32x2_t m = vpmax_f32(vget_low_f32(a), vget_high_f32(a));
    return vget_lane_f32(vpmax_f32(m, m), 0);
#endif
}

static void quantize_block(mipr_xq8 *o, const float *x)
{
    float32x4_t v[8], m = vdupq_n_f32(0.0f);
    uint32x4_t ok = vdupq_n_u32(~0u);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxq_f32(m, vabsq_f32(v[k]));
        ok = vandq_u32(ok, vcleq_f32(vabsq_f32(v[k]), vdupq_n_f32(FLT_MAX))); /* finite */
    }
    /* the generic twin's rules: a tiny d is 0; a non-finite value makes d NaN and q 0 */
    uint32x2_t ok2 = vand_u32(vget_low_u32(ok), vget_high_u32(ok));
    if (!(vget_lane_u32(ok2, 0) & vget_lane_u32(ok2, 1))) {
        o->d = NAN;
        memset(o->qs, 0, sizeof o->qs);
        return;
    }
    float d = hmax4(m) / 127.0f;
    d = d >= FLT_MIN ? d : 0.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int k = 0; k < 8; k += 2) {
        int16x8_t h = vcombine_s16(vmovn_s32(round_away_s32(vmulq_n_f32(v[k], id))),
                                   vmovn_s32(round_away_s32(vmulq_n_f32(v[k + 1], id))));
        vst1_s8(o->qs + 4 * k, vmovn_s16(h));
    }
    o->d = d;
}

/* The n values at x as ceil(n / 32) blocks, the last one zero-padded. */
static void quantize_xq8(mipr_xq8 *out, const float *x, size_t n)
{
    mipr_quantize_xq8_with(quantize_block, out, x, n);
}

/* q_w . q_x of one block as four int32 partial sums. Two products of int8 fit int16 as
 * long as one side is at most 127 in magnitude, which quantized activations are. */
static inline int32x4_t dot32_s32(const mipr_block_q8_0 *w, int8x16_t x0, int8x16_t x1)
{
    int8x16_t w0 = vld1q_s8(w->qs), w1 = vld1q_s8(w->qs + 16);
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
    int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));
    p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
    return vpadalq_s16(vpaddlq_s16(p0), p1);
}

/* Lane r = the sum of v[r]'s lanes; one vector's sum (integers: any order is exact). */
#if defined(__aarch64__)
static inline int32x4_t isum4x4(const int32x4_t *v)
{
    return vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));
}

static inline int32_t isum4(int32x4_t v)
{
    return vaddvq_s32(v);
}
#else
static inline int32x2_t ipairs(int32x4_t a)
{
    return vpadd_s32(vget_low_s32(a), vget_high_s32(a));
}

static inline int32x4_t isum4x4(const int32x4_t *v)
{
    return vcombine_s32(vpadd_s32(ipairs(v[0]), ipairs(v[1])),
                        vpadd_s32(ipairs(v[2]), ipairs(v[3])));
}

static inline int32_t isum4(int32x4_t v)
{
    int32x2_t p = ipairs(v);
    return vget_lane_s32(vpadd_s32(p, p), 0);
}
#endif

static inline const mipr_block_q8_0 *q8_block(const char *w, size_t ldw, int r, size_t b)
{
    return (const mipr_block_q8_0 *)(w + (size_t)r * ldw) + b;
}

/* y[r] += W[r] . x over nb blocks, for 4 rows (ldw bytes apart) and for 1. */
static void q8_rows4(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, size_t nb)
{
    float32x4_t acc = vld1q_f32(y);
    for (size_t b = 0; b < nb; b++) {
        int8x16_t x0 = vld1q_s8(xq[b].qs), x1 = vld1q_s8(xq[b].qs + 16);
        int32x4_t s[4];
        uint16_t d[4];
        for (int r = 0; r < 4; r++) {
            s[r] = dot32_s32(q8_block(w, ldw, r, b), x0, x1);
            d[r] = q8_block(w, ldw, r, b)->d;
        }
        float32x4_t p = vmulq_n_f32(f16x4_to_f32(d), xq[b].d);
        acc = vaddq_f32(acc, vmulq_f32(p, vcvtq_f32_s32(isum4x4(s))));
    }
    vst1q_f32(y, acc);
}

static void q8_rows1(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, size_t nb)
{
    (void)ldw;
    float acc = *y;
    for (size_t b = 0; b < nb; b++) {
        const mipr_block_q8_0 *blk = q8_block(w, 0, 0, b);
        int32x4_t s = dot32_s32(blk, vld1q_s8(xq[b].qs), vld1q_s8(xq[b].qs + 16));
        float p = mipr_f16_to_f32(blk->d) * xq[b].d;
        acc += p * (float)isum4(s);
    }
    *y = acc;
}

/* All rows over tokens [0, n) of a quantized chunk (nb blocks per token): rows outer, so
 * four weight rows stay in cache while every token passes over them. */
static void q8_chunk(float *y, size_t ldy, const char *w, size_t ldw, const mipr_xq8 *xq,
                     size_t n, size_t nb, size_t rows)
{
    size_t r = 0;
    for (; r + 4 <= rows; r += 4)
        for (size_t t = 0; t < n; t++)
            q8_rows4(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, nb);
    for (; r < rows; r++)
        for (size_t t = 0; t < n; t++)
            q8_rows1(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, nb);
}

/* ---- Q4_0: the same integer products with nibble weights ----
 * The nibbles are multiplied as they are (0..15, valid int8) and the block's sum of q_x times
 * 8 is subtracted from the row sums: sum (q_w - 8) q_x exactly, one subtraction per block for
 * four rows instead of re-centring every weight. Each int16 lane of a row's products then
 * holds 4 products (within 4 * 15 * 127), so the four rows' pairwise reduction runs in int16
 * down to two lanes a row (within 16 * 15 * 127 < 2^15) and widens once. */

static inline const mipr_block_q4_0 *q4_block(const char *w, size_t ldw, int r, size_t b)
{
    return (const mipr_block_q4_0 *)(w + (size_t)r * ldw) + b;
}

/* One row's block against x (x0: elements 0..15, x1: 16..31) as eight int16 sums. */
static inline int16x8_t q4dot_s16(const mipr_block_q4_0 *w, int8x16_t x0, int8x16_t x1)
{
    uint8x16_t v = vld1q_u8(w->qs);
    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
    int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    int16x8_t p = vmull_s8(vget_low_s8(lo), vget_low_s8(x0));
    p = vmlal_s8(p, vget_high_s8(lo), vget_high_s8(x0));
    p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(x1));
    return vmlal_s8(p, vget_high_s8(hi), vget_high_s8(x1));
}

/* Lanes r = the block sums of rows 0..3 from their int16 sums. */
static inline int32x4_t q4_isum4x4(const int16x8_t *p)
{
#if defined(__aarch64__)
    int16x8_t h = vpaddq_s16(vpaddq_s16(p[0], p[1]), vpaddq_s16(p[2], p[3]));
#else
    int16x4_t a = vpadd_s16(vpadd_s16(vget_low_s16(p[0]), vget_high_s16(p[0])),
                            vpadd_s16(vget_low_s16(p[1]), vget_high_s16(p[1])));
    int16x4_t c = vpadd_s16(vpadd_s16(vget_low_s16(p[2]), vget_high_s16(p[2])),
                            vpadd_s16(vget_low_s16(p[3]), vget_high_s16(p[3])));
    int16x8_t h = vcombine_s16(a, c);
#endif
    return vpaddlq_s16(h); /* rows 0..3, two int16 lanes each */
}

/* xs[b] = 8 * sum of block b's q_x, for nb blocks. */
static void xq_sums8(int32_t *xs, const mipr_xq8 *xq, size_t nb)
{
    for (size_t b = 0; b < nb; b++) {
        int16x8_t s = vpaddlq_s8(vld1q_s8(xq[b].qs));
        s = vpadalq_s8(s, vld1q_s8(xq[b].qs + 16));
        xs[b] = 8 * isum4(vpaddlq_s16(s));
    }
}

/* y[r] += W[r] . x over nb blocks, for 4 rows (ldw bytes apart) and for 1. */
static void q4_rows4(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, const int32_t *xs,
                     size_t nb)
{
    float32x4_t acc = vld1q_f32(y);
    for (size_t b = 0; b < nb; b++) {
        int8x16_t x0 = vld1q_s8(xq[b].qs), x1 = vld1q_s8(xq[b].qs + 16);
        int16x8_t s[4];
        uint16_t d[4];
        for (int r = 0; r < 4; r++) {
            s[r] = q4dot_s16(q4_block(w, ldw, r, b), x0, x1);
            d[r] = q4_block(w, ldw, r, b)->d;
        }
        int32x4_t is = vsubq_s32(q4_isum4x4(s), vdupq_n_s32(xs[b]));
        float32x4_t p = vmulq_n_f32(f16x4_to_f32(d), xq[b].d);
        acc = vaddq_f32(acc, vmulq_f32(p, vcvtq_f32_s32(is)));
    }
    vst1q_f32(y, acc);
}

static void q4_rows1(float *y, const char *w, const mipr_xq8 *xq, const int32_t *xs, size_t nb)
{
    float acc = *y;
    for (size_t b = 0; b < nb; b++) {
        const mipr_block_q4_0 *blk = q4_block(w, 0, 0, b);
        int16x8_t s = q4dot_s16(blk, vld1q_s8(xq[b].qs), vld1q_s8(xq[b].qs + 16));
        float p = mipr_f16_to_f32(blk->d) * xq[b].d;
        acc += p * (float)(isum4(vpaddlq_s16(s)) - xs[b]);
    }
    *y = acc;
}

/* All rows over tokens [0, n) of a quantized chunk, blocked as q8_chunk. */
static void q4_chunk(float *y, size_t ldy, const char *w, size_t ldw, const mipr_xq8 *xq,
                     const int32_t *xs, size_t n, size_t nb, size_t rows)
{
    size_t r = 0;
    for (; r + 4 <= rows; r += 4)
        for (size_t t = 0; t < n; t++)
            q4_rows4(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, xs + t * nb, nb);
    for (; r < rows; r++)
        for (size_t t = 0; t < n; t++)
            q4_rows1(y + t * ldy + r, w + r * ldw, xq + t * nb, xs + t * nb, nb);
}

/* Quantized tokens kept on the stack: 1024 blocks (40 KiB with Q4_0's sums), i.e. 56 tokens
 * of 576 columns or 4 of a full 8192-column chunk. */
#define XQ8_STACK_BLOCKS 1024

static void gemm_quant(enum mipr_dtype type, float *y, const void *w, const float *x, size_t n,
                       size_t rows, size_t cols)
{
    static const mipr_quant_kernels k = {quantize_xq8, xq_sums8, q8_chunk, q4_chunk};
    mipr_xq8 xq[XQ8_STACK_BLOCKS];
    int32_t xs[XQ8_STACK_BLOCKS];
    mipr_gemm_quant_with(&k, xq, xs, XQ8_STACK_BLOCKS, type, y, w, x, n, rows, cols);
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

/* ---- rows to float (exact, like the generic twin) ---- */

static void row_f32(float *out, const void *w, size_t row, size_t cols)
{
    memcpy(out, (const float *)w + row * cols, cols * sizeof *out);
}

static void row_f16(float *out, const void *w, size_t row, size_t cols)
{
    const uint16_t *p = (const uint16_t *)w + row * cols;
    size_t i = 0;
    for (; i + 4 <= cols; i += 4)
        vst1q_f32(out + i, f16x4_to_f32(p + i));
    for (; i < cols; i++)
        out[i] = mipr_f16_to_f32(p[i]);
}

static void row_bf16(float *out, const void *w, size_t row, size_t cols)
{
    const uint16_t *p = (const uint16_t *)w + row * cols;
    size_t i = 0;
    for (; i + 4 <= cols; i += 4)
        vst1q_f32(out + i, bf16x4_to_f32(p + i));
    for (; i < cols; i++)
        out[i] = mipr_bf16_to_f32(p[i]);
}

/* Block b of a Q8_0 or Q4_0 row as 32 floats (exact). */
static void q8_block_f32(float *out, const char *p, size_t b)
{
    float32x4_t d = q8_scale(p, b);
    for (size_t j = 0; j < MIPR_QK8_0; j += 4)
        vst1q_f32(out + j, w4_q8(p, b, j, d));
}

static void q4_block_f32(float *out, const char *p, size_t b)
{
    const mipr_block_q4_0 *blk = (const mipr_block_q4_0 *)p + b;
    float32x4_t d = vdupq_n_f32(mipr_f16_to_f32(blk->d));
    uint8x16_t v = vld1q_u8(blk->qs);
    int8x16_t h[2] = {vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))),
                      vreinterpretq_s8_u8(vshrq_n_u8(v, 4))};
    for (int k = 0; k < 2; k++) {
        int8x16_t q = vsubq_s8(h[k], vdupq_n_s8(8));
        int16x8_t q0 = vmovl_s8(vget_low_s8(q)), q1 = vmovl_s8(vget_high_s8(q));
        int16x4_t e[4] = {vget_low_s16(q0), vget_high_s16(q0), vget_low_s16(q1),
                          vget_high_s16(q1)};
        for (int i = 0; i < 4; i++)
            vst1q_f32(out + 16 * k + 4 * i, vmulq_f32(vcvtq_f32_s32(vmovl_s16(e[i])), d));
    }
}

static void row_q8_0(float *out, const void *w, size_t row, size_t cols)
{
    const char *p = (const char *)w + row * mipr_dtype_row_bytes(MIPR_DT_Q8_0, cols);
    mipr_row_blocks_with(out, p, cols, q8_block_f32);
}

static void row_q4_0(float *out, const void *w, size_t row, size_t cols)
{
    const char *p = (const char *)w + row * mipr_dtype_row_bytes(MIPR_DT_Q4_0, cols);
    mipr_row_blocks_with(out, p, cols, q4_block_f32);
}

/* ---- vector operations ---- */

static float dot_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) { /* four chains hide the FMA latency */
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    if (i < n)
        s1 = vfmaq_f32(s1, load_tail(a + i, n - i), load_tail(b + i, n - i));
    return hsum4(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

/* Multiply then add, not fused: bit-identical to the generic twin. */
static void axpy_neon(float *y, float a, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(vld1q_f32(x + i), a)));
    for (; i < n; i++) {
        float p = a * x[i];
        y[i] += p;
    }
}

static void rmsnorm_neon(float *out, const float *x, const float *w, size_t n, float eps)
{
    float ss = dot_neon(x, x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) /* w * (ss * x), the generic twin's order */
        vst1q_f32(out + i, vmulq_f32(vld1q_f32(w + i), vmulq_n_f32(vld1q_f32(x + i), ss)));
    for (; i < n; i++) {
        float sx = ss * x[i];
        out[i] = w[i] * sx;
    }
}

/* 1 / v: a division on aarch64; on armv7 (no vector divide) the 8-bit reciprocal estimate
 * and three Newton steps, within 2 ulp. */
static inline float32x4_t recip(float32x4_t v)
{
#if defined(__aarch64__)
    return vdivq_f32(vdupq_n_f32(1.0f), v);
#else
    float32x4_t r = vrecpeq_f32(v);
    r = vmulq_f32(r, vrecpsq_f32(v, r));
    r = vmulq_f32(r, vrecpsq_f32(v, r));
    return vmulq_f32(r, vrecpsq_f32(v, r));
#endif
}

/* exp(x) within 2 ulp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and Cephes'
 * degree-5 polynomial for e^r (the same as the AVX2 kernel). Results below 2^-126 flush
 * to 0 (absolute error < 1.2e-38), above FLT_MAX give +inf, NaN stays NaN. */
static inline float32x4_t exp_neon(float32x4_t x)
{
    const float32x4_t hi = vdupq_n_f32(88.72283935546875f), lo = vdupq_n_f32(-87.33654022216797f);
    const float32x4_t shift = vdupq_n_f32(12582912.0f); /* 1.5 * 2^23: rounds to an integer */
    uint32x4_t big = vcgtq_f32(x, hi);
    float32x4_t xc = vmaxq_f32(vminq_f32(x, hi), lo); /* NaN propagates */
    float32x4_t n = vsubq_f32(vfmaq_f32(shift, xc, vdupq_n_f32(1.44269504088896341f)), shift);
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    /* 2^n as 2 * 2^(n-1): n may be 128 just below FLT_MAX; n = -126 gives 0 */
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(126)), 23);
    float32x4_t y = vmulq_f32(vaddq_f32(p, p), vreinterpretq_f32_s32(e));
    return vbslq_f32(big, vdupq_n_f32(INFINITY), y);
}

static float max_neon(const float *x, size_t n)
{
    float m = x[0];
    size_t i = 0;
    if (n >= 4) {
        float32x4_t vm = vld1q_f32(x);
        for (i = 4; i + 4 <= n; i += 4)
            vm = vmaxq_f32(vm, vld1q_f32(x + i));
        float t[4];
        vst1q_f32(t, vm);
        for (int j = 0; j < 4; j++)
            m = t[j] > m ? t[j] : m;
    }
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static void softmax_neon(float *x, size_t n)
{
    float32x4_t vmax = vdupq_n_f32(max_neon(x, n)), sum = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(x + i), vmax));
        vst1q_f32(x + i, e);
        sum = vaddq_f32(sum, e);
    }
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, (n - i) * sizeof *x);
        float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(t), vmax));
        vst1q_f32(t, e);
        for (size_t j = n - i; j < 4; j++)
            t[j] = 0.0f; /* padding lanes must not count */
        memcpy(x + i, t, (n - i) * sizeof *x);
        sum = vaddq_f32(sum, vld1q_f32(t));
    }
    float s = hsum4(sum);
    for (i = 0; i < n; i++)
        x[i] /= s;
}

/* Pairs (a, b) with (c, s): even lanes a c + (-(b s)), odd lanes b c + a s. Not fused, so
 * every value is bit-identical to the generic twin. */
static void rope_head_neon(float *p, size_t pairs, const float *cs)
{
    static const uint32_t sign_even[4] = {0x80000000u, 0, 0x80000000u, 0};
    const uint32x4_t neg_even = vld1q_u32(sign_even);
    size_t i = 0;
    for (; i + 2 <= pairs; i += 2) {
        float32x4_t v = vld1q_f32(p + 2 * i), k = vld1q_f32(cs + 2 * i);
        float32x4x2_t t = vtrnq_f32(k, k); /* c c c' c', s s s' s' */
        float32x4_t q = vmulq_f32(vrev64q_f32(v), t.val[1]);
        q = vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(q), neg_even));
        vst1q_f32(p + 2 * i, vaddq_f32(vmulq_f32(v, t.val[0]), q));
    }
    for (; i < pairs; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        float a = p[2 * i], b = p[2 * i + 1];
        p[2 * i] = a * c - b * s;
        p[2 * i + 1] = a * s + b * c;
    }
}

static void rope_neon(float *v, size_t n_heads, size_t head_size, size_t n_rot, const float *cs)
{
    for (size_t h = 0; h < n_heads; h++)
        rope_head_neon(v + h * head_size, n_rot / 2, cs);
}

static inline float32x4_t swiglu4(float32x4_t g, float32x4_t u)
{
    float32x4_t e = exp_neon(vnegq_f32(g));
    return vmulq_f32(vmulq_f32(g, recip(vaddq_f32(vdupq_n_f32(1.0f), e))), u);
}

static void swiglu_neon(float *h, const float *gate, const float *up, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(h + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n) {
        float t[4];
        vst1q_f32(t, swiglu4(load_tail(gate + i, n - i), load_tail(up + i, n - i)));
        memcpy(h + i, t, (n - i) * sizeof *h);
    }
}

/* exp(-(xi - xj)^2 inv) for one xi against 4 xj: the MI estimator's inner loop. */
static inline float32x4_t gauss4(float32x4_t xi, float32x4_t xj, float32x4_t ninv)
{
    float32x4_t d = vsubq_f32(xi, xj);
    return exp_neon(vmulq_f32(vmulq_f32(d, d), ninv));
}

static void gauss_block_neon(float *out, const float *xi, size_t ni, const float *xj,
                             size_t nj, float inv)
{
    float32x4_t ninv = vdupq_n_f32(-inv);
    for (size_t u = 0; u < ni; u++, out += nj) {
        float32x4_t a = vdupq_n_f32(xi[u]);
        size_t v = 0;
        for (; v + 4 <= nj; v += 4)
            vst1q_f32(out + v, gauss4(a, vld1q_f32(xj + v), ninv));
        if (v < nj) {
            float t[4];
            vst1q_f32(t, gauss4(a, load_tail(xj + v, nj - v), ninv));
            memcpy(out + v, t, (nj - v) * sizeof *out);
        }
    }
}

static void attn_scores_neon(float *out, const float *q, const float *k, size_t stride,
                             size_t n, size_t hs, float div)
{
    for (size_t t = 0; t < n; t++)
        out[t] = dot_neon(q, k + t * stride, hs) / div;
}

/* Per element the generic order (out += a v, multiply then add), so results are exact. */
static void attn_mix_neon(float *out, const float *a, const float *v, size_t stride, size_t n,
                          size_t hs)
{
    for (size_t i = 0; i < hs; i += 4) {
        size_t w = hs - i < 4 ? hs - i : 4;
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (size_t t = 0; t < n; t++) {
            float32x4_t x = w == 4 ? vld1q_f32(v + t * stride + i) : load_tail(v + t * stride + i, w);
            acc = vaddq_f32(acc, vmulq_f32(vdupq_n_f32(a[t]), x));
        }
        float tmp[4];
        vst1q_f32(tmp, acc);
        memcpy(out + i, tmp, w * sizeof *out);
    }
}

#if defined(__aarch64__)
/* Four columns at a time over all rows, in double: each column still adds its rows in
 * order with a multiply then an add, so the sums are the generic twin's bits. armv7 has no
 * double vectors and uses the generic kernel. */
static void colstats4_neon(const float *x, size_t n, size_t ld, double *sum, double *sumsq,
                           double *sumabs, float *mn, float *mx)
{
    float64x2_t s[2], q[2], a[2];
    for (int h = 0; h < 2; h++)
        s[h] = q[h] = a[h] = vdupq_n_f64(0.0);
    float32x4_t lo = vdupq_n_f32(INFINITY), hi = vdupq_n_f32(-INFINITY);
    for (size_t t = 0; t < n; t++) {
        float32x4_t v = vld1q_f32(x + t * ld);
        lo = vbslq_f32(vcltq_f32(v, lo), v, lo); /* v < lo ? v : lo, like the twin (NaN) */
        hi = vbslq_f32(vcgtq_f32(v, hi), v, hi);
        float64x2_t vd[2] = {vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)};
        for (int h = 0; h < 2; h++) {
            s[h] = vaddq_f64(s[h], vd[h]);
            q[h] = vaddq_f64(q[h], vmulq_f64(vd[h], vd[h]));
            a[h] = vaddq_f64(a[h], vabsq_f64(vd[h]));
        }
    }
    for (int h = 0; h < 2; h++) {
        vst1q_f64(sum + 2 * h, s[h]);
        vst1q_f64(sumsq + 2 * h, q[h]);
        vst1q_f64(sumabs + 2 * h, a[h]);
    }
    vst1q_f32(mn, lo);
    vst1q_f32(mx, hi);
}

static void colstats_neon(const float *x, size_t n, size_t d, size_t ld, double *sum,
                          double *sumsq, double *sumabs, float *mn, float *mx)
{
    size_t j = 0;
    for (; j + 4 <= d; j += 4)
        colstats4_neon(x + j, n, ld, sum + j, sumsq + j, sumabs + j, mn + j, mx + j);
    mipr_colstats_generic(x + j, n, d - j, ld, sum + j, sumsq + j, sumabs + j, mn + j, mx + j);
}
#else
#define colstats_neon mipr_colstats_generic
#endif

const struct mipr_kernels mipr_kernels_neon_table = {
    .isa = "neon",
    .gemv = {gemv_f32, gemv_f16, gemv_bf16, gemv_q8_0, gemv_q4_0},
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0},
    .row_to_f32 = {row_f32, row_f16, row_bf16, row_q8_0, row_q4_0},
    .dot = dot_neon,
    .axpy = axpy_neon,
    .rmsnorm = rmsnorm_neon,
    .softmax = softmax_neon,
    .rope = rope_neon,
    .swiglu = swiglu_neon,
    .gauss_block = gauss_block_neon,
    .attn_scores = attn_scores_neon,
    .attn_mix = attn_mix_neon,
    .colstats = colstats_neon,
};
