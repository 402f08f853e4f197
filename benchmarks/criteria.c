/* bench_criteria --model M [-z TOK] --calib-text F --eval-text F [--ratios 0.1,...]
 *                [--seeds K] [--window W] [--eval-bytes N] [--csv FILE] [--json FILE]
 *
 * Every criterion x allocation x ratio on one model: perplexity on the evaluation text,
 * KL divergence from the dense model, time to prune. Randomised criteria (mi, random) run
 * K seeds and report mean and standard deviation. Calibration and evaluation texts must be
 * different files (the calibration record's held-out tokens come from the calibration
 * text's tail). The last lines summarise how much the choice of criterion matters at each
 * ratio (worst / best perplexity): the evidence behind the size-aware policy. Every
 * configuration also runs with compensation (bias for all; bias + least squares for mi),
 * to show whether it helps. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipr.h"

typedef struct {
    const char *model, *tok, *calib_text, *eval_text, *csv, *json;
    double ratios[16];
    int n_ratios;
    uint32_t seeds, window, eval_bytes;
} options;

typedef struct {
    enum mipr_criterion crit;
    int adaptive, comp;
    double ratio, ppl, ppl_sd, kl, kl_sd, seconds;
    uint64_t params;
} row;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-z")) o->tok = v;
        else if (!strcmp(a, "--calib-text")) o->calib_text = v;
        else if (!strcmp(a, "--eval-text")) o->eval_text = v;
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--seeds")) o->seeds = (uint32_t)atoi(v);
        else if (!strcmp(a, "--window")) o->window = (uint32_t)atoi(v);
        else if (!strcmp(a, "--eval-bytes")) o->eval_bytes = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ratios")) {
            o->n_ratios = 0;
            for (char *s = (char *)v, *e; *s && o->n_ratios < 16; s = *e ? e + 1 : e) {
                o->ratios[o->n_ratios++] = strtod(s, &e);
                if (e == s)
                    return -1;
            }
        } else return -1;
    }
    return argc % 2 && o->model && o->calib_text && o->eval_text &&
                   strcmp(o->calib_text, o->eval_text) ? 0 : -1;
}

typedef struct {
    mipr_model *m;
    mipr_tokenizer *tok;
    mipr_calib *c;
    int32_t *ids;
    size_t n;
} subject;

static mipr_status setup(const options *o, subject *s, mipr_error *err)
{
    mipr_mapped_file f;
    mipr_status st = mipr_load(&s->m, &s->tok, o->model, o->tok, err);
    if (st || (st = mipr_file_map(&f, o->calib_text, err)))
        return st;
    mipr_calib_opts co = {.window = o->window, .n_samples = 512, .max_tokens = 100000,
                          .heldout = 2048};
    st = mipr_calibrate(&s->c, s->m, s->tok, (const char *)f.data, f.size, &co, err);
    mipr_file_unmap(&f);
    if (st || (st = mipr_file_map(&f, o->eval_text, err)))
        return st;
    size_t len = o->eval_bytes && o->eval_bytes < f.size ? o->eval_bytes : f.size;
    s->ids = malloc((len + 2) * sizeof *s->ids);
    s->n = s->ids ? mipr_tokenizer_encode(s->tok, (const char *)f.data, len, 0, s->ids) : 0;
    mipr_file_unmap(&f);
    return s->n ? MIPR_OK : mipr_error_set(err, MIPR_ERR_ARG, "no evaluation tokens");
}

static mipr_status measure(const options *o, const subject *s, row *r, mipr_error *err)
{
    uint32_t runs = r->crit == MIPR_CRIT_MI || r->crit == MIPR_CRIT_RANDOM ? o->seeds : 1;
    double p[64], k[64], t0 = now();
    for (uint32_t i = 0; i < runs && i < 64; i++) {
        mipr_prune_opts po = {.criterion = r->crit, .ratio = r->ratio, .adaptive = r->adaptive,
                              .align = 1, .first_layer = 1, .seed = 100 + i,
                              .width = {MIPR_WIDTH_TUNED, 0}, .bias = r->comp,
                              .least_squares = r->comp && r->crit == MIPR_CRIT_MI};
        mipr_prune_plan plan;
        mipr_model *pm = NULL;
        mipr_eval_result e;
        mipr_status st = mipr_prune_plan_make(s->m, s->c, &po, &plan, err);
        if (st == MIPR_OK)
            st = mipr_prune_apply(s->m, s->c, &plan, &po, &pm, err);
        mipr_prune_plan_free(&plan);
        if (st == MIPR_OK)
            st = mipr_eval_tokens(pm, s->m, s->ids, s->n, o->window,
                                  mipr_tokenizer_bos(s->tok), NULL, &e, err);
        r->params = pm ? mipr_model_n_params(pm) : 0;
        mipr_model_free(pm);
        if (st)
            return st;
        p[i] = e.perplexity, k[i] = e.mean_kl;
    }
    r->seconds = (now() - t0) / runs;
    double mp = 0, mk = 0, vp = 0, vk = 0;
    for (uint32_t i = 0; i < runs; i++)
        mp += p[i] / runs, mk += k[i] / runs;
    for (uint32_t i = 0; i < runs; i++)
        vp += (p[i] - mp) * (p[i] - mp), vk += (k[i] - mk) * (k[i] - mk);
    r->ppl = mp, r->kl = mk;
    r->ppl_sd = runs > 1 ? sqrt(vp / (runs - 1)) : 0, r->kl_sd = runs > 1 ? sqrt(vk / (runs - 1)) : 0;
    return MIPR_OK;
}

static void write_csv(const options *o, const row *rows, int n, double dense)
{
    FILE *f = o->csv ? fopen(o->csv, "w") : NULL;
    if (!f)
        return;
    fprintf(f, "model,criterion,allocation,compensation,ratio,perplexity,perplexity_sd,kl,kl_sd,"
               "params,seconds,dense_perplexity\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s,%s,%s,%d,%.2f,%.6f,%.6f,%.8f,%.8f,%llu,%.4f,%.6f\n", o->model,
                mipr_criterion_name(rows[i].crit), rows[i].adaptive ? "adaptive" : "uniform",
                rows[i].comp, rows[i].ratio, rows[i].ppl, rows[i].ppl_sd, rows[i].kl, rows[i].kl_sd,
                (unsigned long long)rows[i].params, rows[i].seconds, dense);
    fclose(f);
}

static void write_json(const options *o, const row *rows, int n, double dense)
{
    FILE *f = o->json ? fopen(o->json, "w") : NULL;
    if (!f)
        return;
    fprintf(f, "{\"model\": \"%s\", \"eval_text\": \"%s\", \"window\": %u, \"seeds\": %u, "
               "\"dense_perplexity\": %.6f, \"runs\": [\n", o->model, o->eval_text, o->window,
            o->seeds, dense);
    for (int i = 0; i < n; i++)
        fprintf(f, "  {\"criterion\": \"%s\", \"allocation\": \"%s\", \"compensation\": %d, "
                   "\"ratio\": %.2f, "
                   "\"perplexity\": %.6f, \"perplexity_sd\": %.6f, \"kl\": %.8f, \"kl_sd\": %.8f, "
                   "\"params\": %llu, \"seconds\": %.4f}%s\n",
                mipr_criterion_name(rows[i].crit), rows[i].adaptive ? "adaptive" : "uniform",
                rows[i].comp, rows[i].ratio, rows[i].ppl, rows[i].ppl_sd, rows[i].kl,
                rows[i].kl_sd, (unsigned long long)rows[i].params, rows[i].seconds,
                i + 1 < n ? "," : "");
    fprintf(f, "]}\n");
    fclose(f);
}

/* Per ratio: best and worst non-random criterion, and their perplexity ratio. */
/* Compensation's effect: in how many configurations it lowered perplexity, and the mean
 * ratio with / without. */
