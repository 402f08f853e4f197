/* Helium (M-profile Vector Extension) kernels for Armv8.1-M with MVE floating point
 * (Cortex-M55, M85), compiled only for such targets (arch/CMakeLists.txt).
 *
 * MVE has eight 128-bit registers, no float add across a vector, no vector divide and no
 * reciprocal estimate, but it has tail predication (vctp + zeroing loads), gathers, and
 * int8 multiply-accumulate across a vector (vmladav). The kernels are shaped by that:
 *
 * - f32, f16, bf16 matrix products: every output y[t][r] owns one 4-lane accumulator,
 *       acc = fma(w[r][k..k+4), x[t][k..k+4), acc)    for k = 0, 4, 8, ...
 *   the last partial step loaded with zeros in the missing lanes, then its lanes are summed
 *   as (l0 + l1) + (l2 + l3) (NEON's order). Rows go in groups of four; a short last group
 *   repeats its last row and stores only the real ones, so every row runs through the one
 *   code path and gemv row by row, gemv of the matrix and gemm give the same bits. f16 and
 *   bf16 are widened exactly to the float the generic twin uses.
 * - Q8_0 and Q4_0: the integer block sums are exact (vmladav), and the float step per block,
 *   acc += (d_w * d_x) * isum, is the generic twin's multiply, multiply and add, four rows to
 *   a vector. Activations are quantized as mipr_quantize_xq8 does (max |x| with vmaxnmav,
 *   round half away from zero with vcvta). So they give the generic table's bits.
 * - axpy, attn_mix and the rmsnorm scaling multiply then add like the generic twin (exact);
 *   dot, attn_scores, softmax and swiglu are within the tolerances of tests/unit/test_kernels.c.
 *
 * Subnormals: qemu runs MVE floating point with the architecture's standard FPSCR value,
 * which flushes subnormal inputs and results (below 2^-126 = 1.2e-38) to zero, as armv7
 * NEON does. "Exact" above therefore means: for values that are not subnormal. The f16
 * widening is integer work (see f16_lanes), so subnormal f16 weights and scales are exact.
 *
 * gcc -O3 keeps the four accumulators, x and a weight in the eight registers; the f32 gemv
 * inner loop is ten instructions for 16 multiply-adds (five loads, four vfma, le).
 *
 * rope, gauss_block (calibration) and colstats (calibration) are the generic kernels, and so
 * is row_to_f32 of the quantized types (one embedding row per token). */
#include <arm_mve.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "generic.h"
#include "kernels_helium.h"

#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 2)
#error "kernels_helium.c needs MVE with floating point (e.g. -mcpu=cortex-m55)"
#endif

/* The first n lanes (n may exceed 4). */
static inline mve_pred16_t first_lanes(size_t n)
{
    return vctp32q(n > 4 ? 4u : (uint32_t)n);
}

/* (l0 + l1) + (l2 + l3) of each of a, b, c, d, as lanes 0..3: a de-interleaving load
 * transposes them, so the pair sums are vector adds for the four at once. */
static inline float32x4_t lane_sums4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d)
{
    _Alignas(16) float t[16];
    vst1q_f32(t, a);
    vst1q_f32(t + 4, b);
    vst1q_f32(t + 8, c);
    vst1q_f32(t + 12, d);
    float32x4x4_t v = vld4q_f32(t); /* v.val[i] = lane i of a, b, c, d */
    return vaddq_f32(vaddq_f32(v.val[0], v.val[1]), vaddq_f32(v.val[2], v.val[3]));
}

/* (l0 + l1) + (l2 + l3) of one vector. */
static inline float lane_sum(float32x4_t a)
{
    float32x4_t p = vaddq_f32(a, vrev64q_f32(a)); /* l0 + l1, -, l2 + l3, - */
    return vgetq_lane_f32(p, 0) + vgetq_lane_f32(p, 2);
}

/* ---- four weights as floats at p, the row's next four (zeros past a tail: lanes m) ---- */

static inline float32x4_t wf_f32(const void *p)
{
    return vld1q_f32(p);
}

static inline float32x4_t wfz_f32(const void *p, mve_pred16_t m)
{
    return vldrwq_z_f32(p, m);
}

/* IEEE half-precision bits (one per 32-bit lane, zero-extended) as floats, exactly as
 * mipr_f16_to_f32 converts them, subnormals, infinities and NaN included. MVE's vcvtb does
 * this in one instruction, but binutils 2.40 (Debian 12's arm-none-eabi) encodes its register
 * numbers wrongly (q1 as q2), so it is built from integer steps. */
