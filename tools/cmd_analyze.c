/* mipr analyze: mutual information between the FFN neurons of a calibration record. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr analyze CALIB [--alpha A] [--width RULE] [--pairs all|random:K]\n"
    "                    [--approx FRACTION] [--top K] [--layer L] [--seed S] [--threads N]\n"
    "                    [--json]\n\n"
    "Estimates the mutual information between FFN neurons from a calibration record\n"
    "(mipr calibrate) with the matrix-based Renyi alpha-entropy, and prints per layer: the\n"
    "kernel widths chosen, the distribution of normalised MI over neuron pairs, the most\n"
    "redundant pairs and the time taken. Normalised MI is I_ab / mean(I_aa, I_bb): 1 for a\n"
    "neuron and a scaled copy of it (docs/MI.md).\n\n"
    "      --alpha A         Renyi order (default 2: exact closed form, tiled over all pairs;\n"
    "                        other values use eigenvalues on at most 128 samples and need\n"
    "                        --pairs random:K)\n"
    "      --width RULE      silverman, robust, knn[:K], percentile[:P], fixed:SIGMA,\n"
    "                        tuned[:C] (default tuned: 2 x robust, docs/MI.md)\n"
    "      --pairs P         all (default) or random:K (K random pairs per layer)\n"
    "      --approx F        all pairs from a fraction F of the sample pairs (fast path; its\n"
    "                        error against the exact value is printed)\n"
    "      --top K           redundant pairs listed per layer (default 5)\n"
    "      --layer L         only layer L\n"
    "      --seed S          seed for random pairs and the approximate path (default 0)\n"
    "      --threads N       worker threads (default: one per core)\n"
    "      --json            one JSON object on stdout instead of the text report\n";

static const cli_opt opts[] = {
    {"alpha", 0, 1}, {"width", 0, 1}, {"pairs", 0, 1}, {"approx", 0, 1}, {"top", 0, 1},
    {"layer", 0, 1}, {"seed", 0, 1},  {"threads", 0, 1}, {"json", 0, 0}, {NULL, 0, 0},
};

typedef struct {
    const char *calib;
    float alpha, approx;
    mipr_width width;
    uint32_t random_pairs, top, threads;
    int64_t layer;
    uint64_t seed;
    int json;
} an_args;

static int parse_pairs(const cli_parser *p, const char *v, an_args *a)
{
    if (strcmp(v, "all") == 0) {
        a->random_pairs = 0;
        return 1;
    }
    if (strncmp(v, "random:", 7) == 0)
        return cli_u32(p, "--pairs random:K", v + 7, 1, 100000000, &a->random_pairs);
    cli_usage_error(p, "--pairs expects all or random:K, got '%s'", v);
    return 0;
}

static int parse_opt(cli_parser *p, int k, const char *v, void *ctx)
{
    an_args *a = ctx;
    uint32_t layer;
    switch (k) {
    case 0: return cli_float(p, "--alpha", v, 0.01f, 100.0f, &a->alpha);
    case 1:
        if (!mipr_width_parse(v, &a->width))
            return cli_usage_error(p, "--width: unknown rule '%s'", v), 0;
        return 1;
    case 2: return parse_pairs(p, v, a);
    case 3: return cli_float(p, "--approx", v, 1e-4f, 1.0f, &a->approx);
    case 4: return cli_u32(p, "--top", v, 0, 1000, &a->top);
    case 5:
        if (!cli_u32(p, "--layer", v, 0, MIPR_MAX_LAYERS - 1, &layer))
            return 0;
        a->layer = layer;
        return 1;
    case 6: return cli_u64(p, "--seed", v, &a->seed);
    case 7: return cli_u32(p, "--threads", v, 1, 1024, &a->threads);
    default: a->json = 1; return 1;
    }
}

static int parse(int argc, char **argv, an_args *a)
{
    cli_parser p = {argc, 1, argv, "mipr analyze", usage_text, opts};
    int rc = cli_parse(&p, &a->calib, parse_opt, a);
    if (rc >= 0)
        return rc;
    if (!a->calib)
        return cli_usage_error(&p, "missing CALIB");
    if (fabsf(a->alpha - 2.0f) > 1e-6f && !a->random_pairs)
        return cli_usage_error(&p, "--alpha other than 2 needs --pairs random:K (eigenvalues "
                               "are O(n^3) per pair)");
    return -1;
}

typedef struct {
    uint32_t a, b;
    float nmi, mi;
} pair_val;

typedef struct {
    uint32_t layer, d, n;
    double seconds;
    float sigma[3];     /* min, median, max */
    uint64_t pairs;
    float q[6], mean;   /* normalised MI: min, p10, p50, p90, p99, max */
    pair_val *top;
    uint32_t n_top;
    int approx;         /* the approximate path was measured */
    double approx_seconds, approx_mean_err, approx_max_err;
} layer_report;

