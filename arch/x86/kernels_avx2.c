/* AVX2 + FMA + F16C kernels. Only this file is compiled with -mavx2 -mfma -mf16c; nothing in
 * it may run before dispatch has checked the CPU.
 *
 * Matrix products of f32, f16 and bf16. Every output y[t][r] owns one 8-lane accumulator:
 *     acc = fma(w[r][k..k+8), x[t][k..k+8), acc)    for k = 0, 8, 16, ...
 * the last partial step zero-padded, then its lanes are summed as
 *     ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
 * Weights are first widened to exactly the float the generic twin uses (f16 and bf16 are
 * exact in f32). gemv and gemm differ only in how many accumulators share the registers
 * (gemv: 1 token x 8 rows, gemm: 3 tokens x 4 rows), never in that sequence, so both give
 * the same bits for every (token, row) whatever the blocking. Q8_0 and Q4_0 are integer
 * products with their own kernels (see "Q8_0" and "Q4_0" below), bit-exact against the
 * generic twin, partial last blocks included. */
#include <immintrin.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "generic.h"
#include "kernels_avx2.h"

/* Lanes [0, n) set, n < 8: masked loads never touch memory past the end. */
static inline __m256i tail_mask(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- the lane-sum tree, in one, four and eight accumulators at once ---- */

static inline float hsum8(__m256 a)
{
    __m256 h = _mm256_hadd_ps(a, a); /* l0+l1, l2+l3 in each half */
    h = _mm256_hadd_ps(h, h);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

static inline __m128 hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

static inline __m256 hsum8x8(const __m256 *v)
{
    __m256 lo = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    __m256 hi = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* y[0..nr) = lane sums of acc[0..nr) */
static inline void store_sums(float *y, const __m256 *acc, int nr)
{
    if (nr == 8) {
        _mm256_storeu_ps(y, hsum8x8(acc));
    } else if (nr == 4) {
        _mm_storeu_ps(y, hsum8x4(acc[0], acc[1], acc[2], acc[3]));
    } else {
        for (int r = 0; r < nr; r++)
            y[r] = hsum8(acc[r]);
    }
}

/* ---- eight weights as floats, at element k of a row (k % 8 == 0) ---- */

static inline __m256 w8_f32(const char *row, size_t k)
{
    return _mm256_loadu_ps((const float *)row + k);
}

static inline __m256 w8_f16(const char *row, size_t k)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
}

static inline __m256 bf16x8_to_f32(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline __m256 w8_bf16(const char *row, size_t k)
{
    return bf16x8_to_f32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
}

/* The last n < 8 weights, zero-padded. */
static inline __m256 w8t_f32(const char *row, size_t k, size_t n)
{
    return _mm256_maskload_ps((const float *)row + k, tail_mask(n));
}

static inline __m128i load_u16_tail(const char *row, size_t k, size_t n)
{
    uint16_t t[8] = {0};
    memcpy(t, (const uint16_t *)row + k, n * sizeof t[0]);
    return _mm_loadu_si128((const __m128i *)t);
}

static inline __m256 w8t_f16(const char *row, size_t k, size_t n)
{
    return _mm256_cvtph_ps(load_u16_tail(row, k, n));
}

static inline __m256 w8t_bf16(const char *row, size_t k, size_t n)
{
    return bf16x8_to_f32(load_u16_tail(row, k, n));
}

/* Q8_0: eight weights j..j+8 of block b, times the block scale d (exact: 11 x 8 bits). */
static inline __m256 w8_q8(const char *row, size_t b, size_t j, __m256 d)
{
    const mipr_block_q8_0 *blk = (const mipr_block_q8_0 *)row + b;
    __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk->qs + j)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
}

static inline __m256 q8_scale(const char *row, size_t b)
{
    return _mm256_set1_ps(_cvtsh_ss(((const mipr_block_q8_0 *)row)[b].d));
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
        __m256 xv[MT];                                                                      \
        UNROLL for (int t = 0; t < (MT); t++)                                               \
            xv[t] = XV(t);                                                                  \
        UNROLL for (int r = 0; r < (NR); r++) {                                             \
            __m256 wv = WV(r);                                                              \
            UNROLL for (int t = 0; t < (MT); t++)                                           \
                acc[t][r] = _mm256_fmadd_ps(wv, xv[t], acc[t][r]);                          \
        }                                                                                   \
    } while (0)

#define MK_ZERO(MT, NR)                                                                     \
    __m256 acc[MT][NR];                                                                     \
    for (int t = 0; t < (MT); t++)                                                          \
        for (int r = 0; r < (NR); r++)                                                      \
            acc[t][r] = _mm256_setzero_ps()

/* Through a copy: acc's address never escapes, so it can stay in registers. */
#define MK_STORE(MT, NR)                                                                    \
    UNROLL for (int t = 0; t < (MT); t++) {                                                 \
        __m256      sums[NR];                                                                 \
        UNROLL for (int r = 0; r < (NR); r++)                                               \
            sums[r] = acc[t][r];                                                            \
        store_sums(y + (size_t)t * ldy, sums, NR);                                          \
    }

#define X_FULL(t) _mm256_loadu_ps(x + (size_t)(t) * ldx + k)
#define X_TAIL(t) _mm256_maskload_ps(x + (size_t)(t) * ldx + k, m)

/* f32, f16, bf16: full steps of 8, then one zero-padded step. */
#define DEFINE_MK(T, MT, NR)                                                                \
    static void mk_##T##_##MT##x##NR(float *y, size_t ldy, const char *w, size_t ldw,      \
                                     const float *x, size_t ldx, size_t cols)              \
    {                                                                                       \
        MK_ZERO(MT, NR);                                                                    \
        size_t k = 0;                                                                       \
        for (; k + 8 <= cols; k += 8)                                                       \
            MK_STEP(MT, NR, X_FULL, W_FULL_##T);                                            \
        if (k < cols) {                                                                     \
            __m256i m = tail_mask(cols - k);                                                \
            MK_STEP(MT, NR, X_TAIL, W_TAIL_##T);                                            \
        }                                                                                   \
        MK_STORE(MT, NR);                                                                   \
    }

#define W_FULL_f32(r) w8_f32(w + (size_t)(r) * ldw, k)
#define W_FULL_f16(r) w8_f16(w + (size_t)(r) * ldw, k)
#define W_FULL_bf16(r) w8_bf16(w + (size_t)(r) * ldw, k)
#define W_TAIL_f32(r) w8t_f32(w + (size_t)(r) * ldw, k, cols - k)
#define W_TAIL_f16(r) w8t_f16(w + (size_t)(r) * ldw, k, cols - k)
#define W_TAIL_bf16(r) w8t_bf16(w + (size_t)(r) * ldw, k, cols - k)

/* The shapes used: gemm 3x4 with its edges 1x4, 3x1, 1x1; gemv 1x8. */
#define DEFINE_MK_SET(DEF, T)                                                               \
    DEF(T, 3, 4)                                                                            \
    DEF(T, 1, 4)                                                                            \
    DEF(T, 3, 1)                                                                            \
    DEF(T, 1, 1)                                                                            \
    DEF(T, 1, 8)

DEFINE_MK_SET(DEFINE_MK, f32)
DEFINE_MK_SET(DEFINE_MK, f16)
DEFINE_MK_SET(DEFINE_MK, bf16)

struct mk_set {
    mk_fn m3x4, m1x4, m3x1, m1x1, m1x8;
    enum mipr_dtype type;
};

#define MK_SET(T, DT) {mk_##T##_3x4, mk_##T##_1x4, mk_##T##_3x1, mk_##T##_1x1, mk_##T##_1x8, DT}
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

/* Tokens per cache block: X of one block stays in L2 while every block of four weight rows
 * (in L1) passes over it; a bigger block reads W fewer times. 384 KiB measured best on Zen 2
 * (512 KiB L2) at the SmolLM2 and Qwen2.5 FFN shapes; on a 256 KiB L2 the excess comes
 * from L3. */
static size_t tokens_per_block(size_t cols)
{
    size_t tb = (384u * 1024u / sizeof(float)) / (cols ? cols : 1);
    tb -= tb % 3;
    return tb < 3 ? 3 : tb;
}

/* One block of rows (m3: 3 tokens, m1: 1 token) over tokens [0, n). */
static void tokens_run(mk_fn m3, mk_fn m1, float *y, size_t ldy, const char *w, size_t ldw,
                       const float *x, size_t n, size_t cols)
{
    size_t t = 0;
    for (; t + 3 <= n; t += 3)
        m3(y + t * ldy, ldy, w, ldw, x + t * cols, cols, cols);
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
            tokens_run(f->m3x4, f->m1x4, yb + r, rows, wr, widen ? cols * sizeof(float) : ldw,
                       xb, tn, cols);
        }
        for (; r < rows; r++)
            tokens_run(s->m3x1, s->m1x1, yb + r, rows, wb + r * ldw, ldw, xb, tn, cols);
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
 * as a multiply, a multiply and an add (no FMA), blocks in order: the generic twin's bits.
 * Eight (or four) rows share one float vector, lane r for row r. */

/* x quantized like mipr_quantize_xq8: round(v) half away from zero is trunc(v) plus the
 * sign of v when |v - trunc(v)| >= 0.5 (v - trunc(v) is exact). */
static inline __m256i round_away_epi32(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 half = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)),
                                _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(half, one)));
}

