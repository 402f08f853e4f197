/* mipr pack / unpack / verify: the .mpk runtime format (docs/FORMAT.md). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char pack_usage[] =
    "usage: mipr pack MODEL [-z TOKENIZER] -o OUT.mpk [--quant f32|f16|bf16|q8|q4]\n"
    "                 [--level L] [--codec zstd|raw] [--planes auto|on|off] [--chunk KIB]\n\n"
    "Writes MODEL (GGUF, llama2.c .bin or .mpk) as an .mpk for mipr-run and the runtime\n"
    "library: checksummed, tensors in chunks of whole rows, each zstd-compressed when that\n"
    "saves at least 3% (else stored as is, and then used in place without a copy).\n\n"
    "  -z, --tokenizer FILE  llama2.c tokenizer.bin (see mipr generate --help)\n"
    "  -o, --output FILE     the .mpk to write (appears only when complete)\n"
    "      --quant Q         layer weights: f32 (default), f16, bf16 (lossless when the\n"
    "                        source has that type), q8 (blocks of 32, int8 + f16 scale) or\n"
    "                        q4 (blocks of 32, 4-bit + f16 scale; embeddings and output q8).\n"
    "                        Norms and biases stay f32. Rows that are not a multiple of 32\n"
    "                        end in a zero-padded block.\n"
    "      --level L         zstd level 1..19 (default 9)\n"
    "      --codec C         zstd (default) or raw: no compression at all, for builds\n"
    "                        without zstd (firmware)\n"
    "      --planes P        split float bytes into planes before zstd: auto (default: per\n"
    "                        tensor, whichever is smaller), on, off\n"
    "      --chunk KIB       decoded KiB per chunk, the unit of low-RAM decoding (default 256)\n"
    "  -q, --quiet           no per-tensor table\n";

static const char unpack_usage[] =
    "usage: mipr unpack IN.mpk -o OUT.gguf\n\n"
    "Writes an .mpk back as GGUF v3 that llama.cpp loads. Each tensor keeps its type, except\n"
    "quantized rows whose length is not a multiple of 32 (GGUF can't hold their padded\n"
    "blocks): those become f16, and are listed.\n\n"
    "  -o, --output FILE     the GGUF to write (appears only when complete)\n";

static const char verify_usage[] =
    "usage: mipr verify IN.mpk [--quiet]\n\n"
    "Checks every checksum of an .mpk and decodes every tensor once, then prints its sections\n"
    "and a table of tensors: type, shape, stored and decoded sizes, compression ratio.\n"
    "Exit status 0 when the file is intact, 1 with the first problem otherwise.\n\n"
    "  -q, --quiet           only the verdict\n";

static const cli_opt pack_opts[] = {
    {"tokenizer", 'z', 1}, {"output", 'o', 1}, {"quant", 0, 1}, {"level", 0, 1},
    {"codec", 0, 1},       {"planes", 0, 1},   {"chunk", 0, 1}, {"quiet", 'q', 0},
    {NULL, 0, 0}};

typedef struct pack_args {
    const char *tok, *out;
    mipr_mpk_write_opts w;
    int quiet;
    cli_bar *bar;
} pack_args;

static int parse_quant(const char *s, enum mipr_dtype *t)
{
    static const struct {
        const char *name;
        enum mipr_dtype t;
    } q[] = {{"f32", MIPR_DT_F32}, {"f16", MIPR_DT_F16}, {"bf16", MIPR_DT_BF16},
             {"q8", MIPR_DT_Q8_0}, {"q8_0", MIPR_DT_Q8_0}, {"q4", MIPR_DT_Q4_0},
             {"q4_0", MIPR_DT_Q4_0}};
    for (size_t i = 0; i < sizeof q / sizeof *q; i++)
        if (strcmp(s, q[i].name) == 0) {
            *t = q[i].t;
            return 1;
        }
    return 0;
}

static int pack_opt(cli_parser *p, int k, const char *v, void *ctx)
{
    pack_args *a = ctx;
    uint32_t u;
    switch (k) {
    case 0: a->tok = v; return 1;
    case 1: a->out = v; return 1;
    case 2:
        return parse_quant(v, &a->w.type) ||
               !cli_usage_error(p, "--quant expects f32, f16, bf16, q8 or q4, got '%s'", v);
    case 3:
        if (!cli_u32(p, "--level", v, 1, 19, &u))
            return 0;
        a->w.level = (int)u;
        return 1;
    case 4:
        if (strcmp(v, "zstd") && strcmp(v, "raw"))
            return !cli_usage_error(p, "--codec expects zstd or raw, got '%s'", v);
        a->w.raw = strcmp(v, "raw") == 0;
        return 1;
    case 5:
        a->w.planes = !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : -1;
        return strcmp(v, "auto") == 0 || a->w.planes != -1 ||
               !cli_usage_error(p, "--planes expects auto, on or off, got '%s'", v);
    case 6:
        if (!cli_u32(p, "--chunk", v, 4, 8192, &u))
            return 0;
        a->w.chunk_bytes = u << 10;
        return 1;
    default: a->quiet = 1; return 1;
    }
}

static void print_tensor_row(const mipr_mpk_tensor_info *t)
{
    double ratio = t->stored_bytes ? (double)t->raw_bytes / (double)t->stored_bytes : 0.0;
    printf("  %-28s %-5s %6u x %-6u %4s%-7s %11llu %11llu %6.2fx\n", t->name,
           mipr_dtype_name(t->type), t->rows, t->cols, t->codec, t->planes ? "+planes" : "",
           (unsigned long long)t->stored_bytes, (unsigned long long)t->raw_bytes, ratio);
}

static void print_tensor_head(void)
{
    printf("  %-28s %-5s %15s %-11s %11s %11s %7s\n", "tensor", "type", "shape", "codec",
           "stored", "decoded", "ratio");
}

static void on_tensor(void *ctx, const mipr_mpk_tensor_info *t, uint32_t i, uint32_t total)
{
    const pack_args *a = ctx;
    if (!a->quiet) {
        if (i == 0)
            print_tensor_head();
        print_tensor_row(t);
    }
    cli_progress(a->bar, i + 1, total);
}

int cmd_pack(int argc, char **argv)
{
    cli_parser p = {argc, 1, argv, "mipr pack", pack_usage, pack_opts};
    pack_args a = {.w = {.type = MIPR_DT_F32, .planes = -1}};
    const char *model = NULL;
    int rc = cli_parse(&p, &model, pack_opt, &a);
    if (rc >= 0)
        return rc;
    if (!model || !a.out)
        return cli_usage_error(&p, "%s", !model ? "missing MODEL" : "missing -o OUT.mpk");
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    char meta[512];
    snprintf(meta, sizeof meta, "producer=mipr %s\nsource=%s\nquant=%s\n", mipr_version(),
             model, mipr_dtype_name(a.w.type));
    cli_bar bar;
    cli_bar_init(&bar, "packing", "tensors", a.quiet);
    a.bar = &bar;
    a.w.meta = meta;
    a.w.on_tensor = on_tensor;
    a.w.ctx = &a;
    rc = EXIT_OK;
    double t0 = cli_now();
    mipr_outfile o = {0};
    /* the output first: an unwritable path fails before the model is read */
    const char *in[] = {model, a.tok};
    if (cli_out_open_from(&o, a.out, in, 2, &err) || mipr_load(&m, &tok, model, a.tok, &err) ||
        mipr_mpk_write_to(&o, m, tok, &a.w, &err) || cli_out_commit(&o, &err)) {
        cli_out_abort(&o);
        rc = cli_fail(&err);
    } else {
        FILE *f = fopen(a.out, "rb");
        long size = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        if (f)
            fclose(f);
        fprintf(stderr, "wrote %s: %ld bytes, %llu parameters, weights %s, %.2f s\n", a.out, size,
                (unsigned long long)mipr_model_n_params(m), mipr_dtype_name(a.w.type),
                cli_now() - t0);
    }
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    return rc;
}

