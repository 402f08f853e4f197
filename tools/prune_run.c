/* The steps of mipr prune: load, decide (policy, seeds), prune, evaluate, write, report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune_report.h"

static void step(const char *what)
{
    fprintf(stderr, "prune: %s\n", what);
}

static mipr_status load(prune_args *a, prune_state *s, mipr_error *err)
{
    double t0 = cli_now();
    mipr_status st = cli_pool_new(&s->pool, a->threads, err);
    if (st || (st = mipr_load(&s->m, &s->tok, a->model, a->tokenizer, err)) ||
        (st = mipr_calib_open(&s->c, a->calib, err)) || /* samples: one layer at a time */
        (st = mipr_calib_check_model(s->c, s->m, a->calib, err)))
        return st;
    /* auto's tournament runs mi too */
    if ((a->auto_criterion || a->o.criterion == MIPR_CRIT_MI) && s->c->n_samples < 2)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: %u sampled tokens per neuron; --criterion "
                              "%s needs at least 2 (calibrate with --samples N)", a->calib,
                              s->c->n_samples, a->auto_criterion ? "auto" : "mi");
    uint32_t L = s->m->hp.n_layers;
    if (a->o.last_layer >= a->o.first_layer && a->o.last_layer >= L)
        return mipr_error_set(err, MIPR_ERR_ARG, "--layers %u-%u: %s has layers 0..%u",
                              a->o.first_layer, a->o.last_layer, a->model, L - 1);
    if (!(s->keep_whole = calloc(L, 1)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (const char *p = a->keep_list; p && *p; p += *p == ',') {
        char *end;
        unsigned long l = strtoul(p, &end, 10);
        if (end == p || l >= L)
            return mipr_error_set(err, MIPR_ERR_ARG, "--keep-layers: %s has layers 0..%u",
                                  a->model, L - 1);
        s->keep_whole[l] = 1;
        p = end;
    }
    a->o.keep_whole = s->keep_whole;
    a->o.pool = s->pool;
    s->t_load = cli_now() - t0;
    return MIPR_OK;
}

static mipr_status heldout(const prune_args *a, prune_state *s, mipr_error *err)
{
    if (s->c->n_heldout < 2)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s has no held-out tokens to score the "
                              "pruned model: calibrate again with --heldout N", a->calib);
    uint32_t w = a->window ? a->window : s->c->window;
    s->h = (mipr_heldout){s->c->heldout, s->c->n_heldout, w < s->m->hp.seq_len ? w : s->m->hp.seq_len,
                          mipr_tokenizer_bos(s->tok)};
    if (a->eval_text) {
        size_t len;
        char *text = cli_read_text(a->eval_text, &len, err);
        if (!text)
            return err->status;
        s->text_ids = malloc((len + 2) * sizeof *s->text_ids);
        if (s->text_ids)
            s->n_text = mipr_tokenizer_encode(s->tok, text, len, 0, s->text_ids);
        free(text);
        if (!s->text_ids || s->n_text == 0)
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: no tokens to evaluate", a->eval_text);
    }
    return MIPR_OK;
}

/* The decision is core's (mipr_prune_decide, as the criteria benchmark runs it): the
 * policy and the seeds see the selection half of the held-out tokens; the report scores the
 * chosen model on the other half. */
static mipr_status decide(prune_args *a, prune_state *s, mipr_error *err)
{
    double t0 = cli_now();
    mipr_prune_request req = {.o = a->o, .auto_criterion = a->auto_criterion,
                              .allocation = a->allocation, .seeds = a->seeds,
                              .no_bias = a->format_hf};
    if (a->auto_criterion)
        step("policy: choosing the criterion");
    mipr_status st = mipr_prune_decide(s->m, s->c, &req, &s->h, &s->dec, err);
    if (st)
        return st;
    if (s->dec.used_policy)
        fprintf(stderr, "prune: policy: %s\n", s->dec.policy.reason);
    for (uint32_t i = 0; i < s->dec.n_seeds; i++)
        fprintf(stderr, "prune: seed %llu: KL %.6f on the selection half\n",
                (unsigned long long)s->dec.seed[i], s->dec.seed_kl[i]);
    a->o = s->dec.o;
    s->t_decide = cli_now() - t0;
    return MIPR_OK;
}

