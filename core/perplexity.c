/* Perplexity and bits per byte of a text under a model, in fixed windows or per document. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mipr.h"
#include "windows.h"

#define PPL_BATCH 64u

typedef struct {
    mipr_engine *eng;
    const mipr_tokenizer *tok;
    uint32_t vocab;
    float *logits; /* PPL_BATCH x vocab */
    mipr_ppl_result *res;
} scorer;

static double nll_of(const float *logits, uint32_t vocab, int32_t target)
{
    float max = logits[0];
    for (uint32_t i = 1; i < vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (uint32_t i = 0; i < vocab; i++)
        sum += exp((double)(logits[i] - max));
    return log(sum) - (double)(logits[target] - max);
}

/* Runs ids[0..n) from position 0 and scores ids[1..n). */
static mipr_status score_window(scorer *s, const int32_t *ids, uint32_t n, mipr_error *err)
{
    for (uint32_t done = 0; done + 1 < n;) {
        uint32_t c = n - 1 - done < PPL_BATCH ? n - 1 - done : PPL_BATCH;
        mipr_status st = mipr_engine_forward(s->eng, ids + done, c, done, s->logits, 1, err);
        if (st)
            return st;
        for (uint32_t t = 0; t < c; t++) {
            int32_t target = ids[done + t + 1];
            size_t len = 0;
            mipr_tokenizer_decode(s->tok, ids[done + t], target, &len);
            s->res->nll_sum += nll_of(s->logits + (size_t)t * s->vocab, s->vocab, target);
            s->res->bytes += len;
            s->res->tokens++;
        }
        done += c;
    }
    s->res->windows++;
    return MIPR_OK;
}

static mipr_status run_stream(scorer *s, const char *text, size_t len, const mipr_ppl_opts *o,
                              mipr_error *err)
{
    mipr_windows ws;
    mipr_status st = mipr_windows_init(&ws, s->tok, text, len, o->window, err);
    if (st)
        return st;
    int32_t *win = malloc((size_t)o->window * sizeof *win);
    if (!win)
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a window");
    size_t total = o->max_windows && ws.count > o->max_windows ? o->max_windows : ws.count;
    for (size_t w = 0; st == MIPR_OK && w < total; w++) {
        st = score_window(s, win, mipr_windows_get(&ws, w, win), err);
        if (o->progress)
            o->progress(o->progress_ctx, w + 1, total);
    }
    mipr_windows_free(&ws);
    free(win);
    return st;
}

static size_t count_docs(const char *text, size_t len, const char *sep)
{
    size_t n = 1, sl = strlen(sep);
    for (const char *p = text; (p = strstr(p, sep)) && (size_t)(p - text) < len; p += sl)
        n++;
    return n;
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')
            return 0;
    return 1;
}

static mipr_status run_docs(scorer *s, const char *text, size_t len, const mipr_ppl_opts *o,
                            mipr_error *err)
{
    size_t sl = strlen(o->doc_sep), total = count_docs(text, len, o->doc_sep), done = 0;
    mipr_status st = MIPR_OK;
    for (const char *p = text, *end = text + len; st == MIPR_OK && p < end;) {
        const char *q = strstr(p, o->doc_sep);
        size_t dl = q ? (size_t)(q - p) : (size_t)(end - p);
        if (!is_blank(p, dl)) {
            int32_t *ids = malloc((dl + 2) * sizeof *ids);
            if (!ids)
                return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
            size_t n = mipr_tokenizer_encode(s->tok, p, dl, 1, ids);
            if (n > o->window)
                n = o->window;
            if (n >= 2)
                st = score_window(s, ids, (uint32_t)n, err);
            free(ids);
        }
        if (o->progress)
            o->progress(o->progress_ctx, ++done, total);
        if (o->max_windows && s->res->windows >= o->max_windows)
            break;
        p = q ? q + sl : end;
    }
    return st;
}

mipr_status mipr_perplexity(const mipr_model *m, const mipr_tokenizer *tok, const char *text,
                            size_t len, const mipr_ppl_opts *opts, mipr_ppl_result *res,
                            mipr_error *err)
{
    memset(res, 0, sizeof *res);
    if (opts->window < 2 || opts->window > MIPR_MAX_SEQ)
        return mipr_error_set(err, MIPR_ERR_ARG, "window %u outside 2..%u", opts->window,
                              MIPR_MAX_SEQ);
    if (mipr_tokenizer_bos(tok) < 0)
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "the tokenizer has no BOS token");
    if (opts->doc_sep && !*opts->doc_sep)
        return mipr_error_set(err, MIPR_ERR_ARG, "the document separator is empty");
    scorer s = {.tok = tok, .vocab = m->hp.vocab_size, .res = res};
    mipr_status st = mipr_engine_new(&s.eng, m, opts->window, PPL_BATCH, err);
    if (st)
        return st;
    mipr_engine_set_pool(s.eng, opts->pool);
    s.logits = malloc((size_t)PPL_BATCH * s.vocab * sizeof *s.logits);
    if (!s.logits)
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for logits");
    else if (opts->doc_sep)
        st = run_docs(&s, text, len, opts, err);
    else
        st = run_stream(&s, text, len, opts, err);
    free(s.logits);
    mipr_engine_free(s.eng);
    if (st == MIPR_OK && res->tokens == 0)
        st = mipr_error_set(err, MIPR_ERR_ARG, "the text holds no token to score");
    if (st)
        return st;
    res->mean_nll = res->nll_sum / (double)res->tokens;
    res->perplexity = exp(res->mean_nll);
    res->bits_per_byte = res->bytes ? res->nll_sum / log(2.0) / (double)res->bytes : 0.0;
    return MIPR_OK;
}
