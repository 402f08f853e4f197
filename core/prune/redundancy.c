/* Redundant neurons (arXiv 2406.00030's procedure, made exhaustive): candidate pairs are
 * those whose normalised MI exceeds a threshold calibrated on a permutation null and whose
 * least-squares fit explains one member from the other (R^2). Up to
 * MIPR_REDUNDANCY_MATRIX_MAX neurons the all-pairs MI matrix gives every pair; beyond it,
 * sign-invariant locality-sensitive hashing finds the pairs of high |rho| (the ones a
 * linear merge can remove) and a sampled estimator gives their MI. Candidates are visited
 * in seed-random order, the paper's stochastic element: the seed decides only which member
 * of overlapping pairs goes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mipr.h"
#include "rng.h"

#define DEFAULT_PAIR_SAMPLES 16384u
#define DEFAULT_MIN_R2 0.4
#define NULL_SEED 0x6e756c6cull /* the threshold must not depend on the visit seed */
#define LSH_TABLES 8u
#define LSH_BITS 12u
#define LSH_WINDOW 16u /* neighbours compared in each table's sorted order */

typedef struct {
    const float *x;
    uint32_t d, n;
    mipr_mi_matrix mat;     /* when d <= MIPR_REDUNDANCY_MATRIX_MAX */
    uint32_t m, *pi, *pj;   /* else: sample pairs (i, j) */
    float *inv;
    double *s, *self;       /* per neuron: sum of G, self-MI */
    float *zs;              /* d x n: centred, unit-norm samples (zero for a constant neuron) */
    double *mean, *sd;
} pair_src;

typedef struct {
    uint32_t a, b;
    double nmi;
    float r2;
    uint32_t tie; /* seed-random: orders pairs of equal R^2 */
} cand;

typedef struct {
    cand *v;
    size_t n, cap;
} cand_list;

static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(mipr_rng_next(s) % n);
}

