/* The architectures of issue 13 on tiny random models: q/k/v biases (qwen2), rotate-half
 * RoPE, Llama 3 rope_freqs divisors, linear RoPE scaling, GQA ratios 1, 2 and 4, tied and
 * untied classifiers. Each model is checked against a double-precision scalar forward pass
 * written here from the definitions (not from engine.c), batched prefill against decode
 * (bit-identical), and GGUF and .mpk round trips (qwen2 stays qwen2; per-layer widths go out
 * as deci with q/k permuted into the interleaved layout, which reorders q.k sums only). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gguf_internal.h"
#include "testutil.h"

enum { DIM = 64, HEADS = 4, HS = DIM / HEADS, VOCAB = 40, SEQ = 24, LAYERS = 2 };

typedef struct variant {
    const char *name;
    uint32_t kv_heads, n_rot, ff0, ff1;
    int qwen2, neox, biases, freqs, tied, down_bias;
    float scale;
} variant;

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static float rnd(float s)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return s * ((float)(rng >> 40) * 0x1.0p-24f * 2.0f - 1.0f);
}

static mipr_tensor tensor(mipr_model *m, uint32_t rows, uint32_t cols, float s, float base)
{
    float *p = mipr_model_alloc(m, (size_t)rows * cols * sizeof *p);
    for (size_t i = 0; p && i < (size_t)rows * cols; i++)
        p[i] = base + rnd(s);
    return (mipr_tensor){.type = MIPR_DT_F32, .rows = rows, .cols = cols, .data = p};
}

static mipr_model *build(const variant *v)
{
    mipr_model *m;
    mipr_error e;
    CHECK_OK(mipr_model_new(&m, LAYERS, &e), &e);
    m->hp = (mipr_hparams){.dim = DIM, .n_layers = LAYERS, .n_heads = HEADS,
                           .n_kv_heads = v->kv_heads, .head_size = HS, .n_rot = v->n_rot,
                           .vocab_size = VOCAB, .seq_len = SEQ, .norm_eps = 1e-5f,
                           .rope_theta = 500000.0f, .family = (uint32_t)v->qwen2,
                           .rope_type = (uint32_t)v->neox, .rope_scale = v->scale};
    uint32_t kv = v->kv_heads * HS;
    m->tok_embd = tensor(m, VOCAB, DIM, 1.0f, 0.0f);
    m->output_norm = tensor(m, 1, DIM, 0.2f, 1.0f);
    m->tied_output = v->tied;
    m->output = v->tied ? m->tok_embd : tensor(m, VOCAB, DIM, 0.3f, 0.0f);
    if (v->freqs) {
        m->rope_freqs = tensor(m, 1, v->n_rot / 2, 0.0f, 1.0f);
        float *f = (float *)m->rope_freqs.data;
        for (uint32_t i = 0; i < v->n_rot / 2; i++)
            f[i] = i < v->n_rot / 8 ? 1.0f : 1.0f + 7.0f * (float)i / (float)v->n_rot;
    }
    for (uint32_t l = 0; l < LAYERS; l++) {
        mipr_layer *L = &m->layers[l];
        float s = 0.35f;
        L->d_ff = l ? v->ff1 : v->ff0;
        L->attn_norm = tensor(m, 1, DIM, 0.2f, 1.0f);
        L->wq = tensor(m, DIM, DIM, s, 0.0f);
        L->wk = tensor(m, kv, DIM, s, 0.0f);
        L->wv = tensor(m, kv, DIM, s, 0.0f);
        L->wo = tensor(m, DIM, DIM, s, 0.0f);
        L->ffn_norm = tensor(m, 1, DIM, 0.2f, 1.0f);
        L->ffn_gate = tensor(m, L->d_ff, DIM, s, 0.0f);
        L->ffn_up = tensor(m, L->d_ff, DIM, s, 0.0f);
        L->ffn_down = tensor(m, DIM, L->d_ff, 0.2f, 0.0f);
        if (v->biases) {
            L->bq = tensor(m, 1, DIM, 1.0f, 0.0f);
            L->bk = tensor(m, 1, kv, 1.0f, 0.0f);
            L->bv = tensor(m, 1, kv, 1.0f, 0.0f);
        }
        if (v->down_bias)
            L->ffn_down_b = tensor(m, 1, DIM, 0.5f, 0.0f);
    }
    CHECK_OK(mipr_model_validate(m, v->name, &e), &e);
    return m;
}

/* ---- the reference: definitions in double ------------------------------------------------ */

