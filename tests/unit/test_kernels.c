/* Every SIMD kernel of every table this CPU runs, against its generic twin; gemm against
 * gemv bit for bit; and the choice of table (MIPR_ISA).
 *
 * Tolerances (eps = FLT_EPSILON):
 *  - dot products (gemv, gemm, dot), K terms: |simd - ref| <= 2 (K + 2) eps sum|w_i x_i|.
 *    This is the textbook worst-case bound of recursive summation (K eps sum|w x|) for the
 *    reference plus the same for the SIMD order, so it never fails by chance, yet one lost or
 *    doubled term (>= sum/K on these inputs) breaks it.
 *  - Q8_0 and Q4_0 gemv/gemm: bit-exact (x quantized the same way, integer block sums, one
 *    float order). The reference itself is checked against the exact product W x in double:
 *    |ref - W x| <= sum_b (d_x[b] / 2) (1 + 2^-20) sum_{i in b} |w_i| + 2 (K + 2) eps sum|w x|,
 *    the error of rounding x to d_x q_x (half a step per element, d_x itself rounded once)
 *    plus the float sums; one wrong block scale or quantized value breaks it. A row whose
 *    length is not a multiple of 32 must give the bits of the same row zero-padded.
 *  - quantizers (weights): Q8_0 |x - deq| <= d (1/2 + 1e-5) + 127 |d - fp16(d)| with
 *    d = max|x| / 127 (half a step, the float rounding of x / d, and the scale's rounding to
 *    fp16 over up to 127 steps); Q4_0 <= |d| (1 + 1e-5) + 8 |d - fp16(d)| with d = m / -8 (one
 *    step: the value opposite m clips from 8 to 7), and m itself within 8 |d - fp16(d)|.
 *    Block ranges 2^-10..2^9 reach fp16's subnormal scales.
 *  - colstats: bit-exact (each column summed in row order, in double).
 *  - rmsnorm: |simd - ref| <= 2 (n + 8) eps |ref| (sum of squares reassociated).
 *  - softmax: |simd - ref| <= (2 n + 16) eps ref + 1e-37 (exp within 2 ulp, sum reassociated,
 *    results below 2^-126 flushed).
 *  - swiglu: |simd - ref| <= 8 eps |ref| + 1e-35 (exp within 2 ulp, one division; measured
 *    worst 4.3 eps on AVX2, 2.1 on NEON). The absolute term covers gates below -87, where
 *    silu is under 2e-36 |u|: armv7 NEON flushes such results (and every denormal) to 0.
 *  - gauss_block: |simd - ref| <= 8 eps ref + 1e-37 (exp within 2 ulp of an argument that
 *    is itself rounded once or twice).
 *  - attn_scores: the dot-product bound above, per position, then one division.
 *  - attn_mix: bit-exact (each element sums a[t] v_t[i] in t order, multiply then add).
 *  - axpy, rope, row_to_f32: one rounding at most, |d| <= eps (|terms|) — the kernels are
 *    written to be exact (no FMA), this only allows a compiler that contracts the reference.
 * Sizes 1..67 (Q8_0, Q4_0: multiples of 32 to 160 and partial rows 1, 17, 33, 100, 172) plus
 * rows wider than the SIMD gemm's 2048-float panel (quantized: than its 8192-column chunk of
 * quantized activations, with more tokens than one chunk's stack buffer holds), rows and
 * tokens 1..9, every pointer offset by one element from the allocation so nothing is aligned.
 * gemv of a whole matrix must equal gemv row by row, and gemm, bit for bit. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mipr_arch.h"
#include "kernel_bounds.h"
#include "testutil.h"

#define EPS FLT_EPSILON
#define MAXK 8256 /* past the 2048-column panel of the SIMD gemm and the 8192-column Q8_0 chunk */
#define MAXR 9
#define MAXT 9

struct rng {
    uint64_t s;
};

static float rnd(struct rng *r, float lo, float hi)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return lo + (hi - lo) * (float)((r->s >> 40) & 0xffffff) / 16777216.0f;
}

