/* mipr prune: from a model and its calibration record to a smaller GGUF, in one command. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "prune_report.h"

static const char usage_text[] =
    "usage: mipr prune MODEL [-z TOKENIZER] --calib FILE --ratio R -o OUT.gguf [options]\n"
    "       mipr prune HF_FOLDER --calib FILE --ratio R --format hf -o OUT_FOLDER [options]\n\n"
    "Removes a share R of the FFN neurons (whole neurons: rows of ffn_gate and ffn_up, columns\n"
    "of ffn_down) chosen by a criterion, and writes the smaller model as GGUF: architecture\n"
    "llama when every layer keeps the same width, deci (per-layer widths, which llama.cpp\n"
    "also runs) otherwise. A report (stderr, and JSON with --report) gives the per-layer\n"
    "widths, the criterion and why, parameters, perplexity and KL divergence before and after\n"
    "on the held-out calibration tokens (and on --eval-text), time and peak memory.\n\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (see mipr generate --help)\n"
    "      --calib FILE       calibration record of this model (mipr calibrate)\n"
    "      --ratio R          share of FFN neurons removed, in (0, 1)\n"
    "  -o, --output FILE      the pruned GGUF\n"
    "      --criterion C      auto (default), mi, magnitude, activation, wanda-sp, flap, random\n"
    "      --allocation A     uniform or adaptive widths (default: the policy's, else uniform)\n"
    "      --align N          kept widths are multiples of N: 1, 8, 16, 32 (default; ggml's\n"
    "                         Q8_0/Q4_0 blocks), 64, 128 or 256 (K-quants: Q4_K_M etc.)\n"
    "      --min-width N      no layer keeps fewer neurons (default: the alignment)\n"
    "      --layers A-B       prune only layers A..B (default: all)\n"
    "      --keep-layers L,.. leave these layers whole\n"
    "      --seed S           seed of randomised criteria (default 0)\n"
    "      --seeds K          randomised criteria (mi, random): try seeds S..S+K-1, keep the\n"
    "                         one with the lowest KL on the selection half of the held-out\n"
    "                         tokens (default 3; mi stops at one when nothing is merged)\n"
    "      --mi-threshold T   fixed normalised-MI threshold of a candidate pair (default:\n"
    "                         each layer's permutation null, docs/MI.md)\n"
    "      --mi-r2 R          mi: merge a neuron only when its least-squares fit from the\n"
    "                         partner has R^2 >= R (default 0.4)\n"
    "      --width RULE       MI kernel width rule (default tuned; see mipr analyze --help)\n"
    "      --clusters K       mi: k-means the neurons first, draw pairs inside clusters\n"
    "      --bias, --no-bias  fold the mean output of removed neurons into an ffn_down bias\n"
    "                         (default on: docs/PRUNING.md, \"Compensation\", has the counts)\n"
    "      --compensate       accepted for compatibility: mi always merges a removed\n"
    "                         redundant neuron into its partner (ffn_down column and bias)\n"
    "      --type T           weights of the output: f32, f16, bf16, q8_0, q4_0 (default:\n"
    "                         the input's float type; q8_0 for a quantized input)\n"
    "      --format F         gguf (default), or hf: a Hugging Face folder (config.json with\n"
    "                         intermediate_size updated, model.safetensors in the input's\n"
    "                         float type unless --type, the tokenizer files copied); needs an\n"
    "                         HF folder as MODEL; implies --allocation uniform --no-bias\n"
    "                         (llama configs hold one width, no ffn_down bias); OUT_FOLDER\n"
    "                         must not exist (or be empty); it appears only when complete\n"
    "      --eval-text FILE   also report perplexity and KL on this text\n"
    "      --window W         evaluation window (default: the calibration window)\n"
    "      --report FILE      write the report as JSON\n"
    "      --threads N        worker threads (default: one per core)\n";

static const cli_opt opts[] = {
    {"tokenizer", 'z', 1}, {"calib", 0, 1},        {"ratio", 0, 1},     {"output", 'o', 1},
    {"criterion", 0, 1},   {"allocation", 0, 1},   {"align", 0, 1},     {"min-width", 0, 1},
    {"layers", 0, 1},      {"keep-layers", 0, 1},  {"seed", 0, 1},      {"seeds", 0, 1},
    {"mi-threshold", 0, 1}, {"width", 0, 1},       {"clusters", 0, 1},  {"bias", 0, 0},
    {"compensate", 0, 0},  {"type", 0, 1},         {"eval-text", 0, 1}, {"window", 0, 1},
    {"report", 0, 1},      {"threads", 0, 1},      {"no-bias", 0, 0},   {"format", 0, 1},
    {"mi-r2", 0, 1},
    {NULL, 0, 0},
};

static int parse_layers(const cli_parser *p, const char *v, prune_args *a)
{
    char *end;
    long lo = strtol(v, &end, 10), hi;
    if (end == v || *end != '-' || (hi = strtol(end + 1, &end, 10), *end) || lo < 0 || hi < lo)
        return cli_usage_error(p, "--layers expects A-B with 0 <= A <= B, got '%s'", v), 0;
    a->o.first_layer = (uint32_t)lo, a->o.last_layer = (uint32_t)hi;
    return 1;
}

static int parse_keep(const cli_parser *p, const char *v, prune_args *a)
{
    a->keep_list = v;
    for (const char *s = v; *s; s++)
        if (!(*s >= '0' && *s <= '9') && *s != ',')
            return cli_usage_error(p, "--keep-layers expects numbers like 0,5,11, got '%s'", v), 0;
    return 1;
}

static int parse_choice(const cli_parser *p, int k, const char *v, prune_args *a)
{
    switch (k) {
    case 4:
        a->auto_criterion = strcmp(v, "auto") == 0;
        if (!a->auto_criterion && !mipr_criterion_parse(v, &a->o.criterion))
            return cli_usage_error(p, "--criterion: unknown '%s' (expected auto, mi, magnitude, "
                                   "activation, wanda-sp, flap or random)", v), 0;
        return 1;
    case 5:
        if (strcmp(v, "uniform") && strcmp(v, "adaptive"))
            return cli_usage_error(p, "--allocation expects uniform or adaptive"), 0;
        a->allocation = strcmp(v, "adaptive") == 0 ? 2 : 1;
        return 1;
    case 13:
        return mipr_width_parse(v, &a->o.width) ? 1
                                                : (cli_usage_error(p, "--width: bad rule '%s'", v), 0);
    default:
        for (int t = 0; t < MIPR_DT_COUNT; t++)
            if (strcmp(v, mipr_dtype_name((enum mipr_dtype)t)) == 0)
                return a->type = (enum mipr_dtype)t, 1;
        return cli_usage_error(p, "--type expects f32, f16, bf16, q8_0 or q4_0, got '%s'", v),
               0;
    }
}

static int parse_opt(cli_parser *p, int k, const char *v, void *ctx)
{
    prune_args *a = ctx;
    float f;
    switch (k) {
    case 0: a->tokenizer = v; return 1;
    case 1: a->calib = v; return 1;
    case 2:
        if (!cli_float(p, "--ratio", v, 0.0f, 1.0f, &f))
            return 0;
        if (f <= 0.0f || f >= 1.0f)
            return cli_usage_error(p, "--ratio must be strictly between 0 and 1, got %s", v), 0;
        a->o.ratio = f;
        return 1;
    case 3: a->output = v; return 1;
    case 6: return cli_u32(p, "--align", v, 1, 256, &a->o.align);
    case 7: return cli_u32(p, "--min-width", v, 1, MIPR_MAX_FF, &a->o.min_width);
    case 8: return parse_layers(p, v, a);
    case 9: return parse_keep(p, v, a);
    case 10: return cli_u64(p, "--seed", v, &a->o.seed);
    case 11: return cli_u32(p, "--seeds", v, 1, 100, &a->seeds);
    case 12:
        if (!cli_float(p, "--mi-threshold", v, 0.0f, 1.0f, &f))
            return 0;
        a->o.mi_threshold = f;
        return 1;
    case 14: return cli_u32(p, "--clusters", v, 0, 4096, &a->o.clusters);
    case 15: a->o.bias = 1, a->bias_set = 1; return 1;
    case 16: a->o.least_squares = 1; return 1;
    case 18: a->eval_text = v; return 1;
    case 19: return cli_u32(p, "--window", v, 2, MIPR_MAX_SEQ, &a->window);
    case 20: a->report = v; return 1;
    case 21: return cli_u32(p, "--threads", v, 1, 1024, &a->threads);
    case 22: a->o.bias = 0; return 1;
    case 23:
        if (strcmp(v, "gguf") && strcmp(v, "hf"))
            return cli_usage_error(p, "--format expects gguf or hf, got '%s'", v), 0;
        a->format_hf = strcmp(v, "hf") == 0;
        return 1;
    case 24:
        if (!cli_float(p, "--mi-r2", v, 0.0f, 1.0f, &f))
            return 0;
        a->o.mi_min_r2 = f;
        return 1;
    default: return parse_choice(p, k, v, a);
    }
}

/* The output must be writable before hours of work start. */
static int output_writable(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir)
        return 0;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return access(n ? dir : ".", W_OK) == 0;
}