static double gauss(uint64_t *s)
{
    double u = ((double)(mipr_rng_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(mipr_rng_next(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int push(cand_list *l, uint32_t a, uint32_t b, double nmi, double r2)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        cand *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return 0;
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = (cand){a < b ? a : b, a < b ? b : a, nmi, (float)r2, 0};
    return 1;
}

static mipr_status standardise(pair_src *p, mipr_error *err)
{
    p->zs = malloc((size_t)p->d * p->n * sizeof *p->zs);
    p->mean = malloc(p->d * sizeof *p->mean), p->sd = malloc(p->d * sizeof *p->sd);
    if (!p->zs || !p->mean || !p->sd)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %u x %u samples", p->d,
                              p->n);
    for (uint32_t a = 0; a < p->d; a++) {
        const float *xa = p->x + (size_t)a * p->n;
        float *z = p->zs + (size_t)a * p->n;
        double mean = 0.0, ss = 0.0;
        for (uint32_t i = 0; i < p->n; i++)
            mean += xa[i];
        mean /= p->n;
        for (uint32_t i = 0; i < p->n; i++)
            ss += (xa[i] - mean) * (xa[i] - mean);
        double norm = sqrt(ss), scale = norm > 1e-30 * (1.0 + fabs(mean)) ? 1.0 / norm : 0.0;
        for (uint32_t i = 0; i < p->n; i++)
            z[i] = (float)((xa[i] - mean) * scale);
        p->mean[a] = mean, p->sd[a] = scale > 0.0 ? norm / sqrt(p->n) : 0.0;
    }
    return MIPR_OK;
}

static double corr(const pair_src *p, uint32_t a, uint32_t b)
{
    const float *za = p->zs + (size_t)a * p->n, *zb = p->zs + (size_t)b * p->n;
    double s = 0.0;
    for (uint32_t i = 0; i < p->n; i++)
        s += (double)za[i] * zb[i];
    return s;
}

static double g_at(const pair_src *p, uint32_t a, uint32_t i, uint32_t j)
{
    const float *xa = p->x + (size_t)a * p->n;
    double dv = (double)xa[i] - xa[j];
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
            double g = g_at(p, a, p->pi[q], p->pj[q]);
            s += g, s2 += g * g;
        }
        p->s[a] = s;
        p->self[a] = log2((double)p->m * s2 / (s * s));
    }
    return MIPR_OK;
}

/* Normalised MI of a pair; perm (or NULL) shuffles b's samples, for the null. */
static double sampled_nmi(const pair_src *p, uint32_t a, uint32_t b, const uint32_t *perm)
{
    double j = 0.0;
    for (uint32_t q = 0; q < p->m; q++) {
        uint32_t i = p->pi[q], k = p->pj[q];
        j += g_at(p, a, i, k) * g_at(p, b, perm ? perm[i] : i, perm ? perm[k] : k);
    }
    double self = 0.5 * (p->self[a] + p->self[b]);
    double mi = log2((double)p->m * j / (p->s[a] * p->s[b]));
    return self > 0.0 ? mi / self : 0.0; /* as mipr_mi_normalized */
}

static void pair_src_free(pair_src *p)
{
    mipr_mi_matrix_free(&p->mat);
    free(p->pi), free(p->pj), free(p->inv), free(p->s), free(p->self);
    free(p->zs), free(p->mean), free(p->sd);
}

/* ---- the permutation null ---- */

static void shuffle_u32(uint32_t *v, uint32_t n, uint64_t *rng)
{
    for (uint32_t i = 0; i < n; i++)
        v[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = below(rng, i), t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
}

/* Sum of G_a(u, v) G_b(pm u, pm v): the joint term of (a, permuted b). The sums of G and
 * G^2 do not change under a permutation, so they are computed once per neuron. */
static double permuted_joint(const float *ga, const float *gb, uint32_t n, const uint32_t *pm)
{
    double j = 0.0;
    for (uint32_t u = 0; u < n; u++) {
        const float *ra = ga + (size_t)u * n, *rb = gb + (size_t)pm[u] * n;
        /* terms in [0, 1], a row at a time: float suffices; four sums break the add chain */
        float r0 = 0.0f, r1 = 0.0f, r2 = 0.0f, r3 = 0.0f;
        uint32_t v = 0;
        for (; v + 4 <= n; v += 4) {
            r0 += ra[v] * rb[pm[v]], r1 += ra[v + 1] * rb[pm[v + 1]];
            r2 += ra[v + 2] * rb[pm[v + 2]], r3 += ra[v + 3] * rb[pm[v + 3]];
        }
        for (; v < n; v++)
            r0 += ra[v] * rb[pm[v]];
        j += (double)r0 + r1 + r2 + r3;
    }
    return j;
}

/* A pool of non-constant neurons whose G matrices fit in 32 MiB. */
static uint32_t null_pool(const pair_src *p, uint64_t *rng, uint32_t *pool)
{
    uint32_t want = (uint32_t)((1u << 23) / ((size_t)p->n * p->n)), k = 0;
    want = want < 2 ? 2 : want > 16 ? 16 : want;
    for (uint32_t tries = 0; k < want && tries < 8 * p->d; tries++) {
        uint32_t a = below(rng, p->d), dup = 0;
        for (uint32_t i = 0; i < k; i++)
            dup |= pool[i] == a;
        if (!dup && p->sd[a] > 0.0)
            pool[k++] = a;
    }
    return k;
}

static mipr_status exact_null(const pair_src *p, uint64_t *rng, const uint32_t *pool, uint32_t k,
                              uint32_t *perm, double *worst, mipr_error *err)
{
    float *g = malloc((size_t)k * p->n * p->n * sizeof *g);
    double sum[16], self[16], n2 = (double)p->n * p->n;
    if (!g)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for the MI null");
    for (uint32_t t = 0; t < k; t++) {
        const float *xa = p->x + (size_t)pool[t] * p->n;
        float *gt = g + (size_t)t * p->n * p->n;
        double s = p->mat.sigma[pool[t]], inv = 1.0 / (s * s), s1 = 0.0, s2 = 0.0;
        for (uint32_t u = 0; u < p->n; u++)
            for (uint32_t v = 0; v < p->n; v++) {
                double dv = (double)xa[u] - xa[v], e = exp(-dv * dv * inv);
                gt[(size_t)u * p->n + v] = (float)e;
                s1 += e, s2 += e * e;
            }
        sum[t] = s1, self[t] = log2(n2 * s2 / (s1 * s1));
    }
    for (uint32_t q = 0; q < MIPR_REDUNDANCY_NULL_PAIRS; q++) {
        uint32_t a = below(rng, k), b = below(rng, k - 1);
        b += b >= a;
        shuffle_u32(perm, p->n, rng);
        double j = permuted_joint(g + (size_t)a * p->n * p->n, g + (size_t)b * p->n * p->n,
                                  p->n, perm);
        double norm = 0.5 * (self[a] + self[b]);
        if (norm > 0.0)
            *worst = fmax(*worst, log2(n2 * j / (sum[a] * sum[b])) / norm);
    }
    free(g);
    return MIPR_OK;
}

/* The threshold: the largest normalised MI of MIPR_REDUNDANCY_NULL_PAIRS pairs made
 * independent by shuffling one member's samples (a per-pair level of 1/256). */
static mipr_status null_threshold(const pair_src *p, double *t, mipr_error *err)
{
    uint64_t rng = NULL_SEED;
    uint32_t pool[16], *perm = malloc(p->n * sizeof *perm);
    if (!perm)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    uint32_t k = null_pool(p, &rng, pool);
    double worst = -1.0;
    mipr_status st = MIPR_OK;
    if (k < 2)
        worst = 1.0; /* (almost) every neuron constant: nothing can be significant */
    else if (p->mat.mi)
        st = exact_null(p, &rng, pool, k, perm, &worst, err);
    for (uint32_t q = 0; k >= 2 && !p->mat.mi && q < MIPR_REDUNDANCY_NULL_PAIRS; q++) {
        uint32_t a = below(&rng, p->d), b = below(&rng, p->d - 1);
        b += b >= a;
        shuffle_u32(perm, p->n, &rng);
        worst = fmax(worst, sampled_nmi(p, a, b, perm));
    }
    free(perm);
    *t = worst;
    return st;
}

/* ---- candidates ---- */

static mipr_status matrix_candidates(const pair_src *p, double t, double min_r2, cand_list *l,
                                     mipr_redundancy *r, mipr_error *err)
{
    for (uint32_t a = 0; a < p->d; a++)
        for (uint32_t b = a + 1; b < p->d; b++) {
            double nmi = mipr_mi_normalized(&p->mat, a, b);
            if (!(nmi > t))
                continue;
            r->significant++;
            double rho = corr(p, a, b);
            if (rho * rho >= min_r2 && !push(l, a, b, nmi, rho * rho))
                return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for candidate pairs");
        }
    return MIPR_OK;
}

typedef struct {
    uint64_t key;
    uint32_t a;
} hashed;

static int by_key(const void *x, const void *y)
{
    const hashed *a = x, *b = y;
    return (a->key > b->key) - (a->key < b->key);
}

/* One table: a random direction fixes each neuron's sign (so x and -x look the same), then
 * LSH_BITS random hyperplanes and the canonical projection order the neurons; neighbours
 * within LSH_WINDOW of each other in that order are compared by |rho|. */
static void lsh_table(const pair_src *p, uint64_t *rng, float *h, hashed *v, uint32_t *nv)
{
    uint32_t n = p->n, k = 0;
    for (uint32_t q = 0; q < (LSH_BITS + 1) * n; q++)
        h[q] = (float)gauss(rng);
    for (uint32_t a = 0; a < p->d; a++) {
        if (p->sd[a] <= 0.0)
            continue;
        const float *z = p->zs + (size_t)a * n;
        double proj[LSH_BITS + 1];
        for (uint32_t b = 0; b <= LSH_BITS; b++) {
            double s = 0.0;
            for (uint32_t i = 0; i < n; i++)
                s += (double)z[i] * h[b * n + i];
            proj[b] = s;
        }
        double sign = proj[0] < 0.0 ? -1.0 : 1.0, c = sign * proj[0] / (1.0 + sign * proj[0]);
        uint64_t code = 0;
        for (uint32_t b = 1; b <= LSH_BITS; b++)
            code = code << 1 | (sign * proj[b] >= 0.0);
        v[k++] = (hashed){code << 32 | (uint64_t)(c * 4294967295.0), a};
    }
    qsort(v, k, sizeof *v, by_key);
    *nv = k;
}

static int by_pair(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->a != b->a)
        return (a->a > b->a) - (a->a < b->a);
    return (a->b > b->b) - (a->b < b->b);
}

static mipr_status hashed_candidates(const pair_src *p, double min_r2, uint64_t cap,
                                     cand_list *l, mipr_error *err)
{
    float *h = malloc((size_t)(LSH_BITS + 1) * p->n * sizeof *h);
    hashed *v = malloc(p->d * sizeof *v);
    mipr_status st = h && v ? MIPR_OK : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    uint64_t rng = NULL_SEED ^ 0x6c7368ull;
    for (uint32_t tb = 0; st == MIPR_OK && tb < LSH_TABLES; tb++) {
        uint32_t nv;
        lsh_table(p, &rng, h, v, &nv);
        for (uint32_t i = 0; st == MIPR_OK && i < nv; i++)
            for (uint32_t k = i + 1; k < nv && k <= i + LSH_WINDOW; k++) {
                if (v[k].key >> 32 != v[i].key >> 32)
                    break;
                double rho = corr(p, v[i].a, v[k].a);
                if (rho * rho >= min_r2 && l->n < cap && !push(l, v[i].a, v[k].a, 0.0, rho * rho))
                    st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
            }
    }
    free(h), free(v);
    if (st)
        return st;
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, by_pair);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (i && l->v[i].a == l->v[i - 1].a && l->v[i].b == l->v[i - 1].b)
            continue;
        l->v[k++] = (cand){l->v[i].a, l->v[i].b, NAN, l->v[i].r2, 0}; /* MI: when visited */
    }
    l->n = k;
    return MIPR_OK;
}