static void fill(struct rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rnd(r, lo, hi);
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- matrix products ---- */

#define MAXB ((MAXK + 31) / 32) /* blocks of the widest quantized row */

static int quantized(enum mipr_dtype t)
{
    return t == MIPR_DT_Q8_0 || t == MIPR_DT_Q4_0;
}

/* A weight matrix in every type, with its exact float values (for the error bound). */
struct weights {
    float f[MAXR * MAXK];       /* the values the typed data represents */
    uint16_t h[MAXR * MAXK + 1]; /* f16 or bf16, one element of offset */
    mipr_block_q8_0 q[MAXR * MAXB + 1];
    mipr_block_q4_0 q4[MAXR * MAXB + 1];
};

/* Fills w with type t data of rows x cols; returns the (unaligned) typed pointer. */
static const void *make_weights(struct rng *r, struct weights *w, enum mipr_dtype t,
                                size_t rows, size_t cols)
{
    size_t n = rows * cols;
    fill(r, w->f, n, -1.0f, 1.0f);
    switch (t) {
    case MIPR_DT_F16:
    case MIPR_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            w->h[i + 1] = t == MIPR_DT_F16 ? mipr_f32_to_f16(w->f[i]) : mipr_f32_to_bf16(w->f[i]);
            w->f[i] = t == MIPR_DT_F16 ? mipr_f16_to_f32(w->h[i + 1]) : mipr_bf16_to_f32(w->h[i + 1]);
        }
        return w->h + 1;
    case MIPR_DT_Q8_0:
    case MIPR_DT_Q4_0: {
        /* one block of offset keeps the uint16 scale aligned as C requires; row by row, since
         * a partial row ends in a padded block */
        size_t rb = mipr_dtype_row_bytes(t, cols);
        char *q = t == MIPR_DT_Q8_0 ? (char *)(w->q + 1) : (char *)(w->q4 + 1);
        for (size_t i = 0; i < rows; i++) {
            if (t == MIPR_DT_Q8_0)
                mipr_quantize_q8_0((mipr_block_q8_0 *)(q + i * rb), w->f + i * cols, cols);
            else
                mipr_quantize_q4_0((mipr_block_q4_0 *)(q + i * rb), w->f + i * cols, cols);
            mipr_kernels_generic()->row_to_f32[t](w->f + i * cols, q, i, cols);
        }
        return q;
    }
    default:
        return w->f;
    }
}

/* The quantized reference against the exact W . x (bound at the top of this file). */
static int close_q8(float ref, const float *w, const float *x, size_t k)
{
    double exact = 0.0, quant = 0.0;
    for (size_t b = 0; b < k; b += MIPR_QK8_0) {
        double amax = 0.0, aw = 0.0;
        for (size_t i = b; i < b + MIPR_QK8_0 && i < k; i++) {
            exact += (double)w[i] * x[i];
            amax = fmax(amax, fabs(x[i]));
            aw += fabs(w[i]);
        }
        quant += amax / 127.0 / 2.0 * (1.0 + 0x1p-20) * aw;
    }
    return fabs((double)ref - exact) <= quant + 2.0 * (double)(k + 2) * EPS * abs_dot(w, x, k);
}

/* One (type, rows, cols, tokens) case: gemv and gemm against generic, gemm == gemv. */
static void check_matmul_case(const struct mipr_kernels *k, enum mipr_dtype t, struct rng *r,
                              size_t rows, size_t cols, size_t n)
{
    static struct weights w;
    static float xs[MAXT * MAXK + 1];
    float ref[MAXT * MAXR], yv[MAXR + 1], ym[MAXT * MAXR + 2];
    const float *x = xs + 1;
    const void *wt = make_weights(r, &w, t, rows, cols);
    fill(r, xs, n * cols + 1, -2.0f, 2.0f);
    mipr_kernels_generic()->gemm[t](ref, wt, x, n, rows, cols);
    ym[n * rows + 1] = 12345.0f; /* canary past the end */
    k->gemm[t](ym + 1, wt, x, n, rows, cols);
    CHECK(ym[n * rows + 1] == 12345.0f);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        /* row by row first: the result must not depend on how rows are blocked */
        size_t row_bytes = mipr_dtype_row_bytes(t, cols);
        for (size_t j = 0; j < rows; j++)
            k->gemv[t](yv + 1 + j, (const char *)wt + j * row_bytes, x + i * cols, 1, cols);
        float one[MAXR];
        memcpy(one, yv + 1, rows * sizeof *one);
        k->gemv[t](yv + 1, wt, x + i * cols, rows, cols);
        bad += memcmp(one, yv + 1, rows * sizeof *one) != 0;
        for (size_t j = 0; j < rows; j++) {
            double ad = abs_dot(w.f + j * cols, x + i * cols, cols);
            if (quantized(t))
                bad += !same_bits(yv[1 + j], ref[i * rows + j]) +
                       !close_q8(ref[i * rows + j], w.f + j * cols, x + i * cols, cols);
            else
                bad += !close_dot(yv[1 + j], ref[i * rows + j], ad, cols);
            bad += !same_bits(yv[1 + j], ym[1 + i * rows + j]);
        }
    }
    if (bad)
        fprintf(stderr, "%s %s rows=%zu cols=%zu n=%zu: %d mismatches\n", k->isa,
                mipr_dtype_name(t), rows, cols, n, bad);
    CHECK(bad == 0);
}

/* Partial quantized rows (ending in a padded block) against the same rows zero-padded to
 * whole blocks, in the generic table: the definition the SIMD tables are then held to. */
