/* Calibration: runs a text through the engine and records, for every FFN neuron of every
 * layer, statistics over all calibration tokens and the activations of sampled tokens.
 *
 * Windows: the text is one token stream cut into BOS windows exactly as perplexity's stream
 * mode cuts it (core/eval/windows.c): window i is BOS followed by stream tokens
 * [i*(window-1), (i+1)*(window-1)).
 *
 * Token accounting: every position of a window is run, but the BOS rows are not recorded.
 * BOS at position 0 has no context, so its activations are the same vector in every
 * window; counting it would weight one constant point once per window in the statistics and
 * could hand the MI estimator duplicate samples. The calibration tokens are therefore the
 * text tokens, each seen once in its window's context: `tokens` counts them, and global
 * index g (the unit of sample_pos) is stream token g, run at position g % (window-1) + 1 of
 * window g / (window-1). */
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"
#include "mipr.h"
#include "rng.h"
#include "windows.h"

/* Tokens per engine batch: each observer call hands over up to this many rows per layer. */
#define CALIB_BATCH 64u

/* Per-neuron sums of one block (the rows of one observer call), max_ff entries each. */
typedef struct block_acc {
    double *sum, *mean, *m2, *sum_abs, *sum_sq;
    float *min, *max;
} block_acc;

typedef struct calib_run {
    mipr_calib *c;
    block_acc acc;
    size_t base;  /* global index of the current window's first text token */
    int bad_call; /* the engine reported a layer shape the record does not have */
} calib_run;

/* ---- record ------------------------------------------------------------------------------ */

static mipr_status layer_alloc(mipr_calib_layer *L, uint32_t d_ff, uint32_t n_samples,
                               mipr_error *err)
{
    L->d_ff = d_ff;
    L->mean = calloc(d_ff, sizeof *L->mean);
    L->m2 = calloc(d_ff, sizeof *L->m2);
    L->sum_abs = calloc(d_ff, sizeof *L->sum_abs);
    L->sum_sq = calloc(d_ff, sizeof *L->sum_sq);
    L->min = calloc(d_ff, sizeof *L->min);
    L->max = calloc(d_ff, sizeof *L->max);
    if (n_samples)
        L->samples = calloc((size_t)d_ff * n_samples, sizeof *L->samples);
    if (!L->mean || !L->m2 || !L->sum_abs || !L->sum_sq || !L->min || !L->max ||
        (n_samples && !L->samples))
        return mipr_error_set(err, MIPR_ERR_NOMEM,
                              "out of memory for a calibration layer of %u neurons x %u samples",
                              d_ff, n_samples);
    return MIPR_OK;
}

static void layer_release(mipr_calib_layer *L)
{
    free(L->mean);
    free(L->m2);
    free(L->sum_abs);
    free(L->sum_sq);
    free(L->min);
    free(L->max);
    free(L->samples);
}

void mipr_calib_free(mipr_calib *c)
{
    if (!c)
        return;
    if (c->layers)
        for (uint32_t l = 0; l < c->n_layers; l++)
            layer_release(&c->layers[l]);
    free(c->layers);
    free(c->sample_pos);
    free(c->heldout);
    mipr_calib_file_free(c->file_);
    free(c);
}

static mipr_status check_shapes(uint32_t n_layers, const uint32_t *d_ff, uint32_t n_samples,
                                mipr_error *err)
{
    if (n_layers == 0 || n_layers > MIPR_MAX_LAYERS)
        return mipr_error_set(err, MIPR_ERR_ARG, "calibration record: %u layers outside 1..%u",
                              n_layers, MIPR_MAX_LAYERS);
    for (uint32_t l = 0; l < n_layers; l++) {
        if (d_ff[l] == 0 || d_ff[l] > MIPR_MAX_FF)
            return mipr_error_set(err, MIPR_ERR_ARG,
                                  "calibration record: layer %u width %u outside 1..%u", l,
                                  d_ff[l], MIPR_MAX_FF);
        if ((uint64_t)d_ff[l] * n_samples > SIZE_MAX / sizeof(float))
            return mipr_error_set(err, MIPR_ERR_NOMEM,
                                  "calibration record: %u x %u samples do not fit in memory",
                                  d_ff[l], n_samples);
    }
    return MIPR_OK;
}