static void summarise_comp(const row *rows, int n)
{
    int better = 0, total = 0;
    double ratio = 0.0;
    for (int i = 0; i + 2 < n; i++)
        if (!rows[i].comp && rows[i + 2].comp && rows[i + 2].crit == rows[i].crit &&
            rows[i + 2].adaptive == rows[i].adaptive) {
            better += rows[i + 2].ppl < rows[i].ppl;
            ratio += rows[i + 2].ppl / rows[i].ppl;
            total++;
        }
    if (total)
        printf("compensation lowered perplexity in %d of %d configurations; mean "
               "with/without %.3f\n", better, total, ratio / total);
}

static void summarise(const options *o, const row *rows, int n)
{
    for (int r = 0; r < o->n_ratios; r++) {
        const row *best = NULL, *worst = NULL;
        for (int i = 0; i < n; i++) {
            if (rows[i].ratio != o->ratios[r] || rows[i].crit == MIPR_CRIT_RANDOM || rows[i].comp)
                continue;
            best = !best || rows[i].ppl < best->ppl ? &rows[i] : best;
            worst = !worst || rows[i].ppl > worst->ppl ? &rows[i] : worst;
        }
        if (best)
            printf("ratio %.2f: best %s/%s %.3f, worst %s/%s %.3f: worst/best %.2fx\n",
                   o->ratios[r], mipr_criterion_name(best->crit),
                   best->adaptive ? "adaptive" : "uniform", best->ppl,
                   mipr_criterion_name(worst->crit), worst->adaptive ? "adaptive" : "uniform",
                   worst->ppl, worst->ppl / best->ppl);
    }
}

