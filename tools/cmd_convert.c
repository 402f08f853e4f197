/* mipr convert: any readable model to GGUF. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr convert MODEL [-z TOKENIZER] -o OUT.gguf [--type f32|f16|bf16|q8_0|q4_0]\n\n"
    "Writes MODEL (GGUF, .mpk, llama2.c .bin, or a Hugging Face folder: config.json,\n"
    "model.safetensors, tokenizer.json) with its tokenizer as GGUF v3 that llama.cpp\n"
    "loads. 2-D weights take --type (default f32); norms stay f32. A tensor whose rows can't\n"
    "be q8_0 or q4_0 (row length not a multiple of 32) is written as f16 instead, and said\n"
    "so.\n"
    "The output appears only when complete (written to a temporary file, then renamed).\n\n"
    "  -z, --tokenizer FILE  llama2.c tokenizer.bin (see mipr generate --help)\n"
    "  -o, --output FILE     the GGUF to write\n"
    "      --type T          f32, f16, bf16, q8_0 or q4_0\n";

static const cli_opt opts[] = {
    {"tokenizer", 'z', 1}, {"output", 'o', 1}, {"type", 0, 1}, {NULL, 0, 0}};

static int parse_type(const char *s, enum mipr_dtype *t)
{
    for (int i = 0; i < MIPR_DT_COUNT; i++)
        if (strcmp(s, mipr_dtype_name((enum mipr_dtype)i)) == 0) {
            *t = (enum mipr_dtype)i;
            return 1;
        }
    return 0;
}

static void on_fallback(void *ctx, const char *tensor, enum mipr_dtype wanted,
                        enum mipr_dtype used)
{
    unsigned *count = ctx;
    (*count)++;
    fprintf(stderr, "note: %s stays %s (its rows can't be %s)\n", tensor, mipr_dtype_name(used),
            mipr_dtype_name(wanted));
}

int cmd_convert(int argc, char **argv)
{
    cli_parser p = {argc, 1, argv, "mipr convert", usage_text, opts};
    const char *v, *model = NULL, *tokp = NULL, *out = NULL;
    enum mipr_dtype type = MIPR_DT_F32;
    int k;
    while ((k = cli_next(&p, &v)) != CLI_END) {
        if (k == CLI_HELP)
            return EXIT_OK;
        if (k == CLI_ERROR)
            return EXIT_USAGE;
        if (k == CLI_POSITIONAL && model)
            return cli_usage_error(&p, "unexpected argument '%s'", v);
        if (k == CLI_POSITIONAL)
            model = v;
        else if (k == 0)
            tokp = v;
        else if (k == 1)
            out = v;
        else if (!parse_type(v, &type))
            return cli_usage_error(&p, "--type expects f32, f16, bf16, q8_0 or q4_0, got '%s'",
                                   v);
    }
    if (!model || !out)
        return cli_usage_error(&p, "%s", !model ? "missing MODEL" : "missing -o OUT.gguf");
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    unsigned fallbacks = 0;
    mipr_gguf_write_opts wo = {.type = type, .on_fallback = on_fallback, .ctx = &fallbacks};
    mipr_outfile o = {0};
    int rc = EXIT_OK;
    /* The output first: an unwritable path fails before the model is read. */
    const char *in[] = {model, tokp};
    if (cli_out_open_from(&o, out, in, 2, &err) || mipr_load(&m, &tok, model, tokp, &err) ||
        mipr_gguf_write_to(&o, m, tok, &wo, &err) || cli_out_commit(&o, &err))
        rc = cli_fail(&err);
    else
        fprintf(stderr, "wrote %s: %llu parameters, weights %s (%u tensor(s) kept wider)\n", out,
                (unsigned long long)mipr_model_n_params(m), mipr_dtype_name(type), fallbacks);
    cli_out_abort(&o);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    return rc;
}