static void check_partial_is_padded(enum mipr_dtype t, struct rng *r, size_t rows, size_t cols)
{
    static struct weights w;
    static float x[MAXT * MAXK], xp[MAXT * MAXK];
    float y[MAXT * MAXR], yp[MAXT * MAXR];
    size_t padded = (cols + 31) / 32 * 32, n = 3;
    const void *wt = make_weights(r, &w, t, rows, cols); /* same bytes as `padded` columns */
    fill(r, x, n * cols, -2.0f, 2.0f);
    memset(xp, 0, n * padded * sizeof *xp);
    for (size_t i = 0; i < n; i++)
        memcpy(xp + i * padded, x + i * cols, cols * sizeof *x);
    mipr_kernels_generic()->gemm[t](y, wt, x, n, rows, cols);
    mipr_kernels_generic()->gemm[t](yp, wt, xp, n, rows, padded);
    CHECK(mipr_dtype_row_bytes(t, cols) == mipr_dtype_row_bytes(t, padded));
    CHECK(memcmp(y, yp, n * rows * sizeof *y) == 0);
}

static void check_matmul(const struct mipr_kernels *k, struct rng *r)
{
    static const size_t partial[] = {1, 17, 33, 100, 172};
    for (int t = 0; t < MIPR_DT_COUNT; t++) {
        int q = quantized((enum mipr_dtype)t);
        size_t step = q ? MIPR_QK8_0 : 1;
        size_t kmax = q ? 5 * MIPR_QK8_0 : 67;
        for (size_t cols = step; cols <= kmax; cols += step)
            for (size_t rows = 1; rows <= MAXR; rows++)
                for (size_t n = 1; n <= MAXT; n++)
                    check_matmul_case(k, (enum mipr_dtype)t, r, rows, cols, n);
        for (size_t i = 0; q && i < sizeof partial / sizeof partial[0]; i++)
            for (size_t rows = 1; rows <= MAXR; rows++)
                for (size_t n = 1; n <= MAXT; n += 2)
                    check_matmul_case(k, (enum mipr_dtype)t, r, rows, partial[i], n);
        /* rows wider than the gemm's float panel take its other path */
        size_t wide = q ? 65 * MIPR_QK8_0 : 2083;
        check_matmul_case(k, (enum mipr_dtype)t, r, 9, wide, 7);
        check_matmul_case(k, (enum mipr_dtype)t, r, 5, wide - step, 4);
        if (!q)
            continue;
        check_matmul_case(k, (enum mipr_dtype)t, r, 9, wide + 5, 3);
        /* past one chunk of quantized activations, with tokens in two stack groups */
        check_matmul_case(k, (enum mipr_dtype)t, r, 9, MAXK, MAXT);
        check_matmul_case(k, (enum mipr_dtype)t, r, 3, 8192, 2);
        check_matmul_case(k, (enum mipr_dtype)t, r, 9, MAXK - 7, MAXT);
    }
}

/* row_to_f32 is exact for every type. */
static void check_rows(const struct mipr_kernels *k, struct rng *r)
{
    static struct weights w;
    static float got[3 * MAXK + 1], ref[3 * MAXK];
    for (int t = 0; t < MIPR_DT_COUNT; t++) {
        size_t kmax = quantized((enum mipr_dtype)t) ? 5 * MIPR_QK8_0 : 67;
        for (size_t cols = 1; cols <= kmax; cols++) {
            const void *wt = make_weights(r, &w, (enum mipr_dtype)t, 3, cols);
            int bad = 0;
            for (size_t row = 0; row < 3; row++) {
                got[1 + cols] = 12345.0f; /* canary: a partial block writes only its part */
                k->row_to_f32[t](got + 1, wt, row, cols);
                mipr_kernels_generic()->row_to_f32[t](ref, wt, row, cols);
                for (size_t i = 0; i < cols; i++)
                    bad += !same_bits(got[1 + i], ref[i]);
                bad += got[1 + cols] != 12345.0f;
            }
            CHECK(bad == 0);
        }
    }
}

/* ---- quantizers (table-independent) ---- */

/* ggml's block_q4_0 layout on a block whose scale is exactly 1: x = -8..7 then 7..-8, so
 * element j < 16 is nibble j (low) and element 16 + j is 15 - j (high). */
static void check_q4_layout(void)
{
    float x[32];
    mipr_block_q4_0 b;
    for (int j = 0; j < 16; j++) {
        x[j] = (float)(j - 8);
        x[16 + j] = (float)(7 - j);
    }
    mipr_quantize_q4_0(&b, x, 32);
    CHECK(sizeof(mipr_block_q4_0) == 18 && b.d == 0x3c00); /* fp16 1.0: d = -8 / -8 */
    int bad = 0;
    for (int j = 0; j < 16; j++)
        bad += b.qs[j] != (uint8_t)(j | (15 - j) << 4);
    CHECK(bad == 0);
    float back[32];
    mipr_kernels_generic()->row_to_f32[MIPR_DT_Q4_0](back, &b, 0, 32);
    CHECK(memcmp(back, x, sizeof x) == 0);
}