static inline float hmax8(__m256 a)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

static void quantize_block(mipr_xq8 *o, const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(FLT_MAX);
    __m256 v[4], m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        __m256 a = _mm256_andnot_ps(sign, v[k]);
        m = _mm256_max_ps(m, a);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ)); /* NaN or infinite */
    }
    /* the generic twin's rules: a tiny d is 0; a non-finite value makes d NaN and q 0 */
    float d = hmax8(m) / 127.0f;
    d = d >= FLT_MIN ? d : 0.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (_mm256_movemask_ps(bad)) {
        o->d = NAN;
        memset(o->qs, 0, sizeof o->qs);
        return;
    }
    __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = round_away_epi32(_mm256_mul_ps(v[k], vid));
    /* the packs work per 128-bit half: dwords come out as 0 2 4 6 1 3 5 7 of the row */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    o->d = d;
    _mm256_storeu_si256((__m256i *)o->qs, p);
}

/* The n values at x as ceil(n / 32) blocks, the last one zero-padded. */
static void quantize_xq8(mipr_xq8 *out, const float *x, size_t n)
{
    mipr_quantize_xq8_with(quantize_block, out, x, n);
}

/* q_w . q_x of one block as eight int32 partial sums: maddubs wants one unsigned operand,
 * so |w| (0x80 reads as 128) times x with w's sign; pairs fit int16 since |q_x| <= 127. */
