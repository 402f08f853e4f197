/* Hugging Face folders: safetensors validation, config.json mapping (llama, qwen2, Llama 3
 * and linear RoPE scaling), and the real TinyStories-656K checkpoint against an independent
 * python reference of transformers' forward pass (tests/hf/ref_forward.py, rotate-half RoPE
 * on the rows as stored) and against the GGUF mipr converts it to. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_internal.h"
#include "hf.h"
#include "safetensors.h"
#include "testutil.h"

#ifndef MIPR_TESTS_DIR
#error "MIPR_TESTS_DIR must name tests/"
#endif

/* ---- safetensors ------------------------------------------------------------------------- */

/* A file of the given header text and data bytes. */
static uint8_t *st_file(const char *header, size_t data, size_t *size)
{
    size_t h = strlen(header);
    uint8_t *b = calloc(1, 8 + h + data + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    *size = 8 + h + data;
    return b;
}

static mipr_status st_try(const char *header, size_t data, mipr_error *err)
{
    size_t size;
    uint8_t *b = st_file(header, data, &size);
    mipr_st_set s = {0};
    mipr_status st = mipr_st_add(&s, b, size, "x.safetensors", err);
    mipr_st_free(&s);
    free(b);
    return st;
}

static void expect_st(const char *header, size_t data, mipr_status want, const char *msg)
{
    mipr_error err = {0};
    mipr_status st = st_try(header, data, &err);
    if (st != want || !strstr(err.msg, msg) || !strstr(err.msg, "x.safetensors")) {
        fprintf(stderr, "header %s: status %d, message '%s' (wanted %d, '%s')\n", header, st,
                err.msg, want, msg);
        mipr_test_failures++;
    }
}

static void test_safetensors(void)
{
    mipr_error err = {0};
    const char *ok = "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}}";
    size_t size;
    uint8_t *b = st_file(ok, 32, &size);
    mipr_st_set s = {0};
    CHECK_OK(mipr_st_add(&s, b, size, "x.safetensors", &err), &err);
    const mipr_st_tensor *a = mipr_st_find(&s, "a"), *t = mipr_st_find(&s, "b");
    CHECK(s.n == 2 && a && t && a->type == MIPR_DT_F32 && a->n_dims == 2 && a->shape[1] == 3);
    CHECK(t->type == MIPR_DT_BF16 && t->data == b + 8 + strlen(ok) + 24 && t->nbytes == 8);
    /* the same names again (a second shard): duplicates across the set */
    CHECK(mipr_st_add(&s, b, size, "y.safetensors", &err) == MIPR_ERR_FORMAT &&
          strstr(err.msg, "defined twice"));
    mipr_st_free(&s);
    free(b);

    expect_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
              MIPR_ERR_FORMAT, "run past the end");
    expect_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
              MIPR_ERR_FORMAT, "overlap");
    expect_st("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16,
              MIPR_ERR_UNSUPPORTED, "dtype I64 is not read");
    expect_st("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16,
              MIPR_ERR_FORMAT, "unknown dtype");
    expect_st("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
              MIPR_ERR_FORMAT, "need 6");
    expect_st("{\"a\":{\"dtype\":\"F16\",\"shape\":[3,-1],\"data_offsets\":[0,8]}}", 8,
              MIPR_ERR_FORMAT, "shape[1]");
    expect_st("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,0]}}", 8,
              MIPR_ERR_FORMAT, "begin <= end");
    expect_st("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
              "\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}", 8,
              MIPR_ERR_FORMAT, "defined twice");
    expect_st("{\"a\":", 0, MIPR_ERR_FORMAT, "not valid JSON");
    expect_st("[1]", 0, MIPR_ERR_FORMAT, "start with '{'");
    /* a header length larger than the file */
    uint8_t lie[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    mipr_st_set s2 = {0};
    CHECK(mipr_st_add(&s2, lie, 10, "x.safetensors", &err) == MIPR_ERR_FORMAT &&
          strstr(err.msg, "header length 200"));
    mipr_st_free(&s2);
}

/* ---- config.json ------------------------------------------------------------------------- */

static mipr_status cfg(const char *json, mipr_hf_config *c, mipr_error *err)
{
    return mipr_hf_config_parse(c, json, strlen(json), "config.json", err);
}

#define BASE "\"hidden_size\":896,\"intermediate_size\":4864,\"num_hidden_layers\":2," \
             "\"num_attention_heads\":14,\"num_key_value_heads\":2,\"vocab_size\":151936," \
             "\"max_position_embeddings\":32768,\"rms_norm_eps\":1e-06"