static mipr_status prune_eval(prune_args *a, prune_state *s, mipr_error *err)
{
    double t0 = cli_now();
    step("pruning");
    mipr_status st = mipr_prune_plan_make(s->m, s->c, &a->o, &s->plan, err);
    if (st || (st = mipr_prune_apply(s->m, s->c, &s->plan, &a->o, &s->pruned, err)))
        return st;
    s->t_prune = cli_now() - t0;
    step("evaluating before and after");
    const mipr_heldout *h = &s->dec.reporting;
    if ((st = mipr_eval_tokens(s->m, NULL, h->ids, h->n, h->window, h->bos, s->pool, &s->before,
                               err)) ||
        (st = mipr_eval_tokens(s->pruned, s->m, h->ids, h->n, h->window, h->bos, s->pool,
                               &s->after, err)))
        return st;
    if (s->text_ids &&
        ((st = mipr_eval_tokens(s->m, NULL, s->text_ids, s->n_text, h->window, h->bos, s->pool,
                                &s->text_before, err)) ||
         (st = mipr_eval_tokens(s->pruned, s->m, s->text_ids, s->n_text, h->window, h->bos,
                                s->pool, &s->text_after, err))))
        return st;
    s->t_eval = cli_now() - t0 - s->t_prune;
    return MIPR_OK;
}

static void on_fallback(void *ctx, const char *tensor, enum mipr_dtype wanted,
                        enum mipr_dtype used)
{
    (void)ctx;
    fprintf(stderr, "prune: note: %s stays %s (its rows can't be %s)\n", tensor,
            mipr_dtype_name(used), mipr_dtype_name(wanted));
}

static void release(prune_state *s)
{
    mipr_prune_plan_free(&s->plan);
    mipr_model_free(s->pruned);
    mipr_model_free(s->m);
    mipr_tokenizer_free(s->tok);
    mipr_calib_free(s->c);
    mipr_pool_free(s->pool);
    free(s->keep_whole);
    free(s->text_ids);
}

/* A Hugging Face folder, in the type prune_run resolved (the input's float type unless
 * --type says otherwise; cmd_prune allows only float types with --format hf). */
static mipr_status write_hf(const prune_args *a, const prune_state *s, mipr_error *err)
{
    mipr_status st = mipr_hf_write(a->output, s->pruned, a->model, a->type, err);
    if (st == MIPR_OK)
        fprintf(stderr, "prune: wrote %s (Hugging Face folder, %s safetensors)\n", a->output,
                mipr_dtype_name(a->type));
    return st;
}

/* The GGUF type of the input's first FFN matrix: K-quants are F32 once loaded, but the
 * file still says what it was. */
static uint32_t source_ggml_type(const char *path)
{
    mipr_error err;
    mipr_gguf *g = NULL;
    uint32_t t = MIPR_GGML_F32;
    if (mipr_detect_file(path, &err) != MIPR_FILE_GGUF || mipr_gguf_open(&g, path, &err))
        return t;
    const mipr_gguf_tensor_info *ti = mipr_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    if (ti)
        t = ti->ggml_type;
    mipr_gguf_close(g);
    return t;
}

/* Output weights keep the input's type: a float stays that float (F16 in, F16 out), any
 * quantized input (Q8_0, Q4_0, K-quants) becomes q8_0, the finest type llama.cpp
 * requantizes from without surprise. --type overrides. */
static enum mipr_dtype default_type(const char *path, const mipr_model *m)
{
    enum mipr_dtype t = m->layers[0].ffn_up.type;
    if (t == MIPR_DT_Q8_0 || t == MIPR_DT_Q4_0)
        return MIPR_DT_Q8_0;
    if (t == MIPR_DT_F32) {
        uint32_t g = source_ggml_type(path);
        if (g >= MIPR_GGML_Q2_K && g <= MIPR_GGML_Q6_K)
            return MIPR_DT_Q8_0;
    }
    return t;
}

