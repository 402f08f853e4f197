/* K-quant dequantization (core/io/kquant.c) against an independent statement of ggml's
 * layouts: blocks are packed here from chosen integers the way ggml's quantizers pack them
 * (loops over the quantized values, not over the decoder's indices), and every decoded
 * float must equal the value computed from those integers with ggml's dequantizer's float
 * operations (so: the same bits). Also: a GGUF holding K-quant tensors loads them as F32
 * with exactly these values. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gguf_internal.h"
#include "testutil.h"

#define QK 256

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A random finite fp16 scale, as bits and as the float the decoder will see. */
static uint16_t scale16(float *f)
{
    uint16_t h = mipr_f32_to_f16(((float)rnd(20001) - 10000.0f) * 1e-6f);
    *f = mipr_f16_to_f32(h);
    return h;
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

/* Q2_K: 16 x (4-bit scale, 4-bit min), values 0..3 packed 4 per byte, 32 bytes apart. */
static void make_q2k(uint8_t *b, float *want)
{
    int L[QK], sc[16], mn[16];
    float d, dmin;
    memset(b, 0, 84);
    put16(b + 80, scale16(&d));
    put16(b + 82, scale16(&dmin));
    for (int j = 0; j < 16; j++) {
        sc[j] = (int)rnd(16), mn[j] = (int)rnd(16);
        b[j] = (uint8_t)(sc[j] | mn[j] << 4);
    }
    for (int i = 0; i < QK; i++)
        L[i] = (int)rnd(4);
    for (int j = 0; j < QK; j += 128)
        for (int l = 0; l < 32; l++)
            b[16 + j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 |
                                          L[j + l + 96] << 6);
    for (int i = 0; i < QK; i++) {
        float dl = d * (float)sc[i / 16], ml = dmin * (float)mn[i / 16];
        want[i] = dl * (float)L[i] - ml;
    }
}

/* Q3_K: values 0..7, the high bit in hmask, 16 6-bit scales biased by 32. */
static void make_q3k(uint8_t *b, float *want)
{
    int L[QK], ls[16];
    float d;
    memset(b, 0, 110);
    put16(b + 108, scale16(&d));
    uint8_t *hmask = b, *qs = b + 32, *s = b + 96;
    for (int j = 0; j < 16; j++) {
        int l = ls[j] = (int)rnd(64);
        if (j < 8)
            s[j] = (uint8_t)(l & 15);
        else
            s[j - 8] |= (uint8_t)((l & 15) << 4);
        s[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    for (int i = 0; i < QK; i++) {
        int v = (int)rnd(8);
        want[i] = d * (float)(ls[i / 16] - 32) * (float)(v - 4);
        if (v > 3) {
            hmask[i % 32] |= (uint8_t)(1u << (i / 32));
            v -= 4;
        }
        L[i] = v;
    }
    for (int j = 0; j < QK; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 |
                                      L[j + l + 96] << 6);
}

/* The 8 (scale, min) pairs of Q4_K/Q5_K, 6 bits each, in 12 bytes. */
static void pack_scales(uint8_t *s, const int *ls, const int *lm)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = (uint8_t)ls[j];
            s[j + 4] = (uint8_t)lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 15) | (lm[j] & 15) << 4);
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Q4_K (bits 4) and Q5_K (bits 5, the fifth bit in qh). */
static void make_q45k(uint8_t *b, float *want, int bits)
{
    int L[QK], ls[8], lm[8];
    float d, dmin;
    size_t size = bits == 4 ? 144 : 176;
    memset(b, 0, size);
    put16(b, scale16(&d));
    put16(b + 2, scale16(&dmin));
    for (int j = 0; j < 8; j++)
        ls[j] = (int)rnd(64), lm[j] = (int)rnd(64);
    pack_scales(b + 4, ls, lm);
    for (int i = 0; i < QK; i++) {
        L[i] = (int)rnd(1u << bits);
        float d1 = d * (float)ls[i / 32], m1 = dmin * (float)lm[i / 32];
        want[i] = d1 * (float)L[i] - m1;
    }
    uint8_t *qh = b + 16, *ql = bits == 4 ? b + 16 : b + 48;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK; n += 64, ql += 32, m1 = (uint8_t)(m1 << 2), m2 = (uint8_t)(m2 << 2))
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15)
                l1 -= 16, qh[j] |= m1;
            if (l2 > 15)
                l2 -= 16, qh[j] |= m2;
            ql[j] = (uint8_t)(l1 | l2 << 4);
        }
}