/* ---- k-means (clusters) on sign-canonical z-scored samples ---- */

static mipr_status cluster(const pair_src *p, uint32_t k, uint64_t seed, uint32_t *label,
                           mipr_error *err);

/* ---- visiting ---- */

static void fit(const pair_src *p, uint32_t lose, uint32_t keep, mipr_redundancy *r)
{
    double rho = corr(p, lose, keep);
    double alpha = p->sd[keep] > 0.0 ? rho * p->sd[lose] / p->sd[keep] : 0.0;
    r->alpha[lose] = (float)alpha;
    r->beta[lose] = (float)(p->mean[lose] - alpha * p->mean[keep]);
    r->r2[lose] = (float)(rho * rho);
}

static int by_r2_desc(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->r2 != b->r2)
        return (a->r2 < b->r2) - (a->r2 > b->r2);
    return (a->tie > b->tie) - (a->tie < b->tie);
}

/* Best reconstructions first: a pair visited early claims its neurons, so the order decides
 * what is merged. The seed orders pairs of equal R^2 (exact copies), the paper's random
 * element kept where it cannot cost anything. */
/* A hashed candidate's MI is estimated only when it is visited: most candidates are
 * skipped because a member is taken, and each estimate costs 2 x 16384 kernel values. */
static int above(const pair_src *p, cand *c, mipr_redundancy *r)
{
    if (isnan(c->nmi)) {
        c->nmi = sampled_nmi(p, c->a, c->b, NULL);
        r->significant += c->nmi > r->threshold;
    }
    return c->nmi > r->threshold;
}