static void say_written(const prune_args *a, const prune_state *s)
{
    uint64_t bytes = 0;
    FILE *f = fopen(a->output, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        bytes = n > 0 ? (uint64_t)n : 0;
    }
    if (f)
        fclose(f);
    uint32_t g = source_ggml_type(a->model);
    int dequantized = s->m->layers[0].ffn_up.type == MIPR_DT_F32 && g != MIPR_GGML_F32;
    fprintf(stderr, "prune: wrote %s: %s weights (input %s%s%s%s), %llu bytes\n", a->output,
            mipr_dtype_name(a->type), mipr_dtype_name(s->m->layers[0].ffn_up.type),
            dequantized ? ", dequantized from " : "", dequantized ? mipr_ggml_type_name(g) : "",
            a->type_was_default ? "; --type changes it" : "", (unsigned long long)bytes);
}

/* Both outputs are opened first (an unwritable path fails before the work) and committed
 * only when complete; an interrupt removes their temporaries (tools/output.c). */
static mipr_status open_outputs(const prune_args *a, mipr_outfile *model, mipr_outfile *report,
                                mipr_error *err)
{
    const char *in[] = {a->model, a->tokenizer, a->calib, a->eval_text, a->output};
    if (a->report && strcmp(a->report, a->output) == 0)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: --report and -o name the same file",
                              a->output);
    mipr_status st = a->format_hf ? mipr_hf_write_check(a->output, a->model, err)
                                  : cli_out_open_from(model, a->output, in, 4, err);
    if (st == MIPR_OK && a->report)
        st = cli_out_open_from(report, a->report, in, 5, err);
    return st;
}

int prune_run(prune_args *a)
{
    prune_state s = {0};
    mipr_error err = {0};
    mipr_outfile out = {0}, report = {0};
    mipr_status st = open_outputs(a, &out, &report, &err);
    if (st == MIPR_OK)
        st = load(a, &s, &err);
    if (st == MIPR_OK)
        st = heldout(a, &s, &err);
    if (st == MIPR_OK && (st = decide(a, &s, &err)) == MIPR_OK)
        st = prune_eval(a, &s, &err);
    /* the record was checked when opened: a later format error not naming it is the
     * model's (non-finite logits) */
    if (st == MIPR_ERR_FORMAT && s.c && strncmp(err.msg, a->calib, strlen(a->calib)) != 0)
        cli_blame(&err, a->model);
    if (st == MIPR_OK) {
        double t0 = cli_now();
        if (a->type == MIPR_DT_COUNT) {
            a->type = default_type(a->model, s.m);
            a->type_was_default = 1;
        }
        mipr_gguf_write_opts wo = {.type = a->type, .on_fallback = on_fallback, .ctx = NULL};
        if (a->format_hf)
            st = write_hf(a, &s, &err);
        else
            st = mipr_gguf_write_to(&out, s.pruned, s.tok, &wo, &err);
        s.t_write = cli_now() - t0;
    }
    /* Both outputs complete before either is renamed, then renamed together: never a new
     * model beside an old report (or the reverse), even when a signal comes in between. */
    if (st == MIPR_OK && a->report)
        prune_report_json(a, &s, &report);
    if (st == MIPR_OK) {
        mipr_outfile *both[] = {&out, &report};
        /* an HF folder is renamed into place by mipr_hf_write itself: only the report is left */
        if (!a->format_hf)
            st = cli_out_commit_all(both, a->report ? 2 : 1, &err);
        else if (a->report)
            st = cli_out_commit_all(both + 1, 1, &err);
    }
    if (st == MIPR_OK && !a->format_hf)
        say_written(a, &s); /* renamed into place: its size is the output's */
    if (st == MIPR_OK)
        prune_report_text(a, &s);
    if (st)
        cli_fail(&err);
    cli_out_abort(&report);
    cli_out_abort(&out);
    release(&s);
    return st ? EXIT_FAIL : EXIT_OK;
}