static inline __m256i dot32_epi32(const mipr_block_q8_0 *w, __m256i x)
{
    __m256i q = _mm256_loadu_si256((const __m256i *)w->qs);
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Lane r = the sum of v[r]'s lanes (integers: any order is exact). */
static inline __m256i isum8x8(const __m256i *v)
{
    __m256i lo = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i hi = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20),
                            _mm256_permute2x128_si256(lo, hi, 0x31));
}

static inline __m128i isum4x4(const __m256i *v)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

static inline int32_t isum8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

static inline const mipr_block_q8_0 *q8_block(const char *w, size_t ldw, int r, size_t b)
{
    return (const mipr_block_q8_0 *)(w + (size_t)r * ldw) + b;
}

/* The fp16 scale that starts block b (of bb bytes) of row r. */
static inline uint16_t block_d(const char *w, size_t ldw, size_t bb, int r, size_t b)
{
    uint16_t d;
    memcpy(&d, w + (size_t)r * ldw + b * bb, sizeof d);
    return d;
}

/* The scales of block b of eight rows, as floats. */
static inline __m256 scales8(const char *w, size_t ldw, size_t bb, size_t b)
{
    __m128i h = _mm_setzero_si128();
#define D_INSERT(r) h = _mm_insert_epi16(h, block_d(w, ldw, bb, r, b), r)
    D_INSERT(0); D_INSERT(1); D_INSERT(2); D_INSERT(3);
    D_INSERT(4); D_INSERT(5); D_INSERT(6); D_INSERT(7);
#undef D_INSERT
    return _mm256_cvtph_ps(h);
}

/* The scales of block b of four rows, as floats. */
static inline __m128 scales4(const char *w, size_t ldw, size_t bb, size_t b)
{
    __m128i h = _mm_setzero_si128();
    h = _mm_insert_epi16(h, block_d(w, ldw, bb, 0, b), 0);
    h = _mm_insert_epi16(h, block_d(w, ldw, bb, 1, b), 1);
    h = _mm_insert_epi16(h, block_d(w, ldw, bb, 2, b), 2);
    h = _mm_insert_epi16(h, block_d(w, ldw, bb, 3, b), 3);
    return _mm_cvtph_ps(h);
}

/* y[r] += W[r] . x over nb blocks, for 8, 4 and 1 rows (ldw bytes apart). Eight rows
 * interleave eight short streams, which the hardware prefetcher follows poorly: when pf is
 * set (eight later rows, contiguous), each block step prefetches its share of them, 8
 * blocks' bytes, so that a later call finds its rows in cache (gemv from memory: 31 -> 70 %
 * of the read bandwidth with the rows two calls ahead). */