static void visit(const pair_src *p, const mipr_redundancy_opts *o, cand_list *l, double *imp,
                  uint8_t *is_partner, mipr_redundancy *r)
{
    uint64_t rng = o->seed ^ 0x64726177ull;
    for (size_t i = 0; i < l->n; i++)
        l->v[i].tie = (uint32_t)mipr_rng_next(&rng);
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, by_r2_desc);
    for (size_t i = 1; i < l->n; i++)
        r->ties += l->v[i].r2 == l->v[i - 1].r2;
    uint32_t target = o->target ? o->target : p->d - 1;
    for (size_t i = 0; i < l->n && r->marked < target && r->marked + 1 < p->d; i++) {
        uint32_t a = l->v[i].a, b = l->v[i].b, lose, keep;
        if (r->is_marked[a] || r->is_marked[b] || (is_partner[a] && is_partner[b]) ||
            !above(p, &l->v[i], r))
            continue;
        r->draws++;
        if (is_partner[a] || is_partner[b])
            lose = is_partner[a] ? b : a;
        else /* the less important neuron goes; on a tie, the later one */
            lose = imp[a] > imp[b] || (imp[a] == imp[b] && a < b) ? b : a;
        keep = lose == a ? b : a;
        r->is_marked[lose] = 1, is_partner[keep] = 1;
        r->partner[lose] = keep;
        r->pair_mi[lose] = (float)l->v[i].nmi;
        fit(p, lose, keep, r);
        imp[keep] += imp[lose];
        r->marked++;
    }
}

