/* bench_report [--check] DIR
 *
 * Turns the benchmark suite's data into its record: reads the CSV files in
 * DIR/results/criteria/ (from bench_criteria), the JSON files in DIR/results/perf/ (bench_kernels, bench_mi, bench_engine, and the
 * pack/unpack slot) and DIR/results/run.txt (benchmarks/run.sh), and writes
 * DIR/RESULTS.md (tables, and an analysis computed from the numbers), SVG plots in
 * DIR/results/plots/ and DIR/results/perf/perf.json (every perf file in one document).
 * Output bytes depend only on the input files.
 *
 * --check writes nothing. It checks that every expected file is there, that every CSV row
 * has the header's column count and numbers where numbers belong, that every JSON file
 * parses, and that RESULTS.md, the plots and perf.json are exactly what the data gives:
 * so the committed tables and plots match the committed CSV. Exit 0 when all is well,
 * 1 with one line per problem otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mipr.h"
#include "report.h"

const char *const report_criteria[N_CRITERIA] = {"mi", "magnitude", "activation", "wanda-sp",
                                                 "flap", "random", "auto"};

/* ---- text buffer ---- */

void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->failed)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- files ---- */

char *report_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    size_t n = 0, cap = 0, got;
    if (!f)
        return NULL;
    do {
        if (n + 65536 > cap) {
            char *q = realloc(p, cap = (n + 65536) * 2);
            if (!q) {
                free(p), fclose(f);
                return NULL;
            }
            p = q;
        }
        got = fread(p + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    p[n] = '\0';
    *len = n;
    return p;
}

/* Names in dir ending in ext, sorted (so output never depends on directory order). */
static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t report_list(const char *dir, const char *ext, char **names, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0, el = strlen(ext);
    while (d && (e = readdir(d)) && n < cap) {
        size_t l = strlen(e->d_name);
        if (l > el && !strcmp(e->d_name + l - el, ext) && e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, by_name);
    return n;
}

/* Writes, or in check mode compares, one output file. */
static void emit(report *r, const char *rel, const sbuf *b)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", r->dir, rel) >= (int)sizeof path)
        b = NULL;
    if (!b || b->failed) {
        report_problem(r, "%s: out of memory or path too long", rel);
        return;
    }
    if (r->check) {
        size_t len;
        char *old = report_read(path, &len);
        size_t at = 0, line = 1;
        while (old && at < len && at < b->len && old[at] == b->p[at])
            line += old[at++] == '\n';
        if (!old)
            report_problem(r, "%s: missing", rel);
        else if (len != b->len || at < len)
            report_problem(r, "%s: differs from what the data gives, from line %zu (run "
                              "bench_report %s to regenerate)", rel, line, r->dir);
        free(old);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f))
        report_problem(r, "%s: cannot write", path);
}

void report_problem(report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_report: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    r->problems++;
}

/* ---- criteria CSV ---- */

static const char *const columns[] = {
    "model", "params", "criterion", "allocation", "compensation", "ratio", "eval", "window",
    "tokens", "seeds", "perplexity", "perplexity_sd", "kl", "kl_sd", "dense_perplexity",
    "params_pruned", "prune_seconds", "prune_seconds_sd", "prune_peak_mib", "prune_added_mib",
    "chosen"};
#define N_COLUMNS (sizeof columns / sizeof *columns)

static int number_field(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*v);
}

static void copy_field(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s);
}

/* One data line into a row; 0 when it has the right fields. */
static int parse_row(char *line, crow *w)
{
    char *f[N_COLUMNS + 1];
    size_t n = 0;
    for (char *p = line; n <= N_COLUMNS;) {
        f[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p++ = '\0';
    }
    if (n != N_COLUMNS)
        return -1;
    double *num[] = {&w->params, NULL, NULL, NULL, &w->ratio, NULL, &w->window, &w->tokens,
                     &w->seeds, &w->ppl, &w->ppl_sd, &w->kl, &w->kl_sd, &w->dense,
                     &w->params_pruned, &w->sec, &w->sec_sd, &w->peak, &w->added};
    for (size_t i = 1; i < N_COLUMNS - 1; i++)
        if (num[i - 1] && !number_field(f[i], num[i - 1]))
            return -1;
    copy_field(w->model, sizeof w->model, f[0]);
    copy_field(w->crit, sizeof w->crit, f[2]);
    copy_field(w->alloc, sizeof w->alloc, f[3]);
    copy_field(w->comp, sizeof w->comp, f[4]);
    copy_field(w->eval, sizeof w->eval, f[6]);
    copy_field(w->chosen, sizeof w->chosen, f[20]);
    return 0;
}

static void load_csv(report *r, const char *name)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/results/criteria/%s", r->dir, name);
    char *text = report_read(path, &len), *save = NULL;
    if (!text) {
        report_problem(r, "%s: cannot read", path);
        return;
    }
    size_t line = 0;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
        if (line == 0) {
            char header[1024] = "";
            for (size_t i = 0; i < N_COLUMNS; i++)
                snprintf(header + strlen(header), sizeof header - strlen(header), "%s%s",
                         i ? "," : "", columns[i]);
            if (strcmp(l, header))
                report_problem(r, "%s: the header is not the %zu columns bench_report knows",
                               path, N_COLUMNS);
            continue;
        }
        crow w;
        memset(&w, 0, sizeof w);
        if (r->n_rows == MAX_ROWS || parse_row(l, &w))
            report_problem(r, "%s:%zu: not %zu fields with numbers where numbers belong", path,
                           line + 1, N_COLUMNS);
        else
            r->rows[r->n_rows++] = w;
    }
    if (line < 2)
        report_problem(r, "%s: no data rows", path);
    free(text);
}

