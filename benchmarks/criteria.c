/* bench_criteria --model M [-z TOK] [--name NAME] --calib-text F --eval NAME=FILE:WINDOW ...
 *                [--eval-tokens N] [--calib-tokens N] [--samples N] [--heldout N]
 *                [--ratios 0.1,...] [--criteria a,b,...]
 *                [--seeds K] [--threads T] [--csv FILE] [--json FILE]
 *
 * Every criterion x allocation x compensation x ratio on one model. Each pruned model is
 * scored on every evaluation set (perplexity, and KL divergence from the dense model); the
 * time and the peak resident memory of the pruning itself (plan + apply, and for `auto` the
 * policy's tournament) are measured apart from the scoring. Randomised criteria (mi, random,
 * and auto, whose tournament includes mi) run K seeds and report mean and sample standard
 * deviation. `auto` lets the policy choose the allocation too (allocation "policy").
 *
 * Calibration and evaluation text must not overlap: the texts must be different files and
 * share no line of 40 bytes or more (checked). The calibration record's held-out tokens,
 * which the policy scores its candidates on, are the calibration text's tail.
 *
 * Evaluating whole files hundreds of times would take hours, so each set scores about N
 * tokens (--eval-tokens) as windows spread evenly from the start to the end of its file,
 * the same windows for every pruned model; the dense model's log-probabilities on them
 * are computed once (mipr_eval_ref_new). A window larger than the model's context is cut
 * to the context (the CSV gives the window used). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory.h"
#include "mipr.h"

#define MAX_EVAL 4
#define MAX_SEEDS 16
#define AUTO MIPR_CRIT_COUNT /* the policy, after the real criteria */
#define N_CRIT (MIPR_CRIT_COUNT + 1)

typedef struct {
    const char *name, *file;
    uint32_t window;
} eval_spec;

typedef struct {
    const char *model, *tok, *name, *calib_text, *csv, *json;
    eval_spec eval[MAX_EVAL];
    int n_eval, crit[N_CRIT];
    double ratios[16];
    int n_ratios;
    uint32_t seeds, threads, samples, heldout;
    uint64_t eval_tokens, calib_tokens;
} options;

typedef struct {
    eval_spec spec;
    uint32_t window;
    size_t tokens, windows;
    mipr_eval_ref *ref;
    mipr_eval_result dense;
} eval_set;

typedef struct {
    mipr_model *m;
    mipr_tokenizer *tok;
    mipr_calib *c;
    mipr_pool *pool;
    mipr_heldout h;
    eval_set ev[MAX_EVAL];
    int n_ev;
    double calib_seconds;
} subject;

/* One configuration: its per-seed measurements. */
typedef struct {
    int crit, adaptive, comp; /* adaptive -1: the policy's choice */
    double ratio;
    uint32_t runs;
    double ppl[MAX_EVAL][MAX_SEEDS], kl[MAX_EVAL][MAX_SEEDS];
    double seconds[MAX_SEEDS], peak_mib[MAX_SEEDS], added_mib[MAX_SEEDS];
    uint64_t params;
    char chosen[MAX_SEEDS][160];
    double selection_kl;
} run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *crit_name(int c)
{
    return c == AUTO ? "auto" : mipr_criterion_name((enum mipr_criterion)c);
}

static const char *alloc_name(int adaptive)
{
    return adaptive < 0 ? "policy" : adaptive ? "adaptive" : "uniform";
}

/* ---- options ---- */

static int parse_list(const char *v, options *o)
{
    memset(o->crit, 0, sizeof o->crit);
    for (const char *s = v; *s;) {
        size_t n = strcspn(s, ",");
        int found = 0;
        for (int c = 0; c < N_CRIT; c++)
            if (strlen(crit_name(c)) == n && !strncmp(s, crit_name(c), n))
                o->crit[c] = found = 1;
        if (!found)
            return -1;
        s += n + (s[n] == ',');
    }
    return 0;
}

