/* The .mpk format: lossless round trips (the llama2.c oracle text from F32 and F16 packs),
 * low-RAM streaming equal to decoding at load, quantized packs within stated bounds, and
 * hostile bytes: every flipped byte and every truncation is an error, never a crash. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static const char *const MODEL = "stories260K/stories260K.bin";
static const char *const TOK = "stories260K/tok512.bin";

/* Logits of a 24-token prompt run as one batch: every position's row. */
static float *prompt_logits(const mipr_model *m)
{
    enum { N = 24 };
    mipr_error err = {0};
    mipr_engine *e;
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = (i * 37 + 1) % (int32_t)m->hp.vocab_size;
    float *out = malloc((size_t)N * m->hp.vocab_size * sizeof *out);
    CHECK_OK(mipr_engine_new(&e, m, 64, 8, &err), &err);
    CHECK_OK(mipr_engine_forward(e, ids, N, 0, out, 1, &err), &err);
    mipr_engine_free(e);
    return out;
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++)
        d = fabsf(a[i] - b[i]) > d ? fabsf(a[i] - b[i]) : d;
    return d;
}

static void pack(const mipr_model *m, const mipr_tokenizer *t, const char *path,
                 mipr_mpk_write_opts o)
{
    mipr_error err = {0};
    CHECK_OK(mipr_mpk_write(path, m, t, &o, &err), &err);
}

static mipr_model *src_model;
static mipr_tokenizer *src_tok;
static float *src_logits;

static void test_f32_oracle(const char *json)
{
    const char *path = mipr_test_tmp("f32.mpk");
    /* small chunks, so that decoding on a pool splits every matrix between its threads */
    pack(src_model, src_tok, path,
         (mipr_mpk_write_opts){.type = MIPR_DT_F32, .planes = -1, .chunk_bytes = 4096});
    char *want = mipr_test_oracle_string(json, "llama2c_test_all_n200", "expected_stdout");
    mipr_pool *pool;
    mipr_error perr = {0};
    CHECK_OK(mipr_pool_new(&pool, 3, &perr), &perr);
    /* decoded at open, low-RAM, decoded at open on three threads */
    for (int mode = 0; mode < 3; mode++) {
        int low = mode == 1;
        mipr_error err = {0};
        mipr_model *m;
        mipr_tokenizer *t;
        mipr_mpk_options o = {.low_ram = low, .pool = mode == 2 ? pool : NULL};
        CHECK_OK(mipr_mpk_open_file(&m, &t, path, &o, &err), &err);
        mipr_test_text c;
        mipr_test_greedy(m, t, "", 200, &c);
        if (strcmp(c.text, want))
            fprintf(stderr, "f32 low_ram=%d:\n got: %s\nwant: %s\n", low, c.text, want);
        CHECK(strcmp(c.text, want) == 0);
        float *l = prompt_logits(m);
        CHECK(max_diff(l, src_logits, 24u * m->hp.vocab_size) == 0.0f);
        free(l);
        mipr_tokenizer_free(t);
        mipr_model_free(m);
    }
    mipr_pool_free(pool);
    free(want);
}

/* Decoding on a pool checks each chunk's CRC on the thread that decodes it: a damaged byte
 * anywhere in the weights is still refused, with the chunk named. */
static void test_pool_damage(void)
{
    const char *path = mipr_test_tmp("pool.mpk");
    pack(src_model, src_tok, path,
         (mipr_mpk_write_opts){.type = MIPR_DT_F32, .planes = 1, .chunk_bytes = 4096});
    size_t n;
    char *good = mipr_test_read_file(path, &n);
    char *buf = malloc(n);
    mipr_pool *pool;
    mipr_error err = {0};
    CHECK_OK(mipr_pool_new(&pool, 3, &err), &err);
    int missed = 0;
    for (size_t k = 0; k < 200; k++) {
        size_t at = 4096 + k * (n - 8192) / 199;
        memcpy(buf, good, n);
        buf[at] ^= (char)0x10;
        mipr_model *m = NULL;
        mipr_tokenizer *t = NULL;
        mipr_mpk_options o = {.pool = pool};
        mipr_status st = mipr_mpk_open_memory(&m, &t, buf, n, &o, &err);
        if (st == MIPR_OK || !strstr(err.msg, "memory")) {
            missed++;
            fprintf(stderr, "pool: flip at %zu of %zu: %s\n", at, n, st ? err.msg : "accepted");
        }
        mipr_tokenizer_free(t);
        mipr_model_free(m);
    }
    printf("pool damage: %d of 200 refused\n", 200 - missed);
    CHECK(missed == 0);
    mipr_pool_free(pool);
    free(buf);
    free(good);
}