static int parse(int argc, char **argv, prune_args *a)
{
    cli_parser p = {argc, 1, argv, "mipr prune", usage_text, opts};
    int rc = cli_parse(&p, &a->model, parse_opt, a);
    if (rc >= 0)
        return rc;
    if (!a->model || !a->calib || a->o.ratio == 0.0 || !a->output)
        return cli_usage_error(&p, "missing %s", !a->model ? "MODEL" : !a->calib ? "--calib FILE"
                                                  : a->o.ratio == 0.0 ? "--ratio R"
                                                                      : "-o OUT.gguf");
    if (!mipr_prune_align_ok(a->o.align))
        return cli_usage_error(&p, "--align expects 1, 8, 16, 32, 64, 128 or 256");
    if (a->format_hf && a->allocation == 2)
        return cli_usage_error(&p, "--format hf needs one width for all layers: drop "
                               "--allocation adaptive (or write GGUF)");
    if (a->format_hf && a->type != MIPR_DT_COUNT && a->type != MIPR_DT_F32 &&
        a->type != MIPR_DT_F16 && a->type != MIPR_DT_BF16)
        return cli_usage_error(&p, "--format hf writes safetensors: --type f32, f16 or bf16");
    if (a->format_hf && a->bias_set)
        return cli_usage_error(&p, "--format hf cannot hold an ffn_down bias: drop --bias (or "
                               "write GGUF)");
    if (a->format_hf) /* what a Hugging Face llama checkpoint can hold */
        a->allocation = 1, a->o.bias = 0;
    if (!output_writable(a->output))
        return fprintf(stderr, "mipr: %s: the output's folder is missing or not writable\n",
                       a->output), EXIT_FAIL;
    return -1;
}

int cmd_prune(int argc, char **argv)
{
    prune_args a = {.auto_criterion = 1, .seeds = 3, .type = MIPR_DT_COUNT}; /* the input's */
    a.o.width = (mipr_width){MIPR_WIDTH_TUNED, 0};
    a.o.align = 32; /* llama-quantize needs rows in whole 32-blocks */
    a.o.bias = 1; /* measured to help: docs/PRUNING.md, "Compensation" */
    a.o.last_layer = 0, a.o.first_layer = 1; /* all layers */
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    return prune_run(&a);
}
