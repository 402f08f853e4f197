/* mipr calibrate: what every FFN neuron of a model does on a text, saved for pruning. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr calibrate MODEL [-z TOKENIZER] --text FILE -o CALIB [--tokens N]\n"
    "                      [--window W] [--samples N] [--heldout N] [--seed S] [--threads N]\n"
    "                      [--level L] [-q]\n\n"
    "Runs FILE through MODEL and records every FFN neuron's intermediate activation (the\n"
    "input of ffn_down) in every layer: count, mean, variance, mean |x|, mean x^2, min and\n"
    "max over all calibration tokens, plus the activations of N tokens drawn uniformly at\n"
    "random (the samples the mutual-information estimator reads). The record is written to\n"
    "CALIB (.mcal, docs/CALIB_FORMAT.md), atomically.\n\n"
    "The text is one token stream cut into windows of W tokens, each starting with BOS, as\n"
    "mipr perplexity does; the calibration tokens are the text tokens (BOS positions are run\n"
    "but not recorded). The last tokens of the text (--heldout) are not calibrated on: they\n"
    "are stored in the record so that mipr prune can score pruned models on unseen text.\n\n"
    "  -z, --tokenizer FILE  llama2.c tokenizer.bin (see mipr generate --help)\n"
    "      --text FILE       the calibration text (UTF-8)\n"
    "  -o, --output CALIB    the file to write\n"
    "      --tokens N        use only the first N tokens of the text (default, or 0: all)\n"
    "      --window W        tokens per window, BOS included (default: 256, at most the\n"
    "                        model's context length)\n"
    "      --samples N       tokens whose activations are kept (default: 512)\n"
    "      --heldout N       tokens held out at the end of the text (default: 2048; 0: none)\n"
    "      --seed S          seed for choosing the sample tokens (default: 0)\n"
    "      --threads N       worker threads (default: one per core)\n"
    "      --level L         zstd level, 1..22 (default: 3)\n"
    "  -q, --quiet           no progress line (there is none either when stderr is not a\n"
    "                        terminal)\n";

static const cli_opt opts[] = {
    {"tokenizer", 'z', 1}, {"text", 0, 1},    {"output", 'o', 1}, {"tokens", 0, 1},
    {"window", 'w', 1},    {"samples", 0, 1}, {"seed", 0, 1},     {"threads", 0, 1},
    {"level", 0, 1},       {"heldout", 0, 1}, {"quiet", 'q', 0}, {NULL, 0, 0},
};

typedef struct {
    const char *model, *tokenizer, *text, *output;
    uint64_t tokens, seed;
    uint32_t window, samples, threads, level, heldout;
    int quiet;
} calib_args;

static int parse_opt(cli_parser *p, int k, const char *v, void *ctx)
{
    calib_args *a = ctx;
    switch (k) {
    case 0: a->tokenizer = v; return 1;
    case 1: a->text = v; return 1;
    case 2: a->output = v; return 1;
    case 3: return cli_u64(p, "--tokens", v, &a->tokens);
    case 4: return cli_u32(p, "--window", v, 2, MIPR_MAX_SEQ, &a->window);
    case 5: return cli_u32(p, "--samples", v, 1, UINT32_MAX, &a->samples);
    case 6: return cli_u64(p, "--seed", v, &a->seed);
    case 7: return cli_u32(p, "--threads", v, 1, 1024, &a->threads);
    case 8: return cli_u32(p, "--level", v, 1, 22, &a->level);
    case 9: return cli_u32(p, "--heldout", v, 0, 1u << 22, &a->heldout);
    case 10: a->quiet = 1; return 1;
    }
    return 0;
}

static int parse(int argc, char **argv, calib_args *a)
{
    cli_parser p = {argc, 1, argv, "mipr calibrate", usage_text, opts};
    int rc = cli_parse(&p, &a->model, parse_opt, a);
    if (rc >= 0)
        return rc;
    if (!a->model)
        return cli_usage_error(&p, "missing MODEL");
    if (!a->text)
        return cli_usage_error(&p, "missing --text FILE");
    if (!a->output)
        return cli_usage_error(&p, "missing -o CALIB");
    return -1;
}

/* The window depends on the model, so it is checked once the model is loaded. */
static int set_window(calib_args *a, const mipr_model *m)
{
    uint32_t ctx = m->hp.seq_len;
    if (!a->window) {
        a->window = ctx < 256 ? ctx : 256;
        return 1;
    }
    if (a->window <= ctx)
        return 1;
    fprintf(stderr, "mipr calibrate: %s: --window %u exceeds the model's context of %u tokens\n",
            a->model, a->window, ctx);
    return 0;
}

static void summary(const calib_args *a, const mipr_calib *c, double secs)
{
    struct stat st;
    long long size = stat(a->output, &st) == 0 ? (long long)st.st_size : -1;
    fprintf(stderr,
            "calibrated %llu tokens (window %u) over %u layers, %u samples each, %u held out\n"
            "%.2f s, %.0f tokens/s; wrote %s (%lld bytes)\n",
            (unsigned long long)c->tokens, c->window, c->n_layers, c->n_samples, c->n_heldout, secs,
            (double)c->tokens / (secs + 1e-9), a->output, size);
}

/* The output is opened before the (long) run, so an unwritable path fails at once; its
 * temporary exists until the record is complete, and an interrupt removes it. */
static int run(calib_args *a, mipr_pool *pool, const mipr_model *m, const mipr_tokenizer *tok,
               const char *text, size_t len, mipr_outfile *out, mipr_error *err)
{
    cli_bar bar;
    cli_bar_init(&bar, "calibrate", "windows", a->quiet);
    mipr_calib_opts o = {.max_tokens = a->tokens, .window = a->window,
                         .n_samples = a->samples, .seed = a->seed, .model_name = a->model,
                         .text_name = a->text, .progress = cli_progress,
                         .progress_ctx = &bar, .pool = pool, .heldout = a->heldout};
    mipr_calib *c = NULL;
    double t0 = cli_now();
    mipr_status st = mipr_calibrate(&c, m, tok, text, len, &o, err);
    if (st == MIPR_ERR_ARG) /* the text is too short or holds no token */
        cli_blame(err, a->text);
    int ok = st == MIPR_OK && mipr_calib_write(out, c, (int)a->level, err) == MIPR_OK &&
             cli_out_commit(out, err) == MIPR_OK;
    if (ok)
        summary(a, c, cli_now() - t0);
    mipr_calib_free(c);
    return ok ? EXIT_OK : EXIT_FAIL;
}

int cmd_calibrate(int argc, char **argv)
{
    calib_args a = {.samples = 512, .heldout = 2048};
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    mipr_pool *pool = NULL;
    char *text = NULL;
    size_t len = 0;
    mipr_outfile out = {0};
    rc = EXIT_FAIL;
    const char *in[] = {a.model, a.tokenizer, a.text};
    if (cli_out_open_from(&out, a.output, in, 3, &err) == MIPR_OK &&
        cli_pool_new(&pool, a.threads, &err) == MIPR_OK &&
        mipr_load(&m, &tok, a.model, a.tokenizer, &err) == MIPR_OK &&
        (text = cli_read_text(a.text, &len, &err)) != NULL) {
        rc = set_window(&a, m) ? run(&a, pool, m, tok, text, len, &out, &err) : EXIT_USAGE;
        if (rc == EXIT_FAIL)
            cli_fail(&err);
    } else {
        cli_fail(&err);
    }
    cli_out_abort(&out); /* after a commit: nothing left to remove */
    free(text);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    mipr_pool_free(pool);
    return rc;
}