static const float *F(const mipr_tensor *t)
{
    return t->data;
}

static void ref_matvec(double *y, const mipr_tensor *w, const mipr_tensor *b, const double *x)
{
    for (uint32_t r = 0; r < w->rows; r++) {
        double s = b && b->data ? F(b)[r] : 0.0;
        for (uint32_t c = 0; c < w->cols; c++)
            s += (double)F(w)[(size_t)r * w->cols + c] * x[c];
        y[r] = s;
    }
}

static void ref_rmsnorm(double *y, const double *x, const mipr_tensor *w, double eps)
{
    double ss = 0.0;
    for (int i = 0; i < DIM; i++)
        ss += x[i] * x[i];
    double k = 1.0 / sqrt(ss / DIM + eps);
    for (int i = 0; i < DIM; i++)
        y[i] = x[i] * k * F(w)[i];
}

/* Rotates dimension pairs of one head: interleaved (2i, 2i+1) or rotate-half (i, i+n/2);
 * pair i turns by pos / scale * theta^(-2i/n) / freq_i. */
static void ref_rope(double *h, const mipr_model *m, uint32_t pos)
{
    const mipr_hparams *hp = &m->hp;
    uint32_t n = hp->n_rot;
    double p = hp->rope_scale > 0.0f ? pos / (double)hp->rope_scale : pos;
    for (uint32_t i = 0; i < n / 2; i++) {
        double a = p * pow(hp->rope_theta, -2.0 * i / n);
        if (m->rope_freqs.data)
            a /= F(&m->rope_freqs)[i];
        uint32_t j0 = hp->rope_type == MIPR_ROPE_NEOX ? i : 2 * i;
        uint32_t j1 = hp->rope_type == MIPR_ROPE_NEOX ? i + n / 2 : 2 * i + 1;
        double x0 = h[j0], x1 = h[j1];
        h[j0] = x0 * cos(a) - x1 * sin(a);
        h[j1] = x0 * sin(a) + x1 * cos(a);
    }
}

static double kc[LAYERS][SEQ][DIM], vc[LAYERS][SEQ][DIM];

static void ref_attention(const mipr_model *m, uint32_t l, uint32_t pos, double *x)
{
    const mipr_layer *L = &m->layers[l];
    uint32_t kvh = m->hp.n_kv_heads, kv = kvh * HS;
    double xn[DIM], q[DIM], out[DIM], y[DIM], att[SEQ];
    ref_rmsnorm(xn, x, &L->attn_norm, m->hp.norm_eps);
    ref_matvec(q, &L->wq, &L->bq, xn);
    ref_matvec(kc[l][pos], &L->wk, &L->bk, xn);
    ref_matvec(vc[l][pos], &L->wv, &L->bv, xn);
    for (uint32_t h = 0; h < HEADS; h++)
        ref_rope(q + h * HS, m, pos);
    for (uint32_t h = 0; h < kvh; h++)
        ref_rope(kc[l][pos] + h * HS, m, pos);
    (void)kv;
    for (uint32_t h = 0; h < HEADS; h++) {
        uint32_t g = h / (HEADS / kvh);
        double mx = -INFINITY, sum = 0.0;
        for (uint32_t t = 0; t <= pos; t++) {
            double s = 0.0;
            for (int i = 0; i < HS; i++)
                s += q[h * HS + i] * kc[l][t][g * HS + i];
            att[t] = s / sqrt((double)HS);
            mx = att[t] > mx ? att[t] : mx;
        }
        for (uint32_t t = 0; t <= pos; t++)
            sum += att[t] = exp(att[t] - mx);
        for (int i = 0; i < HS; i++) {
            double o = 0.0;
            for (uint32_t t = 0; t <= pos; t++)
                o += att[t] / sum * vc[l][t][g * HS + i];
            out[h * HS + i] = o;
        }
    }
    ref_matvec(y, &L->wo, NULL, out);
    for (int i = 0; i < DIM; i++)
        x[i] += y[i];
}