static mipr_status same_cluster_only(const pair_src *p, const mipr_redundancy_opts *o,
                                     cand_list *l, mipr_error *err)
{
    uint32_t *label = malloc(p->d * sizeof *label);
    if (!label)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %u clusters", o->clusters);
    mipr_status st = cluster(p, o->clusters, o->seed, label, err);
    size_t k = 0;
    for (size_t i = 0; st == MIPR_OK && i < l->n; i++)
        if (label[l->v[i].a] == label[l->v[i].b])
            l->v[k++] = l->v[i];
    if (st == MIPR_OK)
        l->n = k;
    free(label);
    return st;
}

static mipr_status alloc_result(mipr_redundancy *r, uint32_t d, mipr_error *err)
{
    r->is_marked = calloc(d, 1), r->partner = calloc(d, sizeof *r->partner);
    r->pair_mi = calloc(d, sizeof *r->pair_mi);
    r->alpha = calloc(d, sizeof *r->alpha), r->beta = calloc(d, sizeof *r->beta);
    r->r2 = calloc(d, sizeof *r->r2);
    if (r->is_marked && r->partner && r->pair_mi && r->alpha && r->beta && r->r2)
        return MIPR_OK;
    return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
}

void mipr_redundancy_free(mipr_redundancy *r)
{
    if (!r)
        return;
    free(r->is_marked), free(r->partner), free(r->pair_mi);
    free(r->alpha), free(r->beta), free(r->r2);
    memset(r, 0, sizeof *r);
}

static mipr_status search(pair_src *p, const mipr_redundancy_opts *o, mipr_redundancy *r,
                          cand_list *l, mipr_error *err)
{
    double min_r2 = o->min_r2 > 0.0 ? o->min_r2 : DEFAULT_MIN_R2;
    mipr_status st = standardise(p, err);
    if (st == MIPR_OK)
        st = p->d <= MIPR_REDUNDANCY_MATRIX_MAX
                 ? mipr_mi_all_pairs(p->x, p->d, p->n, &o->mi, &p->mat, err)
                 : sampled_setup(p, &o->mi, err);
    r->threshold = o->threshold;
    if (st == MIPR_OK && !(o->threshold > 0.0)) {
        st = null_threshold(p, &r->threshold, err);
        r->null_level = 1.0 / (MIPR_REDUNDANCY_NULL_PAIRS + 1);
    }
    if (st == MIPR_OK) {
        uint64_t cap = o->max_draws ? o->max_draws : 64ull * p->d;
        st = p->mat.mi ? matrix_candidates(p, r->threshold, min_r2, l, r, err)
                       : hashed_candidates(p, min_r2, cap, l, err);
    }
    r->redundant_pairs = st == MIPR_OK ? l->n : 0;
    if (st == MIPR_OK && o->clusters > 1)
        st = same_cluster_only(p, o, l, err);
    r->rho_equiv = mipr_mi_rho_equivalent(r->threshold, p->n, &o->mi.width);
    return st;
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
    cand_list l = {0};
    double *imp = malloc(d * sizeof *imp);
    uint8_t *is_partner = calloc(d, 1);
    mipr_status st = imp && is_partner ? alloc_result(r, d, err)
                                       : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    if (st == MIPR_OK)
        st = search(&p, o, r, &l, err);
    if (st == MIPR_OK) {
        for (uint32_t a = 0; a < d; a++)
            imp[a] = o->importance ? o->importance[a] : 0.0;
        visit(&p, o, &l, imp, is_partner, r);
    }
    pair_src_free(&p);
    free(l.v), free(imp), free(is_partner);
    if (st)
        mipr_redundancy_free(r);
    return st;
}

