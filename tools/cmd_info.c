/* mipr info: what a model file holds. */
#include <stdio.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr info MODEL [-z TOKENIZER] [--metadata]\n\n"
    "Prints the format, hyper-parameters, per-layer FFN widths, weight types, parameter count\n"
    "and tokenizer of MODEL (GGUF, .mpk, llama2.c .bin or a Hugging Face folder).\n\n"
    "  -z, --tokenizer FILE  llama2.c tokenizer.bin (see mipr generate --help)\n"
    "      --metadata        also list every GGUF metadata key and value\n";

static const cli_opt opts[] = {{"tokenizer", 'z', 1}, {"metadata", 0, 0}, {NULL, 0, 0}};

static void print_widths(const mipr_model *m)
{
    printf("ffn widths      ");
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        printf("%s%u", l ? " " : "", m->layers[l].d_ff);
    printf("\n");
}

static void print_model(const mipr_model *m, const mipr_tokenizer *tok)
{
    const mipr_hparams *hp = &m->hp;
    printf("name            %s\n", m->name);
    printf("dim             %u\nlayers          %u\nheads           %u (kv %u, head size %u, "
           "rotary %u)\n",
           hp->dim, hp->n_layers, hp->n_heads, hp->n_kv_heads, hp->head_size, hp->n_rot);
    print_widths(m);
    printf("vocab           %u\ncontext         %u\nnorm eps        %g\nrope theta      %g\n",
           hp->vocab_size, hp->seq_len, (double)hp->norm_eps, (double)hp->rope_theta);
    printf("rope            %s pairs%s", hp->rope_type == MIPR_ROPE_NEOX ? "rotate-half" : "interleaved",
           m->rope_freqs.data ? ", rope_freqs divisors (Llama 3)" : "");
    if (hp->rope_scale > 0.0f && hp->rope_scale != 1.0f)
        printf(", linear scaling %g", (double)hp->rope_scale);
    printf("\nfamily          %s%s\n", hp->family == MIPR_FAMILY_QWEN2 ? "qwen2" : "llama",
           m->layers[0].bq.data ? " (q/k/v biases)" : "");
    printf("classifier      %s\n", m->tied_output ? "tied to the embedding" : "separate");
    printf("weights         %s (ffn_gate of layer 0), embedding %s\n",
           mipr_dtype_name(m->layers[0].ffn_gate.type), mipr_dtype_name(m->tok_embd.type));
    printf("parameters      %llu\n", (unsigned long long)mipr_model_n_params(m));
    if (tok)
        printf("tokenizer       %u tokens, bos %d, eos %d, unk %d\n", mipr_tokenizer_n_vocab(tok),
               mipr_tokenizer_bos(tok), mipr_tokenizer_eos(tok), mipr_tokenizer_unk(tok));
    if (tok && mipr_tokenizer_is_bpe(tok))
        printf("                byte-level BPE, pre %s, %u merges%s\n",
               mipr_pre_name(mipr_tokenizer_pre(tok)), mipr_tokenizer_n_merges(tok),
               mipr_tokenizer_add_bos(tok) ? ", adds BOS" : "");
}

static int print_metadata(const char *path, mipr_error *err)
{
    mipr_gguf *g;
    if (mipr_gguf_open(&g, path, err))
        return EXIT_FAIL;
    printf("gguf version %u, %llu keys, %llu tensors, alignment %u\n", mipr_gguf_version(g),
           (unsigned long long)mipr_gguf_n_kv(g), (unsigned long long)mipr_gguf_n_tensors(g),
           mipr_gguf_alignment(g));
    for (uint64_t i = 0; i < mipr_gguf_n_kv(g); i++) {
        char buf[256];
        mipr_gguf_str k = mipr_gguf_key(g, i);
        mipr_gguf_format_value(g, i, buf, sizeof buf);
        printf("  %.*s = %s\n", (int)k.len, k.ptr, buf);
    }
    mipr_gguf_close(g);
    return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
    cli_parser p = {argc, 1, argv, "mipr info", usage_text, opts};
    const char *v, *model = NULL, *tokp = NULL;
    int k, meta = 0;
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
        else
            meta = 1;
    }
    if (!model)
        return cli_usage_error(&p, "missing MODEL");
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    enum mipr_file_kind kind = mipr_detect_file(model, &err);
    if (kind == MIPR_FILE_UNKNOWN || mipr_load(&m, &tok, model, tokp, &err))
        return cli_fail(&err);
    printf("file            %s\nformat          %s\n", model,
           kind == MIPR_FILE_GGUF  ? "GGUF"
           : kind == MIPR_FILE_MPK ? "mipr .mpk (see mipr verify)"
           : kind == MIPR_FILE_HF  ? "Hugging Face folder (config.json, safetensors)"
                                   : "llama2.c checkpoint (version 0)");
    print_model(m, tok);
    int rc = EXIT_OK;
    if (meta && kind == MIPR_FILE_GGUF)
        rc = print_metadata(model, &err) ? cli_fail(&err) : EXIT_OK;
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    return rc;
}