static inline float32x4_t f16_lanes(uint32x4_t h)
{
    uint32x4_t mag = vbicq_n_u32(h, 0x8000);
    /* normal: exponent rebiased from 15 to 127, mantissa moved up; infinity and NaN (exponent
     * 31) rebiased twice, which gives 255 */
    uint32x4_t bits = vaddq_n_u32(vshlq_n_u32(mag, 13), (127 - 15) << 23);
    bits = vaddq_m_n_u32(bits, bits, (127 - 15) << 23, vcmpcsq_n_u32(mag, 0x7c00));
    /* zero and subnormal: mantissa * 2^-24, exact (and normal) in float */
    float32x4_t small = vmulq_n_f32(vcvtq_f32_u32(mag), 0x1p-24f);
    float32x4_t v = vpselq_f32(vreinterpretq_f32_u32(bits), small, vcmpcsq_n_u32(mag, 0x400));
    /* the sign into bit 31 (the magnitude's is 0) */
    return vreinterpretq_f32_u32(vsliq_n_u32(vreinterpretq_u32_f32(v), vshrq_n_u32(h, 15), 31));
}

static inline float32x4_t bf16_lanes(uint32x4_t h)
{
    return vreinterpretq_f32_u32(vshlq_n_u32(h, 16));
}

static inline float32x4_t wf_f16(const void *p)
{
    return f16_lanes(vldrhq_u32(p));
}

static inline float32x4_t wfz_f16(const void *p, mve_pred16_t m)
{
    return f16_lanes(vldrhq_z_u32(p, m));
}

static inline float32x4_t wf_bf16(const void *p)
{
    return bf16_lanes(vldrhq_u32(p));
}

static inline float32x4_t wfz_bf16(const void *p, mve_pred16_t m)
{
    return bf16_lanes(vldrhq_z_u32(p, m));
}

/* ---- f32, f16, bf16: four rows against one token ----
 * y[0..nr) = W[r] . x for the rows at p0..p3 (those past nr repeat a real one and are not
 * stored). Inlined into its matrix loop, so a group costs no call. */
