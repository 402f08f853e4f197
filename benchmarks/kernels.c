/* bench_kernels [--json FILE] [--quick]
 *
 * Throughput of every kernel table this CPU runs, single-threaded, against this machine's
 * measured peak: the multiply-add throughput of independent FMA chains (per ISA) and the
 * streaming read bandwidth of a 256 MiB buffer. Shapes are the FFN layers of SmolLM2-135M
 * (d=576, ff=1536) and Qwen2.5-0.5B (d=896, ff=4864). Best-of-N timing, CLOCK_MONOTONIC.
 * GEMM/GEMV percentages are of the best table's FMA peak; GEMV also of the read bandwidth,
 * since decode streams its weights (they cycle through a pool larger than the L3, so
 * repeated calls do not find them cached). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipr_arch.h"
#include "peak.h"

struct options {
    const char *json;
    int quick;
};

struct result {
    char op[24], table[8], dtype[8];
    size_t m, n, k;   /* tokens, rows (outputs), cols; vectors: n elements */
    double seconds;   /* per call */
    double gflops;    /* nominal: 2 m n k for products */
    double gbs;       /* bytes of weights (products) or vectors touched, per second */
};

struct report {
    double fma_peak[3]; /* GFLOP/s: scalar (generic), avx2, neon; 0 = not here */
    const char *peak_isa;
    double best_peak, read_gbs;
    struct result r[160];
    size_t count;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*bench_fn)(void *ctx);

/* Seconds per call: the best of reps runs, each repeating the call for at least min_s. */
static double best_seconds(bench_fn fn, void *ctx, int reps, double min_s)
{
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        long calls = 0;
        double t0 = now(), t;
        do {
            fn(ctx);
            calls++;
            t = now() - t0;
        } while (t < min_s);
        if (t / (double)calls < best)
            best = t / (double)calls;
    }
    return best;
}

/* ---- machine peak ---- */

typedef float (*fma_loop)(long iters, double *flops_per_iter);
typedef float (*read_loop)(const float *x, size_t n);

static volatile float g_sink; /* keeps results of timed loops alive */

static double fma_gflops(fma_loop f, int quick)
{
    double fpi = 0.0, best = 0.0;
    long iters = quick ? 2000000 : 20000000;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        g_sink = f(iters, &fpi);
        double g = fpi * (double)iters / (now() - t0) * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

static double read_gbs(read_loop f, int quick)
{
    size_t n = (quick ? 32u : 256u) << 20 >> 2; /* floats */
    float *x = malloc(n * sizeof *x);
    if (!x)
        return 0.0;
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f; /* touch every page before timing */
    double best = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        g_sink = f(x, n);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(x);
    return (double)(n * sizeof *x) / best * 1e-9;
}

/* The FMA peak of every ISA here, keeping the best of this and earlier calls: on a shared
 * or throttled core one short measurement can come out low, so main measures before and
 * after the kernels. Returns the read loop of the best ISA. */
static read_loop measure_fma(struct report *rep, int quick)
{
    read_loop rd = mipr_peak_read_scalar;
    double g = fma_gflops(mipr_peak_fma_scalar, quick);
    rep->fma_peak[0] = g > rep->fma_peak[0] ? g : rep->fma_peak[0];
    rep->peak_isa = "generic";
    rep->best_peak = rep->fma_peak[0];
#if defined(MIPR_BENCH_AVX2)
    if (mipr_kernels_for("avx2")) {
        g = fma_gflops(mipr_peak_fma_avx2, quick);
        rep->fma_peak[1] = g > rep->fma_peak[1] ? g : rep->fma_peak[1];
        rep->peak_isa = "avx2";
        rep->best_peak = rep->fma_peak[1];
        rd = mipr_peak_read_avx2;
    }
#endif
#if defined(MIPR_BENCH_NEON)
    if (mipr_kernels_for("neon")) {
        g = fma_gflops(mipr_peak_fma_neon, quick);
        rep->fma_peak[2] = g > rep->fma_peak[2] ? g : rep->fma_peak[2];
        rep->peak_isa = "neon";
        rep->best_peak = rep->fma_peak[2];
        rd = mipr_peak_read_neon;
    }
#endif
    return rd;
}

/* ---- matrix products ---- */

struct matmul {
    const struct mipr_kernels *k;
    enum mipr_dtype type;
    float *y;
    const float *x;
    const char *w;        /* copies of one weight matrix, bytes apart */
    size_t copies, bytes, next;
    size_t m, rows, cols;
};

static void run_gemm(void *p)
{
    struct matmul *c = p;
    c->k->gemm[c->type](c->y, c->w, c->x, c->m, c->rows, c->cols);
}

static void run_gemv(void *p)
{
    struct matmul *c = p;
    const char *w = c->w + c->next * c->bytes;
    c->next = (c->next + 1) % c->copies;
    c->k->gemv[c->type](c->y, w, c->x, c->rows, c->cols);
}

static void fill_random(float *x, size_t n, unsigned seed)
{
    unsigned s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
    }
}

