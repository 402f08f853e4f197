/* A SIMD kernel table against the generic one, on the firmware (where the unit tests do not
 * run): the same pseudo-random inputs through both, compared with the tolerances of
 * tests/unit/test_kernels.c (eps = FLT_EPSILON):
 *  - gemv, gemm, dot of K terms: |simd - ref| <= 2 (K + 2) eps sum|w_i x_i|;
 *  - Q8_0, Q4_0 gemv/gemm, row_to_f32, attn_mix: the same bits;
 *  - gemv of a whole matrix == gemv row by row == gemm, bit for bit;
 *  - axpy and rope one rounding, rmsnorm 2 (n + 8) eps, softmax (2 n + 16) eps + 1e-37,
 *    swiglu 8 eps + 1e-35, attn_scores the dot bound over the divisor; NaN in softmax and
 *    swiglu stays NaN.
 * Shapes: rows 1..9 (whole groups of four and the short last group), tokens 1..3, float
 * columns 1..67 and 172, quantized columns 32..160 and the partial rows 1, 17, 33, 100, 172
 * (pruned widths: stories260K's FFN is 172 wide), one row past the 8192 columns a quantized
 * chunk holds; every pointer one element off its allocation; tiny weights whose f16 values
 * and Q8_0/Q4_0 scales are subnormal, and f16 infinities and NaN in rows. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../kernel_bounds.h"
#include "compare.h"

#define EPS FLT_EPSILON

enum { MAXR = 9, MAXT = 3, MAXK = 200, MAXB = (MAXK + 31) / 32, WIDE = 8192 + 40,
       WIDEB = (WIDE + 31) / 32 };

struct rng {
    uint32_t s;
};

static float rnd(struct rng *r, float lo, float hi)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 17;
    r->s ^= r->s << 5;
    return lo + (hi - lo) * (float)(r->s >> 8) / 16777216.0f;
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

static int quantized(enum mipr_dtype t)
{
    return t == MIPR_DT_Q8_0 || t == MIPR_DT_Q4_0;
}

struct run {
    const struct mipr_kernels *k, *g; /* the table under test, generic */
    struct rng r;
    int bad;
    unsigned long checks;
};

static void expect(struct run *c, int ok, const char *what, size_t a, size_t b, size_t n)
{
    c->checks++;
    if (!ok) {
        if (c->bad < 20) /* the first ones say enough */
            printf("FAIL %s: %s (%lu, %lu, %lu) differs from generic\n", c->k->isa, what,
                   (unsigned long)a, (unsigned long)b, (unsigned long)n);
        c->bad++;
    }
}

/* ---- matrix products ---- */

static struct {
    float f[MAXR * MAXK];       /* the values the typed data represents */
    uint16_t h[MAXR * MAXK + 1]; /* f16 or bf16, one element of offset */
    mipr_block_q8_0 q8[MAXR * MAXB + 1];
    mipr_block_q4_0 q4[MAXR * MAXB + 1];
    float x[MAXT * MAXK + 1], ref[MAXT * MAXR], got[MAXT * MAXR + 2], one[MAXR + 1];
} m;

/* rows x cols of type t in m, values in [-s, s]; returns the (unaligned) typed pointer. */
static const void *make_weights(struct run *c, enum mipr_dtype t, size_t rows, size_t cols,
                                float s)
{
    size_t n = rows * cols;
    fill(&c->r, m.f, n, -s, s);
    if (t == MIPR_DT_F16 || t == MIPR_DT_BF16) {
        for (size_t i = 0; i < n; i++) {
            m.h[i + 1] = t == MIPR_DT_F16 ? mipr_f32_to_f16(m.f[i]) : mipr_f32_to_bf16(m.f[i]);
            c->g->row_to_f32[t](m.f + i, m.h + 1 + i, 0, 1);
        }
        return m.h + 1;
    }
    if (!quantized(t))
        return m.f;
    /* one block of offset keeps the uint16 scale aligned; row by row (partial rows pad) */
    size_t rb = mipr_dtype_row_bytes(t, cols);
    char *q = t == MIPR_DT_Q8_0 ? (char *)(m.q8 + 1) : (char *)(m.q4 + 1);
    for (size_t i = 0; i < rows; i++) {
        if (t == MIPR_DT_Q8_0)
            mipr_quantize_q8_0((mipr_block_q8_0 *)(q + i * rb), m.f + i * cols, cols);
        else
            mipr_quantize_q4_0((mipr_block_q4_0 *)(q + i * rb), m.f + i * cols, cols);
        c->g->row_to_f32[t](m.f + i * cols, q, i, cols);
    }
    return q;
}

