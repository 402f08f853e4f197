/* Per-neuron scores of every pruning criterion (higher = keep). docs/PRUNING.md says exactly
 * what each computes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_internal.h"
#include "rng.h"

static const char *const crit_names[MIPR_CRIT_COUNT] = {"mi",       "magnitude", "activation",
                                                        "wanda-sp", "flap",      "random"};

const char *mipr_criterion_name(enum mipr_criterion c)
{
    return (unsigned)c < MIPR_CRIT_COUNT ? crit_names[c] : "?";
}

int mipr_criterion_parse(const char *s, enum mipr_criterion *out)
{
    for (int c = 0; c < MIPR_CRIT_COUNT; c++)
        if (strcmp(s, crit_names[c]) == 0) {
            *out = (enum mipr_criterion)c;
            return 1;
        }
    return 0;
}

/* Squared L2 norm of every row of t (rows x cols of any type). */
static mipr_status row_norms_sq(const mipr_tensor *t, double *out, mipr_error *err)
{
    float *row = malloc(t->cols * sizeof *row);
    if (!row)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t r = 0; r < t->rows; r++) {
        mipr_kernels()->row_to_f32[t->type](row, t->data, r, t->cols);
        double s = 0.0;
        for (uint32_t c = 0; c < t->cols; c++)
            s += (double)row[c] * row[c];
        out[r] = s;
    }
    free(row);
    return MIPR_OK;
}

/* Squared L2 norm of every column of t. */
mipr_status mipr_col_norms_sq(const mipr_tensor *t, double *out, mipr_error *err)
{
    float *row = malloc(t->cols * sizeof *row);
    if (!row)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    memset(out, 0, t->cols * sizeof *out);
    for (uint32_t r = 0; r < t->rows; r++) {
        mipr_kernels()->row_to_f32[t->type](row, t->data, r, t->cols);
        for (uint32_t c = 0; c < t->cols; c++)
            out[c] += (double)row[c] * row[c];
    }
    free(row);
    return MIPR_OK;
}

static mipr_status magnitude(const mipr_layer *L, double *s, mipr_error *err)
{
    double *g = malloc(L->d_ff * sizeof *g), *u = malloc(L->d_ff * sizeof *u);
    mipr_status st = g && u ? MIPR_OK : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    if (st == MIPR_OK && (st = row_norms_sq(&L->ffn_gate, g, err)) == MIPR_OK &&
        (st = row_norms_sq(&L->ffn_up, u, err)) == MIPR_OK &&
        (st = mipr_col_norms_sq(&L->ffn_down, s, err)) == MIPR_OK)
        for (uint32_t j = 0; j < L->d_ff; j++)
            s[j] = sqrt(g[j] * u[j] * s[j]);
    free(g), free(u);
    return st;
}

mipr_status mipr_prune_scores(enum mipr_criterion crit, const mipr_layer *L,
                              const mipr_calib_layer *C, uint64_t seed, double *s,
                              mipr_error *err)
{
    uint32_t d = L->d_ff;
    if (crit == MIPR_CRIT_MAGNITUDE)
        return magnitude(L, s, err);
    if (crit == MIPR_CRIT_RANDOM) {
        for (uint32_t j = 0; j < d; j++)
            s[j] = (double)(mipr_rng_next(&seed) >> 11);
        return MIPR_OK;
    }
    if (crit == MIPR_CRIT_ACTIVATION) {
        for (uint32_t j = 0; j < d; j++)
            s[j] = sqrt(C->sum_sq[j]);
        return MIPR_OK;
    }
    mipr_status st = mipr_col_norms_sq(&L->ffn_down, s, err); /* |down_:,j|^2 */
    for (uint32_t j = 0; st == MIPR_OK && j < d; j++) {
        double var = C->count ? C->m2[j] / (double)C->count : 0.0;
        s[j] = crit == MIPR_CRIT_FLAP ? var * s[j] : sqrt(C->sum_sq[j] * s[j]); /* mi: wanda */
    }
    return st;
}