/* An F16 pack of an F16 model copies every row bit for bit: packing twice gives the same
 * bytes, and the text is still the oracle's. */
static void test_f16_lossless(const char *json)
{
    const char *a = mipr_test_tmp("a16.mpk"), *b = mipr_test_tmp("b16.mpk");
    pack(src_model, src_tok, a, (mipr_mpk_write_opts){.type = MIPR_DT_F16, .planes = -1});
    mipr_error err = {0};
    mipr_model *m;
    mipr_tokenizer *t;
    CHECK_OK(mipr_mpk_open_file(&m, &t, a, NULL, &err), &err);
    CHECK(m->layers[0].wq.type == MIPR_DT_F16 && m->layers[0].attn_norm.type == MIPR_DT_F32);
    pack(m, t, b, (mipr_mpk_write_opts){.type = MIPR_DT_F16, .planes = -1});
    size_t na, nb;
    char *fa = mipr_test_read_file(a, &na), *fb = mipr_test_read_file(b, &nb);
    CHECK(na == nb && memcmp(fa, fb, na) == 0);
    char *want = mipr_test_oracle_string(json, "llama2c_test_all_n200", "expected_stdout");
    mipr_test_text c;
    mipr_test_greedy(m, t, "", 200, &c);
    if (strcmp(c.text, want))
        fprintf(stderr, "f16:\n got: %s\nwant: %s\n", c.text, want);
    CHECK(strcmp(c.text, want) == 0);
    free(want);
    free(fa);
    free(fb);
    mipr_tokenizer_free(t);
    mipr_model_free(m);
}

/* Small chunks (16 rows) make every matrix stream in many pieces; raw packs are used in
 * place from the caller's buffer. */
static void test_streaming_and_raw(void)
{
    for (int raw = 0; raw < 2; raw++) {
        const char *path = mipr_test_tmp("small.mpk");
        pack(src_model, src_tok, path,
             (mipr_mpk_write_opts){.type = MIPR_DT_F32, .planes = -1, .chunk_bytes = 4096,
                                   .raw = raw});
        size_t n;
        char *buf = mipr_test_read_file(path, &n);
        for (int low = 0; low < 2; low++) {
            mipr_error err = {0};
            mipr_model *m;
            mipr_mpk_options o = {.low_ram = low};
            CHECK_OK(mipr_mpk_open_memory(&m, NULL, buf, n, &o, &err), &err);
            CHECK(!low || raw || m->layers[1].ffn_up.stream_ != NULL);
            const char *d = m->layers[1].ffn_up.data;
            CHECK(!raw || (d >= buf && d < buf + n)); /* in place */
            float *l = prompt_logits(m);
            CHECK(max_diff(l, src_logits, 24u * m->hp.vocab_size) == 0.0f);
            free(l);
            mipr_model_free(m);
        }
        free(buf);
    }
}

/* Quantized packs: stated bounds on the largest logit change against F32 (measured 0.38 for
 * q8 and 3.1 for q4 on this prompt: a 260K-parameter model feels 4 bits; perplexity is
 * what the benchmark reports). */
static void test_quantized(void)
{
    static const struct { enum mipr_dtype t; float bound; } q[] = {{MIPR_DT_Q8_0, 0.5f},
                                                                 {MIPR_DT_Q4_0, 5.0f}};
    for (size_t i = 0; i < 2; i++) {
        const char *path = mipr_test_tmp("q.mpk");
        pack(src_model, src_tok, path, (mipr_mpk_write_opts){.type = q[i].t, .planes = -1});
        for (int low = 0; low < 2; low++) {
            mipr_error err = {0};
            mipr_model *m;
            mipr_mpk_options o = {.low_ram = low};
            CHECK_OK(mipr_mpk_open_file(&m, NULL, path, &o, &err), &err);
            CHECK(m->layers[0].ffn_down.type == q[i].t); /* 172 columns: a padded block */
            CHECK(m->tok_embd.type == MIPR_DT_Q8_0);
            float *l = prompt_logits(m);
            float d = max_diff(l, src_logits, 24u * m->hp.vocab_size);
            printf("%s low_ram=%d: max |logit - f32| = %.4f (bound %.1f)\n",
                   mipr_dtype_name(q[i].t), low, (double)d, (double)q[i].bound);
            CHECK(d > 0.0f && d < q[i].bound);
            free(l);
            mipr_model_free(m);
        }
    }
}