#define DEFINE_ROWS4(T, ET)                                                                 \
    static inline void rows4_##T(float *y, size_t nr, const ET *p0, const ET *p1,           \
                                 const ET *p2, const ET *p3, const float *x, size_t cols)   \
    {                                                                                       \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                      \
        size_t k = cols;                                                                    \
        for (; k >= 4; k -= 4, x += 4, p0 += 4, p1 += 4, p2 += 4, p3 += 4) {                \
            float32x4_t xv = vld1q_f32(x);                                                  \
            a0 = vfmaq_f32(a0, wf_##T(p0), xv);                                             \
            a1 = vfmaq_f32(a1, wf_##T(p1), xv);                                             \
            a2 = vfmaq_f32(a2, wf_##T(p2), xv);                                             \
            a3 = vfmaq_f32(a3, wf_##T(p3), xv);                                             \
        }                                                                                   \
        if (k) {                                                                            \
            mve_pred16_t m = vctp32q((uint32_t)k);                                          \
            float32x4_t xv = vldrwq_z_f32(x, m);                                            \
            a0 = vfmaq_f32(a0, wfz_##T(p0, m), xv);                                         \
            a1 = vfmaq_f32(a1, wfz_##T(p1, m), xv);                                         \
            a2 = vfmaq_f32(a2, wfz_##T(p2, m), xv);                                         \
            a3 = vfmaq_f32(a3, wfz_##T(p3, m), xv);                                         \
        }                                                                                   \
        vstrwq_p_f32(y, lane_sums4(a0, a1, a2, a3), first_lanes(nr));                       \
    }

/* Row i of a group of nr rows at w (rows ld elements apart): past nr, the last real row. */
#define GROUP_ROW(w, i, nr, ld) ((w) + ((i) < (nr) ? (i) : (nr) - 1) * (ld))

/* gemm: rows outer, in groups of four, so the group's weights stay in cache while every
 * token passes over them. gemv is gemm of one token; f32's, the decode path of most models,
 * has its own lean loop (its copy of the kernel costs 0.8 KB of code). */
#define DEFINE_GEMM(T, ET)                                                                  \
    DEFINE_ROWS4(T, ET)                                                                     \
    static void gemm_##T(float *y, const void *w, const float *x, size_t n, size_t rows,    \
                         size_t cols)                                                       \
    {                                                                                       \
        for (size_t r = 0; r < rows; r += 4) {                                              \
            size_t nr = rows - r < 4 ? rows - r : 4;                                        \
            const ET *g = (const ET *)w + r * cols;                                         \
            for (size_t i = 0; i < n; i++)                                                  \
                rows4_##T(y + i * rows + r, nr, g, GROUP_ROW(g, 1, nr, cols),               \
                          GROUP_ROW(g, 2, nr, cols), GROUP_ROW(g, 3, nr, cols),             \
                          x + i * cols, cols);                                              \
        }                                                                                   \
    }
DEFINE_GEMM(f32, float)
DEFINE_GEMM(f16, uint16_t)
DEFINE_GEMM(bf16, uint16_t)

static void gemv_f32(float *y, const void *w, const float *x, size_t rows, size_t cols)
{
    const float *g = w;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4, g += 4 * cols)
        rows4_f32(y + r, 4, g, g + cols, g + 2 * cols, g + 3 * cols, x, cols);
    if (r < rows)
        gemm_f32(y + r, g, x, 1, rows - r, cols);
}

static void gemv_f16(float *y, const void *w, const float *x, size_t rows, size_t cols)
{
    gemm_f16(y, w, x, 1, rows, cols);
}

static void gemv_bf16(float *y, const void *w, const float *x, size_t rows, size_t cols)
{
    gemm_bf16(y, w, x, 1, rows, cols);
}

/* Rows r..r+4 of w (row bytes ldw), the last real row repeated past `rows`. */
static size_t group_rows(const char *w[4], const void *base, size_t ldw, size_t r, size_t rows)
{
    size_t nr = rows - r < 4 ? rows - r : 4;
    for (size_t i = 0; i < 4; i++)
        w[i] = GROUP_ROW((const char *)base + r * ldw, i, nr, ldw);
    return nr;
}

/* ---- Q8_0 and Q4_0: integer block sums against quantized activations ---- */

/* One block of 32 activations as mipr_quantize_xq8 quantizes it. */
static void quantize_block(mipr_xq8 *o, const float *x)
{
    float amax = 0.0f;
    mve_pred16_t ok = 0xFFFF;
    for (int k = 0; k < MIPR_QK8_0; k += 4) {
        float32x4_t v = vld1q_f32(x + k);
        amax = vmaxnmavq_f32(amax, v); /* fmaxf(amax, |x|): NaN ignored */
        ok &= vcmpleq_n_f32(vabsq_f32(v), FLT_MAX); /* false for NaN and infinities */
    }
    /* the generic twin's rules: a tiny d is 0; a non-finite value makes d NaN and q 0 */
    if (ok != 0xFFFF) {
        o->d = NAN;
        memset(o->qs, 0, sizeof o->qs);
        return;
    }
    float d = amax / 127.0f;
    d = d >= FLT_MIN ? d : 0.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int k = 0; k < MIPR_QK8_0; k += 4) /* roundf: half away from zero; the low byte */
        vstrbq_s32(o->qs + k, vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + k), id)));
    o->d = d;
}

/* The d of block b in each of the four rows, as floats (exact). */
static inline float32x4_t q8_scales(const char *const w[4], uint32x4_t offs, size_t b)
{
    return f16_lanes(vldrhq_gather_offset_u32(&((const mipr_block_q8_0 *)w[0])[b].d, offs));
}

static inline float32x4_t q4_scales(const char *const w[4], uint32x4_t offs, size_t b)
{
    return f16_lanes(vldrhq_gather_offset_u32(&((const mipr_block_q4_0 *)w[0])[b].d, offs));
}

/* Byte offsets of the four rows from the first. */
static inline uint32x4_t row_offsets(const char *const w[4])
{
    uint32x4_t o = vdupq_n_u32(0);
    o = vsetq_lane_u32((uint32_t)(w[1] - w[0]), o, 1);
    o = vsetq_lane_u32((uint32_t)(w[2] - w[0]), o, 2);
    return vsetq_lane_u32((uint32_t)(w[3] - w[0]), o, 3);
}

static inline int32_t q8_isum(const mipr_block_q8_0 *w, int8x16_t x0, int8x16_t x1)
{
    return vmladavaq_s8(vmladavq_s8(vld1q_s8(w->qs), x0), vld1q_s8(w->qs + 16), x1);
}

/* Q4_0 multiplies the raw nibbles (0..15) and leaves the - 8 sum(q_x) to the caller. */
static inline int32_t q4_isum(const mipr_block_q4_0 *w, int8x16_t x0, int8x16_t x1)
{
    uint8x16_t v = vld1q_u8(w->qs);
    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
    int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    return vmladavaq_s8(vmladavq_s8(lo, x0), hi, x1);
}

static inline int32x4_t lanes_s32(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32x4_t v = vdupq_n_s32(a);
    v = vsetq_lane_s32(b, v, 1);
    v = vsetq_lane_s32(c, v, 2);
    return vsetq_lane_s32(d, v, 3);
}

/* y[0..nr) carries on (or, when first, starts) the sum of four rows over nb blocks. */
static void q8_rows4(float *y, size_t nr, const char *const w[4], const mipr_xq8 *xq,
                     size_t nb, int first)
{
    const mipr_block_q8_0 *b0 = (const mipr_block_q8_0 *)w[0], *b1 = (const void *)w[1],
                          *b2 = (const void *)w[2], *b3 = (const void *)w[3];
    mve_pred16_t m = first_lanes(nr);
    uint32x4_t offs = row_offsets(w);
    float32x4_t acc = first ? vdupq_n_f32(0.0f) : vldrwq_z_f32(y, m);
    for (size_t b = 0; b < nb; b++) {
        int8x16_t x0 = vld1q_s8(xq[b].qs), x1 = vld1q_s8(xq[b].qs + 16);
        int32x4_t is = lanes_s32(q8_isum(b0 + b, x0, x1), q8_isum(b1 + b, x0, x1),
                                 q8_isum(b2 + b, x0, x1), q8_isum(b3 + b, x0, x1));
        float32x4_t p = vmulq_n_f32(q8_scales(w, offs, b), xq[b].d);
        acc = vaddq_f32(acc, vmulq_f32(p, vcvtq_f32_s32(is)));
    }
    vstrwq_p_f32(y, acc, m);
}

/* xs[b] = 8 sum(q_x) of block b: what the raw nibbles add over q - 8. */
static void q4_rows4(float *y, size_t nr, const char *const w[4], const mipr_xq8 *xq,
                     const int32_t *xs, size_t nb, int first)
{
    const mipr_block_q4_0 *b0 = (const mipr_block_q4_0 *)w[0], *b1 = (const void *)w[1],
                          *b2 = (const void *)w[2], *b3 = (const void *)w[3];
    mve_pred16_t m = first_lanes(nr);
    uint32x4_t offs = row_offsets(w);
    float32x4_t acc = first ? vdupq_n_f32(0.0f) : vldrwq_z_f32(y, m);
    for (size_t b = 0; b < nb; b++) {
        int8x16_t x0 = vld1q_s8(xq[b].qs), x1 = vld1q_s8(xq[b].qs + 16);
        int32x4_t is = lanes_s32(q4_isum(b0 + b, x0, x1), q4_isum(b1 + b, x0, x1),
                                 q4_isum(b2 + b, x0, x1), q4_isum(b3 + b, x0, x1));
        float32x4_t p = vmulq_n_f32(q4_scales(w, offs, b), xq[b].d);
        acc = vaddq_f32(acc, vmulq_f32(p, vcvtq_f32_s32(vsubq_n_s32(is, xs[b]))));
    }
    vstrwq_p_f32(y, acc, m);
}

/* Q8_0 and Q4_0 (type), token by token: each chunk of at most MIPR_XQ8_CHUNK blocks is
 * quantized once (on the stack, as the generic twin does), then every group of four rows
 * carries its float sums on over it, so the chunking changes nothing in the result. */
static void gemm_quant(enum mipr_dtype type, float *y, const void *w, const float *x, size_t n,
                       size_t rows, size_t cols)
{
    mipr_xq8 xq[MIPR_XQ8_CHUNK];
    int32_t xs[MIPR_XQ8_CHUNK];
    size_t nb = (cols + MIPR_QK8_0 - 1) / MIPR_QK8_0, ldw = mipr_dtype_row_bytes(type, cols);
    size_t bb = mipr_dtype_row_bytes(type, MIPR_QK8_0); /* bytes per block */
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < nb; c += MIPR_XQ8_CHUNK) {
            size_t nc = nb - c < MIPR_XQ8_CHUNK ? nb - c : MIPR_XQ8_CHUNK;
            size_t k0 = c * MIPR_QK8_0;
            size_t kn = cols - k0 < nc * MIPR_QK8_0 ? cols - k0 : nc * MIPR_QK8_0;
            mipr_quantize_xq8_with(quantize_block, xq, x + i * cols + k0, kn);
            for (size_t b = 0; type == MIPR_DT_Q4_0 && b < nc; b++)
                xs[b] = 8 * vaddvaq_s8(vaddvq_s8(vld1q_s8(xq[b].qs)), vld1q_s8(xq[b].qs + 16));
            for (size_t r = 0; r < rows; r += 4) {
                const char *wr[4];
                size_t nr = group_rows(wr, (const char *)w + c * bb, ldw, r, rows);
                if (type == MIPR_DT_Q8_0)
                    q8_rows4(y + i * rows + r, nr, wr, xq, nc, c == 0);
                else
                    q4_rows4(y + i * rows + r, nr, wr, xq, xs, nc, c == 0);
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
    gemm_q8_0(y, w, x, 1, rows, cols);
}

static void gemm_q4_0(float *y, const void *w, const float *x, size_t n, size_t rows,
                      size_t cols)
{
    gemm_quant(MIPR_DT_Q4_0, y, w, x, n, rows, cols);
}

static void gemv_q4_0(float *y, const void *w, const float *x, size_t rows, size_t cols)
{
    gemm_q4_0(y, w, x, 1, rows, cols);
}

/* ---- rows to float (exact) ---- */

static void row_f32(float *out, const void *w, size_t row, size_t cols)
{
    memcpy(out, (const float *)w + row * cols, cols * sizeof *out);
}

#define DEFINE_ROW(T)                                                                       \
    static void row_##T(float *out, const void *w, size_t row, size_t cols)                 \
    {                                                                                       \
        const uint16_t *p = (const uint16_t *)w + row * cols;                               \
        for (size_t k = 0; k < cols; k += 4) {                                              \
            mve_pred16_t m = first_lanes(cols - k);                                         \
            vstrwq_p_f32(out + k, wfz_##T(p + k, m), m);                                    \
        }                                                                                   \
    }
DEFINE_ROW(f16)
DEFINE_ROW(bf16)

static void row_q8_0(float *out, const void *w, size_t row, size_t cols)
{
    mipr_kernels_generic()->row_to_f32[MIPR_DT_Q8_0](out, w, row, cols);
}

static void row_q4_0(float *out, const void *w, size_t row, size_t cols)
{
    mipr_kernels_generic()->row_to_f32[MIPR_DT_Q4_0](out, w, row, cols);
}

/* ---- vector operations ----
 * Whole vectors first, then one predicated step for the last n % 4 elements: every
 * predicated instruction costs a vpst more. */

static float dot_helium(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* two chains: the FMA latency */
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    if (i + 4 <= n) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        i += 4;
    }
    if (i < n) {
        mve_pred16_t m = vctp32q((uint32_t)(n - i));
        s1 = vfmaq_f32(s1, vldrwq_z_f32(a + i, m), vldrwq_z_f32(b + i, m));
    }
    return lane_sum(vaddq_f32(s0, s1));
}

/* Multiply then add, not fused: the generic twin's bits. */
static void axpy_helium(float *y, float a, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(vld1q_f32(x + i), a)));
    if (i < n) {
        mve_pred16_t m = vctp32q((uint32_t)(n - i));
        float32x4_t v = vaddq_f32(vldrwq_z_f32(y + i, m), vmulq_n_f32(vldrwq_z_f32(x + i, m), a));
        vstrwq_p_f32(y + i, v, m);
    }
}

