/* Internal to mipr_core: the scoring loop shared by perplexity (core/eval/perplexity.c) and
 * evaluation against a reference (core/eval/eval.c). */
#ifndef MIPR_EVAL_INTERNAL_H
#define MIPR_EVAL_INTERNAL_H

#include "mipr.h"

/* Tokens per engine call while scoring; logit buffers hold this many rows. */
#define MIPR_EVAL_BATCH 64u

/* Called for each scored position t of a window (predicting ids[t + 1]) with that
 * position's logits, and the reference model's when there is one (else NULL). */
typedef void (*mipr_score_fn)(void *ctx, const int32_t *ids, uint32_t t, const float *logits,
                              const float *ref_logits);

typedef struct mipr_scoring {
    mipr_engine *e, *ref;     /* ref may be NULL */
    float *logits, *ref_logits; /* MIPR_EVAL_BATCH x vocab each */
    uint32_t vocab;
} mipr_scoring;

/* Runs ids[0..n) from position 0 (a fresh context) and scores ids[1..n). */
mipr_status mipr_score_window(const mipr_scoring *s, const int32_t *ids, uint32_t n,
                              mipr_score_fn fn, void *ctx, mipr_error *err);
/* log sum_i exp(l_i), computed without overflow. */
double mipr_log_norm(const float *l, uint32_t n);

#endif
