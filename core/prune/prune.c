/* Structured pruning: which FFN neurons each layer keeps (plan), and the smaller model
 * (apply). Removing neuron j removes row j of ffn_gate and ffn_up and column j of ffn_down. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_internal.h"

void mipr_prune_plan_free(mipr_prune_plan *p)
{
    for (uint32_t l = 0; p && l < p->n_layers; l++) {
        free(p->keep ? p->keep[l] : NULL);
        free(p->score ? p->score[l] : NULL);
        free(p->partner ? p->partner[l] : NULL);
    }
    if (p) {
        free(p->width), free(p->keep), free(p->score), free(p->partner), free(p->redundant);
        free(p->mi_threshold), free(p->mi_rho), free(p->mi_significant);
        memset(p, 0, sizeof *p);
    }
}

int mipr_prune_align_ok(uint32_t a)
{
    return a == 0 || a == 1 || a == 8 || a == 16 || a == 32 || a == 64 || a == 128 || a == 256;
}

static mipr_status check_opts(const mipr_model *m, const mipr_calib *c, const mipr_prune_opts *o,
                              mipr_error *err)
{
    if (!(o->ratio > 0.0 && o->ratio < 1.0))
        return mipr_error_set(err, MIPR_ERR_ARG, "ratio %g is outside (0, 1)", o->ratio);
    if (!mipr_prune_align_ok(o->align))
        return mipr_error_set(err, MIPR_ERR_ARG,
                              "alignment %u: expected 1, 8, 16, 32, 64, 128 or 256", o->align);
    if (o->last_layer >= o->first_layer && o->last_layer >= m->hp.n_layers)
        return mipr_error_set(err, MIPR_ERR_ARG, "layer range %u..%u is beyond the model's %u "
                              "layers (0..%u)", o->first_layer, o->last_layer, m->hp.n_layers,
                              m->hp.n_layers - 1);
    if ((unsigned)o->criterion >= MIPR_CRIT_COUNT)
        return mipr_error_set(err, MIPR_ERR_ARG, "unknown criterion %d", (int)o->criterion);
    if (c->n_layers != m->hp.n_layers)
        return mipr_error_set(err, MIPR_ERR_ARG, "the calibration record has %u layers, the "
                              "model %u: it was made for another model", c->n_layers,
                              m->hp.n_layers);
    for (uint32_t l = 0; l < c->n_layers; l++)
        if (c->layers[l].d_ff != m->layers[l].d_ff)
            return mipr_error_set(err, MIPR_ERR_ARG, "layer %u: the calibration record has %u "
                                  "neurons, the model %u", l, c->layers[l].d_ff,
                                  m->layers[l].d_ff);
    return MIPR_OK;
}

static int prunable(const mipr_prune_opts *o, uint32_t l)
{
    int in_range = o->last_layer < o->first_layer || (l >= o->first_layer && l <= o->last_layer);
    return in_range && !(o->keep_whole && o->keep_whole[l]);
}

/* mi: redundant neurons are removed by merging (prune_apply.c folds z_j ~ alpha z_p + beta
 * into the partner's ffn_down column and the bias), so what removing one costs is what the
 * fit leaves: |down_:,j| |residual|, with |residual|^2 = (1 - R^2) m2_j over the calibration
 * tokens. That is the wanda-sp score of the residual, so marked and unmarked neurons rank in
 * one order: mi never removes a neuron that costs more than the one wanda-sp would remove
 * instead. A kept partner takes on the marked neuron's work and so its importance. */
static mipr_status mi_scores(const mipr_model *m, const mipr_calib *c, uint32_t l,
                             const mipr_prune_opts *o, mipr_prune_plan *p, mipr_error *err)
{
    const mipr_calib_layer *C = &c->layers[l];
    double *s = p->score[l];
    mipr_redundancy_opts ro = {
        .threshold = o->mi_threshold, .min_r2 = o->mi_min_r2, .clusters = o->clusters,
        .seed = o->seed + l, .importance = s, .mi = {o->width, 0, o->seed, o->pool}};
    mipr_redundancy r;
    const float *samples;
    float *owned;
    double *dn2 = malloc(C->d_ff * sizeof *dn2);
    mipr_status st = dn2 ? mipr_calib_samples(c, l, &samples, &owned, err)
                         : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    if (st)
        return free(dn2), st;
    st = mipr_find_redundant(samples, C->d_ff, c->n_samples, &ro, &r, err);
    free(owned);
    if (st == MIPR_OK)
        st = mipr_col_norms_sq(&m->layers[l].ffn_down, dn2, err);
    for (uint32_t j = 0; st == MIPR_OK && j < C->d_ff; j++)
        if (r.is_marked[j]) {
            p->partner[l][j] = r.partner[j];
            s[r.partner[j]] += s[j];
        }
    for (uint32_t j = 0; st == MIPR_OK && j < C->d_ff; j++)
        if (r.is_marked[j])
            s[j] = fmin(s[j], sqrt(fmax(0.0, 1.0 - r.r2[j]) * C->m2[j] * dn2[j]));
    if (st == MIPR_OK) {
        p->redundant[l] = r.marked;
        p->mi_threshold[l] = r.threshold, p->mi_rho[l] = r.rho_equiv;
        p->mi_significant[l] = r.significant, p->mi_null_level = r.null_level;
        p->mi_ties += r.ties;
    }
    mipr_redundancy_free(&r); /* zeroed by a failed search, so safe to free */
    free(dn2);
    return st;
}