static int by_nmi_desc(const void *x, const void *y)
{
    float a = ((const pair_val *)x)->nmi, b = ((const pair_val *)y)->nmi;
    return (a < b) - (a > b);
}

static int by_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Distribution and top pairs of n pair values (sorted in place). */
static int summarise(layer_report *r, pair_val *v, uint64_t n, uint32_t top)
{
    qsort(v, n, sizeof *v, by_nmi_desc);
    /* v is in descending order: max, p99, p90, median, p10, min */
    static const double at[6] = {0.0, 0.01, 0.1, 0.5, 0.9, 1.0};
    double sum = 0.0;
    for (uint64_t i = 0; i < n; i++)
        sum += v[i].nmi;
    for (int k = 0; k < 6; k++)
        r->q[k] = v[(uint64_t)(at[k] * (double)(n - 1) + 0.5)].nmi;
    r->mean = (float)(sum / (double)n);
    r->pairs = n;
    r->n_top = top < n ? top : (uint32_t)n;
    r->top = malloc((r->n_top ? r->n_top : 1) * sizeof *r->top);
    if (!r->top)
        return 0;
    memcpy(r->top, v, r->n_top * sizeof *v);
    return 1;
}

static void sigma_stats(layer_report *r, const float *sigma, uint32_t d)
{
    float *s = malloc(d * sizeof *s);
    if (!s)
        return;
    memcpy(s, sigma, d * sizeof *s);
    qsort(s, d, sizeof *s, by_float);
    r->sigma[0] = s[0], r->sigma[1] = s[d / 2], r->sigma[2] = s[d - 1];
    free(s);
}

static void compare_approx(layer_report *r, const mipr_mi_matrix *exact,
                           const mipr_mi_matrix *approx)
{
    double sum = 0.0, worst = 0.0;
    for (uint32_t a = 0; a < exact->d; a++)
        for (uint32_t b = a + 1; b < exact->d; b++) {
            double e = fabs((double)approx->mi[(size_t)a * exact->d + b] -
                            exact->mi[(size_t)a * exact->d + b]);
            sum += e, worst = e > worst ? e : worst;
        }
    r->approx_mean_err = sum / (double)r->pairs;
    r->approx_max_err = worst;
}

static mipr_status all_pairs(const an_args *a, const mipr_calib_layer *L, uint32_t n,
                             mipr_pool *pool, layer_report *r, mipr_error *err)
{
    mipr_mi_opts o = {a->width, 0, a->seed, pool};
    mipr_mi_matrix m, ap;
    double t0 = cli_now();
    mipr_status st = mipr_mi_all_pairs(L->samples, L->d_ff, n, &o, &m, err);
    if (st)
        return st;
    r->seconds = cli_now() - t0;
    uint64_t np = (uint64_t)L->d_ff * (L->d_ff - 1) / 2, k = 0;
    pair_val *v = malloc((np ? np : 1) * sizeof *v);
    if (!v) {
        mipr_mi_matrix_free(&m);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %llu pairs",
                              (unsigned long long)np);
    }
    for (uint32_t i = 0; i < L->d_ff; i++)
        for (uint32_t j = i + 1; j < L->d_ff; j++)
            v[k++] = (pair_val){i, j, (float)mipr_mi_normalized(&m, i, j),
                                m.mi[(size_t)i * L->d_ff + j]};
    sigma_stats(r, m.sigma, L->d_ff);
    if (np && !summarise(r, v, np, a->top))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    free(v);
    if (st == MIPR_OK && a->approx > 0.0f && np) {
        o.sample_pairs = (uint64_t)((double)a->approx * n * (n - 1) / 2.0) + 1;
        t0 = cli_now();
        if ((st = mipr_mi_all_pairs(L->samples, L->d_ff, n, &o, &ap, err)) == MIPR_OK) {
            r->approx = 1;
            r->approx_seconds = cli_now() - t0;
            compare_approx(r, &m, &ap);
            mipr_mi_matrix_free(&ap);
        }
    }
    mipr_mi_matrix_free(&m);
    return st;
}

