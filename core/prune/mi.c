/* Alpha = 2 mutual information between every pair of a layer's neurons, exact and tiled.
 *
 * With G_a(i,j) = exp(-(x_a[i] - x_a[j])^2 / sigma_a^2) (the squared Gaussian kernel),
 * S_a = sum_ij G_a and J_ab = sum_ij G_a G_b, the estimator is
 *   H_a = log2(n^2 / S_a),  I_ab = log2(n^2 J_ab / (S_a S_b)).
 * J is the Gram matrix of the vectors vec(G_a): the (i, j) plane is cut into tiles of
 * 32 x 32 sample pairs, each tile's G is a d x 1024 matrix, and J += G G^T is a GEMM on the
 * kernel table. Nothing of size n x n is ever stored. Symmetry halves the (i, j) plane:
 * tiles above the diagonal count twice. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mipr.h"
#include "rng.h"

#define SB 32u  /* samples per tile side */
#define NB 64u /* neurons per GEMM block */

double mipr_mi2_pair(const float *x, const float *y, size_t n, double sx, double sy)
{
    double sa = 0.0, sb = 0.0, j = 0.0, ia = 1.0 / (sx * sx), ib = 1.0 / (sy * sy);
    for (size_t u = 0; u < n; u++)
        for (size_t v = 0; v < n; v++) {
            double dx = (double)x[u] - x[v], dy = (double)y[u] - y[v];
            double ga = exp(-dx * dx * ia), gb = exp(-dy * dy * ib);
            sa += ga, sb += gb, j += ga * gb;
        }
    return log2((double)n * (double)n * j / (sa * sb));
}

typedef struct {
    const struct mipr_kernels *k;
    const float *x;      /* d x n samples */
    uint32_t d, n, nblk; /* nblk: neuron blocks */
    float *inv;          /* 1 / sigma^2 */
    float *g;            /* d x (SB*SB) tile of G */
    float *tmp;          /* tasks x NB x NB gemm outputs */
    double *s, *j;       /* d, d x d (upper block triangle filled) */
    /* the current tile */
    uint32_t i0, ni, j0, nj;
    double w;
    size_t tasks;
} mi_ctx;

/* Phase 1 of a tile: G rows of a run of neurons, and their sums. */
static void tile_g(void *ctx, size_t t)
{
    mi_ctx *c = ctx;
    size_t p = (size_t)c->ni * c->nj, per = (c->d + c->tasks - 1) / c->tasks;
    for (size_t a = t * per; a < c->d && a < (t + 1) * per; a++) {
        const float *xa = c->x + a * c->n;
        float *ga = c->g + a * p;
        c->k->gauss_block(ga, xa + c->i0, c->ni, xa + c->j0, c->nj, c->inv[a]);
        double s = 0.0;
        for (size_t q = 0; q < p; q++)
            s += ga[q];
        c->s[a] += c->w * s;
    }
}

/* Phase 2 of a tile: J blocks (r <= q), each task with its own output buffer. */
static void tile_j(void *ctx, size_t t)
{
    mi_ctx *c = ctx;
    size_t p = (size_t)c->ni * c->nj, pairs = (size_t)c->nblk * (c->nblk + 1) / 2;
    float *tmp = c->tmp + t * NB * NB;
    /* contiguous runs of block pairs share their row block: it stays in this core's cache */
    size_t per = (pairs + c->tasks - 1) / c->tasks;
    for (size_t b = t * per; b < pairs && b < (t + 1) * per; b++) {
        size_t r = 0, rem = b; /* b-th block pair (r, q) with r <= q, row-major */
        while (rem >= c->nblk - r)
            rem -= c->nblk - r, r++;
        size_t q = r + rem, r0 = r * NB, q0 = q * NB;
        size_t nr = c->d - r0 < NB ? c->d - r0 : NB, nq = c->d - q0 < NB ? c->d - q0 : NB;
        /* tmp[u][v] = G[r0+u] . G[q0+v] */
        c->k->gemm[MIPR_DT_F32](tmp, c->g + q0 * p, c->g + r0 * p, nr, nq, p);
        for (size_t u = 0; u < nr; u++)
            for (size_t v = 0; v < nq; v++)
                c->j[(r0 + u) * c->d + q0 + v] += c->w * tmp[u * nq + v];
    }
}

static void run_tile(mi_ctx *c, mipr_pool *pool, uint32_t bi, uint32_t bj, double w)
{
    c->i0 = bi * SB, c->j0 = bj * SB;
    c->ni = c->n - c->i0 < SB ? c->n - c->i0 : SB;
    c->nj = c->n - c->j0 < SB ? c->n - c->j0 : SB;
    c->w = w;
    mipr_pool_run(pool, tile_g, c, c->tasks);
    mipr_pool_run(pool, tile_j, c, c->tasks);
}