mipr_status mipr_calib_new(mipr_calib **out, uint32_t n_layers, const uint32_t *d_ff,
                           uint32_t n_samples, mipr_error *err)
{
    return mipr_calib_new_shapes(out, n_layers, d_ff, n_samples, 1, err);
}

mipr_status mipr_calib_new_shapes(mipr_calib **out, uint32_t n_layers, const uint32_t *d_ff,
                                  uint32_t n_samples, int with_samples, mipr_error *err)
{
    *out = NULL;
    mipr_status st = check_shapes(n_layers, d_ff, n_samples, err);
    if (st)
        return st;
    mipr_calib *c = calloc(1, sizeof *c);
    if (!c)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a calibration record");
    c->n_layers = n_layers;
    c->n_samples = n_samples;
    c->layers = calloc(n_layers, sizeof *c->layers);
    c->sample_pos = n_samples ? calloc(n_samples, sizeof *c->sample_pos) : NULL;
    if (!c->layers || (n_samples && !c->sample_pos))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %u sample positions",
                            n_samples);
    for (uint32_t l = 0; st == MIPR_OK && l < n_layers; l++)
        st = layer_alloc(&c->layers[l], d_ff[l], with_samples ? n_samples : 0, err);
    if (st) {
        mipr_calib_free(c);
        return st;
    }
    *out = c;
    return MIPR_OK;
}

/* ---- sample positions -------------------------------------------------------------------- */

/* Uniform in [0, bound): draws below 2^64 mod bound are rejected so that no value is
 * favoured. */
static uint64_t uniform_below(uint64_t *state, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = mipr_rng_next(state);
        if (r >= threshold)
            return r % bound;
    }
}

/* Knuth's selection sampling (Algorithm S): token t is taken with probability
 * (still needed) / (tokens left), which makes every k-subset of [0, n) equally likely and
 * yields the positions already sorted, without memory beyond the output. */
static void choose_samples(uint64_t *pos, uint32_t k, uint64_t n, uint64_t seed)
{
    uint64_t state = seed;
    uint32_t got = 0;
    for (uint64_t t = 0; got < k && t < n; t++)
        if (uniform_below(&state, n - t) < k - got)
            pos[got++] = t;
}

/* ---- statistics -------------------------------------------------------------------------- */

static mipr_status acc_alloc(block_acc *a, uint32_t max_ff, mipr_error *err)
{
    a->sum = malloc(max_ff * sizeof *a->sum);
    a->mean = malloc(max_ff * sizeof *a->mean);
    a->m2 = malloc(max_ff * sizeof *a->m2);
    a->sum_abs = malloc(max_ff * sizeof *a->sum_abs);
    a->sum_sq = malloc(max_ff * sizeof *a->sum_sq);
    a->min = malloc(max_ff * sizeof *a->min);
    a->max = malloc(max_ff * sizeof *a->max);
    if (!a->sum || !a->mean || !a->m2 || !a->sum_abs || !a->sum_sq || !a->min || !a->max)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for statistics scratch");
    return MIPR_OK;
}

static void acc_release(block_acc *a)
{
    free(a->sum);
    free(a->mean);
    free(a->m2);
    free(a->sum_abs);
    free(a->sum_sq);
    free(a->min);
    free(a->max);
}

/* Pass 1 over n rows of d_ff: sums, extremes (the kernel table's colstats, in double) and
 * the block mean. */
static void block_sums(block_acc *a, const float *rows, uint32_t n, uint32_t d_ff)
{
    mipr_kernels()->colstats(rows, n, d_ff, d_ff, a->sum, a->sum_sq, a->sum_abs, a->min, a->max);
    for (uint32_t j = 0; j < d_ff; j++)
        a->mean[j] = a->sum[j] / n;
}

/* Pass 2: squared deviations from the block's own mean, which stays accurate where
 * sum_sq - sum^2/n would cancel. */
static void block_m2(block_acc *a, const float *rows, uint32_t n, uint32_t d_ff)
{
    for (uint32_t j = 0; j < d_ff; j++)
        a->m2[j] = 0.0;
    for (uint32_t t = 0; t < n; t++) {
        const float *x = rows + (size_t)t * d_ff;
        for (uint32_t j = 0; j < d_ff; j++) {
            double d = x[j] - a->mean[j];
            a->m2[j] += d * d;
        }
    }
}