/* Round trips within the bounds at the top of this file, over blocks of different ranges,
 * all-zero blocks and ties of the largest magnitude. */
static void check_roundtrip(enum mipr_dtype t, struct rng *r)
{
    enum { N = 32 * 40 };
    static float x[N], back[N];
    static mipr_block_q8_0 q8[N / 32];
    static mipr_block_q4_0 q4[N / 32];
    for (int b = 0; b < N / 32; b++) {
        float s = ldexpf(1.0f, b % 20 - 10);
        fill(r, x + 32 * b, 32, -s, s);
    }
    memset(x + 64, 0, 32 * sizeof *x);                 /* a zero block */
    x[100] = -1.5f, x[101] = 1.5f;                     /* a tie of magnitude in block 3 */
    const void *q = t == MIPR_DT_Q8_0 ? (const void *)q8 : (const void *)q4;
    if (t == MIPR_DT_Q8_0)
        mipr_quantize_q8_0(q8, x, N);
    else
        mipr_quantize_q4_0(q4, x, N);
    mipr_kernels_generic()->row_to_f32[t](back, q, 0, N);
    int bad = 0;
    for (int b = 0; b < N / 32; b++) {
        const float *xb = x + 32 * b, *yb = back + 32 * b;
        float m = 0.0f;
        for (int i = 0; i < 32; i++)
            m = fabsf(xb[i]) > fabsf(m) ? xb[i] : m;
        float d = t == MIPR_DT_Q8_0 ? fabsf(m) / 127.0f : fabsf(m) / 8.0f;
        double dd = fabs((double)mipr_f16_to_f32(mipr_f32_to_f16(d)) - d); /* fp16 rounding */
        double bound = t == MIPR_DT_Q8_0 ? d * (0.5 + 1e-5) + 127.0 * dd
                                         : d * (1.0 + 1e-5) + 8.0 * dd;
        for (int i = 0; i < 32; i++) {
            bad += !(fabs((double)yb[i] - xb[i]) <= bound);
            if (t == MIPR_DT_Q4_0 && xb[i] == m) /* the largest is -8 steps: only d rounds */
                bad += !(fabs((double)yb[i] - m) <= 8.0 * dd);
        }
    }
    CHECK(bad == 0);
    /* Q4_0: the first of the tie sets d = -1.5 / -8, the other clips to 7 steps */
    CHECK(t == MIPR_DT_Q8_0 || (back[100] == -1.5f && back[101] == 1.3125f));
}

/* A partial row quantizes as the same row zero-padded; sizes round up to whole blocks. */
static void check_partial_quantize(struct rng *r)
{
    static const size_t ns[] = {1, 17, 31, 33, 100, 172};
    float x[192], xp[192];
    mipr_block_q8_0 a8[6], b8[6];
    mipr_block_q4_0 a4[6], b4[6];
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i], nb = (n + 31) / 32;
        fill(r, x, n, -3.0f, 3.0f);
        memset(xp, 0, sizeof xp);
        memcpy(xp, x, n * sizeof *x);
        mipr_quantize_q8_0(a8, x, n);
        mipr_quantize_q8_0(b8, xp, nb * 32);
        mipr_quantize_q4_0(a4, x, n);
        mipr_quantize_q4_0(b4, xp, nb * 32);
        CHECK(memcmp(a8, b8, nb * sizeof *a8) == 0 && memcmp(a4, b4, nb * sizeof *a4) == 0);
        CHECK(mipr_dtype_row_bytes(MIPR_DT_Q8_0, n) == nb * 34);
        CHECK(mipr_dtype_row_bytes(MIPR_DT_Q4_0, n) == nb * 18);
    }
    CHECK(mipr_dtype_row_bytes(MIPR_DT_Q8_0, 0) == 0 && mipr_dtype_row_bytes(MIPR_DT_Q4_0, 0) == 0);
    CHECK(mipr_dtype_row_bytes(MIPR_DT_COUNT, 64) == 0);
    CHECK(mipr_dtype_block_size(MIPR_DT_Q4_0) == 32 && mipr_dtype_block_size(MIPR_DT_Q8_0) == 32);
    CHECK(mipr_dtype_block_size(MIPR_DT_F16) == 1 && mipr_dtype_block_size(MIPR_DT_COUNT) == 0);
    CHECK(strcmp(mipr_dtype_name(MIPR_DT_Q4_0), "q4_0") == 0);
}

static void check_quantizers(void)
{
    struct rng r = {0x2545f4914f6cdd1du};
    int before = mipr_test_failures;
    check_q4_layout();
    check_roundtrip(MIPR_DT_Q8_0, &r);
    check_roundtrip(MIPR_DT_Q4_0, &r);
    check_partial_quantize(&r);
    static const size_t cols[] = {1, 17, 33, 100, 172};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        check_partial_is_padded(MIPR_DT_Q8_0, &r, 5, cols[i]);
        check_partial_is_padded(MIPR_DT_Q4_0, &r, 9, cols[i]);
    }
    check_partial_is_padded(MIPR_DT_Q4_0, &r, 2, 8192 + 40); /* past one activation chunk */
    printf("quantizers %s\n", mipr_test_failures == before ? "ok" : "FAILED");
}