static void matmul_case(struct run *c, enum mipr_dtype t, size_t rows, size_t cols, size_t n,
                        float scale)
{
    const void *w = make_weights(c, t, rows, cols, scale);
    const float *x = m.x + 1;
    size_t rb = mipr_dtype_row_bytes(t, cols);
    fill(&c->r, m.x, n * cols + 1, -2.0f, 2.0f);
    c->g->gemm[t](m.ref, w, x, n, rows, cols);
    m.got[n * rows + 1] = 12345.0f; /* canary past the end */
    c->k->gemm[t](m.got + 1, w, x, n, rows, cols);
    expect(c, m.got[n * rows + 1] == 12345.0f, "gemm writes past its output", rows, cols, n);
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * cols;
        for (size_t j = 0; j < rows; j++) /* row by row: blocking must not matter */
            c->k->gemv[t](m.one + 1 + j, (const char *)w + j * rb, xi, 1, cols);
        float y[MAXR];
        c->k->gemv[t](y, w, xi, rows, cols);
        for (size_t j = 0; j < rows; j++) {
            float ref = m.ref[i * rows + j];
            int ok = quantized(t) ? same_bits(y[j], ref)
                                  : close_dot(y[j], ref, abs_dot(m.f + j * cols, xi, cols), cols);
            ok &= same_bits(y[j], m.one[1 + j]) && same_bits(y[j], m.got[1 + i * rows + j]);
            expect(c, ok, mipr_dtype_name(t), rows, cols, n);
        }
    }
}

static void check_matmuls(struct run *c)
{
    static const size_t partial[] = {1, 17, 33, 100, 172};
    for (int ti = 0; ti < MIPR_DT_COUNT; ti++) {
        enum mipr_dtype t = (enum mipr_dtype)ti;
        int q = quantized(t);
        for (size_t cols = q ? 32 : 1; cols <= (q ? 160u : 67u); cols += q ? 32 : 1)
            for (size_t rows = 1; rows <= MAXR; rows++)
                for (size_t n = 1; n <= MAXT; n++)
                    matmul_case(c, t, rows, cols, n, 1.0f);
        for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++)
            for (size_t rows = 1; rows <= MAXR; rows++)
                matmul_case(c, t, rows, partial[i], 1 + rows % MAXT, 1.0f);
        /* subnormal f16 weights; Q8_0 and Q4_0 scales below fp16's smallest normal */
        if (t == MIPR_DT_F16 || q)
            for (size_t rows = 1; rows <= MAXR; rows += 4)
                matmul_case(c, t, rows, 64 + rows, 2, t == MIPR_DT_F16 ? 1e-4f : 4e-3f);
    }
}

/* Rows past a chunk of quantized activations (8192 columns); the activations' buffer first
 * lends its floats to the weights. */
static void check_wide(struct run *c, enum mipr_dtype t)
{
    static float x[WIDE], ref[2], got[2];
    static mipr_block_q8_0 q[2 * WIDEB]; /* Q4_0 rows are shorter */
    size_t rb = mipr_dtype_row_bytes(t, WIDE);
    for (size_t i = 0; i < 2; i++) {
        fill(&c->r, x, WIDE, -1.0f, 1.0f);
        if (t == MIPR_DT_Q8_0)
            mipr_quantize_q8_0((mipr_block_q8_0 *)((char *)q + i * rb), x, WIDE);
        else
            mipr_quantize_q4_0((mipr_block_q4_0 *)((char *)q + i * rb), x, WIDE);
    }
    fill(&c->r, x, WIDE, -2.0f, 2.0f);
    c->g->gemv[t](ref, q, x, 2, WIDE);
    c->k->gemv[t](got, q, x, 2, WIDE);
    expect(c, !memcmp(got, ref, sizeof got), "wide gemv", 2, WIDE, 1);
}

/* f16 row conversion of every class: zeros, subnormals, normals, infinities, NaN. */
static void check_f16_classes(struct run *c)
{
    static const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x3c00, 0xfbff,
                                       0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x03ff, 0xc000};
    enum { N = sizeof special / sizeof special[0] };
    float got[N], ref[N];
    for (size_t n = 1; n <= N; n++) {
        c->k->row_to_f32[MIPR_DT_F16](got, special, 0, n);
        c->g->row_to_f32[MIPR_DT_F16](ref, special, 0, n);
        expect(c, !memcmp(got, ref, n * sizeof *got), "f16 values", n, 0, 0);
    }
}