/* ---- JSON files ---- */

static bench_json *load_json(report *r, const char *rel)
{
    char path[1024], msg[256];
    size_t len;
    char *text = snprintf(path, sizeof path, "%s/%s", r->dir, rel) < (int)sizeof path
                     ? report_read(path, &len) : NULL;
    if (!text) {
        report_problem(r, "%s: missing", rel);
        return NULL;
    }
    bench_json *j = bench_json_parse(text, len, msg, sizeof msg);
    if (!j)
        report_problem(r, "%s: not valid JSON: %s", rel, msg);
    free(text);
    return j;
}

/* Every criteria CSV has its JSON and log; the models in index order of size. */
static void load_criteria(report *r)
{
    char dir[1024], *names[MAX_MODELS * 4];
    snprintf(dir, sizeof dir, "%s/results/criteria", r->dir);
    size_t n = report_list(dir, ".csv", names, MAX_MODELS * 4);
    if (!n)
        report_problem(r, "%s: no criteria CSV", dir);
    for (size_t i = 0; i < n; i++) {
        char rel[1024];
        size_t stem = strlen(names[i]) - 4, len;
        load_csv(r, names[i]);
        char *log = snprintf(rel, sizeof rel, "%s/%.*s.log", dir, (int)stem, names[i]) <
                            (int)sizeof rel ? report_read(rel, &len) : NULL;
        if (!log)
            report_problem(r, "%s: missing", rel);
        free(log);
        bench_json *j = snprintf(rel, sizeof rel, "results/criteria/%.*s.json", (int)stem,
                                 names[i]) < (int)sizeof rel ? load_json(r, rel) : NULL;
        if (j && r->n_models < MAX_MODELS)
            r->model_json[r->n_models++] = j;
        else
            bench_json_free(j);
        free(names[i]);
    }
}

static void load_perf(report *r)
{
    char dir[1024], *names[64];
    snprintf(dir, sizeof dir, "%s/results/perf", r->dir);
    size_t n = report_list(dir, ".json", names, 64);
    for (size_t i = 0; i < n; i++) {
        char rel[1024];
        snprintf(rel, sizeof rel, "results/perf/%s", names[i]);
        if (strcmp(names[i], "perf.json") && r->n_perf < 64) {
            bench_json *j = load_json(r, rel);
            if (j) {
                r->perf[r->n_perf] = j;
                r->perf_name[r->n_perf++] = names[i];
                continue;
            }
        }
        free(names[i]);
    }
    if (!r->n_perf)
        report_problem(r, "%s: no perf JSON", dir);
}

static void load_run_info(report *r)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/results/run.txt", r->dir);
    char *t = report_read(path, &len);
    if (!t) {
        report_problem(r, "%s: missing", path);
        return;
    }
    for (char *l = t; *l;) {
        size_t n = strcspn(l, "\n");
        char key[32] = "", val[160] = "";
        if (sscanf(l, "%31s %159[^\n]", key, val) == 2) {
            if (!strcmp(key, "mode")) copy_field(r->mode, sizeof r->mode, val);
            else if (!strcmp(key, "seconds")) r->run_seconds = atof(val);
            else if (!strcmp(key, "criteria_seconds")) r->criteria_seconds = atof(val);
            else if (!strcmp(key, "perf_seconds")) r->perf_seconds = atof(val);
            else if (!strcmp(key, "cpu")) copy_field(r->cpu, sizeof r->cpu, val);
            else if (!strcmp(key, "cores")) r->cores = atoi(val);
        }
        l += n + (l[n] == '\n');
    }
    free(t);
}

/* perf.json: every perf file's document under its name; the pack slot stays null until
 * results/perf/pack.json exists. */