/* ---- vector operations ---- */

static const size_t big_sizes[] = {255, 1024, 4099};

/* Calls f for n = 1..67 and a few large sizes. */
static void for_sizes(const struct mipr_kernels *k, struct rng *r,
                      void (*f)(const struct mipr_kernels *, struct rng *, size_t))
{
    for (size_t n = 1; n <= 67; n++)
        f(k, r, n);
    for (size_t i = 0; i < sizeof big_sizes / sizeof big_sizes[0]; i++)
        f(k, r, big_sizes[i]);
}

#define VMAX 4100

static void check_dot(const struct mipr_kernels *k, struct rng *r, size_t n)
{
    static float a[VMAX + 1], b[VMAX + 1];
    fill(r, a, n + 1, -1.0f, 1.0f);
    fill(r, b, n + 1, -1.0f, 1.0f);
    float got = k->dot(a + 1, b + 1, n), ref = mipr_kernels_generic()->dot(a + 1, b + 1, n);
    CHECK(close_dot(got, ref, abs_dot(a + 1, b + 1, n), n));
}

static void check_axpy(const struct mipr_kernels *k, struct rng *r, size_t n)
{
    static float x[VMAX + 1], y[VMAX + 2], ref[VMAX + 2];
    fill(r, x, n + 1, -1.0f, 1.0f);
    fill(r, y, n + 2, -1.0f, 1.0f);
    memcpy(ref, y, (n + 2) * sizeof *y);
    float a = rnd(r, -2.0f, 2.0f);
    k->axpy(y + 1, a, x + 1, n);
    mipr_kernels_generic()->axpy(ref + 1, a, x + 1, n);
    int bad = y[n + 1] != ref[n + 1];
    for (size_t i = 1; i <= n; i++)
        bad += fabsf(y[i] - ref[i]) > EPS * (fabsf(ref[i]) + fabsf(a * x[i]));
    CHECK(bad == 0);
}

static void check_rmsnorm(const struct mipr_kernels *k, struct rng *r, size_t n)
{
    static float x[VMAX + 1], w[VMAX + 1], out[VMAX + 1], ref[VMAX];
    fill(r, x, n + 1, -3.0f, 3.0f);
    fill(r, w, n + 1, 0.5f, 1.5f);
    k->rmsnorm(out + 1, x + 1, w + 1, n, 1e-5f);
    mipr_kernels_generic()->rmsnorm(ref, x + 1, w + 1, n, 1e-5f);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += fabsf(out[1 + i] - ref[i]) > 2.0f * (float)(n + 8) * EPS * fabsf(ref[i]);
    CHECK(bad == 0);
}