static void rmsnorm_helium(float *out, const float *x, const float *w, size_t n, float eps)
{
    float ss = dot_helium(x, x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) /* w * (ss * x), the generic twin's order */
        vst1q_f32(out + i, vmulq_f32(vld1q_f32(w + i), vmulq_n_f32(vld1q_f32(x + i), ss)));
    if (i < n) {
        mve_pred16_t m = vctp32q((uint32_t)(n - i));
        float32x4_t sx = vmulq_n_f32(vldrwq_z_f32(x + i, m), ss);
        vstrwq_p_f32(out + i, vmulq_f32(vldrwq_z_f32(w + i, m), sx), m);
    }
}

/* exp(x) within 2 ulp for x in [EXP_LO, EXP_HI]: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in
 * two parts, so r is exact enough), Cephes' degree-5 polynomial for e^r, and 2^n built in
 * the exponent field as 2 * 2^(n-1) (n = 128 occurs just below FLT_MAX; n = -126, at EXP_LO,
 * gives 0: the true value is under 1.2e-38). */
#define EXP_HI 88.72283935546875f
#define EXP_LO -87.33654022216797f

static inline float32x4_t exp_in_range(float32x4_t x)
{
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmaq_n_f32(x, n, -0.693359375f);
    r = vfmaq_n_f32(r, n, 2.12194440e-4f);
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmasq_n_f32(p, r, 1.3981999507e-3f); /* p r + c */
    p = vfmasq_n_f32(p, r, 8.3334519073e-3f);
    p = vfmasq_n_f32(p, r, 4.1665795894e-2f);
    p = vfmasq_n_f32(p, r, 1.6666665459e-1f);
    p = vfmasq_n_f32(p, r, 5.0000001201e-1f);
    p = vfmaq_f32(vaddq_n_f32(r, 1.0f), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_n_s32(vcvtq_s32_f32(n), 126), 23);
    return vmulq_f32(vaddq_f32(p, p), vreinterpretq_f32_s32(e));
}