static mipr_status score_layer(const mipr_model *m, const mipr_calib *c, uint32_t l,
                               const mipr_prune_opts *o, mipr_prune_plan *p, mipr_error *err)
{
    uint32_t d = m->layers[l].d_ff;
    p->keep[l] = malloc(d), p->score[l] = malloc(d * sizeof **p->score);
    p->partner[l] = malloc(d * sizeof **p->partner);
    if (!p->keep[l] || !p->score[l] || !p->partner[l])
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for layer %u", l);
    memset(p->keep[l], 1, d);
    for (uint32_t j = 0; j < d; j++)
        p->partner[l][j] = UINT32_MAX;
    p->width[l] = d;
    mipr_status st = mipr_prune_scores(o->criterion, &m->layers[l], &c->layers[l],
                                       o->seed * 1000003u + l, p->score[l], err);
    if (st == MIPR_OK && o->criterion == MIPR_CRIT_MI && prunable(o, l))
        st = mi_scores(m, c, l, o, p, err);
    return st;
}

static uint32_t aligned(uint32_t keep, uint32_t d, const mipr_prune_opts *o)
{
    uint32_t a = o->align ? o->align : 1, min = o->min_width ? o->min_width : a;
    keep = (keep + a / 2) / a * a;
    keep = keep < min ? (min + a - 1) / a * a : keep;
    return keep > d ? d : keep;
}

typedef struct {
    double z;
    uint32_t layer;
} ranked;

static int by_z(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    return (a->z > b->z) - (a->z < b->z);
}

/* FLAP's adaptive structure: z-scores per layer, the lowest across all layers go. */
static mipr_status adaptive_widths(const mipr_model *m, const mipr_prune_opts *o,
                                   mipr_prune_plan *p, mipr_error *err)
{
    size_t total = 0, k = 0;
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        total += prunable(o, l) ? m->layers[l].d_ff : 0;
    ranked *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        uint32_t d = m->layers[l].d_ff;
        if (!prunable(o, l))
            continue;
        double mean = 0, ss = 0;
        for (uint32_t j = 0; j < d; j++)
            mean += p->score[l][j] / d;
        for (uint32_t j = 0; j < d; j++)
            ss += (p->score[l][j] - mean) * (p->score[l][j] - mean) / d;
        double sd = ss > 0 ? sqrt(ss) : 1.0;
        for (uint32_t j = 0; j < d; j++)
            all[k++] = (ranked){(p->score[l][j] - mean) / sd, l};
    }
    qsort(all, total, sizeof *all, by_z);
    size_t remove = (size_t)llround(o->ratio * (double)total);
    for (size_t i = 0; i < remove; i++)
        p->width[all[i].layer]--;
    free(all);
    return MIPR_OK;
}


typedef struct {
    double s;
    uint32_t j;
} scored;

static int by_score_desc(const void *x, const void *y)
{
    const scored *a = x, *b = y;
    if (a->s != b->s)
        return (a->s < b->s) - (a->s > b->s);
    return (a->j > b->j) - (a->j < b->j);
}

/* Keeps the `keep` best-scored neurons (ties: the lower index). */
static mipr_status keep_top(const double *s, uint32_t d, uint32_t keep, uint8_t *flags,
                            mipr_error *err)
{
    scored *v = malloc(d * sizeof *v);
    if (!v)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t j = 0; j < d; j++)
        v[j] = (scored){s[j], j};
    qsort(v, d, sizeof *v, by_score_desc);
    memset(flags, 0, d);
    for (uint32_t i = 0; i < keep; i++)
        flags[v[i].j] = 1;
    free(v);
    return MIPR_OK;
}

static mipr_status plan_alloc(mipr_prune_plan *p, uint32_t n, mipr_error *err)
{
    memset(p, 0, sizeof *p);
    p->n_layers = n;
    p->width = calloc(n, sizeof *p->width);
    p->keep = calloc(n, sizeof *p->keep);
    p->score = calloc(n, sizeof *p->score);
    p->partner = calloc(n, sizeof *p->partner);
    p->redundant = calloc(n, sizeof *p->redundant);
    p->mi_threshold = calloc(n, sizeof *p->mi_threshold);
    p->mi_rho = calloc(n, sizeof *p->mi_rho);
    p->mi_significant = calloc(n, sizeof *p->mi_significant);
    if (p->width && p->keep && p->score && p->partner && p->redundant && p->mi_threshold &&
        p->mi_rho && p->mi_significant)
        return MIPR_OK;
    return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a plan of %u layers", n);
}

mipr_status mipr_prune_plan_make(const mipr_model *m, const mipr_calib *c,
                                 const mipr_prune_opts *o, mipr_prune_plan *p, mipr_error *err)
{
    mipr_status st = check_opts(m, c, o, err);
    if (st || (st = plan_alloc(p, m->hp.n_layers, err)))
        return st;
    for (uint32_t l = 0; st == MIPR_OK && l < m->hp.n_layers; l++)
        st = score_layer(m, c, l, o, p, err);
    if (st == MIPR_OK && o->adaptive)
        st = adaptive_widths(m, o, p, err);
    for (uint32_t l = 0; st == MIPR_OK && l < m->hp.n_layers; l++) {
        uint32_t d = m->layers[l].d_ff;
        if (!prunable(o, l))
            continue;
        uint32_t keep = o->adaptive ? p->width[l] : d - (uint32_t)llround(o->ratio * d);
        p->width[l] = aligned(keep, d, o);
        st = keep_top(p->score[l], d, p->width[l], p->keep[l], err);
    }
    if (st)
        mipr_prune_plan_free(p);
    return st;
}