static void test_config(void)
{
    mipr_error err = {0};
    mipr_hf_config c;
    CHECK_OK(cfg("{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\","
                 "\"rope_theta\":1000000.0,\"tie_word_embeddings\":true," BASE "}", &c, &err),
             &err);
    CHECK(c.hp.family == MIPR_FAMILY_QWEN2 && c.hp.rope_type == MIPR_ROPE_NEOX && c.qkv_bias &&
          !c.permute_qk && c.tied && c.hp.n_kv_heads == 2 && c.hp.head_size == 64 &&
          c.d_ff == 4864 && c.hp.rope_theta == 1e6f && c.hp.norm_eps == 1e-6f);
    mipr_hf_config_free(&c);

    CHECK_OK(cfg("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\",\"factor\":4.0},"
                 BASE "}", &c, &err), &err);
    CHECK(c.hp.family == MIPR_FAMILY_LLAMA && c.hp.rope_type == MIPR_ROPE_INTERLEAVED &&
          c.permute_qk && !c.qkv_bias && !c.tied && c.hp.rope_scale == 4.0f && !c.rope_freqs &&
          c.hp.rope_theta == 10000.0f);
    mipr_hf_config_free(&c);

    /* Llama 3.1's scaling; divisors recomputed here in double from the published rule */
    CHECK_OK(cfg("{\"model_type\":\"llama\",\"rope_theta\":500000.0,\"rope_scaling\":"
                 "{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                 "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192},"
                 BASE "}", &c, &err), &err);
    CHECK(c.rope_freqs && c.n_rope_freqs == 32);
    int smooth = 0;
    for (uint32_t i = 0; c.rope_freqs && i < c.n_rope_freqs; i++) {
        double freq = pow(500000.0, -2.0 * i / 64), wl = 2 * 3.14159265358979323846 / freq, want;
        if (wl < 8192.0 / 4)
            want = 1;
        else if (wl > 8192.0)
            want = 8;
        else {
            double s = (8192.0 / wl - 1) / 3;
            want = 1 / ((1 - s) / 8 + s), smooth++;
        }
        CHECK(fabs(c.rope_freqs[i] - want) <= 1e-5 * want);
    }
    CHECK(smooth > 0 && c.rope_freqs[0] == 1.0f && c.rope_freqs[31] == 8.0f);
    mipr_hf_config_free(&c);

    CHECK(cfg("{\"model_type\":\"gpt2\"," BASE "}", &c, &err) == MIPR_ERR_UNSUPPORTED &&
          strstr(err.msg, "gpt2"));
    CHECK(cfg("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}," BASE
              "}", &c, &err) == MIPR_ERR_UNSUPPORTED && strstr(err.msg, "yarn"));
    CHECK(cfg("{\"model_type\":\"llama\",\"hidden_act\":\"gelu\"," BASE "}", &c, &err) ==
          MIPR_ERR_UNSUPPORTED && strstr(err.msg, "gelu"));
    CHECK(cfg("{\"model_type\":\"llama\",\"hidden_size\":100,\"num_attention_heads\":3}", &c,
              &err) == MIPR_ERR_FORMAT && strstr(err.msg, "config.json"));
    CHECK(cfg("{\"model_type\":\"llama\",\"head_dim\":128," BASE "}", &c, &err) ==
          MIPR_ERR_UNSUPPORTED && strstr(err.msg, "head_dim"));
    CHECK(cfg("not json", &c, &err) == MIPR_ERR_FORMAT);

    /* the permutation: interleaved row 2i + s of a head is rotate-half row s * hd/2 + i */
    CHECK(mipr_hf_qk_src(0, 8) == 0 && mipr_hf_qk_src(1, 8) == 4 && mipr_hf_qk_src(2, 8) == 1 &&
          mipr_hf_qk_src(7, 8) == 7 && mipr_hf_qk_src(9, 8) == 12);
}

/* ---- small synthetic checkpoints through the model builder ------------------------------ */

/* A tiny checkpoint (dim 8, 2 heads of 4, 1 KV head, FFN 16, vocabulary 32) in `type`,
 * every element a distinct value (tensor index * 1000 + element), with q/k/v biases when
 * `bias`, the data starting `skew` bytes past an aligned offset. */
typedef struct tiny {
    uint8_t *buf;
    size_t size;
    mipr_st_set set;
} tiny;

