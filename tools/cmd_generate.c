/* mipr generate: llama2.c's `run` semantics (steps count positions including the prompt). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mipr generate MODEL [-z TOKENIZER] [-p PROMPT] [-n STEPS] [-t TEMP] [--top-p P]\n"
    "                     [--seed S] [--ctx N] [--threads N] [--backend B]\n\n"
    "Generates text with MODEL (GGUF, .mpk, llama2.c .bin or a Hugging Face folder). The\n"
    "text goes to stdout, statistics to stderr.\n\n"
    "  -z, --tokenizer FILE  llama2.c tokenizer.bin (default: the GGUF's own, or\n"
    "                        tokenizer.bin beside a .bin model)\n"
    "  -p, --prompt TEXT     prompt (default: empty, generation starts after BOS)\n"
    "  -n, --steps N         positions to run, prompt included (default 256; capped at the\n"
    "                        model's context length)\n"
    "  -t, --temperature T   0 = greedy (default 1.0)\n"
    "      --top-p P         nucleus sampling in (0,1); 1 = off (default 0.9)\n"
    "      --seed S          random seed (default: from the clock)\n"
    "      --ctx N           KV cache positions (default: the model's context length)\n"
    "      --threads N       worker threads (default: one per core)\n"
    "      --backend B       prefill matmuls: ours (default; prompt logits bit-identical to\n"
    "                        decode), xnnpack (F32 weights through XNNPACK: a second copy of\n"
    "                        them in memory, rounding differs by ~1e-6), auto (XNNPACK only\n"
    "                        where measured faster: without SIMD kernels)\n";

typedef struct {
    const char *model, *tokenizer, *prompt;
    uint32_t steps, ctx, threads;
    float temp, top_p;
    uint64_t seed;
    mipr_backend backend;
} gen_args;

static const cli_opt opts[] = {
    {"tokenizer", 'z', 1}, {"prompt", 'p', 1}, {"steps", 'n', 1}, {"temperature", 't', 1},
    {"top-p", 0, 1},       {"seed", 's', 1},   {"ctx", 0, 1},     {"threads", 0, 1},
    {"backend", 0, 1},     {NULL, 0, 0},
};

static int parse(int argc, char **argv, gen_args *a)
{
    cli_parser p = {argc, 1, argv, "mipr generate", usage_text, opts};
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
        case 1: a->prompt = v; break;
        case 2: ok = cli_u32(&p, "--steps", v, 1, MIPR_MAX_SEQ, &a->steps); break;
        case 3: ok = cli_float(&p, "--temperature", v, 0.0f, 100.0f, &a->temp); break;
        case 4: ok = cli_float(&p, "--top-p", v, 0.0f, 1.0f, &a->top_p); break;
        case 5: ok = cli_u64(&p, "--seed", v, &a->seed); break;
        case 6: ok = cli_u32(&p, "--ctx", v, 1, MIPR_MAX_SEQ, &a->ctx); break;
        case 7: ok = cli_u32(&p, "--threads", v, 1, 1024, &a->threads); break;
        case 8:
            ok = mipr_backend_parse(v, &a->backend, NULL) == MIPR_OK;
            if (!ok)
                cli_usage_error(&p, "--backend expects ours, xnnpack or auto, got '%s'", v);
            break;
        }
        if (!ok)
            return EXIT_USAGE;
    }
    if (!a->model)
        return cli_usage_error(&p, "missing MODEL");
    return -1;
}

/* llama2.c's safe_printf: lone non-printable bytes (e.g. from byte tokens) are dropped. */
static void print_piece(const char *s, size_t len)
{
    if (len == 0)
        return;
    if (len == 1 && !(isprint((unsigned char)s[0]) || isspace((unsigned char)s[0])))
        return;
    fwrite(s, 1, len, stdout);
}

typedef struct {
    mipr_model *m;
    mipr_tokenizer *tok;
    mipr_engine *eng;
    mipr_sampler smp;
    mipr_pool *pool;
} gen_state;

static int emit(void *ctx, int32_t prev, int32_t token)
{
    size_t len;
    const char *s = mipr_tokenizer_decode(ctx, prev, token, &len);
    print_piece(s, len);
    fflush(stdout);
    return 0;
}

static int run(const gen_args *a, gen_state *g, mipr_error *err)
{
    const char *prompt = a->prompt ? a->prompt : "";
    size_t plen = strlen(prompt);
    int32_t *ids = malloc((plen + 2) * sizeof *ids);
    if (!ids)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory"), EXIT_FAIL;
    uint32_t n = (uint32_t)mipr_tokenizer_encode(g->tok, prompt, plen, 1, ids);
    mipr_gen_stats st;
    mipr_status rc = mipr_generate(g->eng, &g->smp, g->tok, ids, n, a->steps, emit, g->tok,
                                   cli_now, &st, err);
    free(ids);
    printf("\n");
    fflush(stdout); /* the text ends before the statistics on stderr start, even in a pipe */
    if (rc == MIPR_ERR_FORMAT) /* non-finite logits: the model file's weights */
        cli_blame(err, a->model);
    if (rc)
        return EXIT_FAIL;
    fprintf(stderr, "prompt: %u tokens, %.1f tok/s; generated: %u tokens, %.1f tok/s\n",
            st.prompt_tokens, st.prompt_tokens / (st.prefill_seconds + 1e-9), st.generated,
            st.generated / (st.decode_seconds + 1e-9));
    return EXIT_OK;
}

int cmd_generate(int argc, char **argv)
{
    gen_args a = {.steps = 256, .temp = 1.0f, .top_p = 0.9f};
    a.seed = (uint64_t)(cli_now() * 1e6);
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    mipr_error err = {0};
    gen_state g = {0};
    rc = EXIT_FAIL;
    if (cli_pool_new(&g.pool, a.threads, &err) == MIPR_OK &&
        mipr_load(&g.m, &g.tok, a.model, a.tokenizer, &err) == MIPR_OK &&
        mipr_engine_new(&g.eng, g.m, a.ctx, 0, &err) == MIPR_OK &&
        mipr_engine_set_backend(g.eng, a.backend, mipr_xnnpack_provider(), &err) == MIPR_OK &&
        mipr_sampler_init(&g.smp, g.m->hp.vocab_size, a.temp, a.top_p, a.seed, &err) == MIPR_OK) {
        mipr_engine_set_pool(g.eng, g.pool);
        rc = run(&a, &g, &err);
    }
    if (rc == EXIT_FAIL)
        cli_fail(&err);
    mipr_sampler_free(&g.smp);
    mipr_engine_free(g.eng);
    mipr_tokenizer_free(g.tok);
    mipr_model_free(g.m);
    mipr_pool_free(g.pool);
    return rc;
}
