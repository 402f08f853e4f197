/* The llama2.c sampler (run.c): greedy, plain multinomial, or top-p, driven by run.c's
 * xorshift64* generator so that a seed gives run.c's token stream.
 *
 * Decisions where run.c is silent or unsafe:
 *  - seed 0 is a fixed point of xorshift (the stream would be all zeros), so it is replaced
 *    by SEED_ZERO; every other seed is used as is, as run.c does.
 *  - equal probabilities are ordered by index in top-p, so the result does not depend on the
 *    C library's qsort.
 *  - run.c's cutoff pre-filter can drop every token when the vocabulary is tiny (the top
 *    token may be below (1 - p) / (n - 1)); the nucleus is then the top token alone.
 *  - NaN probabilities are never candidates, and argmax skips NaN. */
#include <math.h>
#include <stdlib.h>

#include "mipr_runtime.h"

#define SEED_ZERO 0x9E3779B97F4A7C15ull

typedef struct prob_index {
    float prob;
    int32_t index;
} prob_index;

mipr_status mipr_sampler_init(mipr_sampler *s, uint32_t n_vocab, float temperature, float top_p,
                              uint64_t seed, mipr_error *err)
{
    s->scratch_ = NULL;
    s->logits_ = NULL;
    if (n_vocab == 0 || n_vocab > MIPR_MAX_VOCAB)
        return mipr_error_set(err, MIPR_ERR_ARG, "sampler: vocabulary size %u out of range",
                              n_vocab);
    if (!(temperature >= 0.0f) || isinf(temperature))
        return mipr_error_set(err, MIPR_ERR_ARG, "sampler: temperature %g must be finite and "
                              ">= 0", (double)temperature);
    if (isnan(top_p))
        return mipr_error_set(err, MIPR_ERR_ARG, "sampler: top-p is NaN");
    /* Allocated even without top-p: the fields are public and may change after init. */
    s->scratch_ = malloc((size_t)n_vocab * sizeof(prob_index));
    s->logits_ = malloc((size_t)n_vocab * sizeof(float));
    if (!s->scratch_ || !s->logits_) {
        mipr_sampler_free(s);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "sampler: out of memory (%u tokens)",
                              n_vocab);
    }
    s->n_vocab = n_vocab;
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed ? seed : SEED_ZERO;
    return MIPR_OK;
}

void mipr_sampler_free(mipr_sampler *s)
{
    if (!s)
        return;
    free(s->scratch_);
    free(s->logits_);
    s->scratch_ = NULL;
    s->logits_ = NULL;
}

int32_t mipr_argmax(const float *x, size_t n)
{
    if (!x || n == 0)
        return -1;
    size_t best = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            continue;
        if (!found || x[i] > x[best])
            best = i;
        found = 1;
    }
    return (int32_t)best;
}

/* run.c's xorshift64* */
static uint32_t random_u32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* uniform in [0, 1) */
static float random_f32(uint64_t *state)
{
    return (float)(random_u32(state) >> 8) / 16777216.0f;
}

static void softmax(float *x, size_t n)
{
    float max = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] /= sum;
}

static int32_t sample_mult(const float *p, size_t n, float coin)
{
    float cdf = 0.0f;
    for (size_t i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf)
            return (int32_t)i;
    }
    return (int32_t)(n - 1); /* rounding */
}

static int cmp_prob_desc(const void *a, const void *b)
{
    const prob_index *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob > y->prob ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int32_t sample_topp(const float *p, size_t n, float top_p, prob_index *pi, float coin)
{
    if (n == 1)
        return 0;
    /* Any token but the top one needs p >= (1 - top_p) / (n - 1) to be in the nucleus. */
    const float cutoff = (1.0f - top_p) / (float)(n - 1);
    size_t n0 = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= cutoff) {
            pi[n0].index = (int32_t)i;
            pi[n0].prob = p[i];
            n0++;
        }
    }
    if (n0 == 0)
        return mipr_argmax(p, n);
    qsort(pi, n0, sizeof *pi, cmp_prob_desc);
    float cum = 0.0f;
    size_t last = n0 - 1; /* rounding: keep everything */
    for (size_t i = 0; i < n0; i++) {
        cum += pi[i].prob;
        if (cum > top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0.0f;
    for (size_t i = 0; i <= last; i++) {
        cdf += pi[i].prob;
        if (r < cdf)
            return pi[i].index;
    }
    return pi[last].index;
}

int32_t mipr_sampler_sample(mipr_sampler *s, float *logits)
{
    size_t n = s->n_vocab;
    if (s->temperature == 0.0f || !s->scratch_)
        return mipr_argmax(logits, n);
    for (size_t i = 0; i < n; i++)
        logits[i] /= s->temperature;
    softmax(logits, n);
    float coin = random_f32(&s->rng);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f)
        return sample_mult(logits, n, coin);
    return sample_topp(logits, n, s->top_p, s->scratch_, coin);
}