/* Distinct per element; the checks compare stored bytes, so rounding does not matter. */
static float tiny_value(size_t t, size_t e)
{
    return (float)(t * 1000 + e) / 4096.0f;
}

static void tiny_make(tiny *o, enum mipr_dtype type, int bias, int tied, size_t skew)
{
    mipr_error err = {0};
    static const char *const names[] = {
        "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
        "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.bias",
        "model.layers.0.self_attn.k_proj.bias", "model.layers.0.self_attn.v_proj.bias"};
    static const uint32_t shape[][2] = {{32, 8}, {8, 0}, {32, 8}, {8, 0}, {8, 0}, {8, 8}, {4, 8},
                                        {4, 8}, {8, 8}, {16, 8}, {16, 8}, {8, 16}, {8, 0},
                                        {4, 0}, {4, 0}};
    mipr_st_out d[15];
    size_t n = 0, hlen, esz = mipr_dtype_row_bytes(type, 1);
    uint64_t off[15];
    for (size_t i = 0; i < 15; i++) {
        if ((i >= 12 && !bias) || (i == 2 && tied))
            continue;
        d[n++] = (mipr_st_out){names[i], type, shape[i][1] ? 2u : 1u,
                               {shape[i][0], shape[i][1] ? shape[i][1] : 0}};
    }
    char *h = mipr_st_header(d, n, &hlen, off);
    /* skew: spaces in the header move the data off alignment (still valid JSON) */
    size_t data = 0;
    for (size_t i = 0; i < n; i++)
        data += esz * d[i].shape[0] * (d[i].n_dims == 2 ? d[i].shape[1] : 1);
    o->size = 8 + hlen + skew + data;
    o->buf = calloc(1, o->size); /* malloc's alignment: skew alone decides */
    uint8_t *b = o->buf;
    uint64_t hl = hlen + skew;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + 8, h, hlen);
    memset(b + 8 + hlen, ' ', skew);
    for (size_t i = 0; i < n; i++) {
        uint64_t elems = d[i].shape[0] * (d[i].n_dims == 2 ? d[i].shape[1] : 1);
        uint8_t *p = b + 8 + hl + off[i];
        for (uint64_t e = 0; e < elems; e++) {
            float v = tiny_value(i, e);
            uint16_t x = type == MIPR_DT_F16 ? mipr_f32_to_f16(v) : mipr_f32_to_bf16(v);
            if (type == MIPR_DT_F32)
                memcpy(p + 4 * e, &v, 4);
            else
                memcpy(p + 2 * e, &x, 2);
        }
    }
    free(h);
    memset(&o->set, 0, sizeof o->set);
    CHECK_OK(mipr_st_add(&o->set, b, o->size, "tiny.safetensors", &err), &err);
}

static void tiny_free(tiny *o)
{
    mipr_st_free(&o->set);
    free(o->buf);
}

#define TINY "\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1," \
             "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":32," \
             "\"max_position_embeddings\":16"

/* Row r of the model's tensor against source row src of the file's. */
static int same_row(const mipr_tensor *t, uint32_t r, const mipr_st_tensor *s, uint32_t src)
{
    size_t row = mipr_dtype_row_bytes(t->type, t->cols);
    return memcmp((const uint8_t *)t->data + r * row, s->data + src * row, row) == 0;
}

/* The model runs: batched prefill and token-by-token decode give the same logits bit for bit,
 * and so does the GGUF mipr writes of it (qwen2 stays qwen2 with its biases and rotate-half
 * rows; llama keeps rope_freqs), read back. */
