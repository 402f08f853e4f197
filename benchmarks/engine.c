/* bench_engine [--shape smollm2|qwen05|llama32_1b|tinyllama] [--type f32|q8_0|q4_0]
 *              [--threads N] [--prefill P] [--decode D] [--batch B] [--gguf OUT]
 *              [--layers N] [--gguf-only 1] [--json FILE] [--calib-text FILE --calib-tokens N]
 *
 * Engine throughput on a model of a real shape with random weights (speed only: never a
 * quality claim): prefill of P tokens in batches, then D single-token decode steps.
 * Beside each figure, this machine's peak measured in the same run: prefill's nominal
 * GFLOP/s (2 x matrix weights per token; attention not counted) against the FMA peak of
 * one core times the threads, decode's weight bytes streamed per second against the read
 * bandwidth measured with the same threads. Also the process's peak resident memory, and with --calib-text, calibration
 * tokens/s (mipr_calibrate: the engine plus the FFN observer's statistics) over N tokens
 * of that text, tokenised by the synthetic tokenizer (byte pieces).
 * --gguf writes the same model (with a synthetic tokenizer) so another runtime, e.g.
 * llama.cpp's llama-bench, can be measured (or compared: greedy tokens, logits) on identical
 * weights; --layers keeps the first N layers of the shape, --untied 1 gives a tied shape its
 * own classifier, --gguf-only 1 stops after writing.
 * The shapes carry their architecture's features: qwen05 is GGUF qwen2 (q/k/v biases,
 * rotate-half RoPE, 151,936 tokens), llama32_1b has Llama 3's rope_freqs (factor 32) and its
 * 128,256-token tied classifier, tinyllama an untied one. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory.h"
#include "mipr.h"
#include "peak.h"

typedef struct {
    const char *name;
    uint32_t dim, layers, heads, kv_heads, ff, vocab, tied;
    float theta;
    int qwen2, llama3; /* q/k/v biases and rotate-half RoPE; rope_freqs */
} shape;

static const shape shapes[] = {
    {"smollm2", 576, 30, 9, 3, 1536, 49152, 1, 100000.0f, 0, 0},      /* SmolLM2-135M */
    {"qwen05", 896, 24, 14, 2, 4864, 151936, 1, 1000000.0f, 1, 0},    /* Qwen2.5-0.5B */
    {"llama32_1b", 2048, 16, 32, 8, 8192, 128256, 1, 500000.0f, 0, 1}, /* Llama-3.2-1B */
    {"tinyllama", 2048, 22, 32, 4, 5632, 32000, 0, 10000.0f, 0, 0},   /* TinyLlama-1.1B */
};

typedef struct {
    const shape *s;
    enum mipr_dtype type;
    uint32_t threads, prefill, decode, batch;
    const char *gguf, *json;
    uint32_t layers;
    int gguf_only, untied;
    mipr_backend backend;
    int bad_backend;
    const char *calib_text;
    uint64_t calib_tokens;
} options;

/* What one run measured. */
typedef struct {
    double build_s, prefill_tps, decode_tps, calib_tps, fma1, read_gbs, read_gbs_t, peak_mib;
    uint64_t params, weight_macs, weight_bytes;
    const char *peak_isa;
} measured;

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

static int bias(mipr_model *m, mipr_tensor *t, uint32_t n)
{
    float *p = mipr_model_alloc(m, n * sizeof *p);
    for (uint32_t i = 0; p && i < n; i++)
        p[i] = rnd(0.5f);
    *t = (mipr_tensor){.type = MIPR_DT_F32, .rows = 1, .cols = n, .data = p};
    return p != NULL;
}

/* Llama 3.x's frequency divisors (HF rope_type "llama3": factor 32, low 1, high 4, original
 * context 8192), as llama.cpp's converter computes them into rope_freqs.weight. */
static int llama3_freqs(mipr_model *m, uint32_t n_rot, float theta)
{
    uint32_t n = n_rot / 2;
    float *p = mipr_model_alloc(m, n * sizeof *p);
    if (!p)
        return 0;
    const double factor = 32.0, low = 1.0, high = 4.0, old_ctx = 8192.0, pi = 3.14159265358979;
    for (uint32_t i = 0; i < n; i++) {
        double freq = 1.0 / pow(theta, 2.0 * i / n_rot), wavelen = 2.0 * pi / freq;
        double smooth = (old_ctx / wavelen - low) / (high - low);
        p[i] = wavelen < old_ctx / high  ? 1.0f
               : wavelen > old_ctx / low ? (float)factor
                                         : (float)(1.0 / ((1.0 - smooth) / factor + smooth));
    }
    m->rope_freqs = (mipr_tensor){.type = MIPR_DT_F32, .rows = 1, .cols = n, .data = p};
    return 1;
}