/* copies of a rows x cols matrix of random values in type t; NULL when out of memory */
static char *make_weights(enum mipr_dtype t, size_t rows, size_t cols, size_t copies)
{
    size_t n = rows * cols, bytes = mipr_dtype_row_bytes(t, cols) * rows;
    float *f = malloc(n * sizeof *f);
    char *w = malloc(bytes * copies);
    if (!f || !w) {
        free(f);
        free(w);
        return NULL;
    }
    fill_random(f, n, (unsigned)(rows + cols));
    uint16_t *h = (uint16_t *)w;
    for (size_t i = 0; i < n && (t == MIPR_DT_F16 || t == MIPR_DT_BF16); i++)
        h[i] = t == MIPR_DT_F16 ? mipr_f32_to_f16(f[i]) : mipr_f32_to_bf16(f[i]);
    if (t == MIPR_DT_F32)
        memcpy(w, f, bytes);
    size_t rb = mipr_dtype_row_bytes(t, cols);
    for (size_t r = 0; r < rows && t == MIPR_DT_Q8_0; r++)
        mipr_quantize_q8_0((mipr_block_q8_0 *)(w + r * rb), f + r * cols, cols);
    for (size_t r = 0; r < rows && t == MIPR_DT_Q4_0; r++)
        mipr_quantize_q4_0((mipr_block_q4_0 *)(w + r * rb), f + r * cols, cols);
    for (size_t c = 1; c < copies; c++)
        memcpy(w + c * bytes, w, bytes);
    free(f);
    return w;
}

static struct result *add_result(struct report *rep, const char *op, const char *table,
                                 const char *dtype)
{
    if (rep->count == sizeof rep->r / sizeof rep->r[0])
        return NULL;
    struct result *r = &rep->r[rep->count++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->table, sizeof r->table, "%s", table);
    snprintf(r->dtype, sizeof r->dtype, "%s", dtype);
    return r;
}

static void bench_matmul(struct report *rep, const struct mipr_kernels *k, enum mipr_dtype t,
                         size_t m, size_t rows, size_t cols, int quick)
{
    size_t bytes = mipr_dtype_row_bytes(t, cols) * rows;
    /* gemv: enough copies to exceed the last-level cache, so weights come from memory */
    size_t copies = m > 1 || quick ? 1 : (64u << 20) / bytes + 1;
    struct matmul c = {k, t, malloc(m * rows * sizeof(float)), NULL, NULL, copies, bytes, 0,
                       m, rows, cols};
    float *x = malloc(m * cols * sizeof *x);
    char *w = make_weights(t, rows, cols, copies);
    struct result *r = add_result(rep, m > 1 ? "gemm" : "gemv", k->isa, mipr_dtype_name(t));
    if (c.y && x && w && r) {
        fill_random(x, m * cols, 7);
        c.x = x;
        c.w = w;
        r->m = m, r->n = rows, r->k = cols;
        r->seconds = best_seconds(m > 1 ? run_gemm : run_gemv, &c, quick ? 2 : 5,
                                  quick ? 0.02 : 0.1);
        r->gflops = 2.0 * (double)(m * rows * cols) / r->seconds * 1e-9;
        r->gbs = (double)bytes / r->seconds * 1e-9;
    }
    free(c.y);
    free(x);
    free(w);
}

static const struct {
    size_t rows, cols;
} g_shapes[] = {
    {1536, 576}, /* SmolLM2-135M FFN gate/up */
    {576, 1536}, /* SmolLM2-135M FFN down */
    {4864, 896}, /* Qwen2.5-0.5B FFN gate/up */
};

static void bench_products(struct report *rep, const struct mipr_kernels *k, int quick)
{
    /* the scalar table is ~50x slower: fewer tokens keep the run short (GFLOP/s is per flop) */
    int generic = !strcmp(k->isa, "generic");
    size_t m = generic ? 32 : quick ? 128 : 512;
    for (size_t s = 0; s < sizeof g_shapes / sizeof g_shapes[0]; s++)
        bench_matmul(rep, k, MIPR_DT_F32, m, g_shapes[s].rows, g_shapes[s].cols, quick);
    for (size_t s = 0; s < sizeof g_shapes / sizeof g_shapes[0]; s++)
        for (int t = 0; t < MIPR_DT_COUNT; t++)
            bench_matmul(rep, k, (enum mipr_dtype)t, 1, g_shapes[s].rows, g_shapes[s].cols, quick);
    for (int t = 1; t < MIPR_DT_COUNT && !generic; t++) /* the other types' gemm, one shape */
        bench_matmul(rep, k, (enum mipr_dtype)t, m, g_shapes[0].rows, g_shapes[0].cols, quick);
}

/* ---- vector operations, 4096 elements (in L1) ---- */

#define VN 4096

struct vec {
    const struct mipr_kernels *k;
    float a[VN], b[VN], c[VN], w[VN], cs[128];
};

static void run_dot(void *p)
{
    struct vec *v = p;
    g_sink = v->k->dot(v->a, v->b, VN);
}

static void run_axpy(void *p)
{
    struct vec *v = p;
    v->k->axpy(v->c, 1e-6f, v->a, VN);
}