static void test_sections(void)
{
    static const char payload[] = "a section from the future";
    mipr_mpk_extra x = {{'X', 'T', 'R', 'A'}, 0, payload, sizeof payload};
    const char *path = mipr_test_tmp("extra.mpk");
    for (int required = 0; required < 2; required++) {
        x.required = required;
        pack(src_model, src_tok, path,
             (mipr_mpk_write_opts){.type = MIPR_DT_F32, .planes = -1, .extra = &x, .n_extra = 1});
        mipr_error err = {0};
        mipr_model *m = NULL;
        mipr_status st = mipr_mpk_open_file(&m, NULL, path, NULL, &err);
        CHECK(st == (required ? MIPR_ERR_UNSUPPORTED : MIPR_OK));
        CHECK(!required || strstr(err.msg, "XTRA") != NULL);
        if (st == MIPR_OK) {
            float *l = prompt_logits(m);
            CHECK(max_diff(l, src_logits, 24u * m->hp.vocab_size) == 0.0f);
            free(l);
        }
        mipr_model_free(m);
    }
}

/* Every result of opening or inspecting damaged bytes must be an error with a message. */
static int rejects(const char *buf, size_t n, int low_ram)
{
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *t = NULL;
    mipr_mpk_options o = {.low_ram = low_ram};
    mipr_status st = mipr_mpk_open_memory(&m, &t, buf, n, &o, &err);
    mipr_mpk_info info;
    mipr_error err2 = {0};
    mipr_status st2 = mipr_mpk_inspect(buf, n, "damaged.mpk", &info, &err2);
    if (st2 == MIPR_OK)
        mipr_mpk_info_free(&info);
    mipr_tokenizer_free(t);
    mipr_model_free(m);
    return st != MIPR_OK && st2 != MIPR_OK && err.msg[0] && strstr(err2.msg, "damaged.mpk");
}

static void test_damage(void)
{
    const char *path = mipr_test_tmp("damage.mpk");
    pack(src_model, src_tok, path,
         (mipr_mpk_write_opts){.type = MIPR_DT_Q8_0, .planes = -1, .chunk_bytes = 4096});
    size_t n;
    char *good = mipr_test_read_file(path, &n);
    char *buf = malloc(n);
    CHECK(!rejects(good, n, 0));
    int missed = 0, tried = 0;
    /* every header byte, then 600 positions spread over the whole file */
    for (size_t k = 0; k < 64 + 600; k++) {
        size_t at = k < 64 ? k : (k - 64) * (n - 1) / 599;
        for (int flip = 0; flip < 2; flip++) {
            memcpy(buf, good, n);
            buf[at] ^= flip ? (char)0xFF : (char)0x01;
            tried++;
            if (!rejects(buf, n, k & 1)) {
                missed++;
                fprintf(stderr, "flip 0x%02x at byte %zu of %zu was accepted\n",
                        flip ? 0xFF : 0x01, at, n);
            }
        }
    }
    for (size_t k = 0; k < 64; k++) {
        size_t len = n * k / 64;
        tried++;
        if (!rejects(good, len, 0)) {
            missed++;
            fprintf(stderr, "truncation to %zu of %zu bytes was accepted\n", len, n);
        }
    }
    printf("damage: %d of %d damaged files rejected\n", tried - missed, tried);
    CHECK(missed == 0);
    free(buf);
    free(good);
}

int main(void)
{
    mipr_error err = {0};
    CHECK_OK(mipr_load(&src_model, &src_tok, mipr_test_data(MODEL), mipr_test_data(TOK), &err),
             &err);
    src_logits = prompt_logits(src_model);
    char *json = mipr_test_read_file(mipr_test_data("oracles/oracles.json"), NULL);
    test_f32_oracle(json);
    test_pool_damage();
    test_f16_lossless(json);
    test_streaming_and_raw();
    test_quantized();
    test_sections();
    test_damage();
    free(json);
    free(src_logits);
    mipr_tokenizer_free(src_tok);
    mipr_model_free(src_model);
    return mipr_test_finish("mpk");
}
