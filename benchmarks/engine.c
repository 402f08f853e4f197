/* bench_engine [--shape smollm2|qwen05|tinyllama] [--type f32|q8_0|q4_0] [--threads N]
 *              [--prefill P] [--decode D] [--batch B] [--gguf OUT] [--json FILE]
 *
 * Engine throughput on a model of a real shape with random weights (speed only: never a
 * quality claim): prefill of P tokens in batches, then D single-token decode steps.
 * --gguf writes the same model (with a synthetic tokenizer) so another runtime, e.g.
 * llama.cpp's llama-bench, can be measured on identical weights. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipr.h"

typedef struct {
    const char *name;
    uint32_t dim, layers, heads, kv_heads, ff, vocab, tied;
} shape;

static const shape shapes[] = {
    {"smollm2", 576, 30, 9, 3, 1536, 49152, 1},    /* SmolLM2-135M */
    {"qwen05", 896, 24, 14, 2, 4864, 151936, 1},   /* Qwen2.5-0.5B (no QKV bias here) */
    {"tinyllama", 2048, 22, 32, 4, 5632, 32000, 0}, /* TinyLlama-1.1B */
};

typedef struct {
    const shape *s;
    enum mipr_dtype type;
    uint32_t threads, prefill, decode, batch;
    const char *gguf, *json;
    mipr_backend backend;
    int bad_backend;
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float rnd(float scale)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return scale * ((float)(rng >> 40) * 0x1.0p-24f * 2.0f - 1.0f);
}

static int matrix(mipr_model *m, mipr_tensor *t, uint32_t rows, uint32_t cols, enum mipr_dtype type)
{
    size_t rb = mipr_dtype_row_bytes(type, cols);
    char *p = mipr_model_alloc(m, rb * rows);
    float *row = malloc(cols * sizeof *row);
    if (!p || !row)
        return free(row), 0;
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t c = 0; c < cols; c++)
            row[c] = rnd(1.0f / sqrtf((float)cols));
        if (type == MIPR_DT_Q8_0)
            mipr_quantize_q8_0((mipr_block_q8_0 *)(p + rb * r), row, cols);
        else if (type == MIPR_DT_Q4_0)
            mipr_quantize_q4_0((mipr_block_q4_0 *)(p + rb * r), row, cols);
        else
            memcpy(p + rb * r, row, rb);
    }
    free(row);
    *t = (mipr_tensor){.type = type, .rows = rows, .cols = cols, .data = p};
    return 1;
}

static int norm(mipr_model *m, mipr_tensor *t, uint32_t n)
{
    float *p = mipr_model_alloc(m, n * sizeof *p);
    for (uint32_t i = 0; p && i < n; i++)
        p[i] = 1.0f;
    *t = (mipr_tensor){.type = MIPR_DT_F32, .rows = 1, .cols = n, .data = p};
    return p != NULL;
}

static int layer(mipr_model *m, mipr_layer *L, const shape *s, enum mipr_dtype t)
{
    uint32_t kv = s->dim / s->heads * s->kv_heads;
    L->d_ff = s->ff;
    return norm(m, &L->attn_norm, s->dim) && matrix(m, &L->wq, s->dim, s->dim, t) &&
           matrix(m, &L->wk, kv, s->dim, t) && matrix(m, &L->wv, kv, s->dim, t) &&
           matrix(m, &L->wo, s->dim, s->dim, t) && norm(m, &L->ffn_norm, s->dim) &&
           matrix(m, &L->ffn_gate, s->ff, s->dim, t) && matrix(m, &L->ffn_up, s->ff, s->dim, t) &&
           matrix(m, &L->ffn_down, s->dim, s->ff, t);
}

static mipr_model *build(const shape *s, enum mipr_dtype t, mipr_error *err)
{
    mipr_model *m;
    if (mipr_model_new(&m, s->layers, err))
        return NULL;
    m->hp = (mipr_hparams){s->dim, s->layers, s->heads, s->kv_heads, s->dim / s->heads,
                           s->dim / s->heads, s->vocab, 2048, 1e-5f, 10000.0f};
    snprintf(m->name, sizeof m->name, "random-%s", s->name);
    int ok = matrix(m, &m->tok_embd, s->vocab, s->dim, t) && norm(m, &m->output_norm, s->dim);
    m->tied_output = (int)s->tied;
    if (ok && s->tied)
        m->output = m->tok_embd;
    else if (ok)
        ok = matrix(m, &m->output, s->vocab, s->dim, t);
    for (uint32_t l = 0; ok && l < s->layers; l++)
        ok = layer(m, &m->layers[l], s, t);
    if (!ok || mipr_model_validate(m, s->name, err)) {
        mipr_model_free(m);
        return NULL;
    }
    return m;
}

