/* The transformer forward pass: LLaMA blocks (RMSNorm, rotary GQA attention, SwiGLU FFN with
 * a per-layer width), a KV cache, and batched prefill that agrees bit for bit with
 * single-token decode because both go through the same per-row kernels (with the default
 * backend; the opt-in XNNPACK backend of runtime/xnn.c rounds differently). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mipr_runtime.h"
#include "stream.h"

struct mipr_engine {
    const mipr_model *m;
    const struct mipr_kernels *k;
    uint32_t max_ctx, max_batch, kv_dim, max_ff;
    float *x, *xb, *xb2, *q;   /* max_batch x dim */
    float *hb, *hb2;           /* max_batch x max_ff */
    float *att;                /* MAX_TASKS x max_ctx: one score row per attention task */
    float *cs;                 /* n_rot: cos, sin per rotary pair */
    float *key_cache, *value_cache; /* n_layers x max_ctx x kv_dim */
    mipr_ffn_observer observer;
    void *observer_ctx;
    mipr_pool *pool;
    mipr_backend backend;
    const mipr_prefill_provider *prov; /* the prefill provider in use, with its state */
    void *prov_state;                  /* NULL: our gemm runs every prefill matmul */
    const struct mipr_stream_ *stream; /* any streamed tensor of the model, else NULL */
};

/* Upper bound on parallel tasks per operation (sizes the attention scratch). */
#define MAX_TASKS 64u
/* Below this many multiply-adds an operation runs on the calling thread: waking the pool
 * costs more than it saves (measured: stories260K decodes 2x slower with 2 threads). */
#define MIN_PARALLEL_MACS (1u << 18)

/* XNNPACK may read up to XNN_EXTRA_BYTES (16) past the last input row: every buffer gets a
 * spare 64 bytes so a matmul input never ends at its allocation's edge. */
#define SPARE_FLOATS 16u

static float *alloc_floats(size_t n, int *ok)
{
    float *p = calloc(n + SPARE_FLOATS, sizeof(float));
    if (!p)
        *ok = 0;
    return p;
}

/* Streamed tensors of one model share one decoder: asking any of them reports its error. */
static const struct mipr_stream_ *any_stream(const mipr_model *m)
{
    const mipr_tensor *g[] = {&m->tok_embd, &m->output};
    for (size_t i = 0; i < 2; i++)
        if (g[i]->stream_)
            return g[i]->stream_;
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        const mipr_layer *L = &m->layers[l];
        const mipr_tensor *t[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up,
                                  &L->ffn_down};
        for (size_t i = 0; i < sizeof t / sizeof *t; i++)
            if (t[i]->stream_)
                return t[i]->stream_;
    }
    return NULL;
}

mipr_status mipr_engine_new(mipr_engine **out, const mipr_model *m, uint32_t max_ctx,
                            uint32_t max_batch, mipr_error *err)
{
    *out = NULL;
    const mipr_hparams *hp = &m->hp;
    if (max_ctx == 0)
        max_ctx = hp->seq_len;
    if (max_batch == 0)
        max_batch = 64;
    if (max_ctx > MIPR_MAX_SEQ || max_batch > 4096)
        return mipr_error_set(err, MIPR_ERR_ARG, "context %u or batch %u too large", max_ctx,
                              max_batch);
    mipr_engine *e = calloc(1, sizeof *e);
    if (!e)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for the engine");
    e->m = m;
    e->k = mipr_kernels();
    e->max_ctx = max_ctx;
    e->max_batch = max_batch;
    e->kv_dim = hp->head_size * hp->n_kv_heads;
    e->stream = any_stream(m);
    for (uint32_t l = 0; l < hp->n_layers; l++)
        e->max_ff = m->layers[l].d_ff > e->max_ff ? m->layers[l].d_ff : e->max_ff;
    size_t bd = (size_t)max_batch * hp->dim, bf = (size_t)max_batch * e->max_ff;
    size_t cache = (size_t)hp->n_layers * max_ctx * e->kv_dim;
    int ok = 1;
    e->x = alloc_floats(bd, &ok);
    e->xb = alloc_floats(bd, &ok);
    e->xb2 = alloc_floats(bd, &ok);
    e->q = alloc_floats(bd, &ok);
    e->hb = alloc_floats(bf, &ok);
    e->hb2 = alloc_floats(bf, &ok);
    e->att = alloc_floats((size_t)MAX_TASKS * max_ctx, &ok);
    e->cs = alloc_floats(hp->n_rot, &ok);
    e->key_cache = alloc_floats(cache, &ok);
    e->value_cache = alloc_floats(cache, &ok);
    if (!ok) {
        mipr_engine_free(e);
        return mipr_error_set(err, MIPR_ERR_NOMEM,
                              "out of memory for a KV cache of %u positions (%llu MiB)", max_ctx,
                              (unsigned long long)(cache * 8 >> 20));
    }
    *out = e;
    return MIPR_OK;
}