static void run_tiny(const mipr_model *m, const char *want_arch)
{
    static const int32_t tids[] = {1, 5, 9, 30, 2, 17, 8, 31};
    enum { N = sizeof tids / sizeof *tids, V = 32 };
    mipr_error err = {0};
    float all[N * V], one[V], back[N * V];
    mipr_engine *e;
    CHECK_OK(mipr_engine_new(&e, m, 16, 8, &err), &err);
    CHECK_OK(mipr_engine_forward(e, tids, N, 0, all, 1, &err), &err);
    mipr_engine_free(e);
    CHECK_OK(mipr_engine_new(&e, m, 16, 1, &err), &err);
    for (uint32_t t = 0; t < N; t++) {
        CHECK_OK(mipr_engine_forward(e, tids + t, 1, t, one, 0, &err), &err);
        CHECK(memcmp(one, all + t * V, sizeof one) == 0);
        for (uint32_t v = 0; v < V; v++)
            CHECK(isfinite(one[v]));
    }
    mipr_engine_free(e);
    const char *path = mipr_test_tmp("tiny-hf.gguf");
    mipr_gguf_write_opts wo = {.keep_types = 1};
    CHECK_OK(mipr_gguf_write(path, m, NULL, &wo, &err), &err);
    mipr_gguf *g;
    mipr_model *r;
    CHECK_OK(mipr_gguf_open(&g, path, &err), &err);
    mipr_gguf_str a = {0};
    int64_t k = mipr_gguf_find(g, "general.architecture");
    CHECK(k >= 0 && mipr_gguf_get_str(g, (uint64_t)k, &a) && mipr_gguf_str_eq(a, want_arch));
    CHECK_OK(mipr_gguf_load_model(&r, g, &err), &err);
    CHECK_OK(mipr_engine_new(&e, r, 16, 8, &err), &err);
    CHECK_OK(mipr_engine_forward(e, tids, N, 0, back, 1, &err), &err);
    CHECK(memcmp(back, all, sizeof all) == 0);
    mipr_engine_free(e);
    mipr_model_free(r);
    mipr_gguf_close(g);
    remove(path);
}

static void test_tiny(void)
{
    mipr_error err = {0};
    mipr_hf_config c;
    mipr_model *m = NULL;
    tiny t;

    /* qwen2: biases bound (as F32), rotate-half rows kept, untied classifier; F16 weights
     * stay F16 and are used in place */
    tiny_make(&t, MIPR_DT_F16, 1, 0, 0);
    CHECK_OK(cfg("{\"model_type\":\"qwen2\"," TINY "}", &c, &err), &err);
    CHECK_OK(mipr_hf_build(&m, &c, &t.set, "tiny", "tiny.safetensors", &err), &err);
    const mipr_st_tensor *q = mipr_st_find(&t.set, "model.layers.0.self_attn.q_proj.weight");
    const mipr_st_tensor *qb = mipr_st_find(&t.set, "model.layers.0.self_attn.q_proj.bias");
    CHECK(m->hp.family == MIPR_FAMILY_QWEN2 && m->hp.rope_type == MIPR_ROPE_NEOX);
    CHECK(m->layers[0].wq.type == MIPR_DT_F16 && m->layers[0].wq.data == q->data);
    CHECK(m->layers[0].bq.data && m->layers[0].bq.type == MIPR_DT_F32 &&
          m->layers[0].bk.cols == 4 && m->layers[0].bv.cols == 4);
    uint16_t h0;
    memcpy(&h0, qb->data + 2 * 3, 2);
    CHECK(((const float *)m->layers[0].bq.data)[3] == mipr_f16_to_f32(h0));
    CHECK(!m->tied_output && m->output.data != m->tok_embd.data);
    run_tiny(m, "qwen2");
    mipr_model_free(m);
    mipr_hf_config_free(&c);
    /* a qwen2 checkpoint without its biases */
    tiny_free(&t);
    tiny_make(&t, MIPR_DT_F16, 0, 0, 0);
    CHECK_OK(cfg("{\"model_type\":\"qwen2\"," TINY "}", &c, &err), &err);
    CHECK(mipr_hf_build(&m, &c, &t.set, "tiny", "tiny.safetensors", &err) == MIPR_ERR_FORMAT &&
          strstr(err.msg, "tiny.safetensors: tensor model.layers.0.self_attn.q_proj.bias is "
                          "missing"));
    mipr_hf_config_free(&c);
    tiny_free(&t);

    /* llama with Llama 3 scaling, BF16, data at an odd offset (copied, not
     * borrowed misaligned), tied: q/k rows permuted, rope_freqs carried */
    tiny_make(&t, MIPR_DT_BF16, 0, 1, 1);
    CHECK_OK(cfg("{\"model_type\":\"llama\",\"tie_word_embeddings\":true,\"rope_scaling\":"
                 "{\"rope_type\":\"llama3\",\"factor\":8}," TINY "}", &c, &err), &err);
    CHECK_OK(mipr_hf_build(&m, &c, &t.set, "tiny", "tiny.safetensors", &err), &err);
    const mipr_st_tensor *k = mipr_st_find(&t.set, "model.layers.0.self_attn.k_proj.weight");
    const mipr_st_tensor *v = mipr_st_find(&t.set, "model.layers.0.self_attn.v_proj.weight");
    q = mipr_st_find(&t.set, "model.layers.0.self_attn.q_proj.weight");
    CHECK(m->rope_freqs.data && m->rope_freqs.cols == 2 && m->tied_output);
    static const uint32_t perm4[] = {0, 2, 1, 3}; /* interleaved row -> rotate-half row */
    for (uint32_t r = 0; r < 8; r++)
        CHECK(same_row(&m->layers[0].wq, r, q, (r / 4) * 4 + perm4[r % 4]));
    for (uint32_t r = 0; r < 4; r++)
        CHECK(same_row(&m->layers[0].wk, r, k, perm4[r]) && same_row(&m->layers[0].wv, r, v, r));
    CHECK((uintptr_t)m->layers[0].wv.data % 2 == 0 && m->layers[0].wv.data != v->data);
    run_tiny(m, "llama");
    mipr_model_free(m);
    mipr_hf_config_free(&c);
    tiny_free(&t);

    /* tied in config.json but only lm_head stored: the embedding is lm_head */
    tiny_make(&t, MIPR_DT_F32, 0, 0, 0);
    CHECK_OK(cfg("{\"model_type\":\"mistral\",\"tie_word_embeddings\":false," TINY "}", &c,
                 &err), &err);
    CHECK_OK(mipr_hf_build(&m, &c, &t.set, "tiny", "tiny.safetensors", &err), &err);
    CHECK(m->output.data == mipr_st_find(&t.set, "lm_head.weight")->data);
    mipr_model_free(m);
    mipr_hf_config_free(&c);
    tiny_free(&t);
}