static int layer(mipr_model *m, mipr_layer *L, const shape *s, enum mipr_dtype t)
{
    uint32_t kv = s->dim / s->heads * s->kv_heads;
    L->d_ff = s->ff;
    if (s->qwen2 && !(bias(m, &L->bq, s->dim) && bias(m, &L->bk, kv) && bias(m, &L->bv, kv)))
        return 0;
    return norm(m, &L->attn_norm, s->dim) && matrix(m, &L->wq, s->dim, s->dim, t) &&
           matrix(m, &L->wk, kv, s->dim, t) && matrix(m, &L->wv, kv, s->dim, t) &&
           matrix(m, &L->wo, s->dim, s->dim, t) && norm(m, &L->ffn_norm, s->dim) &&
           matrix(m, &L->ffn_gate, s->ff, s->dim, t) && matrix(m, &L->ffn_up, s->ff, s->dim, t) &&
           matrix(m, &L->ffn_down, s->dim, s->ff, t);
}

static mipr_model *build(const shape *s, uint32_t layers, int untied, enum mipr_dtype t,
                         mipr_error *err)
{
    mipr_model *m;
    if (mipr_model_new(&m, layers, err))
        return NULL;
    m->hp = (mipr_hparams){.dim = s->dim, .n_layers = layers, .n_heads = s->heads,
                           .n_kv_heads = s->kv_heads, .head_size = s->dim / s->heads,
                           .n_rot = s->dim / s->heads, .vocab_size = s->vocab, .seq_len = 2048,
                           .norm_eps = 1e-5f, .rope_theta = s->theta,
                           .family = s->qwen2 ? MIPR_FAMILY_QWEN2 : MIPR_FAMILY_LLAMA,
                           .rope_type = s->qwen2 ? MIPR_ROPE_NEOX : MIPR_ROPE_INTERLEAVED};
    snprintf(m->name, sizeof m->name, "random-%s", s->name);
    int ok = matrix(m, &m->tok_embd, s->vocab, s->dim, t) && norm(m, &m->output_norm, s->dim);
    if (ok && s->llama3)
        ok = llama3_freqs(m, m->hp.n_rot, s->theta);
    m->tied_output = (int)s->tied && !untied;
    if (ok && m->tied_output)
        m->output = m->tok_embd;
    else if (ok)
        ok = matrix(m, &m->output, s->vocab, s->dim, t);
    for (uint32_t l = 0; ok && l < layers; l++)
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
        else if (!strcmp(a, "--layers")) o->layers = (uint32_t)atoi(v);
        else if (!strcmp(a, "--gguf-only")) o->gguf_only = atoi(v);
        else if (!strcmp(a, "--untied")) o->untied = atoi(v);
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--calib-text")) o->calib_text = v;
        else if (!strcmp(a, "--calib-tokens")) o->calib_tokens = strtoull(v, NULL, 10);
        else return -1;
    }
    return argc % 2 == 1 && o->s && o->type != MIPR_DT_COUNT && o->prefill && o->decode &&
           !o->bad_backend ? 0 : -1;
}

/* Read bandwidth with the engine's threads: each reads its own slice of a 256 MiB buffer
 * (decode streams the weights the same way, rows split between threads). */
typedef struct {
    const float *x;
    size_t per;
    mipr_peak_read_loop f;
    volatile float sink;
} read_job;

static void read_slice(void *ctx, size_t i)
{
    read_job *j = ctx;
    j->sink = j->f(j->x + i * j->per, j->per);
}

static double read_gbs_threads(mipr_pool *pool)
{
    size_t threads = mipr_pool_threads(pool), n = (size_t)256 << 20 >> 2;
    float *x = malloc(n * sizeof *x);
    if (!x)
        return 0.0;
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f;
    read_job j = {x, n / threads / 32 * 32, mipr_peak_read_best_loop(), 0.0f};
    double best = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        mipr_pool_run(pool, read_slice, &j, threads);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(x);
    return (double)(j.per * threads * sizeof *x) / best * 1e-9;
}

/* Multiply-adds and bytes of the weight matrices one token runs through (the embedding
 * row read is negligible; a tied output matrix is read again as the classifier). */