static int parse_ratios(const char *v, options *o)
{
    o->n_ratios = 0;
    for (char *s = (char *)v, *e; *s && o->n_ratios < 16; s = *e ? e + 1 : e) {
        double r = strtod(s, &e);
        if (e == s || r <= 0.0 || r >= 1.0)
            return -1;
        o->ratios[o->n_ratios++] = r;
    }
    return o->n_ratios ? 0 : -1;
}

/* NAME=FILE:WINDOW */
static int parse_eval(char *v, options *o)
{
    char *eq = strchr(v, '='), *colon = strrchr(v, ':');
    if (!eq || !colon || colon < eq || o->n_eval == MAX_EVAL)
        return -1;
    *eq = *colon = '\0';
    eval_spec *e = &o->eval[o->n_eval++];
    *e = (eval_spec){v, eq + 1, (uint32_t)atoi(colon + 1)};
    return e->window >= 2 && *v ? 0 : -1;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i];
        char *v = argv[i + 1];
        int bad = 0;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-z")) o->tok = v;
        else if (!strcmp(a, "--name")) o->name = v;
        else if (!strcmp(a, "--calib-text")) o->calib_text = v;
        else if (!strcmp(a, "--eval")) bad = parse_eval(v, o);
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--seeds")) o->seeds = (uint32_t)atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = (uint32_t)atoi(v);
        else if (!strcmp(a, "--eval-tokens")) o->eval_tokens = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--calib-tokens")) o->calib_tokens = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--samples")) o->samples = (uint32_t)atoi(v);
        else if (!strcmp(a, "--heldout")) o->heldout = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ratios")) bad = parse_ratios(v, o);
        else if (!strcmp(a, "--criteria")) bad = parse_list(v, o);
        else bad = 1;
        if (bad)
            return -1;
    }
    if (!o->name)
        o->name = o->model;
    return argc % 2 && o->model && o->calib_text && o->n_eval && o->seeds >= 1 && o->samples &&
                   o->heldout >= 2 &&
                   o->seeds <= MAX_SEEDS && o->eval_tokens >= 2 ? 0 : -1;
}

/* ---- calibration and evaluation text never overlap ---- */

typedef struct {
    const char *p;
    size_t n;
} line;

static int line_cmp(const void *a, const void *b)
{
    const line *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return memcmp(x->p, y->p, x->n);
}

/* Lines of at least 40 bytes (shorter ones, such as "The end.", recur in any corpus). */
static size_t long_lines(const char *t, size_t len, line *out)
{
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && t[e] != '\n' && t[e] != '\r')
            e++;
        if (e - i >= 40)
            out[k++] = (line){t + i, e - i};
        i = e + 1;
    }
    return k;
}

static mipr_status check_disjoint(const char *calib, size_t clen, const char *text, size_t len,
                                  const char *path, mipr_error *err)
{
    line *c = malloc((clen / 40 + 1) * sizeof *c), *t = malloc((len / 40 + 1) * sizeof *t);
    if (!c || !t)
        return free(c), free(t), mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    size_t nc = long_lines(calib, clen, c), nt = long_lines(text, len, t), shared = 0;
    qsort(c, nc, sizeof *c, line_cmp);
    const line *first = NULL;
    for (size_t i = 0; i < nt; i++)
        if (bsearch(&t[i], c, nc, sizeof *c, line_cmp) && !shared++)
            first = &t[i];
    mipr_status st = shared ? mipr_error_set(err, MIPR_ERR_ARG, "%s shares %zu lines with the "
                                             "calibration text, e.g. \"%.60s\"", path, shared,
                                             first->p)
                            : MIPR_OK;
    free(c), free(t);
    return st;
}

/* ---- setup ---- */

static mipr_status calibrate(const options *o, subject *s, const char *text, size_t len,
                             mipr_error *err)
{
    uint32_t ctx = s->m->hp.seq_len, w = ctx < 256 ? ctx : 256;
    mipr_calib_opts co = {.window = w, .n_samples = o->samples, .max_tokens = o->calib_tokens,
                          .heldout = o->heldout, .pool = s->pool};
    double t0 = now();
    mipr_status st = mipr_calibrate(&s->c, s->m, s->tok, text, len, &co, err);
    s->calib_seconds = now() - t0;
    if (st == MIPR_OK)
        s->h = (mipr_heldout){s->c->heldout, s->c->n_heldout, w, mipr_tokenizer_bos(s->tok)};
    return st;
}