/* ---- the real checkpoint ----------------------------------------------------------------- */

static const int32_t ids[] = {1, 412, 281, 90, 1100, 7, 36, 2047};
#define N_IDS (sizeof ids / sizeof *ids)

/* The python reference's logits of every position. */
static float *reference_logits(const char *dir, uint32_t vocab)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "python3 '%s/hf/ref_forward.py' '%s'", MIPR_TESTS_DIR, dir);
    for (size_t i = 0; i < N_IDS; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %d", ids[i]);
    FILE *p = popen(cmd, "r");
    float *out = malloc(N_IDS * vocab * sizeof *out);
    size_t got = 0;
    while (p && out && got < N_IDS * vocab && fscanf(p, "%f", &out[got]) == 1)
        got++;
    int rc = p ? pclose(p) : -1;
    if (rc != 0 || got != N_IDS * vocab) {
        fprintf(stderr, "%s: exit %d, %zu of %zu values\n", cmd, rc, got, N_IDS * vocab);
        exit(1);
    }
    return out;
}

static float *mipr_logits(const mipr_model *m)
{
    mipr_error err = {0};
    mipr_engine *e = NULL;
    float *out = malloc(N_IDS * m->hp.vocab_size * sizeof *out);
    CHECK_OK(mipr_engine_new(&e, m, 64, 0, &err), &err);
    CHECK_OK(mipr_engine_forward(e, ids, N_IDS, 0, out, 1, &err), &err);
    mipr_engine_free(e);
    return out;
}

/* Plain comparisons, not fmax: gcc 12 for aarch64 crashes vectorizing two fmax reductions
 * in one loop (internal compiler error in vect_transform_reduction). */
static double max_diff(const float *a, const float *b, size_t n, double *scale)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double di = fabs((double)a[i] - b[i]), si = fabs((double)b[i]);
        if (di > d || di != di)
            d = di;
        if (si > s)
            s = si;
    }
    *scale = s;
    return d;
}

/* A placeholder vocabulary of the model's size (the GGUF writer needs one). */
static mipr_tokenizer *dummy_tokenizer(uint32_t n)
{
    mipr_error err = {0};
    mipr_tokenizer *t = NULL;
    CHECK_OK(mipr_tokenizer_new(&t, n, &err), &err);
    for (uint32_t i = 0; i < n; i++) {
        char piece[16];
        int len = snprintf(piece, sizeof piece, "t%u", i);
        CHECK_OK(mipr_tokenizer_set(t, i, piece, (size_t)len, 0.0f,
                                    i < 3 ? MIPR_TOK_CONTROL : MIPR_TOK_NORMAL, &err), &err);
    }
    CHECK_OK(mipr_tokenizer_finish(t, 1, 2, 0, 0, &err), &err);
    return t;
}

/* Every tensor of the original file is in the written one, byte for byte (F32 out): the q/k
 * rows went back to rotate-half order exactly. Tied: lm_head is written as embed_tokens. */