/* Q6_K: 6-bit values biased by 32, low nibbles in ql, high pairs in qh, int8 scales. */
static void make_q6k(uint8_t *b, float *want)
{
    int L[QK], sc[16];
    float d;
    memset(b, 0, 210);
    put16(b + 208, scale16(&d));
    for (int j = 0; j < 16; j++) {
        sc[j] = (int)rnd(256) - 128;
        b[192 + j] = (uint8_t)(int8_t)sc[j];
    }
    for (int i = 0; i < QK; i++) {
        L[i] = (int)rnd(64);
        want[i] = d * (float)sc[i / 16] * (float)(L[i] - 32);
    }
    uint8_t *ql = b, *qh = b + 128;
    for (int j = 0; j < QK; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            const int *q = L + j + l;
            ql[l] = (uint8_t)((q[0] & 15) | (q[64] & 15) << 4);
            ql[l + 32] = (uint8_t)((q[32] & 15) | (q[96] & 15) << 4);
            qh[l] = (uint8_t)(q[0] >> 4 | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 |
                              (q[96] >> 4) << 6);
        }
}

static void make_block(uint32_t type, uint8_t *b, float *want)
{
    switch (type) {
    case MIPR_GGML_Q2_K: make_q2k(b, want); break;
    case MIPR_GGML_Q3_K: make_q3k(b, want); break;
    case MIPR_GGML_Q4_K: make_q45k(b, want, 4); break;
    case MIPR_GGML_Q5_K: make_q45k(b, want, 5); break;
    default: make_q6k(b, want); break;
    }
}

static int same_bits(const float *a, const float *b, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) {
            *at = i;
            return 0;
        }
    return 1;
}

#define NB 64 /* blocks per type */

static void test_type(uint32_t type, uint32_t size)
{
    uint32_t block = 0, bytes = 0;
    CHECK(mipr_kquant_traits(type, &block, &bytes) && bytes == size && block == 256);
    static uint8_t blocks[NB * 210];
    static float want[NB * QK], got[NB * QK];
    for (int i = 0; i < NB; i++)
        make_block(type, blocks + (size_t)i * size, want + (size_t)i * QK);
    memset(got, 0xff, sizeof got);
    mipr_kquant_to_f32(got, blocks, type, (size_t)NB * QK);
    size_t at = 0;
    if (!same_bits(got, want, (size_t)NB * QK, &at)) {
        fprintf(stderr, "%s element %zu: got %.9g, want %.9g\n", mipr_ggml_type_name(type), at,
                (double)got[at], (double)want[at]);
        CHECK(0);
    }
}

/* Q4_1, Q5_0, Q5_1: 32 values, packed as ggml's quantizers do (nibble pairs j, j + 16;
 * the fifth bits as one little-endian 32-bit word). */
static void test_legacy(void)
{
    static const uint32_t types[3] = {MIPR_GGML_Q4_1, MIPR_GGML_Q5_0, MIPR_GGML_Q5_1};
    static const uint32_t sizes[3] = {20, 22, 24};
    for (int k = 0; k < 3; k++) {
        uint32_t block, bytes;
        CHECK(mipr_kquant_traits(types[k], &block, &bytes) && block == 32 &&
              bytes == sizes[k]);
        uint8_t b[24 * 16] = {0};
        float want[32 * 16], got[32 * 16];
        for (int i = 0; i < 16; i++) {
            uint8_t *p = b + i * sizes[k];
            float d, m = 0.0f;
            put16(p, scale16(&d));
            int with_min = k != 1, bits = k == 0 ? 4 : 5;
            if (with_min)
                put16(p + 2, scale16(&m));
            uint8_t *qs = p + (with_min ? 4 : 2) + (bits == 5 ? 4 : 0);
            uint32_t qh = 0;
            for (int j = 0; j < 16; j++) {
                int x0 = (int)rnd(1u << bits), x1 = (int)rnd(1u << bits);
                qs[j] = (uint8_t)((x0 & 15) | (x1 & 15) << 4);
                qh |= (uint32_t)(x0 >> 4) << j | (uint32_t)(x1 >> 4) << (j + 16);
                want[i * 32 + j] = with_min ? (float)x0 * d + m : (float)(x0 - 16) * d;
                want[i * 32 + j + 16] = with_min ? (float)x1 * d + m : (float)(x1 - 16) * d;
            }
            if (bits == 5)
                memcpy(p + (with_min ? 4 : 2), &qh, 4);
        }
        mipr_kquant_to_f32(got, b, types[k], 32 * 16);
        size_t at;
        if (!same_bits(got, want, 32 * 16, &at)) {
            fprintf(stderr, "%s element %zu: got %g want %g\n", mipr_ggml_type_name(types[k]),
                    at, (double)got[at], (double)want[at]);
            CHECK(0);
        }
    }
}