static void drop_provider(mipr_engine *e)
{
    if (e->prov_state)
        e->prov->destroy(e->prov_state);
    e->prov_state = NULL;
    e->prov = NULL;
}

void mipr_engine_free(mipr_engine *e)
{
    if (!e)
        return;
    float *bufs[] = {e->x, e->xb, e->xb2, e->q, e->hb, e->hb2, e->att, e->cs, e->key_cache,
                     e->value_cache};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    drop_provider(e);
    free(e);
}

void mipr_engine_set_observer(mipr_engine *e, mipr_ffn_observer fn, void *ctx)
{
    e->observer = fn;
    e->observer_ctx = ctx;
}

void mipr_engine_set_pool(mipr_engine *e, mipr_pool *pool)
{
    e->pool = pool;
}

mipr_status mipr_engine_set_backend(mipr_engine *e, mipr_backend b,
                                    const mipr_prefill_provider *p, mipr_error *err)
{
    if ((unsigned)b > MIPR_BACKEND_AUTO)
        return mipr_error_set(err, MIPR_ERR_ARG, "backend %u is not a mipr_backend", (unsigned)b);
    if (b == MIPR_BACKEND_XNNPACK && !p)
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "the XNNPACK backend needs its provider "
                              "(libmipr_xnnpack's mipr_xnnpack_provider())");
    int want = b == MIPR_BACKEND_XNNPACK || (b == MIPR_BACKEND_AUTO && p && p->beats_ours(e->k->isa));
    if (!want || e->prov != p)
        drop_provider(e); /* the weight copy goes with it */
    if (want && !e->prov_state) {
        mipr_status st = p->create(&e->prov_state, e->m, err);
        if (st)
            return st; /* without a provider: OURS until a selection succeeds */
        e->prov = p;
    }
    e->backend = b;
    return MIPR_OK;
}

mipr_backend mipr_engine_backend(const mipr_engine *e)
{
    return e->backend;
}

int mipr_engine_uses_provider(const mipr_engine *e)
{
    return e->prov_state != NULL;
}

static const char *const backend_names[] = {"ours", "xnnpack", "auto"};

const char *mipr_backend_name(mipr_backend b)
{
    return b <= MIPR_BACKEND_AUTO ? backend_names[b] : "?";
}

mipr_status mipr_backend_parse(const char *name, mipr_backend *out, mipr_error *err)
{
    for (unsigned i = 0; name && i <= MIPR_BACKEND_AUTO; i++)
        if (!strcmp(name, backend_names[i])) {
            *out = (mipr_backend)i;
            return MIPR_OK;
        }
    return mipr_error_set(err, MIPR_ERR_ARG, "unknown backend '%s' (expected ours, xnnpack or auto)",
                          name ? name : "(null)");
}

const mipr_model *mipr_engine_model(const mipr_engine *e)
{
    return e->m;
}

uint32_t mipr_engine_max_ctx(const mipr_engine *e)
{
    return e->max_ctx;
}

typedef struct {
    const struct mipr_kernels *k;
    float *y;
    const mipr_tensor *w;
    const float *x;
    size_t n, chunk;
} matmul_job;

/* Decode splits weight rows between tasks, prefill splits tokens; either way each output
 * element comes from the same reduction, so the thread count never changes results. */
static void matmul_task(void *ctx, size_t i)
{
    const matmul_job *j = ctx;
    const mipr_tensor *w = j->w;
    size_t total = j->n == 1 ? w->rows : j->n, start = i * j->chunk;
    size_t len = total - start < j->chunk ? total - start : j->chunk;
    if (j->n == 1) {
        const char *rows = (const char *)w->data + start * mipr_dtype_row_bytes(w->type, w->cols);
        j->k->gemv[w->type](j->y + start, rows, j->x, len, w->cols);
    } else if (len == 1) {
        j->k->gemv[w->type](j->y + start * w->rows, w->data, j->x + start * w->cols, w->rows,
                            w->cols);
    } else {
        j->k->gemm[w->type](j->y + start * w->rows, w->data, j->x + start * w->cols, len,
                            w->rows, w->cols);
    }
}

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