static const cli_opt unpack_opts[] = {{"output", 'o', 1}, {NULL, 0, 0}};

static int unpack_opt(cli_parser *p, int k, const char *v, void *ctx)
{
    (void)p, (void)k;
    *(const char **)ctx = v;
    return 1;
}

static void on_fallback(void *ctx, const char *tensor, enum mipr_dtype wanted,
                        enum mipr_dtype used)
{
    (void)ctx;
    fprintf(stderr, "note: %s becomes %s (GGUF can't hold its %s rows)\n", tensor,
            mipr_dtype_name(used), mipr_dtype_name(wanted));
}

int cmd_unpack(int argc, char **argv)
{
    cli_parser p = {argc, 1, argv, "mipr unpack", unpack_usage, unpack_opts};
    const char *in = NULL, *out = NULL;
    int rc = cli_parse(&p, &in, unpack_opt, &out);
    if (rc >= 0)
        return rc;
    if (!in || !out)
        return cli_usage_error(&p, "%s", !in ? "missing IN.mpk" : "missing -o OUT.gguf");
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    mipr_gguf_write_opts wo = {.keep_types = 1, .on_fallback = on_fallback};
    rc = EXIT_OK;
    mipr_outfile o = {0};
    const char *src[] = {in};
    if (cli_out_open_from(&o, out, src, 1, &err) || mipr_mpk_open_file(&m, &tok, in, NULL, &err) ||
        mipr_gguf_write_to(&o, m, tok, &wo, &err) || cli_out_commit(&o, &err)) {
        cli_out_abort(&o);
        rc = cli_fail(&err);
    } else {
        fprintf(stderr, "wrote %s: %llu parameters\n", out,
                (unsigned long long)mipr_model_n_params(m));
    }
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
    return rc;
}