/* exp of any x: 0 below EXP_LO, +inf above EXP_HI, NaN kept (MVE's float min and max
 * ignore NaN, so it is put back). */
static inline float32x4_t exp_helium(float32x4_t x)
{
    float32x4_t y = exp_in_range(vmaxnmq_f32(vminnmq_f32(x, vdupq_n_f32(EXP_HI)),
                                             vdupq_n_f32(EXP_LO)));
    y = vpselq_f32(vdupq_n_f32(INFINITY), y, vcmpgtq_n_f32(x, EXP_HI));
    return vpselq_f32(x, y, vcmpneq_f32(x, x));
}

/* exp of x <= 0 (softmax's x - max); NaN gives 0 here, softmax_helium restores it. */
static inline float32x4_t exp_nonpositive(float32x4_t x)
{
    return exp_in_range(vmaxnmq_f32(x, vdupq_n_f32(EXP_LO)));
}

static float max_helium(const float *x, size_t n)
{
    float max = x[0];
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        max = vmaxnmvq_f32(max, vld1q_f32(x + i));
    if (i < n) {
        mve_pred16_t m = vctp32q((uint32_t)(n - i));
        max = vmaxnmvq_p_f32(max, vldrwq_z_f32(x + i, m), m);
    }
    return max;
}

/* The sum of every x - max (<= 0) rides along: it is NaN exactly when one of them is, and
 * then, as in the generic twin, every result is NaN. */