/* About o->eval_tokens tokens as windows spread evenly over the whole file. */
static mipr_status eval_setup(const options *o, subject *s, eval_set *e, const char *text,
                              size_t len, mipr_error *err)
{
    uint32_t ctx = s->m->hp.seq_len;
    e->window = e->spec.window < ctx ? e->spec.window : ctx;
    int32_t *all = malloc((len + 2) * sizeof *all), *ids = NULL;
    size_t n = all ? mipr_tokenizer_encode(s->tok, text, len, 0, all) : 0, per = e->window - 1;
    if (n < per) {
        free(all);
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: %zu tokens, fewer than one window of %u",
                              e->spec.file, n, e->window);
    }
    size_t k = (o->eval_tokens + per - 1) / per;
    k = k < n / per ? k : n / per;
    if (!(ids = malloc(k * per * sizeof *ids)))
        return free(all), mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (size_t w = 0; w < k; w++) /* window w starts w/(k-1) of the way through the file */
        memcpy(ids + w * per, all + (k > 1 ? (n - per) * w / (k - 1) : 0), per * sizeof *ids);
    e->tokens = k * per, e->windows = k;
    mipr_status st = mipr_eval_ref_new(&e->ref, s->m, ids, e->tokens, e->window,
                                       mipr_tokenizer_bos(s->tok), s->pool, &e->dense, err);
    free(all), free(ids);
    return st;
}

static mipr_status setup(const options *o, subject *s, mipr_error *err)
{
    mipr_mapped_file cf, f;
    mipr_status st = mipr_pool_new(&s->pool, o->threads, err);
    if (st || (st = mipr_load(&s->m, &s->tok, o->model, o->tok, err)) ||
        (st = mipr_file_map(&cf, o->calib_text, err)))
        return st;
    st = calibrate(o, s, (const char *)cf.data, cf.size, err);
    for (int i = 0; st == MIPR_OK && i < o->n_eval; i++) {
        eval_set *e = &s->ev[s->n_ev++];
        e->spec = o->eval[i];
        if (!strcmp(e->spec.file, o->calib_text))
            st = mipr_error_set(err, MIPR_ERR_ARG, "%s is the calibration text", e->spec.file);
        if (st || (st = mipr_file_map(&f, e->spec.file, err)))
            break;
        st = check_disjoint((const char *)cf.data, cf.size, (const char *)f.data, f.size,
                            e->spec.file, err);
        if (st == MIPR_OK)
            st = eval_setup(o, s, e, (const char *)f.data, f.size, err);
        mipr_file_unmap(&f);
    }
    mipr_file_unmap(&cf);
    return st;
}

/* ---- one configuration ---- */

/* The pruned model, as `mipr prune` makes it: mipr_prune_decide (the policy for auto, the
 * choice among --seeds seeds for randomised criteria, both on the selection half of the
 * held-out tokens), then plan and apply; timed, its memory peak measured. */
static mipr_status prune_one(const options *o, const subject *s, run *r, mipr_model **pm,
                             mipr_error *err)
{
    mipr_prune_request req = {
        .o = {.criterion = r->crit == AUTO ? MIPR_CRIT_MI : (enum mipr_criterion)r->crit,
              .ratio = r->ratio, .align = 1, .first_layer = 1, .seed = 100,
              .width = {MIPR_WIDTH_TUNED, 0}, .bias = r->comp, .pool = s->pool},
        .auto_criterion = r->crit == AUTO, .allocation = r->adaptive < 0 ? 0 : 1 + r->adaptive,
        .seeds = o->seeds};
    mipr_prune_decision dec;
    mipr_prune_plan plan;
    mipr_bench_peak_reset();
    double base = mipr_bench_rss_mib(), t0 = now();
    mipr_status st = mipr_prune_decide(s->m, s->c, &req, &s->h, &dec, err);
    if (st || (st = mipr_prune_plan_make(s->m, s->c, &dec.o, &plan, err)))
        return st;
    st = mipr_prune_apply(s->m, s->c, &plan, &dec.o, pm, err);
    mipr_prune_plan_free(&plan);
    r->seconds[0] = now() - t0;
    r->peak_mib[0] = mipr_bench_peak_mib();
    r->added_mib[0] = r->peak_mib[0] - base;
    snprintf(r->chosen[0], sizeof r->chosen[0], "%s/%s seed %llu", dec.label,
             alloc_name(dec.o.adaptive), (unsigned long long)dec.o.seed);
    for (char *c = r->chosen[0]; *c; c++)
        *c = *c == ',' ? ';' : *c; /* a CSV field */
    r->selection_kl = dec.selection_kl;
    return st;
}