static void q8_rows8(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, size_t nb,
                     const char *pf)
{
    __m256 acc = _mm256_loadu_ps(y);
    for (size_t b = 0; b < nb; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].qs), s[8];
        if (pf)
            for (size_t l = 0; l < 8 * sizeof(mipr_block_q8_0); l += 64)
                _mm_prefetch(pf + (b * 8 * sizeof(mipr_block_q8_0) + l), _MM_HINT_T0);
        for (int r = 0; r < 8; r++)
            s[r] = dot32_epi32(q8_block(w, ldw, r, b), x);
        __m256 p = _mm256_mul_ps(scales8(w, ldw, sizeof(mipr_block_q8_0), b),
                                 _mm256_set1_ps(xq[b].d));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(p, _mm256_cvtepi32_ps(isum8x8(s))));
    }
    _mm256_storeu_ps(y, acc);
}

static void q8_rows4(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, size_t nb)
{
    __m128 acc = _mm_loadu_ps(y);
    for (size_t b = 0; b < nb; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].qs), s[4];
        for (int r = 0; r < 4; r++)
            s[r] = dot32_epi32(q8_block(w, ldw, r, b), x);
        __m128 dw = scales4(w, ldw, sizeof(mipr_block_q8_0), b);
        __m128 p = _mm_mul_ps(dw, _mm_set1_ps(xq[b].d));
        acc = _mm_add_ps(acc, _mm_mul_ps(p, _mm_cvtepi32_ps(isum4x4(s))));
    }
    _mm_storeu_ps(y, acc);
}

static void q8_rows1(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, size_t nb)
{
    (void)ldw;
    float acc = *y;
    for (size_t b = 0; b < nb; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].qs);
        const mipr_block_q8_0 *blk = q8_block(w, 0, 0, b);
        float p = _cvtsh_ss(blk->d) * xq[b].d;
        acc += p * (float)isum8(dot32_epi32(blk, x));
    }
    *y = acc;
}

/* All rows over tokens [0, n) of a quantized chunk (nb blocks per token): rows outer, so
 * eight weight rows stay in cache while every token passes over them. (A two-token x
 * four-row kernel sharing |w| measured slower than this on Zen 2.) */
static void q8_chunk(float *y, size_t ldy, const char *w, size_t ldw, const mipr_xq8 *xq,
                     size_t n, size_t nb, size_t rows)
{
    size_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        /* prefetch two groups ahead; rows are contiguous only when the chunk is the row */
        const char *pf = r + 24 <= rows && nb * sizeof(mipr_block_q8_0) == ldw
                             ? w + (r + 16) * ldw : NULL;
        for (size_t t = 0; t < n; t++)
            q8_rows8(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, nb, t ? NULL : pf);
    }
    for (; r + 4 <= rows; r += 4)
        for (size_t t = 0; t < n; t++)
            q8_rows4(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, nb);
    for (; r < rows; r++)
        for (size_t t = 0; t < n; t++)
            q8_rows1(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, nb);
}

/* ---- Q4_0: the same integer products with nibble weights ----
 * maddubs multiplies the nibbles as unsigned bytes (0..15) by q_x, and the block's sum of
 * q_x times 8 is subtracted from the row sums: sum (q_w - 8) q_x exactly, one subtraction
 * per block for eight rows instead of re-centring every weight. Unsigned nibbles also keep
 * partial sums small enough to add in int16, which saves most of the per-block reduction
 * (1536 x 576 in cache on Zen 2: 36 us with one row per vector and int32 sums, 23.5 us with
 * q4_rows8's two rows per vector; Q8_0's kernel takes 31.5 us). */

static inline const mipr_block_q4_0 *q4_block(const char *w, size_t ldw, int r, size_t b)
{
    return (const mipr_block_q4_0 *)(w + (size_t)r * ldw) + b;
}

/* The 32 nibbles of a block as bytes in element order: low nibbles, then high nibbles. */
static inline __m256i q4_unpack(const mipr_block_q4_0 *w)
{
    __m128i b = _mm_loadu_si128((const __m128i *)w->qs);
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(q, _mm256_set1_epi8(15));
}

/* sum q_w q_x (nibbles unsigned) as eight int32 partial sums; maddubs' pairs stay within
 * int16 (2 * 15 * 127). */
static inline __m256i q4dot_epi32(const mipr_block_q4_0 *w, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q4_unpack(w), x), _mm256_set1_epi16(1));
}

