/* Internal to bench_report: the data it read, and the writers of its outputs. */
#ifndef MIPR_BENCH_REPORT_H
#define MIPR_BENCH_REPORT_H

#include <stddef.h>

#include "json.h"

#define MAX_ROWS 20000
#define MAX_MODELS 8
#define MAX_EVALS 4
#define MAX_RATIOS 16

/* A growing text buffer; failed is set when memory ran out. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

void sb_printf(sbuf *b, const char *fmt, ...);

/* One row of a criteria CSV (bench_criteria). */
typedef struct {
    char model[64], crit[16], alloc[16], comp[8], eval[16], chosen[160];
    double params, ratio, window, tokens, seeds, ppl, ppl_sd, kl, kl_sd, dense, params_pruned,
        sec, sec_sd, peak, added;
} crow;

typedef struct report {
    const char *dir;
    int check;
    size_t problems;
    crow *rows;
    size_t n_rows;
    char models[MAX_MODELS][64], evals[MAX_EVALS][64];
    size_t n_model_names, n_evals, n_ratios;
    double ratios[MAX_RATIOS];
    bench_json *model_json[MAX_MODELS];
    size_t n_models;
    bench_json *perf[64];
    char *perf_name[64];
    size_t n_perf;
    char mode[32], cpu[160];
    double run_seconds, criteria_seconds, perf_seconds;
    int cores;
} report;

/* The criteria in the order of every table and legend: the five real ones the policy's
 * tournament runs, then the floor (random) and the policy itself (auto). */
#define N_CRITERIA 7
#define N_REAL 5
extern const char *const report_criteria[N_CRITERIA];

/* Writes (or in check mode compares) DIR/rel. */
typedef void (*report_emit)(report *r, const char *rel, const sbuf *b);

void report_problem(report *r, const char *fmt, ...);
char *report_read(const char *path, size_t *len);
size_t report_list(const char *dir, const char *ext, char **names, size_t cap);
const crow *report_find(const report *r, const char *model, const char *crit,
                        const char *alloc, const char *comp, const char *eval, double ratio);
const bench_json *report_model_json(const report *r, const char *model);
const bench_json *report_perf(const report *r, const char *name);
/* A name made safe for a file name. */
void report_file_stem(char *out, size_t cap, const char *s);

/* report_svg.c: results/plots/MODEL-EVAL-{perplexity,kl}.svg */
void report_plots(report *r, report_emit emit);
/* report_md.c: RESULTS.md */
void report_markdown(const report *r, sbuf *md);

#endif
