/* mipr-run: the device CLI. Runs an .mpk with the runtime library alone (no core/), as an
 * app embedding mipr would: open, encode the prompt, generate, report speed and memory. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mipr_runtime.h"

static const char usage_text[] =
    "usage: mipr-run MODEL.mpk [-p PROMPT] [-n STEPS] [-t TEMP] [--top-p P] [--seed S]\n"
    "                [--threads N] [--ctx N] [--low-ram] [--no-verify]\n\n"
    "Generates text with an .mpk model (mipr pack makes them). Text goes to stdout; load\n"
    "time, tokens/s and peak memory go to stderr.\n\n"
    "  -p, --prompt TEXT   prompt (default: empty, generation starts after BOS)\n"
    "  -n, --steps N       positions to run, prompt included (default 256)\n"
    "  -t, --temp T        0 = greedy (default 1.0)\n"
    "      --top-p P       nucleus sampling in (0,1); 1 = off (default 0.9)\n"
    "      --seed S        random seed (default: from the clock)\n"
    "      --threads N     threads that decode at load and run the engine (default: one\n"
    "                      per core)\n"
    "      --ctx N         KV cache positions (default: STEPS, at most the model's context)\n"
    "      --low-ram       keep compressed tensors compressed; decode them chunk by chunk\n"
    "                      while multiplying (RAM: file + KV cache + about 1 MiB)\n"
    "      --no-verify     skip the CRC pass over the file at load\n";

typedef struct run_args {
    const char *model, *prompt;
    uint32_t steps, threads, ctx;
    float temp, top_p;
    uint64_t seed;
    mipr_mpk_options open;
} run_args;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "mipr-run: %s%s%s\n(mipr-run --help for usage)\n", msg, arg ? ": " : "",
            arg ? arg : "");
    return 2;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max)
        return 0;
    *out = v;
    return 1;
}

static int parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return 0;
    *out = v;
    return 1;
}

/* One option with a value; returns 0 on a bad value. */
static int take_value(run_args *a, const char *opt, const char *v)
{
    uint64_t u;
    if (!strcmp(opt, "-p") || !strcmp(opt, "--prompt"))
        return (a->prompt = v) != NULL;
    if (!strcmp(opt, "-n") || !strcmp(opt, "--steps"))
        return parse_u64(v, MIPR_MAX_SEQ, &u) && u > 0 && ((a->steps = (uint32_t)u), 1);
    if (!strcmp(opt, "-t") || !strcmp(opt, "--temp"))
        return parse_float(v, 0.0f, 100.0f, &a->temp);
    if (!strcmp(opt, "--top-p"))
        return parse_float(v, 0.0f, 1.0f, &a->top_p);
    if (!strcmp(opt, "--seed"))
        return parse_u64(v, UINT64_MAX, &a->seed);
    if (!strcmp(opt, "--threads"))
        return parse_u64(v, 1024, &u) && ((a->threads = (uint32_t)u), 1);
    if (!strcmp(opt, "--ctx"))
        return parse_u64(v, MIPR_MAX_SEQ, &u) && u > 0 && ((a->ctx = (uint32_t)u), 1);
    return -1;
}

/* Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, run_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(o, "--low-ram") || !strcmp(o, "--no-verify")) {
            *(o[2] == 'l' ? &a->open.low_ram : &a->open.skip_verify) = 1;
            continue;
        }
        if (o[0] != '-' || !o[1]) {
            if (a->model)
                return usage_error("unexpected argument", o);
            a->model = o;
            continue;
        }
        if (i + 1 >= argc)
            return usage_error("missing value after", o);
        int ok = take_value(a, o, argv[++i]);
        if (ok < 0)
            return usage_error("unknown option", o);
        if (!ok)
            return usage_error("bad value for", o);
    }
    return a->model ? -1 : usage_error("missing MODEL.mpk", NULL);
}

static int emit(void *ctx, int32_t prev, int32_t token)
{
    size_t len;
    const char *s = mipr_tokenizer_decode(ctx, prev, token, &len);
    /* lone non-printable bytes (from byte tokens) are dropped, as llama2.c does */
    if (len > 1 || (len == 1 && (isprint((unsigned char)s[0]) || isspace((unsigned char)s[0]))))
        fwrite(s, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static double peak_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

typedef struct run_state {
    mipr_model *m;
    mipr_tokenizer *tok;
    mipr_engine *eng;
    mipr_sampler smp;
    mipr_pool *pool;
    int32_t *ids;
} run_state;

static mipr_status generate(const run_args *a, run_state *s, double load_s, mipr_error *err)
{
    const char *prompt = a->prompt ? a->prompt : "";
    size_t plen = strlen(prompt);
    if (!(s->ids = malloc((plen + 2) * sizeof *s->ids)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for the prompt");
    uint32_t n = (uint32_t)mipr_tokenizer_encode(s->tok, prompt, plen, 1, s->ids);
    mipr_gen_stats st;
    mipr_status rc = mipr_generate(s->eng, &s->smp, s->tok, s->ids, n, a->steps, emit, s->tok,
                                   now, &st, err);
    printf("\n");
    fflush(stdout); /* the text ends before the statistics on stderr start, even in a pipe */
    if (rc == MIPR_OK)
        fprintf(stderr, "mipr-run: load %.3f s; prompt %u tokens %.1f tok/s; generated %u tokens "
                "%.1f tok/s; peak RSS %.1f MiB; threads %u; %s\n", load_s, st.prompt_tokens,
                st.prompt_tokens / (st.prefill_seconds + 1e-9), st.generated,
                st.generated / (st.decode_seconds + 1e-9), peak_mib(),
                mipr_pool_threads(s->pool), a->open.low_ram ? "low-ram" : "decoded at load");
    return rc;
}

int main(int argc, char **argv)
{
    run_args a = {.steps = 256, .temp = 1.0f, .top_p = 0.9f, .seed = (uint64_t)(now() * 1e6)};
    int rc = parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    mipr_error err = {0};
    run_state s = {0};
    double t0 = now();
    mipr_status st = mipr_pool_new(&s.pool, a.threads, &err);
    a.open.pool = s.pool; /* the engine's threads decode at open too */
    if (st == MIPR_OK)
        st = mipr_mpk_open_file(&s.m, &s.tok, a.model, &a.open, &err);
    double load_s = now() - t0;
    if (st == MIPR_OK) {
        uint32_t ctx = a.ctx ? a.ctx : a.steps;
        ctx = ctx < s.m->hp.seq_len ? ctx : s.m->hp.seq_len;
        /* low RAM: prefill in batches of 8, so activation buffers stay a few hundred KiB */
        st = mipr_engine_new(&s.eng, s.m, ctx, a.open.low_ram ? 8 : 0, &err);
    }
    if (st == MIPR_OK)
        st = mipr_sampler_init(&s.smp, s.m->hp.vocab_size, a.temp, a.top_p, a.seed, &err);
    if (st == MIPR_OK) {
        mipr_engine_set_pool(s.eng, s.pool);
        st = generate(&a, &s, load_s, &err);
    }
    if (st)
        fprintf(stderr, "mipr-run: %s\n", err.msg);
    free(s.ids);
    mipr_sampler_free(&s.smp);
    mipr_engine_free(s.eng);
    mipr_tokenizer_free(s.tok);
    mipr_model_free(s.m);
    mipr_pool_free(s.pool);
    return st ? 1 : 0;
}