/* xs[b] = 8 * sum of block b's q_x, for nb blocks. */
static void xq_sums8(int32_t *xs, const mipr_xq8 *xq, size_t nb)
{
    for (size_t b = 0; b < nb; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].qs);
        __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi8(1), x);
        xs[b] = 8 * isum8(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    }
}

/* Rows r and r + 1 of block b side by side (row r in the low half, row r + 1 in the high)
 * against x's halves (xlo: elements 0..15 in both halves, xhi: 16..31): each int16 lane
 * adds a low-nibble pair's products to a high-nibble pair's, within 2 * 2 * 15 * 127. */
static inline __m256i q4dot_rows2(const char *w, size_t ldw, int r, size_t b, __m256i xlo,
                                  __m256i xhi)
{
    const __m128i *p0 = (const __m128i *)q4_block(w, ldw, r, b)->qs;
    const __m128i *p1 = (const __m128i *)q4_block(w, ldw, r + 1, b)->qs;
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(p0)),
                                        _mm_loadu_si128(p1), 1);
    __m256i m = _mm256_set1_epi8(15);
    __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(v, m), xlo);
    __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m), xhi);
    return _mm256_add_epi16(lo, hi);
}

/* The scales of block b of rows 0, 2, 4, 6, 1, 3, 5, 7: the lane order of q4_rows8. */
static inline __m256 q4_scales8(const char *w, size_t ldw, size_t b)
{
    __m128i h = _mm_setzero_si128();
    const size_t bb = sizeof(mipr_block_q4_0);
#define D_INSERT(lane, r) h = _mm_insert_epi16(h, block_d(w, ldw, bb, r, b), lane)
    D_INSERT(0, 0); D_INSERT(1, 2); D_INSERT(2, 4); D_INSERT(3, 6);
    D_INSERT(4, 1); D_INSERT(5, 3); D_INSERT(6, 5); D_INSERT(7, 7);
#undef D_INSERT
    return _mm256_cvtph_ps(h);
}

/* y[r] += W[r] . x over nb blocks for 8, 4 and 1 rows, as q8_rows8/4/1 do (pf: the same
 * prefetch of eight later rows). Eight rows: two rows per vector, so two levels of int16
 * pairwise adds (sums of 16 products, within 16 * 15 * 127 < 2^15) and one madd reduce four
 * vectors to the eight block sums, in lanes 0, 2, 4, 6, 1, 3, 5, 7; the scales are loaded
 * in that order and the sums put back in row order once, at the end. */
static void q4_rows8(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, const int32_t *xs,
                     size_t nb, const char *pf)
{
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256 acc = _mm256_permutevar8x32_ps(_mm256_loadu_ps(y), order);
    for (size_t b = 0; b < nb; b++) {
        __m256i xlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)xq[b].qs));
        __m256i xhi =
            _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(xq[b].qs + 16)));
        if (pf)
            for (size_t l = 0; l < 8 * sizeof(mipr_block_q4_0); l += 64)
                _mm_prefetch(pf + (b * 8 * sizeof(mipr_block_q4_0) + l), _MM_HINT_T0);
        __m256i s01 = q4dot_rows2(w, ldw, 0, b, xlo, xhi);
        __m256i s23 = q4dot_rows2(w, ldw, 2, b, xlo, xhi);
        __m256i s45 = q4dot_rows2(w, ldw, 4, b, xlo, xhi);
        __m256i s67 = q4dot_rows2(w, ldw, 6, b, xlo, xhi);
        __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(s01, s23), _mm256_hadd_epi16(s45, s67));
        __m256i is = _mm256_madd_epi16(h, _mm256_set1_epi16(1));
        is = _mm256_sub_epi32(is, _mm256_set1_epi32(xs[b]));
        __m256 p = _mm256_mul_ps(q4_scales8(w, ldw, b), _mm256_set1_ps(xq[b].d));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(p, _mm256_cvtepi32_ps(is)));
    }
    /* lane k holds row order[k]; back through the inverse permutation */
    __m256i inverse = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_ps(y, _mm256_permutevar8x32_ps(acc, inverse));
}

static void q4_rows4(float *y, const char *w, size_t ldw, const mipr_xq8 *xq, const int32_t *xs,
                     size_t nb)
{
    __m128 acc = _mm_loadu_ps(y);
    for (size_t b = 0; b < nb; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].qs), s[4];
        for (int r = 0; r < 4; r++)
            s[r] = q4dot_epi32(q4_block(w, ldw, r, b), x);
        __m128i is = _mm_sub_epi32(isum4x4(s), _mm_set1_epi32(xs[b]));
        __m128 dw = scales4(w, ldw, sizeof(mipr_block_q4_0), b);
        __m128 p = _mm_mul_ps(dw, _mm_set1_ps(xq[b].d));
        acc = _mm_add_ps(acc, _mm_mul_ps(p, _mm_cvtepi32_ps(is)));
    }
    _mm_storeu_ps(y, acc);
}

