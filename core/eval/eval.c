/* Negative log-likelihood and KL divergence from a reference model, over token windows. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "mipr.h"

typedef struct {
    mipr_scoring sc;
    mipr_eval_result *res;
} evaluator;

double mipr_log_norm(const float *l, uint32_t n)
{
    float max = l[0];
    for (uint32_t i = 1; i < n; i++)
        max = l[i] > max ? l[i] : max;
    double s = 0.0;
    for (uint32_t i = 0; i < n; i++)
        s += exp((double)(l[i] - max));
    return (double)max + log(s);
}

/* A sum of exact zeros can round a little below 0; NaN (non-finite logits) stays NaN, so
 * that finish() refuses it rather than reporting a perfect match. */
static double clamp_kl(double kl)
{
    return kl < 0.0 ? 0.0 : kl;
}

/* KL(P || Q) for logits p (reference) and q. */
static double kl_div(const float *p, const float *q, uint32_t n)
{
    double lp = mipr_log_norm(p, n), lq = mipr_log_norm(q, n), kl = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        double a = (double)p[i] - lp;
        kl += exp(a) * (a - ((double)q[i] - lq));
    }
    return clamp_kl(kl);
}

mipr_status mipr_score_window(const mipr_scoring *s, const int32_t *ids, uint32_t n,
                              mipr_score_fn fn, void *ctx, mipr_error *err)
{
    for (uint32_t done = 0; done + 1 < n;) {
        uint32_t c = n - 1 - done < MIPR_EVAL_BATCH ? n - 1 - done : MIPR_EVAL_BATCH;
        mipr_status st = mipr_engine_forward(s->e, ids + done, c, done, s->logits, 1, err);
        if (st == MIPR_OK && s->ref)
            st = mipr_engine_forward(s->ref, ids + done, c, done, s->ref_logits, 1, err);
        if (st)
            return st;
        for (uint32_t t = 0; t < c; t++)
            fn(ctx, ids, done + t, s->logits + (size_t)t * s->vocab,
               s->ref ? s->ref_logits + (size_t)t * s->vocab : NULL);
        done += c;
    }
    return MIPR_OK;
}

static void accumulate(void *ctx, const int32_t *ids, uint32_t t, const float *l,
                       const float *ref)
{
    evaluator *v = ctx;
    v->res->nll_sum += mipr_log_norm(l, v->sc.vocab) - (double)l[ids[t + 1]];
    if (ref)
        v->res->kl_sum += kl_div(ref, l, v->sc.vocab);
    v->res->tokens++;
}

/* Non-finite logits (NaN or infinite weights, or an overflow) make a NaN or infinite sum;
 * such a result is refused, never reported as a perplexity or a KL of 0. */
static mipr_status finish(mipr_eval_result *res, mipr_error *err)
{
    res->mean_nll = res->nll_sum / (double)res->tokens;
    res->perplexity = exp(res->mean_nll);
    res->mean_kl = res->kl_sum / (double)res->tokens;
    if (isfinite(res->nll_sum) && isfinite(res->kl_sum))
        return MIPR_OK;
    return mipr_error_set(err, MIPR_ERR_FORMAT, "evaluation: the model's %s is %s over %llu "
                          "tokens (its logits are not finite: NaN or infinite weights?)",
                          isfinite(res->nll_sum) ? "KL divergence" : "log-likelihood",
                          isnan(isfinite(res->nll_sum) ? res->kl_sum : res->nll_sum) ? "NaN"
                                                                                    : "infinite",
                          (unsigned long long)res->tokens);
}

/* Every window of ids through v's engines, each scored position handed to fn(ctx). */
static mipr_status run_fn(evaluator *v, const int32_t *ids, size_t n, uint32_t window,
                          int32_t bos, mipr_score_fn fn, void *ctx, mipr_error *err)
{
    int32_t *win = malloc((size_t)window * sizeof *win);
    if (!win)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    mipr_status st = MIPR_OK;
    for (size_t at = 0; st == MIPR_OK && at < n; at += window - 1) {
        size_t take = n - at < window - 1 ? n - at : window - 1;
        win[0] = bos;
        memcpy(win + 1, ids + at, take * sizeof *ids);
        st = mipr_score_window(&v->sc, win, (uint32_t)take + 1, fn, ctx, err);
    }
    free(win);
    return st;
}

mipr_status mipr_eval_tokens(const mipr_model *m, const mipr_model *reference,
                             const int32_t *ids, size_t n, uint32_t window, int32_t bos,
                             mipr_pool *pool, mipr_eval_result *res, mipr_error *err)
{
    memset(res, 0, sizeof *res);
    if (window < 2 || n == 0)
        return mipr_error_set(err, MIPR_ERR_ARG, "evaluation needs a window >= 2 and tokens "
                              "(got window %u, %zu tokens)", window, n);
    if (reference && reference->hp.vocab_size != m->hp.vocab_size)
        return mipr_error_set(err, MIPR_ERR_ARG, "the reference model's vocabulary (%u) is not "
                              "the model's (%u)", reference->hp.vocab_size, m->hp.vocab_size);
    evaluator v = {.sc = {.vocab = m->hp.vocab_size}, .res = res};
    mipr_scoring *sc = &v.sc;
    mipr_status st = mipr_engine_new(&sc->e, m, window, MIPR_EVAL_BATCH, err);
    if (st == MIPR_OK && reference)
        st = mipr_engine_new(&sc->ref, reference, window, MIPR_EVAL_BATCH, err);
    size_t lb = (size_t)MIPR_EVAL_BATCH * sc->vocab * sizeof(float);
    if (st == MIPR_OK &&
        (!(sc->logits = malloc(lb)) || (reference && !(sc->ref_logits = malloc(lb)))))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for logits");
    if (st == MIPR_OK) {
        mipr_engine_set_pool(sc->e, pool);
        if (sc->ref)
            mipr_engine_set_pool(sc->ref, pool);
        st = run_fn(&v, ids, n, window, bos, accumulate, &v, err);
    }
    mipr_engine_free(sc->e), mipr_engine_free(sc->ref);
    free(sc->logits), free(sc->ref_logits);
    return st ? st : finish(res, err);
}

