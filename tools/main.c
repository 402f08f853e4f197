/* mipr: the command line. Subcommands live in cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"info", cmd_info, "describe a model file (hyper-parameters, tensors, tokenizer)"},
    {"generate", cmd_generate, "generate text from a prompt"},
    {"perplexity", cmd_perplexity, "perplexity and bits per byte of a text"},
    {"convert", cmd_convert, "write a model as GGUF (f32, f16, bf16, q8_0 or q4_0 weights)"},
    {"calibrate", cmd_calibrate, "record FFN activation statistics and samples on a text"},
    {"prune", cmd_prune, "remove FFN neurons: a smaller GGUF, with a before/after report"},
    {"analyze", cmd_analyze, "mutual information between FFN neurons of a calibration record"},
    {"pack", cmd_pack, "write a model as .mpk, the compressed runtime format"},
    {"unpack", cmd_unpack, "write an .mpk back as GGUF"},
    {"verify", cmd_verify, "check every checksum of an .mpk and list its tensors"},
    {"tokenize", cmd_tokenize, "print the token ids of a text (as llama-tokenize does)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mipr COMMAND [ARGS]   (mipr COMMAND --help for details)\n\n"
               "mipr measures, prunes and runs LLaMA-family models on CPUs.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\nModels: GGUF (llama, deci, qwen2; float, Q8_0, Q4_0 and K-quant tensors), a\n"
               "Hugging Face folder (config.json, safetensors, tokenizer.json), an .mpk, or a\n"
               "llama2.c checkpoint (.bin, with -z tokenizer.bin).\n"
               "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    cli_signals_init();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("mipr 0.1.0\n");
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mipr: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