/* Chan et al.'s pairwise update: merges a block of nb tokens into the running moments. */
static void merge_block(mipr_calib_layer *L, const block_acc *a, uint32_t nb)
{
    double na = (double)L->count, n = na + nb;
    for (uint32_t j = 0; j < L->d_ff; j++) {
        double delta = a->mean[j] - L->mean[j];
        if (L->count == 0) {
            L->mean[j] = a->mean[j];
            L->m2[j] = a->m2[j];
            L->min[j] = a->min[j];
            L->max[j] = a->max[j];
        } else {
            L->mean[j] += delta * (nb / n);
            L->m2[j] += a->m2[j] + delta * delta * (na * nb / n);
            L->min[j] = a->min[j] < L->min[j] ? a->min[j] : L->min[j];
            L->max[j] = a->max[j] > L->max[j] ? a->max[j] : L->max[j];
        }
        L->sum_abs[j] += a->sum_abs[j];
        L->sum_sq[j] += a->sum_sq[j];
    }
    L->count += nb;
}

/* ---- the observer ------------------------------------------------------------------------ */

/* First k with pos[k] >= g. */
static uint32_t lower_bound(const uint64_t *pos, uint32_t n, uint64_t g)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pos[mid] < g)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Copies the rows of sampled tokens among global tokens [first, first + n). */
static void copy_samples(const mipr_calib *c, mipr_calib_layer *L, const float *rows,
                         uint64_t first, uint32_t n)
{
    for (uint32_t k = lower_bound(c->sample_pos, c->n_samples, first);
         k < c->n_samples && c->sample_pos[k] < first + n; k++) {
        const float *x = rows + (size_t)(c->sample_pos[k] - first) * L->d_ff;
        for (uint32_t j = 0; j < L->d_ff; j++)
            L->samples[(size_t)j * c->n_samples + k] = x[j];
    }
}

static void observe(void *ctx, uint32_t layer, uint32_t pos, uint32_t n_tokens, uint32_t d_ff,
                    const float *act)
{
    calib_run *r = ctx;
    if (layer >= r->c->n_layers || d_ff != r->c->layers[layer].d_ff) {
        r->bad_call = 1;
        return;
    }
    uint32_t skip = pos == 0; /* the BOS row */
    if (n_tokens <= skip)
        return;
    mipr_calib_layer *L = &r->c->layers[layer];
    const float *rows = act + (size_t)skip * d_ff;
    uint32_t nb = n_tokens - skip;
    block_sums(&r->acc, rows, nb, d_ff);
    block_m2(&r->acc, rows, nb, d_ff);
    merge_block(L, &r->acc, nb);
    copy_samples(r->c, L, rows, r->base + pos + skip - 1, nb);
}

/* ---- the run ----------------------------------------------------------------------------- */

static mipr_status run_windows(calib_run *r, mipr_engine *eng, const mipr_windows *ws,
                               const mipr_calib_opts *o, mipr_error *err)
{
    int32_t *win = malloc((size_t)o->window * sizeof *win);
    if (!win)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a window");
    mipr_status st = MIPR_OK;
    for (size_t w = 0; st == MIPR_OK && w < ws->count; w++) {
        r->base = w * ws->per;
        st = mipr_engine_forward(eng, win, mipr_windows_get(ws, w, win), 0, NULL, 0, err);
        if (st == MIPR_OK && r->bad_call)
            st = mipr_error_set(err, MIPR_ERR_ARG, "the engine reported a layer shape the "
                                                   "model does not have");
        if (st == MIPR_OK && o->progress)
            o->progress(o->progress_ctx, w + 1, ws->count);
    }
    free(win);
    return st;
}