static void check_rows(struct run *c)
{
    static float got[3 * MAXK + 2], ref[MAXK];
    for (int ti = 0; ti < MIPR_DT_COUNT; ti++) {
        enum mipr_dtype t = (enum mipr_dtype)ti;
        for (size_t cols = 1; cols <= (quantized(t) ? 100u : 67u); cols++) {
            const void *w = make_weights(c, t, 3, cols, 1.0f);
            for (size_t row = 0; row < 3; row++) {
                got[1 + cols] = 12345.0f;
                c->k->row_to_f32[t](got + 1, w, row, cols);
                c->g->row_to_f32[t](ref, w, row, cols);
                expect(c, !memcmp(got + 1, ref, cols * sizeof *ref) && got[1 + cols] == 12345.0f,
                       "row_to_f32", (size_t)t, cols, row);
            }
        }
    }
    check_f16_classes(c);
}

/* ---- vector operations ---- */

static struct {
    float a[MAXK + 1], b[MAXK + 1], y[MAXK + 2], ref[MAXK + 2], w[MAXK + 1];
} v;

static void check_vector(struct run *c, size_t n)
{
    fill(&c->r, v.a, n + 1, -1.0f, 1.0f);
    fill(&c->r, v.b, n + 1, -1.0f, 1.0f);
    float got = c->k->dot(v.a + 1, v.b + 1, n), ref = c->g->dot(v.a + 1, v.b + 1, n);
    expect(c, close_dot(got, ref, abs_dot(v.a + 1, v.b + 1, n), n), "dot", n, 0, 0);

    fill(&c->r, v.y, n + 2, -1.0f, 1.0f);
    memcpy(v.ref, v.y, (n + 2) * sizeof *v.y);
    float s = rnd(&c->r, -2.0f, 2.0f);
    c->k->axpy(v.y + 1, s, v.a + 1, n);
    c->g->axpy(v.ref + 1, s, v.a + 1, n);
    int ok = v.y[n + 1] == v.ref[n + 1];
    for (size_t i = 1; i <= n; i++)
        ok &= fabsf(v.y[i] - v.ref[i]) <= EPS * (fabsf(v.ref[i]) + fabsf(s * v.a[i]));
    expect(c, ok, "axpy", n, 0, 0);

    fill(&c->r, v.a, n + 1, -3.0f, 3.0f);
    fill(&c->r, v.w, n + 1, 0.5f, 1.5f);
    c->k->rmsnorm(v.y + 1, v.a + 1, v.w + 1, n, 1e-5f);
    c->g->rmsnorm(v.ref, v.a + 1, v.w + 1, n, 1e-5f);
    ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= fabsf(v.y[1 + i] - v.ref[i]) <= 2.0f * (float)(n + 8) * EPS * fabsf(v.ref[i]);
    expect(c, ok, "rmsnorm", n, 0, 0);
}

static void check_softmax(struct run *c, size_t n)
{
    fill(&c->r, v.y, n + 1, -30.0f, 30.0f);
    if (n > 2)
        v.y[1 + n / 2] = -INFINITY; /* a masked attention score */
    memcpy(v.ref, v.y + 1, n * sizeof *v.ref);
    c->k->softmax(v.y + 1, n);
    c->g->softmax(v.ref, n);
    int ok = n <= 2 || v.y[1 + n / 2] == 0.0f;
    for (size_t i = 0; i < n; i++)
        ok &= fabsf(v.y[1 + i] - v.ref[i]) <= (float)(2 * n + 16) * EPS * v.ref[i] + 1e-37f;
    expect(c, ok, "softmax", n, 0, 0);
    /* a NaN score makes every result NaN, as in the generic twin */
    fill(&c->r, v.y, n, -30.0f, 30.0f);
    v.y[n / 3] = NAN;
    c->k->softmax(v.y, n);
    ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isnan(v.y[i]);
    expect(c, ok, "softmax of a NaN", n, 0, 0);
}