/* One pair by the closed form (alpha 2) or eigenvalues on at most 128 samples. */
static mipr_status pair_mi(const an_args *a, const float *x, const float *y, uint32_t n,
                           double *mi, mipr_error *err)
{
    uint32_t m = fabsf(a->alpha - 2.0f) > 1e-6f && n > 128 ? 128 : n;
    double sx = mipr_kernel_width(x, m, &a->width), sy = mipr_kernel_width(y, m, &a->width);
    if (m == n && fabsf(a->alpha - 2.0f) <= 1e-6f) {
        *mi = mipr_mi2_pair(x, y, n, sx, sy);
        return MIPR_OK;
    }
    return mipr_mi_eig(x, y, m, sx, sy, a->alpha, mi, err);
}

static mipr_status random_pairs(const an_args *a, const mipr_calib_layer *L, uint32_t n,
                                layer_report *r, mipr_error *err)
{
    uint32_t d = L->d_ff;
    double *self = malloc(d * sizeof *self);
    pair_val *v = malloc((size_t)a->random_pairs * sizeof *v);
    float *sig = malloc(d * sizeof *sig);
    mipr_status st = self && v && sig ? MIPR_OK : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    double t0 = cli_now();
    for (uint32_t i = 0; st == MIPR_OK && i < d; i++) {
        const float *x = L->samples + (size_t)i * n;
        sig[i] = (float)mipr_kernel_width(x, n, &a->width);
        st = pair_mi(a, x, x, n, &self[i], err);
    }
    uint64_t rng = a->seed * 2654435761u + 1;
    for (uint32_t k = 0; st == MIPR_OK && k < a->random_pairs; k++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint32_t i = (uint32_t)(rng % d), j = (uint32_t)((rng >> 32) % (d - 1));
        j += j >= i;
        double mi;
        st = pair_mi(a, L->samples + (size_t)i * n, L->samples + (size_t)j * n, n, &mi, err);
        double s = 0.5 * (self[i] + self[j]);
        v[k] = (pair_val){i < j ? i : j, i < j ? j : i, (float)(s > 0 ? mi / s : 0), (float)mi};
    }
    r->seconds = cli_now() - t0;
    if (st == MIPR_OK) {
        sigma_stats(r, sig, d);
        if (!summarise(r, v, a->random_pairs, a->top))
            st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    }
    free(self), free(v), free(sig);
    return st;
}

static void print_text(const an_args *a, const layer_report *r)
{
    printf("layer %u: %u neurons x %u samples, width %s (sigma min %.4g median %.4g max %.4g)\n"
           "  %s%llu pairs in %.3f s\n",
           r->layer, r->d, r->n, mipr_width_name(a->width.rule), r->sigma[0], r->sigma[1],
           r->sigma[2], a->random_pairs ? "random " : "all ", (unsigned long long)r->pairs,
           r->seconds);
    printf("  normalised MI: max %.4f  p99 %.4f  p90 %.4f  median %.4f  p10 %.4f  min %.4f  "
           "mean %.4f\n", r->q[0], r->q[1], r->q[2], r->q[3], r->q[4], r->q[5], r->mean);
    printf("  most redundant:");
    for (uint32_t i = 0; i < r->n_top; i++)
        printf(" %u-%u %.3f (%.3f bits)%s", r->top[i].a, r->top[i].b, r->top[i].nmi,
               r->top[i].mi, i + 1 < r->n_top ? "," : "");
    printf("\n");
    if (r->approx)
        printf("  approximate (%.0f%% of sample pairs): %.3f s, %.1fx faster, |error| mean "
               "%.4f max %.4f bits\n", 100.0 * a->approx, r->approx_seconds,
               r->seconds / (r->approx_seconds + 1e-12), r->approx_mean_err, r->approx_max_err);
}