static void softmax_helium(float *x, size_t n)
{
    float max = max_helium(x, n);
    float32x4_t sum = vdupq_n_f32(0.0f), nan = sum;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_n_f32(vld1q_f32(x + i), max), e = exp_nonpositive(d);
        vst1q_f32(x + i, e);
        sum = vaddq_f32(sum, e);
        nan = vaddq_f32(nan, d);
    }
    if (i < n) {
        mve_pred16_t m = vctp32q((uint32_t)(n - i));
        float32x4_t d = vsubq_n_f32(vldrwq_z_f32(x + i, m), max), e = exp_nonpositive(d);
        vstrwq_p_f32(x + i, e, m);
        sum = vaddq_m_f32(sum, sum, e, m); /* lanes past n keep the sums */
        nan = vaddq_m_f32(nan, nan, d, m);
    }
    /* one rounding more than dividing each (within the stated tolerance), n divisions less */
    float inv = 1.0f / lane_sum(sum), any = lane_sum(nan);
    if (any != any)
        inv = any;
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++)
        x[i] *= inv;
}

/* 1 / d lane by lane with the FPU's exact division: MVE has no reciprocal estimate. */
static inline float32x4_t recip_helium(float32x4_t d)
{
    float t[4];
    vst1q_f32(t, d);
    for (int i = 0; i < 4; i++)
        t[i] = 1.0f / t[i];
    return vld1q_f32(t);
}

/* g (1 / (1 + e^-g)) u, the generic twin's order. */
static inline float32x4_t swiglu4(float32x4_t g, float32x4_t u)
{
    float32x4_t s = recip_helium(vaddq_n_f32(exp_helium(vnegq_f32(g)), 1.0f));
    return vmulq_f32(vmulq_f32(g, s), u);
}