/* All tiles (i <= j); or, approximately, all diagonal tiles (they hold the i == j terms,
 * large and fixed) plus a random subset of the others, scaled to stay unbiased. */
static void run_tiles(mi_ctx *c, const mipr_mi_opts *o)
{
    uint32_t nt = (c->n + SB - 1) / SB;
    uint64_t off = (uint64_t)nt * (nt - 1) / 2;
    uint64_t m = off, want = (o->sample_pairs + SB * SB - 1) / (SB * SB);
    if (o->sample_pairs) /* the diagonal tiles are part of the budget */
        m = want > nt ? want - nt : 1;
    if (m >= off) {
        for (uint32_t bi = 0; bi < nt; bi++)
            for (uint32_t bj = bi; bj < nt; bj++)
                run_tile(c, o->pool, bi, bj, bi == bj ? 1.0 : 2.0);
        return;
    }
    uint64_t seed = o->seed ^ 0x6d69707233ull;
    for (uint32_t b = 0; b < nt; b++)
        run_tile(c, o->pool, b, b, 1.0);
    for (uint64_t t = 0; t < m; t++) {
        uint64_t pick = mipr_rng_next(&seed) % off;
        uint32_t bi = 0;
        while (pick >= nt - 1 - bi)
            pick -= nt - 1 - bi, bi++;
        run_tile(c, o->pool, bi, bi + 1 + (uint32_t)pick, 2.0 * (double)off / (double)m);
    }
}

static void finish(const mi_ctx *c, mipr_mi_matrix *out)
{
    double n2 = (double)c->n * c->n;
    for (uint32_t a = 0; a < c->d; a++)
        out->h[a] = log2(n2 / c->s[a]);
    for (uint32_t a = 0; a < c->d; a++)
        for (uint32_t b = a; b < c->d; b++) {
            double v = log2(n2 * c->j[(size_t)a * c->d + b] / (c->s[a] * c->s[b]));
            out->mi[(size_t)a * c->d + b] = out->mi[(size_t)b * c->d + a] = (float)v;
        }
}

void mipr_mi_matrix_free(mipr_mi_matrix *m)
{
    if (!m)
        return;
    free(m->mi);
    free(m->h);
    free(m->sigma);
    memset(m, 0, sizeof *m);
}

static mipr_status alloc_all(mi_ctx *c, mipr_mi_matrix *out, mipr_error *err)
{
    size_t d = c->d, dd = d * d;
    out->d = c->d;
    out->mi = malloc(dd * sizeof *out->mi);
    out->h = malloc(d * sizeof *out->h);
    out->sigma = malloc(d * sizeof *out->sigma);
    c->inv = malloc(d * sizeof *c->inv);
    c->g = malloc(d * SB * SB * sizeof *c->g);
    c->tmp = malloc(c->tasks * NB * NB * sizeof *c->tmp);
    c->s = calloc(d, sizeof *c->s);
    c->j = calloc(dd, sizeof *c->j);
    if (out->mi && out->h && out->sigma && c->inv && c->g && c->tmp && c->s && c->j)
        return MIPR_OK;
    return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for all-pairs MI of %zu neurons "
                          "(%zu MiB)", d, dd * 12 >> 20);
}

mipr_status mipr_mi_all_pairs(const float *samples, uint32_t d, uint32_t n,
                              const mipr_mi_opts *opts, mipr_mi_matrix *out, mipr_error *err)
{
    memset(out, 0, sizeof *out);
    if (d == 0 || n < 2 || d > MIPR_MAX_FF)
        return mipr_error_set(err, MIPR_ERR_ARG, "all-pairs MI: %u neurons x %u samples", d, n);
    mi_ctx c = {.k = mipr_kernels(), .x = samples, .d = d, .n = n, .nblk = (d + NB - 1) / NB};
    c.tasks = mipr_pool_threads(opts->pool) * 2;
    mipr_status st = alloc_all(&c, out, err);
    if (st == MIPR_OK) {
        for (uint32_t a = 0; a < d; a++) {
            double s = mipr_kernel_width(samples + (size_t)a * n, n, &opts->width);
            out->sigma[a] = (float)s;
            c.inv[a] = (float)(1.0 / (s * s));
        }
        run_tiles(&c, opts);
        finish(&c, out);
    }
    free(c.inv), free(c.g), free(c.tmp), free(c.s), free(c.j);
    if (st)
        mipr_mi_matrix_free(out);
    return st;
}

/* Cauchy-Schwarz on the vectors vec(G) bounds I_ab by the mean of the two self-MIs, with
 * equality for a neuron and its scaled copy: so this is 1 for duplicates and <= 1 always. */
double mipr_mi_normalized(const mipr_mi_matrix *m, uint32_t a, uint32_t b)
{
    double self = 0.5 * ((double)m->mi[(size_t)a * m->d + a] + m->mi[(size_t)b * m->d + b]);
    return self > 0.0 ? m->mi[(size_t)a * m->d + b] / self : 0.0;
}