static void print_json_layer(const an_args *a, const layer_report *r, int last)
{
    printf("  {\"layer\": %u, \"neurons\": %u, \"samples\": %u, \"pairs\": %llu, "
           "\"seconds\": %.6f, \"sigma\": {\"min\": %g, \"median\": %g, \"max\": %g},\n"
           "   \"nmi\": {\"max\": %.6f, \"p99\": %.6f, \"p90\": %.6f, \"median\": %.6f, "
           "\"p10\": %.6f, \"min\": %.6f, \"mean\": %.6f},\n   \"top\": [",
           r->layer, r->d, r->n, (unsigned long long)r->pairs, r->seconds, r->sigma[0],
           r->sigma[1], r->sigma[2], r->q[0], r->q[1], r->q[2], r->q[3], r->q[4], r->q[5],
           r->mean);
    for (uint32_t i = 0; i < r->n_top; i++)
        printf("%s{\"a\": %u, \"b\": %u, \"nmi\": %.6f, \"mi\": %.6f}", i ? ", " : "",
               r->top[i].a, r->top[i].b, r->top[i].nmi, r->top[i].mi);
    printf("]");
    if (r->approx)
        printf(",\n   \"approx\": {\"fraction\": %g, \"seconds\": %.6f, \"mean_abs_error\": %.6f, "
               "\"max_abs_error\": %.6f}", (double)a->approx, r->approx_seconds,
               r->approx_mean_err, r->approx_max_err);
    printf("}%s\n", last ? "" : ",");
}

static mipr_status analyze_layer(const an_args *a, const mipr_calib *c, uint32_t l,
                                 mipr_pool *pool, layer_report *r, mipr_error *err)
{
    const mipr_calib_layer *L = &c->layers[l];
    memset(r, 0, sizeof *r);
    r->layer = l, r->d = L->d_ff, r->n = c->n_samples;
    if (L->d_ff < 2 || c->n_samples < 2)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: layer %u has %u neurons and %u samples: "
                              "nothing to analyse", a->calib, l, L->d_ff, c->n_samples);
    const float *samples;
    float *owned;
    mipr_status st = mipr_calib_samples(c, l, &samples, &owned, err);
    mipr_calib_layer view = *L;
    view.samples = (float *)samples;
    if (st == MIPR_OK)
        st = a->random_pairs ? random_pairs(a, &view, c->n_samples, r, err)
                             : all_pairs(a, &view, c->n_samples, pool, r, err);
    free(owned);
    return st;
}

static int run(const an_args *a, const mipr_calib *c, mipr_pool *pool, mipr_error *err)
{
    uint32_t first = a->layer >= 0 ? (uint32_t)a->layer : 0;
    uint32_t end = a->layer >= 0 ? first + 1 : c->n_layers;
    if (first >= c->n_layers)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s has %u layers; --layer %u is beyond",
                              a->calib, c->n_layers, first), EXIT_FAIL;
    if (a->json)
        printf("{\"calib\": \"%s\", \"alpha\": %g, \"width\": \"%s\", \"layers\": [\n", a->calib,
               (double)a->alpha, mipr_width_name(a->width.rule));
    for (uint32_t l = first; l < end; l++) {
        layer_report r;
        if (analyze_layer(a, c, l, pool, &r, err)) {
            free(r.top);
            return EXIT_FAIL;
        }
        if (a->json)
            print_json_layer(a, &r, l + 1 == end);
        else
            print_text(a, &r);
        fflush(stdout);
        free(r.top);
    }
    if (a->json)
        printf("]}\n");
    return EXIT_OK;
}

int cmd_analyze(int argc, char **argv)
{
    an_args a = {.alpha = 2.0f, .width = {MIPR_WIDTH_TUNED, 0}, .top = 5, .layer = -1};
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    mipr_error err = {0};
    mipr_calib *c = NULL;
    mipr_pool *pool = NULL;
    rc = EXIT_FAIL;
    if (cli_pool_new(&pool, a.threads, &err) == MIPR_OK &&
        mipr_calib_open(&c, a.calib, &err) == MIPR_OK) /* one layer's samples at a time */
        rc = run(&a, c, pool, &err);
    if (rc)
        cli_fail(&err);
    mipr_calib_free(c);
    mipr_pool_free(pool);
    return rc;
}