static void run_rmsnorm(void *p)
{
    struct vec *v = p;
    v->k->rmsnorm(v->c, v->a, v->w, VN, 1e-5f);
}

static void run_softmax(void *p)
{
    struct vec *v = p;
    v->k->softmax(v->c, VN); /* its own output is valid input again */
}

static void run_swiglu(void *p)
{
    struct vec *v = p;
    v->k->swiglu(v->c, v->a, v->b, VN);
}

static void run_rope(void *p)
{
    struct vec *v = p; /* 64 heads of 64, all rotated */
    v->k->rope(v->c, VN / 64, 64, 64, v->cs);
}

static void bench_vectors(struct report *rep, const struct mipr_kernels *k, int quick)
{
    static const struct {
        const char *name;
        bench_fn fn;
        double flops, bytes; /* per element */
    } ops[] = {
        {"dot", run_dot, 2, 8},          {"axpy", run_axpy, 2, 12},
        {"rmsnorm", run_rmsnorm, 4, 12}, {"softmax", run_softmax, 0, 12},
        {"swiglu", run_swiglu, 0, 12},   {"rope", run_rope, 3, 10},
    };
    struct vec *v = malloc(sizeof *v);
    if (!v)
        return;
    v->k = k;
    fill_random(v->a, VN, 1);
    fill_random(v->b, VN, 2);
    fill_random(v->c, VN, 3);
    fill_random(v->w, VN, 4);
    fill_random(v->cs, 128, 5);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct result *r = add_result(rep, ops[i].name, k->isa, "f32");
        if (!r)
            break;
        r->n = VN;
        r->seconds = best_seconds(ops[i].fn, v, quick ? 2 : 5, quick ? 0.01 : 0.05);
        r->gflops = ops[i].flops * VN / r->seconds * 1e-9;
        r->gbs = ops[i].bytes * VN / r->seconds * 1e-9;
    }
    free(v);
}

/* ---- output ---- */

static void print_report(const struct report *rep)
{
    printf("peak (1 thread): FMA %.1f GFLOP/s (%s), scalar mul+add %.1f GFLOP/s, "
           "read bandwidth %.1f GB/s\n\n",
           rep->best_peak, rep->peak_isa, rep->fma_peak[0], rep->read_gbs);
    printf("%-8s %-8s %-5s %5s %5s %5s %10s %9s %7s %8s %7s\n", "op", "table", "type", "M",
           "N", "K", "us/call", "GFLOP/s", "%peak", "GB/s", "%bw");
    for (size_t i = 0; i < rep->count; i++) {
        const struct result *r = &rep->r[i];
        printf("%-8s %-8s %-5s %5zu %5zu %5zu %10.2f %9.2f %6.1f%% %8.2f %6.1f%%\n", r->op,
               r->table, r->dtype, r->m, r->n, r->k, r->seconds * 1e6, r->gflops,
               100.0 * r->gflops / rep->best_peak, r->gbs, 100.0 * r->gbs / rep->read_gbs);
    }
}

static int write_json(const struct report *rep, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\n  \"machine\": {\"fma_peak_gflops\": {\"scalar\": %.3f, \"avx2\": %.3f, "
               "\"neon\": %.3f}, \"best_isa\": \"%s\", \"read_bandwidth_gbs\": %.3f},\n",
            rep->fma_peak[0], rep->fma_peak[1], rep->fma_peak[2], rep->peak_isa, rep->read_gbs);
    fprintf(f, "  \"results\": [\n");
    for (size_t i = 0; i < rep->count; i++) {
        const struct result *r = &rep->r[i];
        fprintf(f,
                "    {\"op\": \"%s\", \"table\": \"%s\", \"dtype\": \"%s\", \"m\": %zu, "
                "\"n\": %zu, \"k\": %zu, \"seconds\": %.9g, \"gflops\": %.4f, "
                "\"pct_fma_peak\": %.2f, \"gbs\": %.4f, \"pct_read_bw\": %.2f}%s\n",
                r->op, r->table, r->dtype, r->m, r->n, r->k, r->seconds, r->gflops,
                100.0 * r->gflops / rep->best_peak, r->gbs, 100.0 * r->gbs / rep->read_gbs,
                i + 1 < rep->count ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            o->quick = 1;
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            o->json = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--json FILE] [--quick]\n", argv[0]);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {NULL, 0};
    char err[160];
    static struct report rep;
    if (parse_args(argc, argv, &o))
        return 2;
    if (mipr_kernels_init(err, sizeof err))
        fprintf(stderr, "bench_kernels: %s; using %s\n", err, mipr_kernels()->isa);
    rep.read_gbs = read_gbs(measure_fma(&rep, o.quick), o.quick);
    static const char *const isas[] = {"generic", "avx2", "neon"};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const struct mipr_kernels *k = mipr_kernels_for(isas[i]);
        if (!k)
            continue;
        bench_products(&rep, k, o.quick);
        bench_vectors(&rep, k, o.quick);
    }
    measure_fma(&rep, o.quick);
    print_report(&rep);
    if (o.json && write_json(&rep, o.json)) {
        fprintf(stderr, "bench_kernels: cannot write %s\n", o.json);
        return 1;
    }
    return 0;
}