static mipr_status run_engine(mipr_calib *c, const mipr_model *m, const mipr_windows *ws,
                              const mipr_calib_opts *o, mipr_error *err)
{
    calib_run r = {.c = c};
    uint32_t max_ff = 0;
    for (uint32_t l = 0; l < c->n_layers; l++)
        max_ff = c->layers[l].d_ff > max_ff ? c->layers[l].d_ff : max_ff;
    mipr_engine *eng = NULL;
    mipr_status st = acc_alloc(&r.acc, max_ff, err);
    if (st == MIPR_OK)
        st = mipr_engine_new(&eng, m, o->window, CALIB_BATCH, err);
    if (st == MIPR_OK) {
        mipr_engine_set_pool(eng, o->pool);
        mipr_engine_set_observer(eng, observe, &r);
        st = run_windows(&r, eng, ws, o, err);
    }
    mipr_engine_free(eng);
    acc_release(&r.acc);
    return st;
}

static mipr_status new_for_model(mipr_calib **out, const mipr_model *m, uint32_t n_samples,
                                 mipr_error *err)
{
    uint32_t n_layers = m->hp.n_layers;
    if (n_layers == 0 || n_layers > MIPR_MAX_LAYERS)
        return mipr_error_set(err, MIPR_ERR_ARG, "the model has %u layers", n_layers);
    uint32_t *d_ff = malloc(n_layers * sizeof *d_ff);
    if (!d_ff)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < n_layers; l++)
        d_ff[l] = m->layers[l].d_ff;
    mipr_status st = mipr_calib_new(out, n_layers, d_ff, n_samples, err);
    free(d_ff);
    return st;
}

static void set_header(mipr_calib *c, const mipr_model *m, const mipr_windows *ws,
                       const mipr_calib_opts *o)
{
    c->dim = m->hp.dim;
    c->window = o->window;
    c->tokens = ws->n;
    c->seed = o->seed;
    snprintf(c->model, sizeof c->model, "%s", o->model_name ? o->model_name : m->name);
    snprintf(c->text, sizeof c->text, "%s", o->text_name ? o->text_name : "");
    choose_samples(c->sample_pos, c->n_samples, c->tokens, c->seed);
}

/* The stream's last `n` tokens, set aside before calibration sees the stream. */
static mipr_status hold_out(mipr_windows *ws, uint32_t n, int32_t **held, mipr_error *err)
{
    *held = NULL;
    if (n == 0)
        return MIPR_OK;
    if (n >= ws->n / 2)
        return mipr_error_set(err, MIPR_ERR_ARG, "calibration text too short: %zu tokens, and %u "
                              "are asked to be held out (at most half)", ws->n, n);
    if (!(*held = malloc(n * sizeof **held)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    memcpy(*held, ws->ids + ws->n - n, n * sizeof **held);
    mipr_windows_limit(ws, ws->n - n);
    return MIPR_OK;
}

mipr_status mipr_calibrate(mipr_calib **out, const mipr_model *m, const mipr_tokenizer *tok,
                           const char *text, size_t len, const mipr_calib_opts *opts,
                           mipr_error *err)
{
    *out = NULL;
    if (opts->window < 2 || opts->window > MIPR_MAX_SEQ)
        return mipr_error_set(err, MIPR_ERR_ARG, "window %u outside 2..%u", opts->window,
                              MIPR_MAX_SEQ);
    mipr_windows ws;
    mipr_status st = mipr_windows_init(&ws, tok, text, len, opts->window, err);
    if (st)
        return st;
    int32_t *held = NULL;
    mipr_calib *c = NULL;
    st = hold_out(&ws, opts->heldout, &held, err);
    mipr_windows_limit(&ws, opts->max_tokens);
    if (st == MIPR_OK && ws.n == 0)
        st = mipr_error_set(err, MIPR_ERR_ARG, "the calibration text holds no token");
    else if (st == MIPR_OK && opts->n_samples > ws.n)
        st = mipr_error_set(err, MIPR_ERR_ARG,
                            "calibration text too short: %zu tokens, asked for %u samples",
                            ws.n, opts->n_samples);
    else if (st == MIPR_OK)
        st = new_for_model(&c, m, opts->n_samples, err);
    if (st == MIPR_OK) {
        set_header(c, m, &ws, opts);
        c->heldout = held, c->n_heldout = opts->heldout, held = NULL;
        st = run_engine(c, m, &ws, opts, err);
    }
    free(held);
    mipr_windows_free(&ws);
    if (st) {
        mipr_calib_free(c);
        return st;
    }
    *out = c;
    return MIPR_OK;
}