/* <unk>, <s>, </s>, 256 byte tokens, then "tN" pieces: enough for llama.cpp to load. */
static mipr_tokenizer *synthetic_tokenizer(uint32_t n, mipr_error *err)
{
    mipr_tokenizer *t;
    if (mipr_tokenizer_new(&t, n, err))
        return NULL;
    char piece[32];
    for (uint32_t i = 0; i < n; i++) {
        enum mipr_token_type ty = i == 0 ? MIPR_TOK_UNKNOWN : i < 3 ? MIPR_TOK_CONTROL
                                  : i < 259 ? MIPR_TOK_BYTE : MIPR_TOK_NORMAL;
        if (i < 3)
            snprintf(piece, sizeof piece, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else
            snprintf(piece, sizeof piece, "t%u", i);
        if (mipr_tokenizer_set(t, i, piece, strlen(piece), -(float)i, ty, err))
            return mipr_tokenizer_free(t), NULL;
    }
    if (mipr_tokenizer_finish(t, 1, 2, 0, 1, err))
        return mipr_tokenizer_free(t), NULL;
    return t;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--shape")) {
            o->s = NULL;
            for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
                if (!strcmp(v, shapes[k].name))
                    o->s = &shapes[k];
        } else if (!strcmp(a, "--type")) {
            o->type = !strcmp(v, "q8_0")   ? MIPR_DT_Q8_0
                      : !strcmp(v, "q4_0") ? MIPR_DT_Q4_0
                      : !strcmp(v, "f32")  ? MIPR_DT_F32
                                           : MIPR_DT_COUNT;
        } else if (!strcmp(a, "--threads")) o->threads = (uint32_t)atoi(v);
        else if (!strcmp(a, "--prefill")) o->prefill = (uint32_t)atoi(v);
        else if (!strcmp(a, "--decode")) o->decode = (uint32_t)atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = (uint32_t)atoi(v);
        else if (!strcmp(a, "--backend"))
            o->bad_backend = mipr_backend_parse(v, &o->backend, NULL) != MIPR_OK;
        else if (!strcmp(a, "--gguf")) o->gguf = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else return -1;
    }
    return argc % 2 == 1 && o->s && o->type != MIPR_DT_COUNT && o->prefill && o->decode &&
           !o->bad_backend ? 0 : -1;
}

int main(int argc, char **argv)
{
    options o = {&shapes[0], MIPR_DT_F32, 0, 512, 128, 128, NULL, NULL, MIPR_BACKEND_OURS, 0};
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_engine [--shape smollm2|qwen05|tinyllama] [--type f32|q8_0|q4_0] "
                        "[--threads N] [--prefill P] [--decode D] [--batch B] "
                        "[--backend ours|xnnpack|auto] [--gguf OUT] [--json FILE]\n");
        return 2;
    }
    mipr_error err = {0};
    mipr_model *m = build(o.s, o.type, &err);
    mipr_pool *pool = NULL;
    mipr_engine *e = NULL;
    uint32_t ctx = o.prefill + o.decode;
    if (!m || mipr_pool_new(&pool, o.threads, &err) || mipr_engine_new(&e, m, ctx, o.batch, &err))
        return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
    if (o.gguf) {
        mipr_tokenizer *t = synthetic_tokenizer(o.s->vocab, &err);
        mipr_gguf_write_opts wo = {.type = o.type, .on_fallback = NULL, .ctx = NULL};
        if (!t || mipr_gguf_write(o.gguf, m, t, &wo, &err))
            return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
        mipr_tokenizer_free(t);
    }
    mipr_engine_set_pool(e, pool);
    if (mipr_engine_set_backend(e, o.backend, &err))
        return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
    int32_t *ids = malloc(ctx * sizeof *ids);
    float *logits = malloc((size_t)o.s->vocab * sizeof *logits);
    for (uint32_t i = 0; i < ctx; i++)
        ids[i] = (int32_t)(3 + (i * 7919u) % (o.s->vocab - 3));
    double t0 = now();
    if (mipr_engine_forward(e, ids, o.prefill, 0, logits, 0, &err))
        return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
    double t1 = now();
    for (uint32_t i = 0; i < o.decode; i++)
        if (mipr_engine_forward(e, ids + o.prefill + i, 1, o.prefill + i, logits, 0, &err))
            return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
    double t2 = now(), pp = o.prefill / (t1 - t0), tg = o.decode / (t2 - t1);
    printf("%s %s, %u thread(s), kernels %s, backend %s%s: prefill %u tokens %.1f tok/s, "
           "decode %u tokens %.1f tok/s (%llu parameters)\n", o.s->name, mipr_dtype_name(o.type),
           mipr_pool_threads(pool), mipr_kernels()->isa, mipr_backend_name(o.backend),
           mipr_engine_uses_xnnpack(e) ? " (XNNPACK on)" : "", o.prefill, pp, o.decode, tg,
           (unsigned long long)mipr_model_n_params(m));
    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (f) {
            fprintf(f, "{\"shape\": \"%s\", \"type\": \"%s\", \"threads\": %u, \"isa\": \"%s\", "
                       "\"backend\": \"%s\", \"xnnpack\": %d, "
                       "\"prefill_tokens\": %u, \"prefill_tps\": %.3f, \"decode_tokens\": %u, "
                       "\"decode_tps\": %.3f}\n", o.s->name, mipr_dtype_name(o.type),
                    mipr_pool_threads(pool), mipr_kernels()->isa, mipr_backend_name(o.backend),
                    mipr_engine_uses_xnnpack(e), o.prefill, pp, o.decode, tg);
            fclose(f);
        }
    }
    free(ids), free(logits);
    mipr_engine_free(e);
    mipr_pool_free(pool);
    mipr_model_free(m);
    return 0;
}
