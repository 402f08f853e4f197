/* mipr perplexity: how well a model predicts a text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr perplexity MODEL [-z TOKENIZER] --text FILE [--window W] [--doc-sep STRING]\n"
    "                       [--max-windows N] [--reference MODEL] [--json] [--threads N]\n"
    "                       [--backend B] [--llama-cpp] [--keep-doc-space] [-q]\n\n"
    "Scores every token of FILE with MODEL and reports tokens scored, bytes scored (bytes of\n"
    "the decoded pieces), mean negative log-likelihood (nats), perplexity and bits per byte.\n\n"
    "Without --doc-sep the text is one token stream cut into non-overlapping windows of W\n"
    "tokens, each starting with BOS (W-1 tokens scored per window). With --doc-sep each\n"
    "document (text between separators, e.g. '<|endoftext|>') is scored on its own from a\n"
    "fresh context, starting with BOS, truncated at W tokens; the whitespace at the start of\n"
    "each document (e.g. the newline after the separator) is not scored unless\n"
    "--keep-doc-space is given. With --llama-cpp the text is scored as llama-perplexity -c W\n"
    "scores it, so the numbers compare: one token stream with BOS, chunks of W tokens whose\n"
    "first token becomes BOS, and only the second half of each chunk scored (the first half\n"
    "is context); it needs at least 2 W tokens.\n\n"
    "  -z, --tokenizer FILE  llama2.c tokenizer.bin (see mipr generate --help)\n"
    "      --text FILE       the text (UTF-8)\n"
    "      --window W        tokens per window, BOS included (default: 512, at most the\n"
    "                        model's context length)\n"
    "      --doc-sep STRING  score documents separately (escapes \\n and \\t understood)\n"
    "      --keep-doc-space  with --doc-sep: also score each document's leading whitespace\n"
    "      --llama-cpp       llama-perplexity's chunks and scoring (see above)\n"
    "      --max-windows N   stop after N windows or documents (default: all)\n"
    "      --reference MODEL also the KL divergence KL(reference || MODEL) per token, over\n"
    "                        the same windows (stream mode; e.g. the unpruned model; it\n"
    "                        must share the tokenizer)\n"
    "      --json            print the result as one JSON object on stdout\n"
    "  -q, --quiet           no progress line (none either when stderr is not a terminal)\n"
    "      --threads N       worker threads (default: one per core)\n"
    "      --backend B       prefill matmuls of MODEL: ours (default), xnnpack (F32 weights\n"
    "                        through XNNPACK: a second copy in memory, logits differ by\n"
    "                        ~1e-6), auto (XNNPACK only where measured faster); --reference\n"
    "                        always runs on ours\n";

static const cli_opt opts[] = {
    {"tokenizer", 'z', 1}, {"text", 0, 1},        {"window", 'w', 1},
    {"doc-sep", 0, 1},     {"max-windows", 0, 1}, {"json", 0, 0},
    {"threads", 0, 1},     {"reference", 0, 1},   {"backend", 0, 1},
    {"llama-cpp", 0, 0},   {"keep-doc-space", 0, 0}, {"quiet", 'q', 0},
    {NULL, 0, 0},
};

typedef struct {
    const char *model, *tokenizer, *text, *reference;
    char *doc_sep;
    uint32_t window, max_windows, threads;
    int json, llama_cpp, keep_doc_space, quiet;
    mipr_backend backend;
} ppl_args;

/* "\n" and "\t" as typed in a shell become the characters. */
static char *unescape(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (s[0] == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
            *o++ = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\\';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

static int parse(int argc, char **argv, ppl_args *a)
{
    cli_parser p = {argc, 1, argv, "mipr perplexity", usage_text, opts};
    const char *v;
    int k;
    while ((k = cli_next(&p, &v)) != CLI_END) {
        int ok = 1;
        switch (k) {
        case CLI_HELP: return EXIT_OK;
        case CLI_ERROR: return EXIT_USAGE;
        case CLI_POSITIONAL:
            if (a->model)
                return cli_usage_error(&p, "unexpected argument '%s'", v);
            a->model = v;
            break;
        case 0: a->tokenizer = v; break;
        case 1: a->text = v; break;
        case 2: ok = cli_u32(&p, "--window", v, 2, MIPR_MAX_SEQ, &a->window); break;
        case 3:
            free(a->doc_sep);
            a->doc_sep = unescape(v);
            ok = a->doc_sep && *a->doc_sep;
            if (!ok)
                cli_usage_error(&p, "--doc-sep must not be empty");
            break;
        case 4: ok = cli_u32(&p, "--max-windows", v, 1, UINT32_MAX, &a->max_windows); break;
        case 5: a->json = 1; break;
        case 6: ok = cli_u32(&p, "--threads", v, 1, 1024, &a->threads); break;
        case 7: a->reference = v; break;
        case 8:
            ok = mipr_backend_parse(v, &a->backend, NULL) == MIPR_OK;
            if (!ok)
                cli_usage_error(&p, "--backend expects ours, xnnpack or auto, got '%s'", v);
            break;
        case 9: a->llama_cpp = 1; break;
        case 10: a->keep_doc_space = 1; break;
        case 11: a->quiet = 1; break;
        }
        if (!ok)
            return EXIT_USAGE;
    }
    if (!a->model)
        return cli_usage_error(&p, "missing MODEL");
    if (!a->text)
        return cli_usage_error(&p, "missing --text FILE");
    if (a->reference && (a->doc_sep || a->llama_cpp))
        return cli_usage_error(&p, "--reference works in stream mode only (no --doc-sep or "
                               "--llama-cpp)");
    if (a->llama_cpp && a->doc_sep)
        return cli_usage_error(&p, "--llama-cpp scores one stream: it takes no --doc-sep");
    if (a->keep_doc_space && !a->doc_sep)
        return cli_usage_error(&p, "--keep-doc-space needs --doc-sep");
    return -1;
}

static const char *mode_name(const ppl_args *a)
{
    return a->doc_sep ? "documents" : a->llama_cpp ? "llama.cpp" : "stream";
}

static void report(const ppl_args *a, const mipr_ppl_result *r, double kl, double secs)
{
    if (a->json) {
        printf("{\"model\": ");
        cli_json_str(stdout, a->model);
        printf(", \"text\": ");
        cli_json_str(stdout, a->text);
        printf(", \"mode\": \"%s\", \"window\": %u, \"windows\": %llu, \"tokens\": %llu, "
               "\"bytes\": %llu, \"mean_nll\": %.6f, \"perplexity\": %.6f, "
               "\"bits_per_byte\": %.6f, ", mode_name(a), a->window, (unsigned long long)r->windows, (unsigned long long)r->tokens,
               (unsigned long long)r->bytes, r->mean_nll, r->perplexity, r->bits_per_byte);
        if (a->reference)
            printf("\"kl\": %.8f, ", kl);
        printf("\"seconds\": %.3f}\n", secs);
        return;
    }
    printf("windows        %llu (%s, %u tokens each at most)\n", (unsigned long long)r->windows,
           mode_name(a), a->window);
    printf("tokens scored  %llu\nbytes scored   %llu\nmean NLL       %.6f nats\n"
           "perplexity     %.4f\nbits per byte  %.4f\n",
           (unsigned long long)r->tokens, (unsigned long long)r->bytes, r->mean_nll,
           r->perplexity, r->bits_per_byte);
    if (a->reference)
        printf("KL             %.6f nats/token from %s\n", kl, a->reference);
    fprintf(stderr, "%.2f s, %.0f tokens/s\n", secs, (double)r->tokens / (secs + 1e-9));
}

/* KL(reference || m) over the stream windows perplexity scored. */
static mipr_status reference_kl(const ppl_args *a, const mipr_model *m, const mipr_tokenizer *tok,
                                const char *text, size_t len, mipr_pool *pool, double *kl,
                                mipr_error *err)
{
    mipr_model *ref = NULL;
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    mipr_eval_result r;
    mipr_status st = ids ? mipr_load(&ref, NULL, a->reference, NULL, err)
                         : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    if (st == MIPR_OK) {
        size_t n = mipr_tokenizer_encode(tok, text, len, 0, ids);
        size_t cap = a->max_windows ? (size_t)a->max_windows * (a->window - 1) : n;
        st = mipr_eval_tokens(m, ref, ids, n < cap ? n : cap, a->window, mipr_tokenizer_bos(tok),
                              pool, &r, err);
        *kl = r.mean_kl;
    }
    mipr_model_free(ref);
    free(ids);
    return st;
}

/* Perplexity of the text (and KL from --reference); errors name the text or the model. */
static int measure(const ppl_args *a, const mipr_model *m, const mipr_tokenizer *tok,
                   const char *text, size_t len, mipr_pool *pool, mipr_error *err)
{
    cli_bar bar;
    cli_bar_init(&bar, "perplexity", a->doc_sep ? "documents" : "windows", a->quiet);
    mipr_ppl_opts o = {.window = a->window, .doc_sep = a->doc_sep, .max_windows = a->max_windows,
                       .mode = a->doc_sep     ? MIPR_PPL_DOCS
                               : a->llama_cpp ? MIPR_PPL_LLAMA_CPP
                                              : MIPR_PPL_STREAM,
                       .keep_doc_space = a->keep_doc_space, .progress = cli_progress,
                       .progress_ctx = &bar, .pool = pool, .backend = a->backend};
    mipr_ppl_result r;
    double t0 = cli_now();
    double kl = 0.0;
    mipr_status st = mipr_perplexity(m, tok, text, len, &o, &r, err);
    if (st == MIPR_ERR_ARG || st == MIPR_ERR_FORMAT) /* the text, or the model's logits */
        cli_blame(err, st == MIPR_ERR_ARG ? a->text : a->model);
    if (st == MIPR_OK && a->reference &&
        (st = reference_kl(a, m, tok, text, len, pool, &kl, err)) == MIPR_ERR_FORMAT)
        cli_blame(err, a->model);
    if (st)
        return EXIT_FAIL;
    report(a, &r, kl, cli_now() - t0);
    return EXIT_OK;
}

int cmd_perplexity(int argc, char **argv)
{
    ppl_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) {
        free(a.doc_sep);
        return rc;
    }
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    size_t len = 0;
    char *text = NULL;
    mipr_pool *pool = NULL;
    rc = EXIT_FAIL;
    if (cli_pool_new(&pool, a.threads, &err) == MIPR_OK &&
        mipr_load(&m, &tok, a.model, a.tokenizer, &err) == MIPR_OK &&
        (text = cli_read_text(a.text, &len, &err)) != NULL) {
        if (!a.window)
            a.window = m->hp.seq_len < 512 ? m->hp.seq_len : 512;
        if (a.window > m->hp.seq_len) { /* as calibrate: past the context is not the model */
            fprintf(stderr, "mipr perplexity: %s: --window %u exceeds the model's context of %u "
                    "tokens\n", a.model, a.window, m->hp.seq_len);
            rc = EXIT_USAGE;
        } else {
            rc = measure(&a, m, tok, text, len, pool, &err);
        }
    }
    if (rc == EXIT_FAIL)
        cli_fail(&err);
    free(text);
    free(a.doc_sep);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    mipr_pool_free(pool);
    return rc;
}