static void q4_rows1(float *y, const char *w, const mipr_xq8 *xq, const int32_t *xs, size_t nb)
{
    float acc = *y;
    for (size_t b = 0; b < nb; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)xq[b].qs);
        const mipr_block_q4_0 *blk = q4_block(w, 0, 0, b);
        float p = _cvtsh_ss(blk->d) * xq[b].d;
        acc += p * (float)(isum8(q4dot_epi32(blk, x)) - xs[b]);
    }
    *y = acc;
}

/* All rows over tokens [0, n) of a quantized chunk, blocked as q8_chunk. */
static void q4_chunk(float *y, size_t ldy, const char *w, size_t ldw, const mipr_xq8 *xq,
                     const int32_t *xs, size_t n, size_t nb, size_t rows)
{
    size_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        const char *pf = r + 24 <= rows && nb * sizeof(mipr_block_q4_0) == ldw
                             ? w + (r + 16) * ldw : NULL;
        for (size_t t = 0; t < n; t++)
            q4_rows8(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, xs + t * nb, nb,
                     t ? NULL : pf);
    }
    for (; r + 4 <= rows; r += 4)
        for (size_t t = 0; t < n; t++)
            q4_rows4(y + t * ldy + r, w + r * ldw, ldw, xq + t * nb, xs + t * nb, nb);
    for (; r < rows; r++)
        for (size_t t = 0; t < n; t++)
            q4_rows1(y + t * ldy + r, w + r * ldw, xq + t * nb, xs + t * nb, nb);
}

/* Quantized tokens kept on the stack: 2048 blocks (80 KiB with Q4_0's sums), i.e. 113
 * tokens of 576 columns or 8 of a full 8192-column chunk. */
#define XQ8_STACK_BLOCKS 2048

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
    const char *p = (const char *)((const uint16_t *)w + row * cols);
    size_t i = 0;
    for (; i + 8 <= cols; i += 8)
        _mm256_storeu_ps(out + i, w8_f16(p, i));
    if (i < cols)
        _mm256_maskstore_ps(out + i, tail_mask(cols - i), w8t_f16(p, i, cols - i));
}

static void row_bf16(float *out, const void *w, size_t row, size_t cols)
{
    const char *p = (const char *)((const uint16_t *)w + row * cols);
    size_t i = 0;
    for (; i + 8 <= cols; i += 8)
        _mm256_storeu_ps(out + i, w8_bf16(p, i));
    if (i < cols)
        _mm256_maskstore_ps(out + i, tail_mask(cols - i), w8t_bf16(p, i, cols - i));
}

/* Block b of a Q8_0 or Q4_0 row as 32 floats. */
static void q8_block_f32(float *out, const char *p, size_t b)
{
    __m256 d = q8_scale(p, b);
    for (size_t j = 0; j < MIPR_QK8_0; j += 8)
        _mm256_storeu_ps(out + j, w8_q8(p, b, j, d));
}

static void q4_block_f32(float *out, const char *p, size_t b)
{
    const mipr_block_q4_0 *blk = (const mipr_block_q4_0 *)p + b;
    __m256 d = _mm256_set1_ps(_cvtsh_ss(blk->d));
    __m256i q = _mm256_sub_epi8(q4_unpack(blk), _mm256_set1_epi8(8));
    __m128i h[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
    for (int k = 0; k < 4; k++) {
        __m128i e = k & 1 ? _mm_srli_si128(h[k / 2], 8) : h[k / 2];
        __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(e));
        _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(v, d));
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

static float dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { /* four chains hide the FMA latency */
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* Multiply then add, not fused: the result is bit-identical to the generic twin. */
static void axpy_avx2(float *y, float a, const float *x, size_t n)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
                                              _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_add_ps(_mm256_maskload_ps(y + i, m),
                                 _mm256_mul_ps(va, _mm256_maskload_ps(x + i, m)));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

/* out = w * (s * x), the generic twin's order. */
static void scale_mul_avx2(float *out, const float *x, const float *w, size_t n, float s)
{
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(w + i),
                                                _mm256_mul_ps(vs, _mm256_loadu_ps(x + i))));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(w + i, m),
                                 _mm256_mul_ps(vs, _mm256_maskload_ps(x + i, m)));
        _mm256_maskstore_ps(out + i, m, v);
    }
}