static void ref_ffn(const mipr_layer *L, double eps, double *x)
{
    double xn[DIM], g[512], u[512], y[DIM];
    ref_rmsnorm(xn, x, &L->ffn_norm, eps);
    ref_matvec(g, &L->ffn_gate, NULL, xn);
    ref_matvec(u, &L->ffn_up, NULL, xn);
    for (uint32_t i = 0; i < L->d_ff; i++)
        g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
    ref_matvec(y, &L->ffn_down, &L->ffn_down_b, g);
    for (int i = 0; i < DIM; i++)
        x[i] += y[i];
}

/* Logits of every position, n x VOCAB. */
static void ref_forward(const mipr_model *m, const int32_t *ids, uint32_t n, double *logits)
{
    for (uint32_t pos = 0; pos < n; pos++) {
        double x[DIM], xn[DIM];
        for (int i = 0; i < DIM; i++)
            x[i] = F(&m->tok_embd)[(size_t)ids[pos] * DIM + i];
        for (uint32_t l = 0; l < LAYERS; l++) {
            ref_attention(m, l, pos, x);
            ref_ffn(&m->layers[l], m->hp.norm_eps, x);
        }
        ref_rmsnorm(xn, x, &m->output_norm, m->hp.norm_eps);
        ref_matvec(logits + (size_t)pos * VOCAB, &m->output, NULL, xn);
    }
}

/* ---- checks --------------------------------------------------------------------------------- */

static void engine_logits(const mipr_model *m, const int32_t *ids, uint32_t n, uint32_t batch,
                          float *out)
{
    mipr_engine *e;
    mipr_error err;
    CHECK_OK(mipr_engine_new(&e, m, SEQ, batch, &err), &err);
    if (batch == 1)
        for (uint32_t t = 0; t < n; t++)
            CHECK_OK(mipr_engine_forward(e, ids + t, 1, t, out + (size_t)t * VOCAB, 0, &err),
                     &err);
    else
        CHECK_OK(mipr_engine_forward(e, ids, n, 0, out, 1, &err), &err);
    mipr_engine_free(e);
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double mx = 0.0, d = 0.0;
    for (size_t i = 0; i < n; i++) {
        mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
        d = fabs(a[i] - b[i]) > d ? fabs(a[i] - b[i]) : d;
    }
    return d / (1.0 + mx);
}

static mipr_model *reload_gguf(const mipr_model *m, const char *file, const char *want_arch)
{
    mipr_error e;
    mipr_gguf_write_opts wo = {.type = MIPR_DT_F32};
    const char *path = mipr_test_tmp(file);
    CHECK_OK(mipr_gguf_write(path, m, NULL, &wo, &e), &e);
    mipr_gguf *g;
    mipr_model *r;
    CHECK_OK(mipr_gguf_open(&g, path, &e), &e);
    mipr_gguf_str s = {0};
    int64_t k = mipr_gguf_find(g, "general.architecture");
    CHECK(k >= 0 && mipr_gguf_get_str(g, (uint64_t)k, &s) && mipr_gguf_str_eq(s, want_arch));
    CHECK_OK(mipr_gguf_load_model(&r, g, &e), &e);
    mipr_gguf_close(g);
    remove(path);
    return r;
}

static mipr_model *reload_mpk(const mipr_model *m)
{
    mipr_error e;
    mipr_tokenizer *t;
    CHECK_OK(mipr_tokenizer_new(&t, VOCAB, &e), &e);
    for (uint32_t i = 0; i < VOCAB; i++) {
        char p[8];
        snprintf(p, sizeof p, "t%u", i);
        CHECK_OK(mipr_tokenizer_set(t, i, p, strlen(p), 0.0f, MIPR_TOK_NORMAL, &e), &e);
    }
    CHECK_OK(mipr_tokenizer_finish(t, 1, 2, -1, 0, &e), &e);
    mipr_mpk_write_opts wo = {.type = MIPR_DT_F32};
    const char *path = mipr_test_tmp("arch.mpk");
    CHECK_OK(mipr_mpk_write(path, m, t, &wo, &e), &e);
    mipr_model *r;
    CHECK_OK(mipr_mpk_open_file(&r, NULL, path, NULL, &e), &e);
    mipr_tokenizer_free(t);
    remove(path);
    return r;
}