static void check_swiglu(struct run *c, size_t n)
{
    /* gates wide enough to reach exp's overflow and underflow */
    fill(&c->r, v.a, n + 1, n % 2 ? -100.0f : -12.0f, n % 2 ? 100.0f : 12.0f);
    fill(&c->r, v.b, n + 1, -2.0f, 2.0f);
    v.y[n + 1] = 12345.0f;
    c->k->swiglu(v.y + 1, v.a + 1, v.b + 1, n);
    c->g->swiglu(v.ref, v.a + 1, v.b + 1, n);
    int ok = v.y[n + 1] == 12345.0f;
    for (size_t i = 0; i < n; i++)
        ok &= fabsf(v.y[1 + i] - v.ref[i]) <= 8.0f * EPS * fabsf(v.ref[i]) + 1e-35f;
    expect(c, ok, "swiglu", n, 0, 0);
    v.a[1 + n / 2] = NAN;
    c->k->swiglu(v.y + 1, v.a + 1, v.b + 1, n);
    expect(c, isnan(v.y[1 + n / 2]), "swiglu of a NaN", n, 0, 0);
}

/* Attention of one head of hs floats over n positions of a strided cache. */
static void check_attention(struct run *c, size_t hs)
{
    enum { N = 21, STRIDE = 70 };
    static float q[68 + 1], kv[N * STRIDE + 1], out[68 + 1], ref[68], a[N + 1];
    fill(&c->r, q, hs + 1, -1.0f, 1.0f);
    fill(&c->r, kv, N * STRIDE + 1, -1.0f, 1.0f);
    fill(&c->r, a, N + 1, 0.0f, 1.0f);
    for (size_t n = 1; n <= N; n += 4) {
        c->k->attn_scores(out, q + 1, kv + 1, STRIDE, n, hs, 2.5f);
        c->g->attn_scores(ref, q + 1, kv + 1, STRIDE, n, hs, 2.5f);
        int ok = 1;
        for (size_t t = 0; t < n; t++) {
            double mag = abs_dot(q + 1, kv + 1 + t * STRIDE, hs);
            ok &= fabs((double)out[t] - ref[t]) <= 2.0 * (hs + 2) * EPS * mag / 2.5 + 1e-30;
        }
        expect(c, ok, "attn_scores", hs, n, 0);
        c->k->attn_mix(out, a + 1, kv + 1, STRIDE, n, hs);
        c->g->attn_mix(ref, a + 1, kv + 1, STRIDE, n, hs);
        expect(c, !memcmp(out, ref, hs * sizeof *out), "attn_mix", hs, n, 0);
    }
}

/* Heads of hs floats, rotating the first n_rot of each. */
static void check_rope(struct run *c, size_t hs)
{
    static float x[3 * 68], ref[3 * 68], orig[3 * 68], cs[68];
    size_t heads = 1 + hs % 3, n_rot = hs % 2 ? hs - 1 : hs;
    fill(&c->r, x, heads * hs, -2.0f, 2.0f);
    memcpy(orig, x, heads * hs * sizeof *x);
    for (size_t i = 0; i < n_rot / 2; i++) {
        float th = rnd(&c->r, -3.14159f, 3.14159f);
        cs[2 * i] = cosf(th);
        cs[2 * i + 1] = sinf(th);
    }
    memcpy(ref, x, heads * hs * sizeof *x);
    c->k->rope(x, heads, hs, n_rot, cs);
    c->g->rope(ref, heads, hs, n_rot, cs);
    int ok = 1;
    for (size_t i = 0; i < heads * hs; i++) {
        size_t j = i % hs, mate = j + 1 < hs || j % 2 ? i - j + (j ^ 1) : i; /* pair partner */
        ok &= fabsf(x[i] - ref[i]) <= 2.0f * EPS * (fabsf(orig[i]) + fabsf(orig[mate]));
    }
    expect(c, ok, "rope", hs, heads, n_rot);
}

static void check_vectors(struct run *c)
{
    for (size_t n = 1; n <= 67; n++) {
        check_vector(c, n);
        check_softmax(c, n);
        check_swiglu(c, n);
        check_attention(c, n);
        check_rope(c, n);
    }
    check_vector(c, 172);
    check_softmax(c, MAXK);
    check_swiglu(c, 172);
}

int fw_compare_tables(const struct mipr_kernels *k, unsigned long *checks)
{
    struct run c = {k, mipr_kernels_generic(), {0x9e3779b9u}, 0, 0};
    check_matmuls(&c);
    check_wide(&c, MIPR_DT_Q8_0);
    check_wide(&c, MIPR_DT_Q4_0);
    check_rows(&c);
    check_vectors(&c);
    *checks = c.checks;
    return c.bad;
}