static void check_softmax(const struct mipr_kernels *k, struct rng *r, size_t n)
{
    static float x[VMAX + 1], ref[VMAX];
    fill(r, x, n + 1, -30.0f, 30.0f);
    if (n > 2)
        x[1 + n / 2] = -INFINITY; /* a masked attention score */
    memcpy(ref, x + 1, n * sizeof *ref);
    k->softmax(x + 1, n);
    mipr_kernels_generic()->softmax(ref, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !(fabsf(x[1 + i] - ref[i]) <= (float)(2 * n + 16) * EPS * ref[i] + 1e-37f);
    if (n > 2)
        bad += x[1 + n / 2] != 0.0f;
    CHECK(bad == 0);
}

static void check_swiglu(const struct mipr_kernels *k, struct rng *r, size_t n)
{
    static float g[VMAX + 1], u[VMAX + 1], h[VMAX + 2], ref[VMAX];
    /* gates wide enough to reach exp's overflow and underflow */
    fill(r, g, n + 1, n % 2 ? -100.0f : -12.0f, n % 2 ? 100.0f : 12.0f);
    fill(r, u, n + 1, -2.0f, 2.0f);
    h[n + 1] = 12345.0f;
    k->swiglu(h + 1, g + 1, u + 1, n);
    mipr_kernels_generic()->swiglu(ref, g + 1, u + 1, n);
    int bad = h[n + 1] != 12345.0f;
    for (size_t i = 0; i < n; i++)
        bad += !(fabsf(h[1 + i] - ref[i]) <= 8.0f * EPS * fabsf(ref[i]) + 1e-35f);
    CHECK(bad == 0);
}

/* One ni x nj block of the MI estimator's kernel matrix. */
static void check_gauss(const struct mipr_kernels *k, struct rng *r, size_t n)
{
    static float xi[VMAX + 1], xj[VMAX + 1], out[8 * VMAX + 1], ref[8 * VMAX];
    size_t ni = 1 + n % 8;
    fill(r, xi, ni + 1, -3.0f, 3.0f);
    fill(r, xj, n + 1, -3.0f, 3.0f);
    float inv = rnd(r, 0.1f, 30.0f);
    out[ni * n] = 12345.0f;
    k->gauss_block(out, xi + 1, ni, xj + 1, n, inv);
    mipr_kernels_generic()->gauss_block(ref, xi + 1, ni, xj + 1, n, inv);
    int bad = out[ni * n] != 12345.0f;
    for (size_t i = 0; i < ni * n; i++)
        bad += !(fabsf(out[i] - ref[i]) <= 8.0f * EPS * ref[i] + 1e-37f);
    CHECK(bad == 0);
}

/* Attention of one head of hs floats over n positions of a strided cache. */
static void check_attn(const struct mipr_kernels *k, struct rng *r, size_t hs)
{
    enum { N = 21, STRIDE = 70 };
    static float q[68 + 1], kv[N * STRIDE + 1], out[68 + 1], ref[68], a[N + 1];
    fill(r, q, hs + 1, -1.0f, 1.0f);
    fill(r, kv, N * STRIDE + 1, -1.0f, 1.0f);
    fill(r, a, N + 1, 0.0f, 1.0f);
    for (size_t n = 1; n <= N; n += 4) {
        k->attn_scores(out, q + 1, kv + 1, STRIDE, n, hs, 2.5f);
        mipr_kernels_generic()->attn_scores(ref, q + 1, kv + 1, STRIDE, n, hs, 2.5f);
        int bad = 0;
        for (size_t t = 0; t < n; t++) {
            double mag = 0.0;
            for (size_t i = 0; i < hs; i++)
                mag += fabs((double)q[1 + i] * kv[1 + t * STRIDE + i]);
            bad += !(fabs((double)out[t] - ref[t]) <= 2.0 * (hs + 2) * EPS * mag / 2.5 + 1e-30);
        }
        k->attn_mix(out, a + 1, kv + 1, STRIDE, n, hs);
        mipr_kernels_generic()->attn_mix(ref, a + 1, kv + 1, STRIDE, n, hs);
        bad += memcmp(out, ref, hs * sizeof *out) != 0;
        CHECK(bad == 0);
    }
}

/* Heads of head_size floats, rotating the first n_rot of each. */
static void check_rope(const struct mipr_kernels *k, struct rng *r, size_t hs)
{
    static float v[3 * 68 + 1], ref[3 * 68], cs[68 + 1];
    size_t heads = 1 + hs % 3, n_rot = hs % 2 ? hs - 1 : hs; /* odd sizes leave a tail */
    if (n_rot == 0)
        return;
    fill(r, v, heads * hs + 1, -2.0f, 2.0f);
    for (size_t i = 0; i < n_rot / 2; i++) {
        float th = rnd(r, -3.14159f, 3.14159f);
        cs[1 + 2 * i] = cosf(th);
        cs[2 + 2 * i] = sinf(th);
    }
    memcpy(ref, v + 1, heads * hs * sizeof *ref);
    float orig[3 * 68] = {0};
    memcpy(orig, ref, sizeof orig);
    k->rope(v + 1, heads, hs, n_rot, cs + 1);
    mipr_kernels_generic()->rope(ref, heads, hs, n_rot, cs + 1);
    int bad = 0;
    for (size_t i = 0; i < heads * hs; i++) {
        size_t j = i % hs, mate = j + 1 < hs || j % 2 ? i - j + (j ^ 1) : i; /* pair partner */
        float bound = 2.0f * EPS * (fabsf(orig[i]) + fabsf(orig[mate]));
        bad += fabsf(v[1 + i] - ref[i]) > bound;
    }
    CHECK(bad == 0);
}

static int same_double(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* One column's statistics recomputed directly (NaN skipped by min and max only). */
static int colstats_direct(const float *x, size_t n, size_t ld, double sum, double sumsq,
                           double sumabs, float mn, float mx)
{
    double s = 0.0, q = 0.0, a = 0.0;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t t = 0; t < n; t++) {
        double v = x[t * ld];
        s += v;
        q += v * v;
        a += fabs(v);
        lo = isnan(x[t * ld]) ? lo : fminf(lo, x[t * ld]);
        hi = isnan(x[t * ld]) ? hi : fmaxf(hi, x[t * ld]);
    }
    return same_double(s, sum) && same_double(q, sumsq) && same_double(a, sumabs) &&
           lo == mn && hi == mx;
}

/* An n x d block with rows ld = d + 3 apart, ties, zeros and one NaN included. */
static void check_colstats(const struct mipr_kernels *k, struct rng *r, size_t d)
{
    enum { N = 70 };
    static float x[N * (VMAX + 3) + 1];
    static double s[2][3][VMAX + 1];
    static float m[2][2][VMAX + 1];
    size_t ld = d + 3;
    for (size_t n = 0; n <= N; n += n < 3 ? 1 : 33) {
        fill(r, x, n * ld + 1, -4.0f, 4.0f);
        if (n > 2) {
            x[1 + ld + d / 2] = 0.0f;
            x[1 + 2 * ld] = NAN; /* skipped by min and max, poisons the sums */
            x[1 + ld] = x[1];
        }
        for (int v = 0; v < 2; v++) {
            const struct mipr_kernels *kk = v ? mipr_kernels_generic() : k;
            s[v][0][d] = 12345.0; /* canary past the end */
            kk->colstats(x + 1, n, d, ld, s[v][0], s[v][1], s[v][2], m[v][0], m[v][1]);
        }
        int bad = s[0][0][d] != 12345.0;
        for (int a = 0; a < 3; a++)
            bad += memcmp(s[0][a], s[1][a], d * sizeof(double)) != 0;
        for (int a = 0; a < 2; a++)
            bad += memcmp(m[0][a], m[1][a], d * sizeof(float)) != 0;
        for (size_t j = 0; j < d; j++) /* and the reference is what it says */
            bad += !colstats_direct(x + 1 + j, n, ld, s[1][0][j], s[1][1][j], s[1][2][j],
                                    m[1][0][j], m[1][1][j]);
        CHECK(bad == 0);
    }
}

static void check_table(const struct mipr_kernels *k)
{
    struct rng r = {0x9e3779b97f4a7c15u};
    int before = mipr_test_failures;
    check_matmul(k, &r);
    check_rows(k, &r);
    for_sizes(k, &r, check_dot);
    for_sizes(k, &r, check_axpy);
    for_sizes(k, &r, check_rmsnorm);
    for_sizes(k, &r, check_softmax);
    for_sizes(k, &r, check_swiglu);
    for_sizes(k, &r, check_gauss);
    for_sizes(k, &r, check_colstats);
    for (size_t hs = 1; hs <= 67; hs++)
        check_attn(k, &r, hs);
    for (size_t hs = 1; hs <= 67; hs++)
        check_rope(k, &r, hs);
    printf("table %-8s %s\n", k->isa, mipr_test_failures == before ? "ok" : "FAILED");
}

/* ---- choice of table ---- */

static const char *expected_default(void)
{
    if (mipr_kernels_for("avx2"))
        return "avx2";
    if (mipr_kernels_for("neon"))
        return "neon";
    return "generic";
}

static void check_select_error(const char *isa, const char *msg)
{
    const struct mipr_kernels *t = NULL, *def = NULL;
    char err[160];
    CHECK(mipr_kernels_select(NULL, &def, err, sizeof err) == 0);
    CHECK(mipr_kernels_select(isa, &t, err, sizeof err) == -1);
    CHECK(t == def); /* falls back to the automatic choice */
    if (strcmp(err, msg) != 0) {
        fprintf(stderr, "MIPR_ISA=%s: got \"%s\", expected \"%s\"\n", isa, err, msg);
        CHECK(0);
    }
}

static void check_dispatch(void)
{
    const struct mipr_kernels *t = NULL;
    char err[160];
    CHECK(mipr_kernels_select("generic", &t, err, sizeof err) == 0 && t == mipr_kernels_generic());
    CHECK(mipr_kernels_select(NULL, &t, err, sizeof err) == 0);
    CHECK(strcmp(t->isa, expected_default()) == 0);
    CHECK(mipr_kernels_select("", &t, err, sizeof err) == 0);
    CHECK(strcmp(t->isa, expected_default()) == 0);
    check_select_error("bogus", "MIPR_ISA=bogus: unknown (expected generic, avx2, neon or helium)");
    check_select_error("helium", "MIPR_ISA=helium: not in this build (Armv8.1-M with MVE only)");
    CHECK(mipr_kernels_for("helium") == NULL);
    CHECK(mipr_kernels_for("bogus") == NULL);
    CHECK(mipr_kernels_for("generic") == mipr_kernels_generic());
#if defined(__x86_64__)
    check_select_error("neon", "MIPR_ISA=neon: not in this build (aarch64 and armv7 only)");
    CHECK(mipr_kernels_for("neon") == NULL);
    if (mipr_kernels_for("avx2"))
        CHECK(mipr_kernels_select("avx2", &t, err, sizeof err) == 0 && t == mipr_kernels_for("avx2"));
    else
        check_select_error("avx2", "MIPR_ISA=avx2: this CPU has no AVX2+FMA+F16C");
#elif defined(__aarch64__) || defined(__arm__)
    /* every aarch64 CPU, and qemu's default armv7 CPU, has NEON with FMA: it must be chosen */
    check_select_error("avx2", "MIPR_ISA=avx2: not in this build (x86-64 only)");
    CHECK(mipr_kernels_for("neon") != NULL);
    CHECK(strcmp(expected_default(), "neon") == 0);
#endif
    const char *env = getenv("MIPR_ISA");
    int rc = mipr_kernels_init(err, sizeof err);
    if (!env || !*env)
        CHECK(rc == 0 && strcmp(mipr_kernels()->isa, expected_default()) == 0);
    else if (rc == 0)
        CHECK(strcmp(mipr_kernels()->isa, env) == 0);
    else
        CHECK(strncmp(err, "MIPR_ISA=", 9) == 0 && mipr_kernels() != NULL);
    printf("default table %s (MIPR_ISA=%s)\n", mipr_kernels()->isa, env ? env : "");
}

/* ---- non-finite and tiny values: the rules of mipr_arch.h, the same in every table ---- */

/* Weights: a block with NaN or an infinity is d = NaN, q = 0; a block too small for a
 * normal d is zeros. */
static void check_nonfinite_weights(void)
{
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        float x[64];
        for (int j = 0; j < 64; j++)
            x[j] = (float)(j - 20) * 0.25f;
        x[37] = bad[i];
        mipr_block_q8_0 q8[2];
        mipr_block_q4_0 q4[2];
        mipr_quantize_q8_0(q8, x, 64);
        mipr_quantize_q4_0(q4, x, 64);
        CHECK(!isnan(mipr_f16_to_f32(q8[0].d)) && isnan(mipr_f16_to_f32(q8[1].d)));
        CHECK(!isnan(mipr_f16_to_f32(q4[0].d)) && isnan(mipr_f16_to_f32(q4[1].d)));
        for (int j = 0; j < 32; j++)
            CHECK(q8[1].qs[j] == 0 && (j >= 16 || q4[1].qs[j] == 0x88));
    }
    float tiny[32];
    for (int j = 0; j < 32; j++)
        tiny[j] = (j % 3 ? 1e-40f : -1e-39f); /* subnormal: 1 / d would overflow */
    mipr_block_q8_0 q;
    mipr_quantize_q8_0(&q, tiny, 32);
    CHECK(mipr_f16_to_f32(q.d) == 0.0f);
    for (int j = 0; j < 32; j++)
        CHECK(q.qs[j] == 0);
}

