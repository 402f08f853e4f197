/* The paper's redundancy procedure (arXiv 2406.00030): random neuron pairs, an MI
 * threshold, and the less important member of each redundant pair marked for pruning.
 * MI comes from the all-pairs matrix when it fits (one tiled pass is far cheaper than
 * thousands of O(n^2) pairs), else pair by pair over a fixed random set of sample pairs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mipr.h"
#include "rng.h"

#define MAX_MATRIX_NEURONS 4096u /* d^2 x 12 bytes = 192 MiB at the limit */
#define DEFAULT_PAIR_SAMPLES 16384u

typedef struct {
    const float *x;
    uint32_t d, n;
    mipr_mi_matrix mat;     /* when d <= MAX_MATRIX_NEURONS */
    uint32_t m, *pi, *pj;   /* else: sample pairs (i, j) */
    float *inv;
    double *s, *self;       /* per neuron: sum of G, self-MI */
} pair_src;

static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(mipr_rng_next(s) % n);
}

static double g_at(const pair_src *p, uint32_t a, uint32_t q)
{
    const float *xa = p->x + (size_t)a * p->n;
    double dv = (double)xa[p->pi[q]] - xa[p->pj[q]];
    return exp(-dv * dv * p->inv[a]);
}

static mipr_status sampled_setup(pair_src *p, const mipr_mi_opts *o, mipr_error *err)
{
    p->m = o->sample_pairs ? (uint32_t)(o->sample_pairs < (1u << 24) ? o->sample_pairs : 1u << 24)
                           : DEFAULT_PAIR_SAMPLES;
    p->pi = malloc(p->m * sizeof *p->pi), p->pj = malloc(p->m * sizeof *p->pj);
    p->inv = malloc(p->d * sizeof *p->inv);
    p->s = malloc(p->d * sizeof *p->s), p->self = malloc(p->d * sizeof *p->self);
    if (!p->pi || !p->pj || !p->inv || !p->s || !p->self)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %u sample pairs", p->m);
    uint64_t seed = o->seed ^ 0x70616972ull;
    for (uint32_t q = 0; q < p->m; q++)
        p->pi[q] = below(&seed, p->n), p->pj[q] = below(&seed, p->n);
    for (uint32_t a = 0; a < p->d; a++) {
        double sg = mipr_kernel_width(p->x + (size_t)a * p->n, p->n, &o->width), s = 0, s2 = 0;
        p->inv[a] = (float)(1.0 / (sg * sg));
        for (uint32_t q = 0; q < p->m; q++) {
            double g = g_at(p, a, q);
            s += g, s2 += g * g;
        }
        p->s[a] = s;
        p->self[a] = log2((double)p->m * s2 / (s * s));
    }
    return MIPR_OK;
}

/* Normalised MI of a pair. */
static double pair_nmi(const pair_src *p, uint32_t a, uint32_t b)
{
    if (p->mat.mi)
        return mipr_mi_normalized(&p->mat, a, b);
    double j = 0.0;
    for (uint32_t q = 0; q < p->m; q++)
        j += g_at(p, a, q) * g_at(p, b, q);
    double self = 0.5 * (p->self[a] + p->self[b]);
    double mi = log2((double)p->m * j / (p->s[a] * p->s[b]));
    return self > 0.0 ? mi / self : 0.0; /* as mipr_mi_normalized */
}

static void pair_src_free(pair_src *p)
{
    mipr_mi_matrix_free(&p->mat);
    free(p->pi), free(p->pj), free(p->inv), free(p->s), free(p->self);
}

/* k-means (k-means++ seeding, 10 rounds) on z-scored neuron sample vectors. */
static mipr_status cluster(const float *x, uint32_t d, uint32_t n, uint32_t k, uint64_t seed,
                           uint32_t *label, mipr_error *err);

static void mark(mipr_redundancy *r, const double *imp, uint32_t a, uint32_t b, double nmi)
{
    /* the less important neuron goes; on a tie, the later one */
    uint32_t lose = a, keep = b;
    double ia = imp ? imp[a] : 0.0, ib = imp ? imp[b] : 0.0;
    if (ia > ib || (ia == ib && a < b))
        lose = b, keep = a;
    r->is_marked[lose] = 1;
    r->partner[lose] = keep;
    r->pair_mi[lose] = (float)nmi;
    r->marked++;
}