static const cli_opt verify_opts[] = {{"quiet", 'q', 0}, {NULL, 0, 0}};

static int verify_opt(cli_parser *p, int k, const char *v, void *ctx)
{
    (void)p, (void)k, (void)v;
    *(int *)ctx = 1;
    return 1;
}

static void print_info(const mipr_mpk_info *info)
{
    uint64_t raw = 0, stored = 0;
    printf("format          mpk %u.%u, %llu bytes, %u sections, %u tensors\nsections\n",
           info->version_major, info->version_minor, (unsigned long long)info->file_size,
           info->n_sections, info->n_tensors);
    for (uint32_t i = 0; i < info->n_sections; i++) {
        const mipr_mpk_section_info *s = &info->sections[i];
        printf("  %-4s %-8s %-4s %11llu stored %11llu decoded%s\n", s->tag,
               s->required ? "required" : "optional", s->codec,
               (unsigned long long)s->stored_bytes, (unsigned long long)s->raw_bytes,
               s->known ? "" : "  (unknown: skipped)");
    }
    printf("tensors\n");
    print_tensor_head();
    for (uint32_t i = 0; i < info->n_tensors; i++) {
        print_tensor_row(&info->tensors[i]);
        raw += info->tensors[i].raw_bytes;
        stored += info->tensors[i].stored_bytes;
    }
    printf("total           %llu stored, %llu decoded, ratio %.3fx\n",
           (unsigned long long)stored, (unsigned long long)raw,
           stored ? (double)raw / (double)stored : 0.0);
}

int cmd_verify(int argc, char **argv)
{
    cli_parser p = {argc, 1, argv, "mipr verify", verify_usage, verify_opts};
    const char *in = NULL;
    int quiet = 0;
    int rc = cli_parse(&p, &in, verify_opt, &quiet);
    if (rc >= 0)
        return rc;
    if (!in)
        return cli_usage_error(&p, "missing IN.mpk");
    mipr_error err = {0};
    mipr_mapped_file f;
    mipr_mpk_info info;
    if (mipr_file_map(&f, in, &err))
        return cli_fail(&err);
    rc = EXIT_OK;
    if (mipr_mpk_inspect(f.data, f.size, in, &info, &err)) {
        rc = cli_fail(&err);
    } else {
        if (!quiet)
            print_info(&info);
        printf("%s: OK, every checksum matches\n", in);
        mipr_mpk_info_free(&info);
    }
    mipr_file_unmap(&f);
    return rc;
}