int main(int argc, char **argv)
{
    options o = {.ratios = {0.1, 0.2, 0.3, 0.4, 0.5}, .n_ratios = 5, .seeds = 3, .window = 256};
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_criteria --model M [-z TOK] --calib-text F --eval-text F "
                        "[--ratios 0.1,0.2] [--seeds K] [--window W] [--eval-bytes N] "
                        "[--csv FILE] [--json FILE]  (the two texts must differ)\n");
        return 2;
    }
    mipr_error err = {0};
    subject s = {0};
    mipr_eval_result dense;
    static row rows[16 * MIPR_CRIT_COUNT * 4];
    int n = 0;
    if (setup(&o, &s, &err) ||
        mipr_eval_tokens(s.m, NULL, s.ids, s.n, o.window, mipr_tokenizer_bos(s.tok), NULL, &dense,
                         &err))
        return fprintf(stderr, "bench_criteria: %s\n", err.msg), 1;
    printf("%s: %llu parameters, %zu evaluation tokens, dense perplexity %.4f\n", o.model,
           (unsigned long long)mipr_model_n_params(s.m), s.n, dense.perplexity);
    for (int r = 0; r < o.n_ratios; r++)
        for (int c = 0; c < MIPR_CRIT_COUNT; c++)
            for (int v = 0; v < 4; v++) {
                row *x = &rows[n++];
                *x = (row){.crit = (enum mipr_criterion)c, .adaptive = v & 1, .comp = v >> 1,
                           .ratio = o.ratios[r]};
                if (measure(&o, &s, x, &err))
                    return fprintf(stderr, "bench_criteria: %s\n", err.msg), 1;
                printf("%.2f %-10s %-8s %-5s perplexity %9.4f +- %.4f  KL %.5f +- %.5f  %.2f s\n",
                       x->ratio, mipr_criterion_name(x->crit), x->adaptive ? "adaptive" : "uniform",
                       x->comp ? "comp" : "-", x->ppl, x->ppl_sd, x->kl, x->kl_sd, x->seconds);
                fflush(stdout);
            }
    summarise(&o, rows, n);
    summarise_comp(rows, n);
    write_csv(&o, rows, n, dense.perplexity);
    write_json(&o, rows, n, dense.perplexity);
    free(s.ids);
    mipr_calib_free(s.c);
    mipr_tokenizer_free(s.tok);
    mipr_model_free(s.m);
    return 0;
}