static void matmul_resident(const mipr_engine *e, float *y, const mipr_tensor *w,
                            const float *x, uint32_t n);

/* A streamed tensor (low-RAM .mpk) arrives a chunk of rows at a time. Each token's rows go
 * through gemv, which gemm equals bit for bit, so results match the resident model's; the
 * chunk stays in cache across the tokens of a batch. A decoding error is recorded in the
 * stream and reported by mipr_engine_forward. */
static void matmul_streamed(const mipr_engine *e, float *y, const mipr_tensor *w,
                            const float *x, uint32_t n)
{
    uint32_t chunks = mipr_stream_n_chunks(w->stream_);
    for (uint32_t c = 0; c < chunks; c++) {
        uint32_t first, rows;
        const void *data = mipr_stream_chunk(w->stream_, c, &first, &rows);
        if (!data)
            return;
        mipr_tensor part = {.type = w->type, .rows = rows, .cols = w->cols, .data = data};
        for (uint32_t t = 0; t < n; t++)
            matmul_resident(e, y + (size_t)t * w->rows + first, &part, x + (size_t)t * w->cols,
                            1);
    }
}

static void matmul(const mipr_engine *e, float *y, const mipr_tensor *w, const float *x,
                   uint32_t n)
{
    if (w->stream_)
        matmul_streamed(e, y, w, x, n);
    else
        matmul_resident(e, y, w, x, n);
}

static void matmul_resident(const mipr_engine *e, float *y, const mipr_tensor *w,
                            const float *x, uint32_t n)
{
    if (n > 1 && e->prov_state && e->prov->matmul(e->prov_state, y, w, x, n, e->pool))
        return; /* not bit-identical to gemm: see mipr_engine_set_backend */
    size_t threads = mipr_pool_threads(e->pool);
    matmul_job j = {e->k, y, w, x, n, 0};
    size_t total = n == 1 ? w->rows : n;
    if (threads == 1 || total < 2 || (size_t)n * w->rows * w->cols < MIN_PARALLEL_MACS) {
        j.chunk = total;
        matmul_task(&j, 0);
        return;
    }
    /* decode: several row blocks per thread, multiples of 16 rows, to balance load */
    j.chunk = n == 1 ? ceil_div(ceil_div(w->rows, threads * 4), 16) * 16 : ceil_div(n, threads);
    mipr_pool_run(e->pool, matmul_task, &j, ceil_div(total, j.chunk));
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* cos/sin of pos * theta^(-2i/n_rot), computed as llama2.c does it. Llama 3's rope_freqs
 * divide frequency i, and linear scaling divides the position (llama.cpp's semantics); a
 * model with neither gets llama2.c's exact values. */
static void rope_table(const mipr_engine *e, uint32_t pos)
{
    const mipr_hparams *hp = &e->m->hp;
    const float *ff = e->m->rope_freqs.data;
    float p = (float)pos;
    if (hp->rope_scale > 0.0f && hp->rope_scale != 1.0f)
        p *= 1.0f / hp->rope_scale;
    for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
        float freq = 1.0f / powf(hp->rope_theta, (float)(2 * i) / (float)hp->n_rot);
        float val = ff ? p * freq / ff[i] : p * freq;
        e->cs[2 * i] = cosf(val);
        e->cs[2 * i + 1] = sinf(val);
    }
}

/* Rotate-half (NEOX) pairs (i, i + n_rot/2): the q/k layout of Hugging Face and GGUF qwen2.
 * Same products as the interleaved kernel, so both layouts round alike. */
static void rope_neox(float *v, uint32_t n_heads, uint32_t head_size, uint32_t n_rot,
                      const float *cs)
{
    uint32_t half = n_rot / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * head_size;
        for (uint32_t i = 0; i < half; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1];
            float a = p[i], b = p[i + half];
            p[i] = a * c - b * s;
            p[i + half] = a * s + b * c;
        }
    }
}