static int draw_pair(uint64_t *rng, uint32_t d, const uint32_t *label, const uint32_t *members,
                     const uint32_t *start, uint32_t *a, uint32_t *b)
{
    *a = below(rng, d);
    if (!label) {
        *b = below(rng, d - 1);
        *b += *b >= *a;
        return 1;
    }
    uint32_t c = label[*a], size = start[c + 1] - start[c];
    if (size < 2)
        return 0;
    *b = members[start[c] + below(rng, size)];
    return *b != *a;
}

static mipr_status draw_all(const pair_src *p, const mipr_redundancy_opts *o,
                            const uint32_t *label, const uint32_t *members, const uint32_t *start,
                            mipr_redundancy *r)
{
    uint64_t rng = o->seed ^ 0x64726177ull, max = o->max_draws ? o->max_draws : 50ull * p->d;
    uint32_t target = o->target ? o->target : p->d - 1;
    for (; r->draws < max && r->marked < target && r->marked + 1 < p->d; r->draws++) {
        uint32_t a, b;
        if (!draw_pair(&rng, p->d, label, members, start, &a, &b) || r->is_marked[a] ||
            r->is_marked[b])
            continue;
        double nmi = pair_nmi(p, a, b);
        if (nmi > o->threshold) {
            r->redundant_pairs++;
            mark(r, o->importance, a, b, nmi);
        }
    }
    return MIPR_OK;
}

static mipr_status group(const float *x, uint32_t d, uint32_t n, const mipr_redundancy_opts *o,
                         uint32_t **label, uint32_t **members, uint32_t **start, mipr_error *err)
{
    uint32_t k = o->clusters;
    *label = malloc(d * sizeof **label), *members = malloc(d * sizeof **members);
    *start = calloc(k + 1, sizeof **start);
    if (!*label || !*members || !*start)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %u clusters", k);
    mipr_status st = cluster(x, d, n, k, o->seed, *label, err);
    if (st)
        return st;
    for (uint32_t a = 0; a < d; a++)
        (*start)[(*label)[a] + 1]++;
    for (uint32_t c = 0; c < k; c++)
        (*start)[c + 1] += (*start)[c];
    uint32_t *fill = calloc(k, sizeof *fill);
    if (!fill)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t a = 0; a < d; a++)
        (*members)[(*start)[(*label)[a]] + fill[(*label)[a]]++] = a;
    free(fill);
    return MIPR_OK;
}

void mipr_redundancy_free(mipr_redundancy *r)
{
    if (!r)
        return;
    free(r->is_marked), free(r->partner), free(r->pair_mi);
    memset(r, 0, sizeof *r);
}

mipr_status mipr_find_redundant(const float *samples, uint32_t d, uint32_t n,
                                const mipr_redundancy_opts *o, mipr_redundancy *r,
                                mipr_error *err)
{
    memset(r, 0, sizeof *r);
    if (d < 2 || n < 2 || d > MIPR_MAX_FF || o->clusters > d)
        return mipr_error_set(err, MIPR_ERR_ARG, "redundancy: %u neurons, %u samples, %u "
                              "clusters", d, n, o->clusters);
    pair_src p = {.x = samples, .d = d, .n = n};
    uint32_t *label = NULL, *members = NULL, *start = NULL;
    r->is_marked = calloc(d, 1), r->partner = calloc(d, sizeof *r->partner);
    r->pair_mi = calloc(d, sizeof *r->pair_mi);
    mipr_status st = r->is_marked && r->partner && r->pair_mi
                         ? MIPR_OK
                         : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    if (st == MIPR_OK)
        st = d <= MAX_MATRIX_NEURONS ? mipr_mi_all_pairs(samples, d, n, &o->mi, &p.mat, err)
                                     : sampled_setup(&p, &o->mi, err);
    if (st == MIPR_OK && o->clusters > 1)
        st = group(samples, d, n, o, &label, &members, &start, err);
    if (st == MIPR_OK)
        st = draw_all(&p, o, o->clusters > 1 ? label : NULL, members, start, r);
    pair_src_free(&p);
    free(label), free(members), free(start);
    if (st)
        mipr_redundancy_free(r);
    return st;
}