static void write_perf_json(report *r)
{
    sbuf b = {0};
    int pack = 0;
    sb_printf(&b, "{\n");
    for (size_t i = 0; i < r->n_perf; i++) {
        char path[1024];
        size_t len, stem = strlen(r->perf_name[i]) - 5;
        snprintf(path, sizeof path, "%s/results/perf/%s", r->dir, r->perf_name[i]);
        char *t = report_read(path, &len);
        while (t && len && (t[len - 1] == '\n' || t[len - 1] == ' '))
            t[--len] = '\0';
        pack |= !strcmp(r->perf_name[i], "pack.json");
        sb_printf(&b, "\"%.*s\": %s,\n", (int)stem, r->perf_name[i], t ? t : "null");
        free(t);
    }
    if (!pack)
        sb_printf(&b, "\"pack\": null,\n");
    sb_printf(&b, "\"note\": \"random weights: speed only, never quality\"\n}\n");
    emit(r, "results/perf/perf.json", &b);
    free(b.p);
}

/* ---- lookups ---- */

const crow *report_find(const report *r, const char *model, const char *crit,
                        const char *alloc, const char *comp, const char *eval, double ratio)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        const crow *w = &r->rows[i];
        if (!strcmp(w->model, model) && !strcmp(w->crit, crit) && !strcmp(w->alloc, alloc) &&
            !strcmp(w->comp, comp) && !strcmp(w->eval, eval) && fabs(w->ratio - ratio) < 1e-9)
            return w;
    }
    return NULL;
}

static void add_unique(char (*list)[64], size_t *n, size_t cap, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(list[i], s))
            return;
    if (*n < cap)
        copy_field(list[(*n)++], 64, s);
}

static double model_params(const report *r, const char *model)
{
    for (size_t i = 0; i < r->n_rows; i++)
        if (!strcmp(r->rows[i].model, model))
            return r->rows[i].params;
    return 0.0;
}

/* Models (by size), evaluation sets and ratios (ascending) present in the rows. */
static void index_rows(report *r)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        add_unique(r->models, &r->n_model_names, MAX_MODELS, r->rows[i].model);
        add_unique(r->evals, &r->n_evals, MAX_EVALS, r->rows[i].eval);
        size_t k = 0;
        while (k < r->n_ratios && fabs(r->ratios[k] - r->rows[i].ratio) > 1e-9)
            k++;
        if (k == r->n_ratios && k < MAX_RATIOS)
            r->ratios[r->n_ratios++] = r->rows[i].ratio;
    }
    for (size_t i = 1; i < r->n_ratios; i++)
        for (size_t j = i; j > 0 && r->ratios[j] < r->ratios[j - 1]; j--) {
            double t = r->ratios[j];
            r->ratios[j] = r->ratios[j - 1], r->ratios[j - 1] = t;
        }
    for (size_t i = 1; i < r->n_model_names; i++)
        for (size_t j = i; j > 0 && model_params(r, r->models[j]) <
                                    model_params(r, r->models[j - 1]); j--) {
            char t[64];
            memcpy(t, r->models[j], 64);
            memcpy(r->models[j], r->models[j - 1], 64);
            memcpy(r->models[j - 1], t, 64);
        }
}

const bench_json *report_model_json(const report *r, const char *model)
{
    for (size_t i = 0; i < r->n_models; i++)
        if (!strcmp(bench_json_str(r->model_json[i], "model", ""), model))
            return r->model_json[i];
    return NULL;
}

const bench_json *report_perf(const report *r, const char *name)
{
    for (size_t i = 0; i < r->n_perf; i++)
        if (!strcmp(r->perf_name[i], name))
            return r->perf[i];
    return NULL;
}

void report_file_stem(char *out, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        out[k++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                   (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' ? *s : '_';
    out[k] = '\0';
}

/* ---- main ---- */

static void release(report *r)
{
    for (size_t i = 0; i < r->n_models; i++)
        bench_json_free(r->model_json[i]);
    for (size_t i = 0; i < r->n_perf; i++)
        bench_json_free(r->perf[i]), free(r->perf_name[i]);
    free(r->rows);
}

int main(int argc, char **argv)
{
    static report r;
    int a = 1;
    if (a < argc && !strcmp(argv[a], "--check"))
        r.check = 1, a++;
    if (a + 1 != argc) {
        fprintf(stderr, "usage: bench_report [--check] DIR   (DIR holds RESULTS.md and "
                        "results/)\n");
        return 2;
    }
    r.dir = argv[a];
    if (!(r.rows = calloc(MAX_ROWS, sizeof *r.rows)))
        return fprintf(stderr, "bench_report: out of memory\n"), 1;
    load_run_info(&r);
    load_criteria(&r);
    load_perf(&r);
    index_rows(&r);
    if (r.n_rows) {
        report_plots(&r, emit);
        sbuf md = {0};
        report_markdown(&r, &md);
        emit(&r, "RESULTS.md", &md);
        free(md.p);
    }
    write_perf_json(&r);
    int bad = r.problems != 0;
    if (!bad)
        printf("bench_report: %s %s: %zu criteria rows, %zu models, %zu perf files%s\n",
               r.check ? "checked" : "wrote", r.dir, r.n_rows, r.n_model_names, r.n_perf,
               r.check ? ", all consistent" : "");
    release(&r);
    return bad;
}
