/* Perplexity and bits per byte of a text under a model, in fixed windows or per document. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "mipr.h"
#include "windows.h"

typedef struct {
    mipr_scoring sc;
    const mipr_tokenizer *tok;
    mipr_ppl_result *res;
    uint32_t first; /* positions before it are run but not scored (llama.cpp mode) */
} scorer;

static void accumulate(void *ctx, const int32_t *ids, uint32_t t, const float *l,
                       const float *ref)
{
    scorer *s = ctx;
    if (t < s->first)
        return;
    size_t len = 0;
    mipr_tokenizer_decode(s->tok, ids[t], ids[t + 1], &len);
    s->res->nll_sum += mipr_log_norm(l, s->sc.vocab) - (double)l[ids[t + 1]];
    s->res->bytes += len;
    s->res->tokens++;
    (void)ref;
}

/* Runs ids[0..n) from position 0 and scores ids[1..n). */
static mipr_status score_window(scorer *s, const int32_t *ids, uint32_t n, mipr_error *err)
{
    s->res->windows++;
    return mipr_score_window(&s->sc, ids, n, accumulate, s, err);
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

/* llama-perplexity's chunks (examples/perplexity there): tokens of the whole text with BOS,
 * chunk c is tokens [c w, (c + 1) w) with its first token replaced by BOS, scored from w/2. */
static mipr_status run_llama_cpp(scorer *s, const char *text, size_t len, const mipr_ppl_opts *o,
                                 mipr_error *err)
{
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    if (!ids)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for the text's tokens");
    size_t n = mipr_tokenizer_encode(s->tok, text, len, 1, ids), w = o->window;
    mipr_status st = MIPR_OK;
    if (n < 2 * w)
        st = mipr_error_set(err, MIPR_ERR_ARG, "llama.cpp scoring needs at least 2 windows of "
                            "tokens (%zu for window %zu); the text has %zu", 2 * w, w, n);
    size_t chunks = n / w;
    if (o->max_windows && chunks > o->max_windows)
        chunks = o->max_windows;
    s->first = (uint32_t)(w / 2);
    for (size_t c = 0; st == MIPR_OK && c < chunks; c++) {
        ids[c * w] = mipr_tokenizer_bos(s->tok);
        st = score_window(s, ids + c * w, (uint32_t)w, err);
        if (o->progress)
            o->progress(o->progress_ctx, c + 1, chunks);
    }
    free(ids);
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
        const char *doc = p;
        while (!o->keep_doc_space && dl && is_blank(doc, 1)) {
            doc++;
            dl--;
        }
        if (!is_blank(doc, dl)) {
            int32_t *ids = malloc((dl + 2) * sizeof *ids);
            if (!ids)
                return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
            size_t n = mipr_tokenizer_encode(s->tok, doc, dl, 1, ids);
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
    if (opts->mode == MIPR_PPL_DOCS && !opts->doc_sep)
        return mipr_error_set(err, MIPR_ERR_ARG, "document scoring needs a separator");
    if (opts->mode == MIPR_PPL_LLAMA_CPP && opts->doc_sep)
        return mipr_error_set(err, MIPR_ERR_ARG, "llama.cpp scoring has no documents");
    scorer s = {.sc = {.vocab = m->hp.vocab_size}, .tok = tok, .res = res};
    mipr_status st = mipr_engine_new(&s.sc.e, m, opts->window, MIPR_EVAL_BATCH, err);
    if (st)
        return st;
    mipr_engine_set_pool(s.sc.e, opts->pool);
    if ((st = mipr_engine_set_backend(s.sc.e, opts->backend, mipr_xnnpack_provider(), err)) != MIPR_OK) {
        mipr_engine_free(s.sc.e);
        return st;
    }
    s.sc.logits = malloc((size_t)MIPR_EVAL_BATCH * s.sc.vocab * sizeof *s.sc.logits);
    if (!s.sc.logits)
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for logits");
    else if (opts->doc_sep)
        st = run_docs(&s, text, len, opts, err);
    else if (opts->mode == MIPR_PPL_LLAMA_CPP)
        st = run_llama_cpp(&s, text, len, opts, err);
    else
        st = run_stream(&s, text, len, opts, err);
    free(s.sc.logits);
    mipr_engine_free(s.sc.e);
    if (st == MIPR_OK && res->tokens == 0)
        st = mipr_error_set(err, MIPR_ERR_ARG, "the text holds no token to score");
    if (st == MIPR_OK && !isfinite(res->nll_sum)) /* never "perplexity nan" */
        st = mipr_error_set(err, MIPR_ERR_FORMAT, "the model's log-likelihood is %s (its logits "
                            "are not finite: NaN or infinite weights?)",
                            isnan(res->nll_sum) ? "NaN" : "infinite");
    if (st)
        return st;
    res->mean_nll = res->nll_sum / (double)res->tokens;
    res->perplexity = exp(res->mean_nll);
    res->bits_per_byte = res->bytes ? res->nll_sum / log(2.0) / (double)res->bytes : 0.0;
    return MIPR_OK;
}