static void test_variant(const variant *v)
{
    enum { N = 20 };
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (int32_t)((i * 7 + 3) % VOCAB);
    mipr_model *m = build(v);
    static float dec[N * VOCAB], pre[N * VOCAB], got[N * VOCAB], want[N * VOCAB];
    static double ref[N * VOCAB];
    engine_logits(m, ids, N, 1, dec);
    engine_logits(m, ids, N, 8, pre);
    CHECK(memcmp(dec, pre, sizeof dec) == 0);
    ref_forward(m, ids, N, ref);
    for (size_t i = 0; i < N * VOCAB; i++)
        want[i] = (float)ref[i];
    double d = max_rel(dec, want, N * VOCAB);
    printf("%-28s engine vs reference: %.2e of the largest logit\n", v->name, d);
    CHECK(d < 1e-5);
    int uniform = v->ff0 == v->ff1;
    const char *arch = !uniform                                     ? "deci"
                       : v->qwen2 && !v->freqs && !v->down_bias ? "qwen2"
                                                                : "llama";
    mipr_model *r = reload_gguf(m, "arch.gguf", arch);
    CHECK(r->hp.rope_scale == m->hp.rope_scale && r->tied_output == m->tied_output);
    CHECK(!!r->rope_freqs.data == !!m->rope_freqs.data && !!r->layers[0].bq.data == v->biases);
    engine_logits(r, ids, N, 8, got);
    /* same layout: same bits; permuted q/k: q.k summed in another order */
    int permuted = (strcmp(arch, "qwen2") == 0) != (v->neox != 0);
    double dg = max_rel(got, pre, N * VOCAB);
    CHECK(permuted ? dg < 1e-5 : memcmp(got, pre, sizeof got) == 0);
    mipr_model_free(r);
    r = reload_mpk(m);
    CHECK(r->hp.family == m->hp.family && r->hp.rope_type == m->hp.rope_type);
    engine_logits(r, ids, N, 8, got);
    CHECK(memcmp(got, pre, sizeof got) == 0);
    mipr_model_free(r);
    mipr_model_free(m);
}

/* A bias or rope_freqs of the wrong shape, or a bad divisor, is refused by validation. */
static void test_validation(void)
{
    variant v = {"bad", 2, HS, 96, 96, 1, 1, 1, 1, 0, 0, 0.0f};
    mipr_model *m = build(&v);
    mipr_error e;
    m->layers[1].bk.cols = DIM;
    CHECK(mipr_model_validate(m, "t", &e) == MIPR_ERR_FORMAT && strstr(e.msg, "attn_k.bias"));
    m->layers[1].bk.cols = 2 * HS;
    ((float *)m->rope_freqs.data)[3] = 0.0f;
    CHECK(mipr_model_validate(m, "t", &e) == MIPR_ERR_FORMAT && strstr(e.msg, "rope_freqs"));
    ((float *)m->rope_freqs.data)[3] = 1.0f;
    m->rope_freqs.cols = HS;
    CHECK(mipr_model_validate(m, "t", &e) == MIPR_ERR_FORMAT && strstr(e.msg, "rope_freqs"));
    m->rope_freqs.cols = HS / 2;
    m->hp.rope_type = 7;
    CHECK(mipr_model_validate(m, "t", &e) == MIPR_ERR_FORMAT && strstr(e.msg, "rope type"));
    m->hp.rope_type = 0;
    CHECK(mipr_model_validate(m, "t", &e) == MIPR_OK);
    mipr_model_free(m);
}

int main(void)
{
    static const variant vs[] = {
        /* name                     kv  rot   ff0  ff1 qw neox bias frq tied dnb scale */
        {"qwen2 (biases, neox)",     2, HS,   96,  96, 1, 1, 1, 0, 0, 0, 0.0f},
        {"qwen2 per-layer widths",   1, HS,   96,  64, 1, 1, 1, 0, 1, 1, 0.0f},
        {"llama3 rope_freqs, tied",  2, HS,   96,  96, 0, 0, 0, 1, 1, 0, 0.0f},
        {"llama linear x4, MHA",     4, HS,   96,  96, 0, 0, 0, 0, 0, 0, 4.0f},
        {"llama neox, partial rot",  1, HS/2, 96,  96, 0, 1, 1, 0, 0, 0, 2.0f},
        {"deci, neox, freqs",        2, HS,   64,  96, 0, 1, 0, 1, 0, 1, 0.0f},
        {"qwen2 + ffn_down bias",    2, HS,   96,  96, 1, 1, 1, 0, 0, 1, 0.0f},
    };
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++)
        test_variant(&vs[i]);
    test_validation();
    return mipr_test_finish("arch");
}
