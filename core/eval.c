/* Negative log-likelihood and KL divergence from a reference model, over token windows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mipr.h"

#define EVAL_BATCH 64u

typedef struct {
    mipr_engine *e, *ref;
    uint32_t vocab;
    float *logits, *ref_logits; /* EVAL_BATCH x vocab each */
    mipr_eval_result *res;
} evaluator;

/* log of the softmax normaliser, for numerically safe log-probabilities. */
static double log_norm(const float *l, uint32_t n)
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
    double lp = log_norm(p, n), lq = log_norm(q, n), kl = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        double a = (double)p[i] - lp;
        kl += exp(a) * (a - ((double)q[i] - lq));
    }
    return kl > 0.0 ? kl : 0.0;
}

static mipr_status eval_window(evaluator *v, const int32_t *ids, uint32_t n, mipr_error *err)
{
    for (uint32_t done = 0; done + 1 < n;) {
        uint32_t c = n - 1 - done < EVAL_BATCH ? n - 1 - done : EVAL_BATCH;
        mipr_status st = mipr_engine_forward(v->e, ids + done, c, done, v->logits, 1, err);
        if (st == MIPR_OK && v->ref)
            st = mipr_engine_forward(v->ref, ids + done, c, done, v->ref_logits, 1, err);
        if (st)
            return st;
        for (uint32_t t = 0; t < c; t++) {
            const float *l = v->logits + (size_t)t * v->vocab;
            v->res->nll_sum += log_norm(l, v->vocab) - (double)l[ids[done + t + 1]];
            if (v->ref)
                v->res->kl_sum += kl_div(v->ref_logits + (size_t)t * v->vocab, l, v->vocab);
            v->res->tokens++;
        }
        done += c;
    }
    return MIPR_OK;
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
        st = eval_window(v, win, (uint32_t)take + 1, err);
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
    evaluator v = {.vocab = m->hp.vocab_size, .res = res};
    mipr_status st = mipr_engine_new(&v.e, m, window, EVAL_BATCH, err);
    if (st == MIPR_OK && reference)
        st = mipr_engine_new(&v.ref, reference, window, EVAL_BATCH, err);
    size_t lb = (size_t)EVAL_BATCH * v.vocab * sizeof(float);
    if (st == MIPR_OK && (!(v.logits = malloc(lb)) || (reference && !(v.ref_logits = malloc(lb)))))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for logits");
    if (st == MIPR_OK) {
        mipr_engine_set_pool(v.e, pool);
        if (v.ref)
            mipr_engine_set_pool(v.ref, pool);
        st = run(&v, ids, n, window, bos, err);
    }
    mipr_engine_free(v.e), mipr_engine_free(v.ref);
    free(v.logits), free(v.ref_logits);
    if (st)
        return st;
    res->mean_nll = res->nll_sum / (double)res->tokens;
    res->perplexity = exp(res->mean_nll);
    res->mean_kl = res->kl_sum / (double)res->tokens;
    return MIPR_OK;
}