static void same_tensors(const char *orig, const char *copy)
{
    mipr_error err = {0};
    mipr_mapped_file a, b;
    mipr_st_set sa = {0}, sb = {0};
    CHECK_OK(mipr_file_map(&a, orig, &err), &err);
    CHECK_OK(mipr_file_map(&b, copy, &err), &err);
    CHECK_OK(mipr_st_add(&sa, a.data, a.size, orig, &err), &err);
    CHECK_OK(mipr_st_add(&sb, b.data, b.size, copy, &err), &err);
    CHECK(sa.n == sb.n);
    for (size_t i = 0; i < sa.n; i++) {
        const char *name = sa.t[i].name;
        const mipr_st_tensor *t = mipr_st_find(&sb, strcmp(name, "lm_head.weight") == 0
                                                        ? "model.embed_tokens.weight" : name);
        CHECK(t && t->nbytes == sa.t[i].nbytes && t->type == sa.t[i].type &&
              memcmp(t->data, sa.t[i].data, t->nbytes) == 0);
    }
    mipr_st_free(&sa);
    mipr_st_free(&sb);
    mipr_file_unmap(&a);
    mipr_file_unmap(&b);
}

static char *join(const char *a, const char *b)
{
    char *p = mipr_hf_path(a, b);
    CHECK(p != NULL);
    return p;
}