/* ---- the Gaussian equivalent of a threshold ---- */

/* Normalised alpha = 2 MI of (x, rho x + sqrt(1 - rho^2) e); gx holds x's G matrix. */
static double gaussian_nmi(double rho, const float *x, const float *e, const float *gx, float *y,
                           uint32_t n, const mipr_width *w)
{
    for (uint32_t i = 0; i < n; i++)
        y[i] = (float)(rho * x[i] + sqrt(1.0 - rho * rho) * e[i]);
    double sy = mipr_kernel_width(y, n, w), inv = 1.0 / (sy * sy);
    double sa = 0, saa = 0, sb = 0, sbb = 0, j = 0;
    for (uint32_t u = 0; u < n; u++)
        for (uint32_t v = 0; v < n; v++) {
            double dv = (double)y[u] - y[v], g = exp(-dv * dv * inv), h = gx[(size_t)u * n + v];
            sa += h, saa += h * h, sb += g, sbb += g * g, j += h * g;
        }
    double n2 = (double)n * n;
    double self = 0.5 * (log2(n2 * saa / (sa * sa)) + log2(n2 * sbb / (sb * sb)));
    return self > 0.0 ? log2(n2 * j / (sa * sb)) / self : 0.0;
}

double mipr_mi_rho_equivalent(double nmi, uint32_t n, const mipr_width *w)
{
    n = n < 2 ? 2 : n > 1024 ? 1024 : n; /* the curve's drift with n is slow beyond */
    float *x = malloc(3 * (size_t)n * sizeof *x), *gx = malloc((size_t)n * n * sizeof *gx);
    if (!x || !gx || !(nmi > 0.0)) {
        free(x), free(gx);
        return 0.0;
    }
    uint64_t rng = NULL_SEED ^ 0x72686full;
    for (uint32_t i = 0; i < 2 * n; i++)
        x[i] = (float)gauss(&rng);
    double sx = mipr_kernel_width(x, n, w), inv = 1.0 / (sx * sx);
    for (uint32_t u = 0; u < n; u++)
        for (uint32_t v = 0; v < n; v++) {
            double dv = (double)x[u] - x[v];
            gx[(size_t)u * n + v] = (float)exp(-dv * dv * inv);
        }
    double lo = 0.0, hi = 0.9999;
    if (gaussian_nmi(hi, x, x + n, gx, x + 2 * n, n, w) < nmi)
        lo = hi = 1.0;
    for (int it = 0; it < 14 && hi > lo; it++) {
        double mid = 0.5 * (lo + hi);
        if (gaussian_nmi(mid, x, x + n, gx, x + 2 * n, n, w) < nmi)
            lo = mid;
        else
            hi = mid;
    }
    free(x), free(gx);
    return 0.5 * (lo + hi);
}

/* ---- k-means ---- */

static double dist2(const float *a, const float *b, uint32_t n)
{
    double s = 0.0;
    for (uint32_t i = 0; i < n; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

/* The unit-norm samples with each neuron's sign chosen by the sign of its largest-magnitude
 * sample: a neuron and its negated (or scaled) copy become the same point. */
static void canonical(float *z, const pair_src *p)
{
    for (uint32_t a = 0; a < p->d; a++) {
        const float *s = p->zs + (size_t)a * p->n;
        float *o = z + (size_t)a * p->n, big = 0.0f;
        for (uint32_t i = 0; i < p->n; i++)
            big = fabsf(s[i]) > fabsf(big) ? s[i] : big;
        for (uint32_t i = 0; i < p->n; i++)
            o[i] = big < 0.0f ? -s[i] : s[i];
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

static mipr_status cluster(const pair_src *p, uint32_t k, uint64_t seed, uint32_t *label,
                           mipr_error *err)
{
    uint32_t d = p->d, n = p->n;
    float *z = malloc((size_t)d * n * sizeof *z), *cent = malloc((size_t)k * n * sizeof *cent);
    double *tmp = malloc((d > n ? d : n) * sizeof *tmp);
    mipr_status st = MIPR_OK;
    if (!z || !cent || !tmp) {
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for k-means");
    } else {
        uint64_t rng = seed ^ 0x6b6d65616e73ull;
        canonical(z, p);
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
