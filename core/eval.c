/* Negative log-likelihood and KL divergence from a reference model, over token windows. */
#include <math.h>
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

/* KL(P || Q) for logits p (reference) and q. */
static double kl_div(const float *p, const float *q, uint32_t n)
{
    double lp = mipr_log_norm(p, n), lq = mipr_log_norm(q, n), kl = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        double a = (double)p[i] - lp;
        kl += exp(a) * (a - ((double)q[i] - lq));
    }
    return kl > 0.0 ? kl : 0.0;
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

static mipr_status run(evaluator *v, const int32_t *ids, size_t n, uint32_t window, int32_t bos,
                       mipr_error *err)
{
    int32_t *win = malloc((size_t)window * sizeof *win);
    if (!win)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    mipr_status st = MIPR_OK;
    for (size_t at = 0; st == MIPR_OK && at < n; at += window - 1) {
        size_t take = n - at < window - 1 ? n - at : window - 1;
        win[0] = bos;
        memcpy(win + 1, ids + at, take * sizeof *ids);
        st = mipr_score_window(&v->sc, win, (uint32_t)take + 1, accumulate, v, err);
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
        st = run(&v, ids, n, window, bos, err);
    }
    mipr_engine_free(sc->e), mipr_engine_free(sc->ref);
    free(sc->logits), free(sc->ref_logits);
    if (st)
        return st;
    res->mean_nll = res->nll_sum / (double)res->tokens;
    res->perplexity = exp(res->mean_nll);
    res->mean_kl = res->kl_sum / (double)res->tokens;
    return MIPR_OK;
}