static void weight_cost(const mipr_model *m, measured *r)
{
    const mipr_tensor *out = &m->output;
    r->weight_macs = (uint64_t)out->rows * out->cols;
    r->weight_bytes = mipr_dtype_row_bytes(out->type, out->cols) * out->rows;
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        const mipr_layer *L = &m->layers[l];
        const mipr_tensor *t[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up,
                                  &L->ffn_down};
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            r->weight_macs += (uint64_t)t[i]->rows * t[i]->cols;
            r->weight_bytes += mipr_dtype_row_bytes(t[i]->type, t[i]->cols) * t[i]->rows;
        }
    }
}

static mipr_status run_engine(const options *o, mipr_model *m, mipr_pool *pool, measured *r,
                              mipr_error *err)
{
    mipr_engine *e = NULL;
    uint32_t ctx = o->prefill + o->decode;
    mipr_status st = mipr_engine_new(&e, m, ctx, o->batch, err);
    if (st)
        return st;
    mipr_engine_set_pool(e, pool);
    int32_t *ids = malloc(ctx * sizeof *ids);
    float *logits = malloc((size_t)o->s->vocab * sizeof *logits);
    if ((st = mipr_engine_set_backend(e, o->backend, mipr_xnnpack_provider(), err)) == MIPR_OK && (!ids || !logits))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; st == MIPR_OK && i < ctx; i++)
        ids[i] = (int32_t)(3 + (i * 7919u) % (o->s->vocab - 3));
    double t0 = now();
    if (st == MIPR_OK)
        st = mipr_engine_forward(e, ids, o->prefill, 0, logits, 0, err);
    double t1 = now();
    for (uint32_t i = 0; st == MIPR_OK && i < o->decode; i++)
        st = mipr_engine_forward(e, ids + o->prefill + i, 1, o->prefill + i, logits, 0, err);
    double t2 = now();
    r->prefill_tps = o->prefill / (t1 - t0), r->decode_tps = o->decode / (t2 - t1);
    if (st == MIPR_OK)
        printf("%s %s, %u thread(s), kernels %s, backend %s%s: prefill %u tokens %.1f tok/s, "
               "decode %u tokens %.1f tok/s (%llu parameters)\n", o->s->name,
               mipr_dtype_name(o->type), mipr_pool_threads(pool), mipr_kernels()->isa,
               mipr_backend_name(o->backend), mipr_engine_uses_provider(e) ? " (XNNPACK on)" : "",
               o->prefill, r->prefill_tps, o->decode, r->decode_tps,
               (unsigned long long)r->params);
    free(ids), free(logits);
    mipr_engine_free(e);
    return st;
}

static mipr_status calibration(const options *o, const mipr_model *m, mipr_pool *pool,
                               measured *r, mipr_error *err)
{
    mipr_mapped_file f;
    mipr_tokenizer *t = NULL;
    mipr_calib *c = NULL;
    mipr_status st;
    if (!o->calib_text || !o->calib_tokens)
        return MIPR_OK;
    if ((st = mipr_file_map(&f, o->calib_text, err)))
        return st;
    if (!(t = synthetic_tokenizer(o->s->vocab, err)))
        st = err->status;
    uint32_t samples = o->calib_tokens < 2048 ? (uint32_t)o->calib_tokens / 4 : 512;
    mipr_calib_opts co = {.max_tokens = o->calib_tokens, .window = 256,
                          .n_samples = samples ? samples : 1, .pool = pool};
    double t0 = now();
    if (st == MIPR_OK &&
        (st = mipr_calibrate(&c, m, t, (const char *)f.data, f.size, &co, err)) == MIPR_OK)
        r->calib_tps = (double)c->tokens / (now() - t0);
    if (st == MIPR_OK)
        printf("  calibration %.1f tokens/s over %llu tokens\n", r->calib_tps,
               (unsigned long long)c->tokens);
    mipr_calib_free(c);
    mipr_tokenizer_free(t);
    mipr_file_unmap(&f);
    return st;
}