/* ---- through a GGUF file ------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            exit(1);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void kv_u32(buf *b, const char *k, uint32_t v)
{
    put_str(b, k);
    put_u32(b, MIPR_GGUF_UINT32);
    put_u32(b, v);
}

static void kv_str(buf *b, const char *k, const char *v)
{
    put_str(b, k);
    put_u32(b, MIPR_GGUF_STRING);
    put_str(b, v);
}

enum { DIM = 256, FF = 256, VOCAB = 8, NT = 9 };
static const uint32_t types[NT] = {MIPR_GGML_Q6_K, MIPR_GGML_Q2_K, MIPR_GGML_Q3_K,
                                   MIPR_GGML_Q4_K, MIPR_GGML_Q5_K, MIPR_GGML_Q4_K,
                                   MIPR_GGML_Q5_K, MIPR_GGML_Q6_K, MIPR_GGML_Q4_K};
static const char *const names[NT] = {
    "token_embd.weight",   "blk.0.attn_q.weight",      "blk.0.attn_k.weight",
    "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_gate.weight",
    "blk.0.ffn_up.weight", "blk.0.ffn_down.weight",    "output.weight"};
static const uint32_t rows[NT] = {VOCAB, DIM, DIM, DIM, DIM, FF, FF, DIM, VOCAB};

/* A one-layer model of width 256 (architecture `arch`, plus one string key when extra_key is
 * set) whose matrices are K-quants of every kind; want[i] receives tensor i as floats. */
static void build_gguf(buf *b, const char *arch, const char *extra_key, const char *extra_val,
                       float **want)
{
    char k[96];
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, NT + 3);
    put_u64(b, 8 + (extra_key != NULL));
    kv_str(b, "general.architecture", arch);
    static const char *const keys[6] = {"block_count", "embedding_length", "feed_forward_length",
                                        "attention.head_count", "context_length",
                                        "attention.head_count_kv"};
    const uint32_t vals[6] = {1, DIM, FF, 4, 64, 4};
    for (int i = 0; i < 6; i++) {
        snprintf(k, sizeof k, "%s.%s", arch, keys[i]);
        kv_u32(b, k, vals[i]);
    }
    kv_u32(b, "general.alignment", 32);
    if (extra_key) {
        snprintf(k, sizeof k, "%s.%s", arch, extra_key);
        kv_str(b, k, extra_val);
    }
    uint64_t off = 0, offs[NT + 3];
    for (int i = 0; i < NT + 3; i++) {
        int norm = i >= NT;
        const char *nm = i == NT ? "output_norm.weight" : i == NT + 1 ? "blk.0.attn_norm.weight"
                         : i == NT + 2 ? "blk.0.ffn_norm.weight" : names[i];
        uint32_t bytes = 4, block;
        if (!norm)
            mipr_kquant_traits(types[i], &block, &bytes);
        put_str(b, nm);
        put_u32(b, norm ? 1 : 2);
        put_u64(b, DIM);
        if (!norm)
            put_u64(b, rows[i]);
        put_u32(b, norm ? MIPR_GGML_F32 : types[i]);
        put_u64(b, off);
        offs[i] = off;
        off += ((norm ? DIM * 4u : rows[i] * bytes) + 31) / 32 * 32;
    }
    while (b->n % 32)
        put(b, "", 1);
    size_t data = b->n;
    uint8_t *zero = calloc(1, off);
    put(b, zero, off);
    free(zero);
    for (int i = 0; i < NT; i++) {
        uint32_t bytes, block;
        mipr_kquant_traits(types[i], &block, &bytes);
        want[i] = malloc((size_t)rows[i] * DIM * sizeof(float));
        for (uint32_t r = 0; r < rows[i]; r++)
            make_block(types[i], b->p + data + offs[i] + (size_t)r * bytes, want[i] + r * DIM);
    }
    float one = 1.0f;
    for (int i = NT; i < NT + 3; i++)
        for (int c = 0; c < DIM; c++)
            memcpy(b->p + data + offs[i] + 4 * c, &one, 4);
}

/* The loaded model's logits equal those of a model built from the expected floats: the
 * K-quant path is exactly "dequantize, then run F32". */