static void rmsnorm_avx2(float *out, const float *x, const float *w, size_t n, float eps)
{
    float ss = dot_avx2(x, x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    scale_mul_avx2(out, x, w, n, ss);
}

/* exp(x) to within 2 ulp (measured max 1 ulp over [-87, 88]; tests/unit/test_kernels.c checks
 * it through swiglu and softmax). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and
 * Cephes' degree-5 polynomial for e^r. Results below 2^-126 flush to 0 (absolute error
 * < 1.2e-38), above FLT_MAX give +inf, NaN stays NaN. */
static inline __m256 exp_avx2(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.72283935546875f), lo = _mm256_set1_ps(-87.33654022216797f);
    const __m256 shift = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23: rounds to an integer */
    __m256 big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, x)); /* NaN passes through (2nd operand) */
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), shift);
    __m256 n = _mm256_sub_ps(t, shift);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n as 2 * 2^(n-1): n may be 128 just below FLT_MAX; n = -126 gives 0 */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126)), 23);
    __m256 y = _mm256_mul_ps(_mm256_add_ps(p, p), _mm256_castsi256_ps(e));
    return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), big);
}

static float max_avx2(const float *x, size_t n)
{
    float m = x[0];
    size_t i = 0;
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        float t[8];
        _mm256_storeu_ps(t, vm);
        for (int j = 0; j < 8; j++)
            m = t[j] > m ? t[j] : m;
    }
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static void softmax_avx2(float *x, size_t n)
{
    __m256 vmax = _mm256_set1_ps(max_avx2(x, n)), sum = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vmax));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum8(sum);
    __m256 vs = _mm256_set1_ps(s);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++)
        x[i] /= s;
}

/* Pairs (a, b) with (c, s): even lanes a c - b s, odd lanes b c + a s. Not fused, so every
 * value is bit-identical to the generic twin. */
static void rope_head_avx2(float *p, size_t pairs, const float *cs)
{
    size_t i = 0;
    for (; i + 4 <= pairs; i += 4) {
        __m256 v = _mm256_loadu_ps(p + 2 * i), k = _mm256_loadu_ps(cs + 2 * i);
        __m256 c = _mm256_moveldup_ps(k), s = _mm256_movehdup_ps(k);
        __m256 sw = _mm256_permute_ps(v, 0xb1); /* b a b a ... */
        _mm256_storeu_ps(p + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(v, c), _mm256_mul_ps(sw, s)));
    }
    for (; i < pairs; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        float a = p[2 * i], b = p[2 * i + 1];
        p[2 * i] = a * c - b * s;
        p[2 * i + 1] = a * s + b * c;
    }
}

static void rope_avx2(float *v, size_t n_heads, size_t head_size, size_t n_rot, const float *cs)
{
    for (size_t h = 0; h < n_heads; h++)
        rope_head_avx2(v + h * head_size, n_rot / 2, cs);
}

static inline __m256 swiglu8(__m256 g, __m256 u)
{
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_mul_ps(g, _mm256_div_ps(one, _mm256_add_ps(one, e))), u);
}

static void swiglu_avx2(float *h, const float *gate, const float *up, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(h + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = swiglu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m));
        _mm256_maskstore_ps(h + i, m, v);
    }
}

/* exp(-(xi - xj)^2 inv) for one xi against 8 xj: the MI estimator's inner loop. */
static inline __m256 gauss8(__m256 xi, __m256 xj, __m256 ninv)
{
    __m256 d = _mm256_sub_ps(xi, xj);
    return exp_avx2(_mm256_mul_ps(_mm256_mul_ps(d, d), ninv));
}

static void gauss_block_avx2(float *out, const float *xi, size_t ni, const float *xj,
                             size_t nj, float inv)
{
    __m256 ninv = _mm256_set1_ps(-inv);
    for (size_t u = 0; u < ni; u++, out += nj) {
        __m256 a = _mm256_set1_ps(xi[u]);
        size_t v = 0;
        for (; v + 8 <= nj; v += 8)
            _mm256_storeu_ps(out + v, gauss8(a, _mm256_loadu_ps(xj + v), ninv));
        if (v < nj) {
            __m256i m = tail_mask(nj - v);
            _mm256_maskstore_ps(out + v, m, gauss8(a, _mm256_maskload_ps(xj + v, m), ninv));
        }
    }
}