static int write_json(const options *o, const measured *r, uint32_t threads)
{
    FILE *f = fopen(o->json, "w");
    if (!f)
        return -1;
    double peak = r->fma1 * threads, gf = 2.0 * (double)r->weight_macs * r->prefill_tps * 1e-9;
    double gbs = (double)r->weight_bytes * r->decode_tps * 1e-9;
    double bw = r->read_gbs_t > 0 ? r->read_gbs_t : r->read_gbs;
    fprintf(f, "{\"shape\": \"%s\", \"type\": \"%s\", \"threads\": %u, \"isa\": \"%s\", "
               "\"backend\": \"%s\", \"params\": %llu, \"weight_bytes\": %llu, "
               "\"flops_per_token\": %llu,\n \"machine\": {\"fma_peak_gflops_1thread\": %.3f, "
               "\"fma_peak_gflops\": %.3f, \"peak_isa\": \"%s\", \"read_bandwidth_gbs_1thread\": %.3f, "
               "\"read_bandwidth_gbs\": %.3f},\n"
               " \"prefill_tokens\": %u, \"prefill_tps\": %.3f, \"prefill_gflops\": %.3f, "
               "\"prefill_pct_fma_peak\": %.2f,\n \"decode_tokens\": %u, \"decode_tps\": %.3f, "
               "\"decode_gbs\": %.3f, \"decode_pct_read_bw\": %.2f,\n"
               " \"calibration_tokens\": %llu, \"calibration_tps\": %.3f, "
               "\"build_seconds\": %.3f, \"peak_rss_mib\": %.1f}\n",
            o->s->name, mipr_dtype_name(o->type), threads, mipr_kernels()->isa,
            mipr_backend_name(o->backend), (unsigned long long)r->params,
            (unsigned long long)r->weight_bytes, (unsigned long long)(2 * r->weight_macs),
            r->fma1, peak, r->peak_isa, r->read_gbs, bw, o->prefill, r->prefill_tps, gf,
            100.0 * gf / peak, o->decode, r->decode_tps, gbs, 100.0 * gbs / bw,
            (unsigned long long)(r->calib_tps > 0 ? o->calib_tokens : 0), r->calib_tps,
            r->build_s, r->peak_mib);
    return fclose(f);
}

int main(int argc, char **argv)
{
    options o = {.s = &shapes[0], .type = MIPR_DT_F32, .prefill = 512, .decode = 128,
                 .batch = 128, .backend = MIPR_BACKEND_OURS};
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_engine [--shape smollm2|qwen05|llama32_1b|tinyllama] "
                        "[--type f32|q8_0|q4_0] [--layers N] [--untied 1] [--gguf-only 1] "
                        "[--threads N] [--prefill P] [--decode D] [--batch B] "
                        "[--backend ours|xnnpack|auto] [--gguf OUT] [--json FILE] "
                        "[--calib-text FILE --calib-tokens N]\n");
        return 2;
    }
    mipr_error err = {0};
    measured r = {0};
    r.fma1 = mipr_peak_fma_best(0, &r.peak_isa);
    r.read_gbs = mipr_peak_read_best(0);
    double t0 = now();
    uint32_t layers = o.layers && o.layers < o.s->layers ? o.layers : o.s->layers;
    mipr_model *m = build(o.s, layers, o.untied, o.type, &err);
    r.build_s = now() - t0;
    mipr_pool *pool = NULL;
    if (!m || mipr_pool_new(&pool, o.threads, &err))
        return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
    r.params = mipr_model_n_params(m);
    r.read_gbs_t = read_gbs_threads(pool);
    weight_cost(m, &r);
    if (o.gguf) {
        mipr_tokenizer *t = synthetic_tokenizer(o.s->vocab, &err);
        mipr_gguf_write_opts wo = {.type = o.type, .on_fallback = NULL, .ctx = NULL};
        if (!t || mipr_gguf_write(o.gguf, m, t, &wo, &err))
            return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
        mipr_tokenizer_free(t);
        if (o.gguf_only)
            return mipr_pool_free(pool), mipr_model_free(m), 0;
    }
    if (run_engine(&o, m, pool, &r, &err) || calibration(&o, m, pool, &r, &err))
        return fprintf(stderr, "bench_engine: %s\n", err.msg), 1;
    r.peak_mib = mipr_bench_peak_mib();
    printf("  peak: FMA %.1f GFLOP/s per thread (%s), read %.1f GB/s (%.1f with %u threads); "
           "peak RSS %.0f MiB\n", r.fma1, r.peak_isa, r.read_gbs, r.read_gbs_t,
           mipr_pool_threads(pool), r.peak_mib);
    if (o.json && write_json(&o, &r, mipr_pool_threads(pool)))
        return fprintf(stderr, "bench_engine: cannot write %s\n", o.json), 1;
    mipr_pool_free(pool);
    mipr_model_free(m);
    return 0;
}