static void check_same_logits(const mipr_model *m, float **want)
{
    mipr_model *f;
    mipr_error e;
    CHECK_OK(mipr_model_new(&f, 1, &e), &e);
    f->hp = m->hp;
    f->layers[0] = m->layers[0];
    f->output_norm = m->output_norm;
    mipr_tensor *t[NT] = {&f->tok_embd, &f->layers[0].wq, &f->layers[0].wk, &f->layers[0].wv,
                          &f->layers[0].wo, &f->layers[0].ffn_gate, &f->layers[0].ffn_up,
                          &f->layers[0].ffn_down, &f->output};
    for (int i = 0; i < NT; i++)
        *t[i] = (mipr_tensor){.type = MIPR_DT_F32, .rows = rows[i], .cols = DIM,
                              .data = want[i]};
    CHECK_OK(mipr_model_validate(f, "f32 copy", &e), &e);
    int32_t ids[6] = {1, 5, 2, 7, 0, 3};
    float a[6 * VOCAB], c[6 * VOCAB];
    const mipr_model *ms[2] = {m, f};
    float *outs[2] = {a, c};
    for (int k = 0; k < 2; k++) {
        mipr_engine *en;
        CHECK_OK(mipr_engine_new(&en, ms[k], 16, 4, &e), &e);
        CHECK_OK(mipr_engine_forward(en, ids, 6, 0, outs[k], 1, &e), &e);
        mipr_engine_free(en);
    }
    CHECK(memcmp(a, c, sizeof a) == 0);
    f->layers[0] = (mipr_layer){0};
    mipr_model_free(f);
}

static void test_gguf_load(void)
{
    buf b = {0};
    float *want[NT];
    build_gguf(&b, "llama", NULL, NULL, want);
    mipr_gguf *g = NULL;
    mipr_model *m = NULL;
    mipr_error e;
    CHECK_OK(mipr_gguf_open_memory(&g, b.p, b.n, "kquant.gguf", &e), &e);
    CHECK_OK(mipr_gguf_load_model(&m, g, &e), &e);
    const mipr_tensor *t[NT] = {&m->tok_embd, &m->layers[0].wq, &m->layers[0].wk,
                                &m->layers[0].wv, &m->layers[0].wo, &m->layers[0].ffn_gate,
                                &m->layers[0].ffn_up, &m->layers[0].ffn_down, &m->output};
    for (int i = 0; i < NT; i++) {
        size_t at;
        CHECK(t[i]->type == MIPR_DT_F32 && t[i]->rows == rows[i] && t[i]->cols == DIM);
        if (!same_bits(t[i]->data, want[i], (size_t)rows[i] * DIM, &at)) {
            fprintf(stderr, "%s element %zu differs\n", names[i], at);
            CHECK(0);
        }
    }
    CHECK(!m->tied_output && m->hp.family == MIPR_FAMILY_LLAMA && m->hp.rope_scale == 0.0f);
    check_same_logits(m, want);
    for (int i = 0; i < NT; i++)
        free(want[i]);
    mipr_model_free(m);
    mipr_gguf_close(g);
    free(b.p);
}

/* Loading fails with status st and a message holding `what`. */
static void expect_refused(const char *arch, const char *key, const char *val, mipr_status st,
                           const char *what)
{
    buf b = {0};
    float *want[NT];
    build_gguf(&b, arch, key, val, want);
    mipr_gguf *g = NULL;
    mipr_model *m = NULL;
    mipr_error e;
    CHECK_OK(mipr_gguf_open_memory(&g, b.p, b.n, "refused.gguf", &e), &e);
    mipr_status got = mipr_gguf_load_model(&m, g, &e);
    if (got != st || !strstr(e.msg, what) || !strstr(e.msg, "refused.gguf")) {
        fprintf(stderr, "%s/%s: got %d \"%s\"\n", arch, key ? key : "-", (int)got, e.msg);
        CHECK(0);
    }
    CHECK(m == NULL);
    for (int i = 0; i < NT; i++)
        free(want[i]);
    mipr_gguf_close(g);
    free(b.p);
}

static void test_refusals(void)
{
    /* qwen2 needs its biases, as llama.cpp's loader does */
    expect_refused("qwen2", NULL, NULL, MIPR_ERR_FORMAT, "blk.0.attn_q.bias");
    expect_refused("llama", "rope.scaling.type", "yarn", MIPR_ERR_UNSUPPORTED, "yarn");
    expect_refused("llama", "rope.scaling.type", "llama3", MIPR_ERR_UNSUPPORTED, "rope_freqs");
    expect_refused("gpt2", NULL, NULL, MIPR_ERR_UNSUPPORTED, "qwen2");
}

int main(void)
{
    test_type(MIPR_GGML_Q2_K, 84);
    test_type(MIPR_GGML_Q3_K, 110);
    test_type(MIPR_GGML_Q4_K, 144);
    test_type(MIPR_GGML_Q5_K, 176);
    test_type(MIPR_GGML_Q6_K, 210);
    uint32_t block, bytes;
    CHECK(!mipr_kquant_traits(MIPR_GGML_Q8_0, &block, &bytes));
    test_legacy();
    test_gguf_load();
    test_refusals();
    return mipr_test_finish("kquant");
}