static void swiglu_helium(float *h, const float *gate, const float *up, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(h + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n) {
        mve_pred16_t m = vctp32q((uint32_t)(n - i));
        vstrwq_p_f32(h + i, swiglu4(vldrwq_z_f32(gate + i, m), vldrwq_z_f32(up + i, m)), m);
    }
}

/* Positions in lanes: a gather reads element i of four positions' rows, so each lane sums
 * q . k_t in index order (fused) whatever the head size; then * (1 / div). Eight positions
 * per pass share the loads of q. */
static void attn_scores_helium(float *out, const float *q, const float *k, size_t stride,
                               size_t n, size_t hs, float div)
{
    uint32x4_t rows = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)stride);
    uint32x4_t rows4 = vaddq_n_u32(rows, 4 * (uint32_t)stride);
    float inv = 1.0f / div;
    size_t t = 0;
    for (; t + 8 <= n; t += 8) {
        const float *kt = k + t * stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
        for (size_t i = 0; i < hs; i++) {
            float qi = q[i];
            a0 = vfmaq_n_f32(a0, vldrwq_gather_shifted_offset_f32(kt + i, rows), qi);
            a1 = vfmaq_n_f32(a1, vldrwq_gather_shifted_offset_f32(kt + i, rows4), qi);
        }
        vst1q_f32(out + t, vmulq_n_f32(a0, inv));
        vst1q_f32(out + t + 4, vmulq_n_f32(a1, inv));
    }
    for (; t < n; t += 4) {
        mve_pred16_t m = vctp32q((uint32_t)(n - t));
        const float *kt = k + t * stride;
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (size_t i = 0; i < hs; i++)
            acc = vfmaq_n_f32(acc, vldrwq_gather_shifted_offset_z_f32(kt + i, rows, m), q[i]);
        vstrwq_p_f32(out + t, vmulq_n_f32(acc, inv), m);
    }
}

/* Per element the generic order (out += a v, multiply then add), over all positions:
 * elements i..i+8 (whole vectors), then i..i+4, then the last hs % 4 (predicated). */
static void mix8(float *out, const float *a, const float *v, size_t stride, size_t n)
{
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    for (size_t t = 0; t < n; t++, v += stride) {
        float at = a[t];
        acc0 = vaddq_f32(acc0, vmulq_n_f32(vld1q_f32(v), at));
        acc1 = vaddq_f32(acc1, vmulq_n_f32(vld1q_f32(v + 4), at));
    }
    vst1q_f32(out, acc0);
    vst1q_f32(out + 4, acc1);
}

static void mix4(float *out, const float *a, const float *v, size_t stride, size_t n,
                 size_t w)
{
    mve_pred16_t m = vctp32q((uint32_t)w);
    float32x4_t acc = vdupq_n_f32(0.0f);
    if (w == 4)
        for (size_t t = 0; t < n; t++, v += stride)
            acc = vaddq_f32(acc, vmulq_n_f32(vld1q_f32(v), a[t]));
    else
        for (size_t t = 0; t < n; t++, v += stride)
            acc = vaddq_f32(acc, vmulq_n_f32(vldrwq_z_f32(v, m), a[t]));
    vstrwq_p_f32(out, acc, m);
}

static void attn_mix_helium(float *out, const float *a, const float *v, size_t stride, size_t n,
                            size_t hs)
{
    size_t i = 0;
    for (; i + 8 <= hs; i += 8)
        mix8(out + i, a, v + i, stride, n);
    for (; i < hs; i += 4)
        mix4(out + i, a, v + i, stride, n, hs - i < 4 ? hs - i : 4);
}

const struct mipr_kernels mipr_kernels_helium_table = {
    .isa = "helium",
    .gemv = {gemv_f32, gemv_f16, gemv_bf16, gemv_q8_0, gemv_q4_0},
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0},
    .row_to_f32 = {row_f32, row_f16, row_bf16, row_q8_0, row_q4_0},
    .dot = dot_helium,
    .axpy = axpy_helium,
    .rmsnorm = rmsnorm_helium,
    .softmax = softmax_helium,
    .rope = mipr_rope_generic,
    .swiglu = swiglu_helium,
    .gauss_block = mipr_gauss_block_generic,
    .attn_scores = attn_scores_helium,
    .attn_mix = attn_mix_helium,
    .colstats = mipr_colstats_generic,
};