/* Eight positions at a time: eight accumulators, reduced together by hsum8x8. */
static void attn_scores_avx2(float *out, const float *q, const float *k, size_t stride,
                             size_t n, size_t hs, float div)
{
    __m256 vdiv = _mm256_set1_ps(div);
    size_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 acc[8];
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_setzero_ps();
        size_t i = 0;
        for (; i + 8 <= hs; i += 8) {
            __m256 vq = _mm256_loadu_ps(q + i);
            for (int r = 0; r < 8; r++)
                acc[r] = _mm256_fmadd_ps(vq, _mm256_loadu_ps(k + (t + r) * stride + i), acc[r]);
        }
        if (i < hs) {
            __m256i m = tail_mask(hs - i);
            __m256 vq = _mm256_maskload_ps(q + i, m);
            for (int r = 0; r < 8; r++)
                acc[r] = _mm256_fmadd_ps(vq, _mm256_maskload_ps(k + (t + r) * stride + i, m),
                                         acc[r]);
        }
        _mm256_storeu_ps(out + t, _mm256_div_ps(hsum8x8(acc), vdiv));
    }
    for (; t < n; t++)
        out[t] = dot_avx2(q, k + t * stride, hs) / div;
}

/* Per element the generic order (out += a v, multiply then add), so results are exact. */
static void attn_mix_avx2(float *out, const float *a, const float *v, size_t stride, size_t n,
                          size_t hs)
{
    for (size_t i = 0; i < hs; i += 8) {
        __m256i m = tail_mask(hs - i < 8 ? hs - i : 8);
        __m256 acc = _mm256_setzero_ps();
        for (size_t t = 0; t < n; t++)
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(a[t]),
                                                   _mm256_maskload_ps(v + t * stride + i, m)));
        _mm256_maskstore_ps(out + i, m, acc);
    }
}

/* Eight columns at a time over all rows, in double: each column still adds its rows in
 * order with a multiply then an add, so the sums are the generic twin's bits. */
static void colstats8_avx2(const float *x, size_t n, size_t ld, double *sum, double *sumsq,
                           double *sumabs, float *mn, float *mx)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d s[2], q[2], a[2];
    for (int h = 0; h < 2; h++)
        s[h] = q[h] = a[h] = _mm256_setzero_pd();
    __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY);
    for (size_t t = 0; t < n; t++) {
        __m256 v = _mm256_loadu_ps(x + t * ld);
        lo = _mm256_min_ps(v, lo); /* v < lo ? v : lo, like the twin */
        hi = _mm256_max_ps(v, hi);
        for (int h = 0; h < 2; h++) {
            __m256d vd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v));
            s[h] = _mm256_add_pd(s[h], vd);
            q[h] = _mm256_add_pd(q[h], _mm256_mul_pd(vd, vd));
            a[h] = _mm256_add_pd(a[h], _mm256_andnot_pd(sign, vd));
        }
    }
    for (int h = 0; h < 2; h++) {
        _mm256_storeu_pd(sum + 4 * h, s[h]);
        _mm256_storeu_pd(sumsq + 4 * h, q[h]);
        _mm256_storeu_pd(sumabs + 4 * h, a[h]);
    }
    _mm256_storeu_ps(mn, lo);
    _mm256_storeu_ps(mx, hi);
}

static void colstats_avx2(const float *x, size_t n, size_t d, size_t ld, double *sum,
                          double *sumsq, double *sumabs, float *mn, float *mx)
{
    size_t j = 0;
    for (; j + 8 <= d; j += 8)
        colstats8_avx2(x + j, n, ld, sum + j, sumsq + j, sumabs + j, mn + j, mx + j);
    mipr_colstats_generic(x + j, n, d - j, ld, sum + j, sumsq + j, sumabs + j, mn + j, mx + j);
}

const struct mipr_kernels mipr_kernels_avx2_table = {
    .isa = "avx2",
    .gemv = {gemv_f32, gemv_f16, gemv_bf16, gemv_q8_0, gemv_q4_0},
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0},
    .row_to_f32 = {row_f32, row_f16, row_bf16, row_q8_0, row_q4_0},
    .dot = dot_avx2,
    .axpy = axpy_avx2,
    .rmsnorm = rmsnorm_avx2,
    .softmax = softmax_avx2,
    .rope = rope_avx2,
    .swiglu = swiglu_avx2,
    .gauss_block = gauss_block_avx2,
    .attn_scores = attn_scores_avx2,
    .attn_mix = attn_mix_avx2,
    .colstats = colstats_avx2,
};
