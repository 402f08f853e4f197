/* The generation loop shared by the CLI, the device runtime and the tests. */
#include "mipr_runtime.h"

static double no_clock(void)
{
    return 0.0;
}

/* NaN or infinite logits (broken weights) would make the sampler pick an arbitrary token
 * and the text silently garbage: refused instead. x != x is NaN without libm. */
static mipr_status check_logits(const float *l, uint32_t n, uint32_t pos, mipr_error *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (l[i] != l[i] || l[i] - l[i] != 0.0f)
            return mipr_error_set(err, MIPR_ERR_FORMAT, "the model's logits at position %u "
                                  "are not finite (NaN or infinite weights?)", pos);
    return MIPR_OK;
}

static mipr_status prefill(mipr_engine *e, const int32_t *prompt, uint32_t n_pre,
                           mipr_token_fn fn, void *ctx, int *stop, mipr_error *err)
{
    if (n_pre == 0)
        return MIPR_OK;
    mipr_status st = mipr_engine_forward(e, prompt, n_pre, 0, NULL, 0, err);
    for (uint32_t i = 0; st == MIPR_OK && i < n_pre && !*stop; i++)
        *stop = fn && fn(ctx, prompt[i], prompt[i + 1]);
    return st;
}

mipr_status mipr_generate(mipr_engine *e, mipr_sampler *s, const mipr_tokenizer *tok,
                          const int32_t *prompt, uint32_t n_prompt, uint32_t steps,
                          mipr_token_fn fn, void *ctx, double (*now)(void),
                          mipr_gen_stats *stats, mipr_error *err)
{
    mipr_gen_stats local = {0};
    stats = stats ? stats : &local;
    *stats = (mipr_gen_stats){0};
    now = now ? now : no_clock;
    if (n_prompt == 0)
        return mipr_error_set(err, MIPR_ERR_ARG, "empty prompt (it needs at least BOS)");
    if (!s->logits_ || s->n_vocab != mipr_engine_model(e)->hp.vocab_size)
        return mipr_error_set(err, MIPR_ERR_ARG, "the sampler is not set up for this model's "
                              "vocabulary of %u", mipr_engine_model(e)->hp.vocab_size);
    if (steps > mipr_engine_max_ctx(e))
        steps = mipr_engine_max_ctx(e);
    /* positions whose next token is forced by the prompt */
    uint32_t n_pre = n_prompt - 1 < steps ? n_prompt - 1 : steps;
    int stop = 0;
    double t0 = now();
    mipr_status st = prefill(e, prompt, n_pre, fn, ctx, &stop, err);
    stats->prompt_tokens = n_pre;
    double t1 = now();
    stats->prefill_seconds = t1 - t0;
    float *logits = s->logits_; /* the sampler's: no allocation while generating */
    int32_t token = prompt[n_pre], bos = mipr_tokenizer_bos(tok), eos = mipr_tokenizer_eos(tok);
    for (uint32_t pos = n_pre; st == MIPR_OK && !stop && pos < steps; pos++) {
        st = mipr_engine_forward(e, &token, 1, pos, logits, 0, err);
        if (st == MIPR_OK)
            st = check_logits(logits, s->n_vocab, pos, err);
        if (st)
            break;
        int32_t next = mipr_sampler_sample(s, logits);
        if (next == bos || next == eos)
            break;
        stats->generated++;
        stop = fn && fn(ctx, token, next);
        token = next;
    }
    stats->decode_seconds = now() - t1;
    return st;
}