static mipr_status measure(const options *o, const subject *s, run *r, mipr_error *err)
{
    mipr_model *pm = NULL;
    r->runs = 1; /* the seeds are chosen inside, as mipr prune chooses them */
    mipr_status st = prune_one(o, s, r, &pm, err);
    for (int e = 0; st == MIPR_OK && e < s->n_ev; e++) {
        mipr_eval_result res;
        st = mipr_eval_tokens_ref(pm, s->ev[e].ref, s->pool, &res, err);
        r->ppl[e][0] = res.perplexity, r->kl[e][0] = res.mean_kl;
    }
    r->params = pm ? mipr_model_n_params(pm) : 0;
    mipr_model_free(pm);
    return st;
}

/* Mean and sample standard deviation. */
static double mean(const double *x, uint32_t n)
{
    double m = 0.0;
    for (uint32_t i = 0; i < n; i++)
        m += x[i] / n;
    return m;
}

static double sd(const double *x, uint32_t n)
{
    double m = mean(x, n), v = 0.0;
    for (uint32_t i = 0; i < n; i++)
        v += (x[i] - m) * (x[i] - m);
    return n > 1 ? sqrt(v / (n - 1)) : 0.0;
}

static double max_of(const double *x, uint32_t n)
{
    double m = x[0];
    for (uint32_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* auto's choices over the seeds, "flap/adaptive:2+wanda-sp/uniform:1" ("-" otherwise). */
static void chosen_summary(const run *r, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < r->runs; i++) {
        int seen = 0, count = 0;
        for (uint32_t j = 0; j < r->runs; j++) {
            seen |= j < i && !strcmp(r->chosen[j], r->chosen[i]);
            count += !strcmp(r->chosen[j], r->chosen[i]);
        }
        if (!seen && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s:%d", len ? "+" : "",
                                    r->chosen[i], count);
    }
    if (!buf[0])
        snprintf(buf, cap, "-");
}

/* ---- output ---- */

#define CSV_HEADER "model,params,criterion,allocation,compensation,ratio,eval,window,tokens," \
                   "seeds,perplexity,perplexity_sd,kl,kl_sd,dense_perplexity,params_pruned," \
                   "prune_seconds,prune_seconds_sd,prune_peak_mib,prune_added_mib,chosen"

static int write_csv(const options *o, const subject *s, const run *runs, int n)
{
    FILE *f = fopen(o->csv, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", CSV_HEADER);
    for (int i = 0; i < n; i++)
        for (int e = 0; e < s->n_ev; e++) {
            const run *r = &runs[i];
            const eval_set *ev = &s->ev[e];
            char chosen[256];
            chosen_summary(r, chosen, sizeof chosen);
            fprintf(f, "%s,%llu,%s,%s,%s,%.2f,%s,%u,%zu,%u,%.6f,%.6f,%.8f,%.8f,%.6f,%llu,"
                       "%.4f,%.4f,%.2f,%.2f,%s\n", o->name,
                    (unsigned long long)mipr_model_n_params(s->m), crit_name(r->crit),
                    alloc_name(r->adaptive), r->comp ? "bias" : "none", r->ratio,
                    ev->spec.name, ev->window, ev->tokens, r->runs, mean(r->ppl[e], r->runs),
                    sd(r->ppl[e], r->runs), mean(r->kl[e], r->runs), sd(r->kl[e], r->runs),
                    ev->dense.perplexity, (unsigned long long)r->params,
                    mean(r->seconds, r->runs), sd(r->seconds, r->runs),
                    max_of(r->peak_mib, r->runs), max_of(r->added_mib, r->runs), chosen);
        }
    return fclose(f);
}

static void json_array(FILE *f, const char *key, const double *x, uint32_t n, const char *fmt)
{
    fprintf(f, "\"%s\": [", key);
    for (uint32_t i = 0; i < n; i++) {
        fprintf(f, i ? ", " : "");
        fprintf(f, fmt, x[i]);
    }
    fprintf(f, "]");
}

/* Paths as given on the command line; they hold no quote or backslash in this suite, and
 * any such character is written as '_' to keep the JSON valid. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        fputc(*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ? '_' : *s, f);
    fputc('"', f);
}

static void json_head(FILE *f, const options *o, const subject *s)
{
    fprintf(f, "{\"model\": ");
    json_str(f, o->name);
    fprintf(f, ", \"path\": ");
    json_str(f, o->model);
    fprintf(f, ", \"params\": %llu, \"seeds\": %u,\n \"calibration\": {\"text\": ",
            (unsigned long long)mipr_model_n_params(s->m), o->seeds);
    json_str(f, o->calib_text);
    fprintf(f, ", \"tokens\": %llu, \"window\": %u, \"samples\": %u, \"heldout\": %u, "
               "\"seconds\": %.3f},\n \"evals\": [", (unsigned long long)s->c->tokens,
            s->c->window, s->c->n_samples, s->c->n_heldout, s->calib_seconds);
    for (int e = 0; e < s->n_ev; e++) {
        const eval_set *ev = &s->ev[e];
        fprintf(f, "%s\n  {\"name\": ", e ? "," : "");
        json_str(f, ev->spec.name);
        fprintf(f, ", \"file\": ");
        json_str(f, ev->spec.file);
        fprintf(f, ", \"window_asked\": %u, \"window\": %u, \"tokens\": %zu, \"windows\": %zu, "
                   "\"dense_perplexity\": %.6f}", ev->spec.window, ev->window, ev->tokens,
                ev->windows, ev->dense.perplexity);
    }
    fprintf(f, "],\n \"runs\": [");
}

static void json_run(FILE *f, const subject *s, const run *r)
{
    fprintf(f, "\n  {\"criterion\": \"%s\", \"allocation\": \"%s\", \"compensation\": \"%s\", "
               "\"ratio\": %.2f, \"params_pruned\": %llu, \"seeds\": [", crit_name(r->crit),
            alloc_name(r->adaptive), r->comp ? "bias" : "none", r->ratio,
            (unsigned long long)r->params);
    for (uint32_t i = 0; i < r->runs; i++)
        fprintf(f, "%s%u", i ? ", " : "", 100 + i);
    fprintf(f, "], ");
    json_array(f, "prune_seconds", r->seconds, r->runs, "%.4f");
    fprintf(f, ", ");
    json_array(f, "prune_peak_mib", r->peak_mib, r->runs, "%.2f");
    fprintf(f, ", ");
    json_array(f, "prune_added_mib", r->added_mib, r->runs, "%.2f");
    fprintf(f, ", \"chosen\": [");
    for (uint32_t i = 0; i < r->runs; i++)
        fprintf(f, "%s\"%s\"", i ? ", " : "", r->chosen[i]);
    fprintf(f, "], \"evals\": {");
    for (int e = 0; e < s->n_ev; e++) {
        fprintf(f, "%s\"%s\": {", e ? ", " : "", s->ev[e].spec.name);
        json_array(f, "perplexity", r->ppl[e], r->runs, "%.6f");
        fprintf(f, ", ");
        json_array(f, "kl", r->kl[e], r->runs, "%.8f");
        fprintf(f, "}");
    }
    fprintf(f, "}}");
}

static int write_json(const options *o, const subject *s, const run *runs, int n)
{
    FILE *f = fopen(o->json, "w");
    if (!f)
        return -1;
    json_head(f, o, s);
    for (int i = 0; i < n; i++) {
        json_run(f, s, &runs[i]);
        fprintf(f, i + 1 < n ? "," : "");
    }
    fprintf(f, "\n]}\n");
    return fclose(f);
}

static void print_run(const subject *s, const run *r)
{
    char chosen[256];
    chosen_summary(r, chosen, sizeof chosen);
    printf("%.2f %-10s %-8s %-4s", r->ratio, crit_name(r->crit), alloc_name(r->adaptive),
           r->comp ? "bias" : "-");
    for (int e = 0; e < s->n_ev; e++)
        printf("  %s %.3f±%.3f KL %.4f", s->ev[e].spec.name, mean(r->ppl[e], r->runs),
               sd(r->ppl[e], r->runs), mean(r->kl[e], r->runs));
    printf("  prune %.3f s %.1f MiB%s%s\n", mean(r->seconds, r->runs),
           max_of(r->added_mib, r->runs), r->crit == AUTO ? " " : "",
           r->crit == AUTO ? chosen : "");
    fflush(stdout);
}

static void release(subject *s)
{
    for (int e = 0; e < s->n_ev; e++)
        mipr_eval_ref_free(s->ev[e].ref);
    mipr_calib_free(s->c);
    mipr_tokenizer_free(s->tok);
    mipr_model_free(s->m);
    mipr_pool_free(s->pool);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_criteria --model M [-z TOK] [--name NAME] --calib-text F "
                    "--eval NAME=FILE:WINDOW [--eval ...] [--eval-tokens N] "
                    "[--calib-tokens N] [--samples N] [--heldout N] [--ratios 0.1,0.2] [--criteria mi,flap,auto,...] "
                    "[--seeds K] [--threads T] [--csv FILE] [--json FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    options o = {.ratios = {0.1, 0.2, 0.3, 0.4, 0.5}, .n_ratios = 5, .seeds = 3, .threads = 1,
                 .eval_tokens = 8192, .calib_tokens = 100000, .samples = 512, .heldout = 2048};
    for (int c = 0; c < N_CRIT; c++)
        o.crit[c] = 1;
    if (parse(argc, argv, &o))
        return usage();
    mipr_error err = {0};
    subject s = {0};
    static run runs[16 * N_CRIT * 4];
    int n = 0;
    mipr_status st = setup(&o, &s, &err);
    if (st == MIPR_OK) {
        printf("%s: %llu parameters; calibration %llu tokens of %s in %.1f s\n", o.name,
               (unsigned long long)mipr_model_n_params(s.m), (unsigned long long)s.c->tokens,
               o.calib_text, s.calib_seconds);
        for (int e = 0; e < s.n_ev; e++)
            printf("  %s: %zu tokens in %zu windows of %u, dense perplexity %.4f\n",
                   s.ev[e].spec.name, s.ev[e].tokens, s.ev[e].windows, s.ev[e].window,
                   s.ev[e].dense.perplexity);
    }
    for (int r = 0; st == MIPR_OK && r < o.n_ratios; r++)
        for (int c = 0; st == MIPR_OK && c < N_CRIT; c++)
            for (int v = 0; st == MIPR_OK && v < 4 && o.crit[c]; v++) {
                if (c == AUTO && (v & 1))
                    continue; /* the policy chooses the allocation */
                run *x = &runs[n++];
                *x = (run){.crit = c, .adaptive = c == AUTO ? -1 : v & 1, .comp = v >> 1,
                           .ratio = o.ratios[r]};
                if ((st = measure(&o, &s, x, &err)) == MIPR_OK)
                    print_run(&s, x);
            }
    if (st) {
        fprintf(stderr, "bench_criteria: %s\n", err.msg);
        release(&s);
        return 1;
    }
    int bad = (o.csv && write_csv(&o, &s, runs, n)) || (o.json && write_json(&o, &s, runs, n));
    release(&s);
    if (bad)
        return fprintf(stderr, "bench_criteria: cannot write %s\n", o.csv ? o.csv : o.json), 1;
    return 0;
}
