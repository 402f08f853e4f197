/* bench_mi [--d D] [--n N] [--threads T] [--approx F] [--json FILE]
 *          [--model M [--tokenizer Z] --text FILE]
 *
 * Exact all-pairs alpha = 2 MI for one layer (default: SmolLM2-135M's FFN, d = 1536
 * neurons, n = 512 samples), on heavy-tailed synthetic activations (speed does not depend
 * on the values). Reports wall time, effective GFLOP/s and their share of this machine's
 * FMA peak (single-thread peak measured in the same run, times the threads), peak resident
 * memory, and the approximate path's speed-up and error against the exact result. With
 * --model and --text, also calibration throughput (tokens/s) on that real model. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mipr.h"
#include "peak.h"

typedef struct {
    uint32_t d, n, threads;
    double approx;
    const char *json, *model, *tokenizer, *text;
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: bench_mi [--d D] [--n N] [--threads T] [--approx F] "
                            "[--json FILE]\n");
            return -1;
        }
        if (!strcmp(a, "--d")) o->d = (uint32_t)atoi(v);
        else if (!strcmp(a, "--n")) o->n = (uint32_t)atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = (uint32_t)atoi(v);
        else if (!strcmp(a, "--approx")) o->approx = atof(v);
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--text")) o->text = v;
        else return fprintf(stderr, "bench_mi: unknown option %s\n", a), -1;
        i++;
    }
    return o->d >= 2 && o->n >= 2 && o->threads >= 1 ? 0 : -1;
}

/* SwiGLU-like activations: a Gaussian times a sigmoid-gated Gaussian. */
static float *synthetic(uint32_t d, uint32_t n)
{
    float *s = malloc((size_t)d * n * sizeof *s);
    uint64_t r = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; s && i < (size_t)d * n; i++) {
        double u[4];
        for (int k = 0; k < 4; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            u[k] = ((double)(r >> 11) + 0.5) * 0x1.0p-53;
        }
        double g = sqrt(-2 * log(u[0])) * cos(6.2831853 * u[1]);
        double v = sqrt(-2 * log(u[2])) * cos(6.2831853 * u[3]);
        s[i] = (float)(g / (1 + exp(-g)) * v);
    }
    return s;
}

/* Calibration tokens/s on a real model (50k tokens, 512 samples); 0 when not asked. */
static double calibration_tps(const options *o, mipr_pool *pool, mipr_error *err)
{
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    mipr_mapped_file f = {0};
    mipr_calib *c = NULL;
    double tps = 0.0;
    if (!o->model || !o->text)
        return 0.0;
    if (mipr_load(&m, &tok, o->model, o->tokenizer, err) == MIPR_OK &&
        mipr_file_map(&f, o->text, err) == MIPR_OK) {
        mipr_calib_opts co = {.max_tokens = 50000, .window = 256, .n_samples = 512, .pool = pool};
        double t0 = now();
        if (mipr_calibrate(&c, m, tok, (const char *)f.data, f.size, &co, err) == MIPR_OK)
            tps = (double)c->tokens / (now() - t0);
    }
    mipr_calib_free(c);
    mipr_file_unmap(&f);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    return tps;
}

int main(int argc, char **argv)
{
    options o = {1536, 512, 2, 0.125, NULL, NULL, NULL, NULL};
    if (parse(argc, argv, &o))
        return 2;
    const char *isa;
    double peak1 = mipr_peak_fma_best(0, &isa), peak = peak1 * o.threads;
    float *s = synthetic(o.d, o.n);
    mipr_error err = {0};
    mipr_pool *pool;
    if (!s || mipr_pool_new(&pool, o.threads, &err))
        return fprintf(stderr, "bench_mi: setup failed %s\n", err.msg), 1;
    double rss0 = peak_rss_mib();
    mipr_mi_opts mo = {{MIPR_WIDTH_TUNED, 0}, 0, 1, pool};
    mipr_mi_matrix exact, approx;
    double t0 = now();
    if (mipr_mi_all_pairs(s, o.d, o.n, &mo, &exact, &err))
        return fprintf(stderr, "bench_mi: %s\n", err.msg), 1;
    double t_exact = now() - t0, rss = peak_rss_mib();
    mo.sample_pairs = (uint64_t)(o.approx * o.n * (o.n - 1) / 2);
    t0 = now();
    if (mipr_mi_all_pairs(s, o.d, o.n, &mo, &approx, &err))
        return fprintf(stderr, "bench_mi: %s\n", err.msg), 1;
    double t_approx = now() - t0, mean_err = 0, max_err = 0;
    for (size_t q = 0; q < (size_t)o.d * o.d; q++) {
        double e = fabs((double)approx.mi[q] - exact.mi[q]);
        mean_err += e / ((double)o.d * o.d), max_err = e > max_err ? e : max_err;
    }
    /* multiply-adds performed: every neuron pair (a <= b) over the sample pairs (i <= j);
     * the symmetry in (i, j) halves the naive n^2, and is not counted as speed */
    double flops = 2.0 * o.d * (o.d + 1) / 2.0 * (double)o.n * (o.n + 1) / 2.0;
    double gf = flops / t_exact * 1e-9;
    printf("all-pairs MI, d = %u neurons, n = %u samples, %u thread(s), kernels %s\n", o.d,
           o.n, o.threads, mipr_kernels()->isa);
    printf("  exact      %.3f s  %.1f effective GFLOP/s  = %.0f%% of the FMA peak "
           "(%.1f GFLOP/s = %u x %.1f, %s)\n", t_exact, gf, 100 * gf / peak, peak, o.threads,
           peak1, isa);
    printf("  memory     peak RSS %.1f MiB (%.1f MiB before the call)\n", rss, rss0);
    printf("  approx     %.3f s with %.1f%% of sample pairs: %.1fx faster, |error| mean %.4f "
           "max %.4f bits\n", t_approx, 100 * o.approx, t_exact / t_approx, mean_err, max_err);
    double tps = calibration_tps(&o, pool, &err);
    if (o.model && tps == 0.0)
        return fprintf(stderr, "bench_mi: calibration: %s\n", err.msg), 1;
    if (o.model)
        printf("  calibrate  %.0f tokens/s on %s (window 256, 512 samples)\n", tps, o.model);
    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (!f)
            return fprintf(stderr, "bench_mi: cannot write %s\n", o.json), 1;
        fprintf(f, "{\"d\": %u, \"n\": %u, \"threads\": %u, \"isa\": \"%s\", \"seconds\": %.6f, "
                   "\"gflops\": %.3f, \"fma_peak_gflops\": %.3f, \"peak_ratio\": %.4f, "
                   "\"peak_rss_mib\": %.2f, \"approx\": {\"fraction\": %g, \"seconds\": %.6f, "
                   "\"speedup\": %.3f, \"mean_abs_error\": %.6f, \"max_abs_error\": %.6f}, "
                   "\"calibration_tokens_per_s\": %.1f}\n",
                o.d, o.n, o.threads, mipr_kernels()->isa, t_exact, gf, peak, gf / peak, rss,
                o.approx, t_approx, t_exact / t_approx, mean_err, max_err, tps);
        fclose(f);
    }
    mipr_mi_matrix_free(&exact), mipr_mi_matrix_free(&approx);
    mipr_pool_free(pool);
    free(s);
    return 0;
}