/* Activations: a non-finite value makes its block's products NaN, as F32 would be
 * non-finite; subnormal activations give exact zeros. Both in gemv and gemm. */
static void check_nonfinite_activations(const struct mipr_kernels *k)
{
    enum { COLS = 96, ROWS = 3 };
    static const enum mipr_dtype types[] = {MIPR_DT_Q8_0, MIPR_DT_Q4_0};
    float w[ROWS * COLS], x[2 * COLS], y[2 * ROWS];
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = (float)((i * 7) % 13 - 6) * 0.1f;
    for (size_t t = 0; t < 2; t++) {
        mipr_block_q8_0 wq8[ROWS * COLS / 32];
        mipr_block_q4_0 wq4[ROWS * COLS / 32];
        const void *wq = types[t] == MIPR_DT_Q8_0 ? (const void *)wq8 : (const void *)wq4;
        for (int r = 0; r < ROWS; r++) {
            mipr_quantize_q8_0(wq8 + r * COLS / 32, w + r * COLS, COLS);
            mipr_quantize_q4_0(wq4 + r * COLS / 32, w + r * COLS, COLS);
        }
        static const float bad[] = {NAN, INFINITY, -INFINITY};
        for (size_t b = 0; b < 3; b++) {
            for (int i = 0; i < 2 * COLS; i++)
                x[i] = (float)(i % 11 - 5) * 0.3f;
            x[COLS + 40] = bad[b]; /* token 1 only */
            k->gemm[types[t]](y, wq, x, 2, ROWS, COLS);
            for (int r = 0; r < ROWS; r++)
                CHECK(isfinite(y[r]) && isnan(y[ROWS + r]));
            k->gemv[types[t]](y, wq, x + COLS, ROWS, COLS);
            for (int r = 0; r < ROWS; r++)
                CHECK(isnan(y[r]));
        }
        for (int i = 0; i < COLS; i++)
            x[i] = i % 2 ? 1e-40f : -3e-39f;
        k->gemv[types[t]](y, wq, x, ROWS, COLS);
        for (int r = 0; r < ROWS; r++)
            CHECK(y[r] == 0.0f);
    }
}

int main(void)
{
    static const char *const isas[] = {"avx2", "neon", "helium"};
    check_dispatch();
    check_quantizers();
    check_nonfinite_weights();
    check_nonfinite_activations(mipr_kernels_generic());
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const struct mipr_kernels *k = mipr_kernels_for(isas[i]);
        if (k)
            check_nonfinite_activations(k);
        if (k)
            check_table(k);
        else
            printf("table %-8s not available here\n", isas[i]);
    }
    return mipr_test_finish("kernels");
}