static void rope(const mipr_engine *e, float *v, uint32_t n_heads)
{
    const mipr_hparams *hp = &e->m->hp;
    if (hp->rope_type == MIPR_ROPE_NEOX)
        rope_neox(v, n_heads, hp->head_size, hp->n_rot, e->cs);
    else
        e->k->rope(v, n_heads, hp->head_size, hp->n_rot, e->cs);
}

/* Adds an optional bias (qwen2's q/k/v) to n rows of width b->cols, row stride `stride`. */
static void add_bias(float *y, const mipr_tensor *b, uint32_t n, size_t stride)
{
    for (uint32_t t = 0; b->data && t < n; t++)
        add_rows(y + (size_t)t * stride, b->data, b->cols);
}

/* Attention of query head h of one token at position pos over cache rows 0..pos. */
static void attend_head(const mipr_engine *e, float *att, float *out, const float *q,
                        const float *kc, const float *vc, uint32_t pos, uint32_t h)
{
    const mipr_hparams *hp = &e->m->hp;
    uint32_t hs = hp->head_size, group = hp->n_heads / hp->n_kv_heads;
    float scale = sqrtf((float)hs);
    const float *qh = q + (size_t)h * hs;
    size_t koff = (size_t)(h / group) * hs;
    e->k->attn_scores(att, qh, kc + koff, e->kv_dim, pos + 1, hs, scale);
    e->k->softmax(att, pos + 1);
    e->k->attn_mix(out + (size_t)h * hs, att, vc + koff, e->kv_dim, pos + 1, hs);
}

typedef struct {
    const mipr_engine *e;
    const float *kc, *vc;
    uint32_t pos, n_items;
    size_t chunk;
} attend_job;

/* Task i handles a run of (token, head) items with its own score row. */
static void attend_task(void *ctx, size_t i)
{
    const attend_job *j = ctx;
    const mipr_engine *e = j->e;
    uint32_t heads = e->m->hp.n_heads, dim = e->m->hp.dim;
    float *att = e->att + i * e->max_ctx;
    for (size_t it = i * j->chunk; it < j->n_items && it < (i + 1) * j->chunk; it++) {
        uint32_t t = (uint32_t)(it / heads), h = (uint32_t)(it % heads);
        attend_head(e, att, e->xb + (size_t)t * dim, e->q + (size_t)t * dim, j->kc, j->vc,
                    j->pos + t, h);
    }
}

static void attend(const mipr_engine *e, const float *kc, const float *vc, uint32_t n,
                   uint32_t pos)
{
    attend_job j = {e, kc, vc, pos, n * e->m->hp.n_heads, 0};
    size_t macs = (size_t)n * e->m->hp.dim * (pos + n) * 2;
    size_t tasks = macs < MIN_PARALLEL_MACS ? 1 : mipr_pool_threads(e->pool) * 4;
    tasks = tasks > MAX_TASKS ? MAX_TASKS : tasks;
    j.chunk = ceil_div(j.n_items, tasks);
    mipr_pool_run(e->pool, attend_task, &j, ceil_div(j.n_items, j.chunk));
}

static void attention_block(mipr_engine *e, uint32_t l, uint32_t n, uint32_t pos)
{
    const mipr_hparams *hp = &e->m->hp;
    const mipr_layer *L = &e->m->layers[l];
    size_t loff = (size_t)l * e->max_ctx * e->kv_dim;
    float *kc = e->key_cache + loff, *vc = e->value_cache + loff;
    for (uint32_t t = 0; t < n; t++)
        e->k->rmsnorm(e->xb + (size_t)t * hp->dim, e->x + (size_t)t * hp->dim,
                      L->attn_norm.data, hp->dim, hp->norm_eps);
    matmul(e, e->q, &L->wq, e->xb, n);
    matmul(e, kc + (size_t)pos * e->kv_dim, &L->wk, e->xb, n);
    matmul(e, vc + (size_t)pos * e->kv_dim, &L->wv, e->xb, n);
    add_bias(e->q, &L->bq, n, hp->dim);
    add_bias(kc + (size_t)pos * e->kv_dim, &L->bk, n, e->kv_dim);
    add_bias(vc + (size_t)pos * e->kv_dim, &L->bv, n, e->kv_dim);
    for (uint32_t t = 0; t < n; t++) {
        rope_table(e, pos + t);
        rope(e, e->q + (size_t)t * hp->dim, hp->n_heads);
        rope(e, kc + (size_t)(pos + t) * e->kv_dim, hp->n_kv_heads);
    }
    attend(e, kc, vc, n, pos);
    matmul(e, e->xb2, &L->wo, e->xb, n);
    add_rows(e->x, e->xb2, (size_t)n * hp->dim);
}