/* ---- k-means ---- */

static double dist2(const float *a, const float *b, uint32_t n)
{
    double s = 0.0;
    for (uint32_t i = 0; i < n; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

static void zscore(float *z, const float *x, uint32_t d, uint32_t n)
{
    for (uint32_t a = 0; a < d; a++) {
        const float *xa = x + (size_t)a * n;
        double mean = 0.0, ss = 0.0;
        for (uint32_t i = 0; i < n; i++)
            mean += xa[i];
        mean /= n;
        for (uint32_t i = 0; i < n; i++)
            ss += (xa[i] - mean) * (xa[i] - mean);
        double sd = ss > 0.0 ? sqrt(ss / n) : 1.0;
        for (uint32_t i = 0; i < n; i++)
            z[(size_t)a * n + i] = (float)((xa[i] - mean) / sd);
    }
}

static void seed_centres(const float *z, uint32_t d, uint32_t n, uint32_t k, uint64_t *rng,
                         float *cent, double *best)
{
    memcpy(cent, z + (size_t)below(rng, d) * n, n * sizeof *cent);
    for (uint32_t a = 0; a < d; a++)
        best[a] = dist2(z + (size_t)a * n, cent, n);
    for (uint32_t c = 1; c < k; c++) {
        double total = 0.0;
        for (uint32_t a = 0; a < d; a++)
            total += best[a];
        double pick = (double)(mipr_rng_next(rng) >> 11) * 0x1.0p-53 * total;
        uint32_t a = 0;
        while (a + 1 < d && (pick -= best[a]) > 0.0)
            a++;
        memcpy(cent + (size_t)c * n, z + (size_t)a * n, n * sizeof *cent);
        for (uint32_t b = 0; b < d; b++)
            best[b] = fmin(best[b], dist2(z + (size_t)b * n, cent + (size_t)c * n, n));
    }
}

static void assign(const float *z, uint32_t d, uint32_t n, uint32_t k, const float *cent,
                   uint32_t *label)
{
    for (uint32_t a = 0; a < d; a++) {
        double best = INFINITY;
        for (uint32_t c = 0; c < k; c++) {
            double v = dist2(z + (size_t)a * n, cent + (size_t)c * n, n);
            if (v < best)
                best = v, label[a] = c;
        }
    }
}

static void update(const float *z, uint32_t d, uint32_t n, uint32_t k, float *cent,
                   const uint32_t *label, double *acc)
{
    for (uint32_t c = 0; c < k; c++) {
        uint32_t count = 0;
        memset(acc, 0, n * sizeof *acc);
        for (uint32_t a = 0; a < d; a++)
            if (label[a] == c) {
                count++;
                for (uint32_t i = 0; i < n; i++)
                    acc[i] += z[(size_t)a * n + i];
            }
        for (uint32_t i = 0; count && i < n; i++)
            cent[(size_t)c * n + i] = (float)(acc[i] / count);
    }
}

static mipr_status cluster(const float *x, uint32_t d, uint32_t n, uint32_t k, uint64_t seed,
                           uint32_t *label, mipr_error *err)
{
    float *z = malloc((size_t)d * n * sizeof *z), *cent = malloc((size_t)k * n * sizeof *cent);
    double *tmp = malloc((d > n ? d : n) * sizeof *tmp);
    mipr_status st = MIPR_OK;
    if (!z || !cent || !tmp) {
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for k-means");
    } else {
        uint64_t rng = seed ^ 0x6b6d65616e73ull;
        zscore(z, x, d, n);
        seed_centres(z, d, n, k, &rng, cent, tmp);
        for (int round = 0; round < 10; round++) {
            assign(z, d, n, k, cent, label);
            update(z, d, n, k, cent, label, tmp);
        }
        assign(z, d, n, k, cent, label);
    }
    free(z), free(cent), free(tmp);
    return st;
}