static void rm_folder(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char *p = mipr_hf_path(dir, e->d_name);
            remove(p);
            free(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void test_write(const char *dir, const mipr_model *m, const float *logits)
{
    mipr_error err = {0};
    const uint32_t V = m->hp.vocab_size;
    char out[1024];
    snprintf(out, sizeof out, "%s", mipr_test_tmp("hf_out"));
    CHECK_OK(mipr_hf_write(out, m, dir, MIPR_DT_F32, &err), &err);
    char *st_in = join(dir, "model.safetensors"), *st_out = join(out, "model.safetensors");
    same_tensors(st_in, st_out);
    mipr_model *r = NULL;
    CHECK_OK(mipr_hf_load(&r, NULL, out, &err), &err);
    float *rl = mipr_logits(r);
    double scale, d = max_diff(rl, logits, N_IDS * V, &scale);
    CHECK(d == 0.0);
    free(rl);
    mipr_model_free(r);
    char *tj = join(out, "tokenizer.json");
    FILE *f = fopen(tj, "rb");
    CHECK(f != NULL);
    if (f)
        fclose(f);

    /* a folder that is not empty is not replaced; nothing is left beside it */
    CHECK(mipr_hf_write(out, m, dir, MIPR_DT_F32, &err) == MIPR_ERR_ARG &&
          strstr(err.msg, "not empty"));
    /* per-layer widths cannot be one intermediate_size */
    char out2[1024];
    snprintf(out2, sizeof out2, "%s", mipr_test_tmp("hf_out2"));
    mipr_model *w = (mipr_model *)m;
    w->layers[1].d_ff--;
    CHECK(mipr_hf_write(out2, m, dir, MIPR_DT_F32, &err) == MIPR_ERR_UNSUPPORTED &&
          strstr(err.msg, "GGUF"));
    w->layers[1].d_ff++;
    CHECK(!mipr_hf_is_dir(out2));

    /* F16 and BF16 out: TinyStories-656K's weights are all bf16 values (it was trained so;
     * checked by tests/hf/ref_forward.py --bf16-exact), which F16 also holds exactly, so the
     * reloaded folders give the F32 logits bit for bit: the F16/BF16 write and read paths */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/hf/ref_forward.py' '%s' --bf16-exact", MIPR_TESTS_DIR,
             dir);
    CHECK(system(cmd) == 0);
    const enum mipr_dtype halves[] = {MIPR_DT_F16, MIPR_DT_BF16};
    for (int i = 0; i < 2; i++) {
        char o[1024];
        snprintf(o, sizeof o, "%s", mipr_test_tmp(i ? "hf_bf16" : "hf_f16"));
        CHECK_OK(mipr_hf_write(o, m, dir, halves[i], &err), &err);
        CHECK_OK(mipr_hf_load(&r, NULL, o, &err), &err);
        CHECK(r->layers[0].wq.type == halves[i] && r->tok_embd.type == halves[i]);
        rl = mipr_logits(r);
        CHECK(max_diff(rl, logits, N_IDS * V, &scale) == 0.0);
        free(rl);
        mipr_model_free(r);
        rm_folder(o);
    }
    rm_folder(out);
    free(st_in);
    free(st_out);
    free(tj);
}

/* Writes tensors [first, last) of set into a safetensors file. */
static void write_shard(const mipr_st_set *set, size_t first, size_t last, const char *path)
{
    size_t n = last - first, hlen;
    mipr_st_out *d = calloc(n, sizeof *d);
    uint64_t *off = calloc(n, sizeof *off);
    for (size_t i = 0; i < n; i++) {
        const mipr_st_tensor *t = &set->t[first + i];
        d[i] = (mipr_st_out){t->name, t->type, t->n_dims, {t->shape[0], t->shape[1]}};
    }
    char *h = mipr_st_header(d, n, &hlen, off);
    FILE *f = fopen(path, "wb");
    CHECK(h && f);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(h, 1, hlen, f);
    for (size_t i = 0; i < n; i++)
        fwrite(set->t[first + i].data, 1, set->t[first + i].nbytes, f);
    fclose(f);
    free(h);
    free(d);
    free(off);
}

static void put_text(const char *dir, const char *name, const char *text)
{
    char *p = mipr_hf_path(dir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* The real checkpoint cut into two shards with an index: same logits; then the index names
 * a shard that is missing, and a tensor in the wrong shard. */
static void test_sharded(const char *dir, const float *logits, uint32_t V)
{
    mipr_error err = {0};
    char out[1024], *p;
    snprintf(out, sizeof out, "%s", mipr_test_tmp("hf_sharded"));
    CHECK(mkdir(out, 0755) == 0);
    char *src = join(dir, "model.safetensors"), *cfg = join(dir, "config.json");
    mipr_mapped_file f, c;
    mipr_st_set set = {0};
    CHECK_OK(mipr_file_map(&f, src, &err), &err);
    CHECK_OK(mipr_file_map(&c, cfg, &err), &err);
    CHECK_OK(mipr_st_add(&set, f.data, f.size, src, &err), &err);
    size_t half = set.n / 2;
    const char *shard[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int i = 0; i < 2; i++) {
        p = join(out, shard[i]);
        write_shard(&set, i ? half : 0, i ? set.n : half, p);
        free(p);
    }
    char index[16384];
    int n = snprintf(index, sizeof index, "{\"metadata\":{},\"weight_map\":{");
    for (size_t i = 0; i < set.n; i++)
        n += snprintf(index + n, sizeof index - (size_t)n, "%s\"%s\":\"%s\"", i ? "," : "",
                      set.t[i].name, shard[i >= half]);
    snprintf(index + n, sizeof index - (size_t)n, "}}");
    put_text(out, "model.safetensors.index.json", index);
    p = join(out, "config.json");
    FILE *cf = fopen(p, "wb");
    fwrite(c.data, 1, c.size, cf);
    fclose(cf);
    free(p);

    mipr_model *m = NULL;
    CHECK_OK(mipr_hf_load(&m, NULL, out, &err), &err);
    float *l = mipr_logits(m);
    double scale;
    CHECK(max_diff(l, logits, N_IDS * V, &scale) == 0.0);
    free(l);
    mipr_model_free(m);

    /* a tensor the index places in the other shard */
    char *wrong = strdup(index), *at = strstr(wrong, shard[0]);
    memcpy(at, shard[1], strlen(shard[1]));
    put_text(out, "model.safetensors.index.json", wrong);
    CHECK(mipr_hf_load(&m, NULL, out, &err) == MIPR_ERR_FORMAT && strstr(err.msg, "index.json") &&
          strstr(err.msg, "is not in"));
    free(wrong);
    put_text(out, "model.safetensors.index.json", index);
    /* a shard that is missing */
    p = join(out, shard[1]);
    remove(p);
    CHECK(mipr_hf_load(&m, NULL, out, &err) == MIPR_ERR_IO && strstr(err.msg, "index.json") &&
          strstr(err.msg, shard[1]) && strstr(err.msg, "missing"));
    fprintf(stderr, "missing shard: %s\n", err.msg);
    free(p);
    p = join(out, shard[0]);
    remove(p);
    free(p);
    p = join(out, "model.safetensors.index.json");
    remove(p);
    free(p);
    p = join(out, "config.json");
    remove(p);
    free(p);
    rmdir(out);
    mipr_st_free(&set);
    mipr_file_unmap(&f);
    mipr_file_unmap(&c);
    free(src);
    free(cfg);
}

static void test_tinystories(void)
{
    const char *dir = mipr_test_data("tinystories-656k");
    mipr_error err = {0};
    mipr_model *m = NULL;
    CHECK(mipr_detect_file(dir, &err) == MIPR_FILE_HF);
    CHECK_OK(mipr_hf_load(&m, NULL, dir, &err), &err);
    const mipr_hparams *hp = &m->hp;
    CHECK(hp->dim == 128 && hp->n_layers == 2 && hp->n_heads == 8 && hp->n_kv_heads == 4 &&
          hp->vocab_size == 2048 && hp->seq_len == 512 && hp->norm_eps == 1e-6f &&
          m->tied_output && m->layers[1].d_ff == 384 && m->layers[0].wk.rows == 64);
    CHECK(hp->family == MIPR_FAMILY_LLAMA && hp->rope_type == MIPR_ROPE_INTERLEAVED);

    float *want = reference_logits(dir, hp->vocab_size), *got = mipr_logits(m);
    double scale, d = max_diff(got, want, N_IDS * hp->vocab_size, &scale);
    fprintf(stderr, "TinyStories-656K: max |logit - python reference| = %.3g (max |logit| %.3g)\n",
            d, scale);
    /* float32 sums against python's doubles: measured 1.5e-5; rotate-half rope on
     * unpermuted rows, or a wrong permutation, moves logits by whole units */
    CHECK(d <= 1e-4 * (1 + scale));
    for (size_t i = 0; i < N_IDS; i++)
        CHECK(mipr_argmax(got + i * hp->vocab_size, hp->vocab_size) ==
              mipr_argmax(want + i * hp->vocab_size, hp->vocab_size));

    test_write(dir, m, got);
    test_sharded(dir, got, hp->vocab_size);

    /* the GGUF mipr writes of it gives the same logits (to 1e-5; F32 is bit-exact) */
    mipr_tokenizer *tok = dummy_tokenizer(hp->vocab_size);
    const char *gguf = mipr_test_tmp("ts656k.gguf");
    mipr_gguf_write_opts wo = {.type = MIPR_DT_F32};
    CHECK_OK(mipr_gguf_write(gguf, m, tok, &wo, &err), &err);
    mipr_model *g = NULL;
    CHECK_OK(mipr_load(&g, NULL, gguf, NULL, &err), &err);
    float *gl = mipr_logits(g);
    d = max_diff(gl, got, N_IDS * hp->vocab_size, &scale);
    fprintf(stderr, "TinyStories-656K: max |logit HF folder - converted GGUF| = %.3g\n", d);
    CHECK(d <= 1e-5);
    remove(gguf);
    free(gl);
    free(want);
    free(got);
    mipr_model_free(g);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
}

/* Qwen's tokenizer lists fewer tokens than the model's 151,936 embedding rows (this file,
 * shared with Qwen3: 151,669): padded for the model, the listed ids are unchanged and the
 * rest are the unused placeholders llama.cpp's converter also makes. */
static void test_padded_vocab(void)
{
    mipr_error err = {0};
    mipr_tokenizer *t, *p;
    const char *path = mipr_test_data("vocab/hf/qwen2.5/tokenizer.json");
    CHECK_OK(mipr_tokenizer_json_load(&t, path, &err), &err);
    CHECK_OK(mipr_tokenizer_json_load_padded(&p, path, 151936, &err), &err);
    uint32_t n = mipr_tokenizer_n_vocab(t);
    CHECK(n == 151669 && mipr_tokenizer_n_vocab(p) == 151936);
    size_t len;
    const char *s = mipr_tokenizer_piece(p, n, &len);
    CHECK(len == 11 && memcmp(s, "[PAD151669]", 11) == 0);
    CHECK(mipr_tokenizer_type(p, 151935) == MIPR_TOK_UNUSED);
    static const char text[] = "Hello world, 12345 tokens!";
    int32_t a[64], b[64];
    size_t na = mipr_tokenizer_encode(t, text, sizeof text - 1, 1, a);
    size_t nb = mipr_tokenizer_encode(p, text, sizeof text - 1, 1, b);
    CHECK(na == nb && na > 4 && memcmp(a, b, na * sizeof *a) == 0);
    mipr_tokenizer_free(t);
    mipr_tokenizer_free(p);
}

int main(void)
{
    test_padded_vocab();
    test_safetensors();
    test_config();
    test_tiny();
    test_tinystories();
    return mipr_test_finish("hf");
}