static void ffn_block(mipr_engine *e, uint32_t l, uint32_t n, uint32_t pos)
{
    const mipr_hparams *hp = &e->m->hp;
    const mipr_layer *L = &e->m->layers[l];
    for (uint32_t t = 0; t < n; t++)
        e->k->rmsnorm(e->xb + (size_t)t * hp->dim, e->x + (size_t)t * hp->dim,
                      L->ffn_norm.data, hp->dim, hp->norm_eps);
    matmul(e, e->hb, &L->ffn_gate, e->xb, n);
    matmul(e, e->hb2, &L->ffn_up, e->xb, n);
    e->k->swiglu(e->hb, e->hb, e->hb2, (size_t)n * L->d_ff);
    if (e->observer)
        e->observer(e->observer_ctx, l, pos, n, L->d_ff, e->hb);
    matmul(e, e->xb, &L->ffn_down, e->hb, n);
    add_rows(e->x, e->xb, (size_t)n * hp->dim);
    for (uint32_t t = 0; L->ffn_down_b.data && t < n; t++)
        add_rows(e->x + (size_t)t * hp->dim, L->ffn_down_b.data, hp->dim);
}

static void classify(mipr_engine *e, float *logits, uint32_t first, uint32_t n)
{
    const mipr_hparams *hp = &e->m->hp;
    for (uint32_t t = 0; t < n; t++)
        e->k->rmsnorm(e->xb + (size_t)t * hp->dim, e->x + (size_t)(first + t) * hp->dim,
                      e->m->output_norm.data, hp->dim, hp->norm_eps);
    matmul(e, logits, &e->m->output, e->xb, n);
}

/* Row `row` of the embedding, from wherever it lives. */
static void embed(mipr_engine *e, float *out, const mipr_tensor *w, uint32_t row)
{
    const void *data = w->data;
    if (w->stream_) {
        uint32_t first, rows;
        data = mipr_stream_chunk(w->stream_, row / mipr_stream_rows_per_chunk(w->stream_),
                                 &first, &rows);
        if (!data)
            return;
        row -= first;
    }
    e->k->row_to_f32[w->type](out, data, row, w->cols);
}

static void forward_chunk(mipr_engine *e, const int32_t *tokens, uint32_t n, uint32_t pos)
{
    const mipr_model *m = e->m;
    for (uint32_t t = 0; t < n; t++)
        embed(e, e->x + (size_t)t * m->hp.dim, &m->tok_embd, (uint32_t)tokens[t]);
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        attention_block(e, l, n, pos);
        ffn_block(e, l, n, pos);
    }
}

static mipr_status take_stream_error(const mipr_engine *e, mipr_error *err)
{
    return e->stream ? mipr_stream_take_error(e->stream, err) : MIPR_OK;
}

mipr_status mipr_engine_forward(mipr_engine *e, const int32_t *tokens, uint32_t n, uint32_t pos,
                                float *logits, int all_logits, mipr_error *err)
{
    const mipr_hparams *hp = &e->m->hp;
    if (n == 0 || pos > e->max_ctx || n > e->max_ctx - pos)
        return mipr_error_set(err, MIPR_ERR_ARG,
                              "positions %u..%u exceed the context of %u tokens", pos,
                              pos + n - 1, e->max_ctx);
    for (uint32_t t = 0; t < n; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= hp->vocab_size)
            return mipr_error_set(err, MIPR_ERR_ARG, "token id %d outside the vocabulary (%u)",
                                  tokens[t], hp->vocab_size);
    for (uint32_t done = 0; done < n;) {
        uint32_t c = n - done < e->max_batch ? n - done : e->max_batch;
        forward_chunk(e, tokens + done, c, pos + done);
        if (logits && all_logits)
            classify(e, logits + (size_t)done * hp->vocab_size, 0, c);
        else if (logits && done + c == n)
            classify(e, logits, c - 1, 1);
        mipr_status st = e->prov_state ? e->prov->take_error(e->prov_state, err) : MIPR_OK;
        if (st == MIPR_OK)
            st = take_stream_error(e, err);
        if (st)
            return st;
        done += c;
    }
    return MIPR_OK;
}