/* ---- a cached reference: its log-probabilities computed once, for many models ---------- */

struct mipr_eval_ref {
    int32_t *ids;
    size_t n;
    uint32_t window, vocab;
    int32_t bos;
    float *logp; /* n x vocab: the reference's log-probabilities at every scored position */
};

typedef struct {
    evaluator v;
    const mipr_eval_ref *ref;
    float *store; /* filling the cache: where the next position's log-probabilities go */
} cached;

static void record(void *ctx, const int32_t *ids, uint32_t t, const float *l, const float *ref)
{
    cached *c = ctx;
    float *dst = c->store + (size_t)c->v.res->tokens * c->v.sc.vocab;
    double ln = mipr_log_norm(l, c->v.sc.vocab);
    for (uint32_t i = 0; i < c->v.sc.vocab; i++)
        dst[i] = (float)((double)l[i] - ln);
    accumulate(&c->v, ids, t, l, ref);
}

static void against_cache(void *ctx, const int32_t *ids, uint32_t t, const float *l,
                          const float *ref)
{
    cached *c = ctx;
    const float *p = c->ref->logp + (size_t)c->v.res->tokens * c->v.sc.vocab;
    double lq = mipr_log_norm(l, c->v.sc.vocab), kl = 0.0;
    for (uint32_t i = 0; i < c->v.sc.vocab; i++)
        kl += exp((double)p[i]) * ((double)p[i] - ((double)l[i] - lq));
    c->v.res->kl_sum += clamp_kl(kl);
    accumulate(&c->v, ids, t, l, ref);
}

static mipr_status eval_with(cached *c, const mipr_model *m, const int32_t *ids, size_t n,
                             uint32_t window, int32_t bos, mipr_pool *pool, mipr_score_fn fn,
                             mipr_error *err)
{
    mipr_scoring *sc = &c->v.sc;
    memset(c->v.res, 0, sizeof *c->v.res);
    mipr_status st = mipr_engine_new(&sc->e, m, window, MIPR_EVAL_BATCH, err);
    if (st == MIPR_OK &&
        !(sc->logits = malloc((size_t)MIPR_EVAL_BATCH * sc->vocab * sizeof(float))))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for logits");
    if (st == MIPR_OK) {
        mipr_engine_set_pool(sc->e, pool);
        st = run_fn(&c->v, ids, n, window, bos, fn, c, err);
    }
    mipr_engine_free(sc->e);
    free(sc->logits);
    return st ? st : finish(c->v.res, err);
}

mipr_status mipr_eval_ref_new(mipr_eval_ref **out, const mipr_model *reference,
                              const int32_t *ids, size_t n, uint32_t window, int32_t bos,
                              mipr_pool *pool, mipr_eval_result *res, mipr_error *err)
{
    *out = NULL;
    if (window < 2 || n == 0)
        return mipr_error_set(err, MIPR_ERR_ARG, "evaluation needs a window >= 2 and tokens "
                              "(got window %u, %zu tokens)", window, n);
    uint32_t vocab = reference->hp.vocab_size;
    if (n > SIZE_MAX / sizeof(float) / vocab)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%zu tokens x %u vocabulary: too large to "
                              "cache", n, vocab);
    mipr_eval_ref *r = calloc(1, sizeof *r);
    if (!r || !(r->ids = malloc(n * sizeof *ids)) ||
        !(r->logp = malloc(n * vocab * sizeof(float)))) {
        mipr_eval_ref_free(r);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory caching the reference's "
                              "log-probabilities (%zu tokens x %u)", n, vocab);
    }
    memcpy(r->ids, ids, n * sizeof *ids);
    r->n = n, r->window = window, r->vocab = vocab, r->bos = bos;
    cached c = {.v = {.sc = {.vocab = vocab}, .res = res}, .store = r->logp};
    mipr_status st = eval_with(&c, reference, ids, n, window, bos, pool, record, err);
    if (st) {
        mipr_eval_ref_free(r);
        return st;
    }
    *out = r;
    return MIPR_OK;
}

mipr_status mipr_eval_tokens_ref(const mipr_model *m, const mipr_eval_ref *ref, mipr_pool *pool,
                                 mipr_eval_result *res, mipr_error *err)
{
    if (ref->vocab != m->hp.vocab_size)
        return mipr_error_set(err, MIPR_ERR_ARG, "the reference model's vocabulary (%u) is not "
                              "the model's (%u)", ref->vocab, m->hp.vocab_size);
    cached c = {.v = {.sc = {.vocab = ref->vocab}, .res = res}, .ref = ref};
    mipr_status st = eval_with(&c, m, ref->ids, ref->n, ref->window, ref->bos, pool,
                               against_cache, err);
    return st;
}

void mipr_eval_ref_free(mipr_eval_ref *r)
{
    if (r) {
        free(r->ids);
        free(r->logp);
        free(r);
    }
}
