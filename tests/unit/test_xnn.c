/* The XNNPACK prefill backend against our own kernels: prefill logits agree within a stated
 * tolerance (they cannot agree bit for bit: XNNPACK sums each dot product in another order),
 * greedy stories260K text is the same, and the selection API reports its errors. A build
 * without XNNPACK checks that asking for it fails with MIPR_ERR_UNSUPPORTED.
 *
 * Tolerance: |logit_xnnpack - logit_ours| <= 1e-4 * (1 + max |logit_ours|) over every
 * position and vocabulary entry. Measured (AVX2 and generic tables, 1 and 2 threads): ~1e-6
 * relative: 1.4e-5..1.6e-5 on stories260K (logits up to 18), 2.2e-6 on the random model
 * (logits up to 2.5), i.e. ~100x inside the bound. */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "mipr_xnnpack.h"
#include "testutil.h"

#define TOL 1e-4

static const mipr_tokenizer *collect_tok;

/* The generated text, as the CLI would print it. */
static int collect(void *ctx, int32_t prev, int32_t token)
{
    char *text = ctx;
    size_t len, have = strlen(text);
    const char *s = mipr_tokenizer_decode(collect_tok, prev, token, &len);
    if (have + len < 4096) {
        memcpy(text + have, s, len);
        text[have + len] = 0;
    }
    return 0;
}

/* An engine with the backend, on pool (may be NULL). */
static mipr_engine *engine(const mipr_model *m, mipr_backend b, mipr_pool *pool, uint32_t batch)
{
    mipr_error err = {0};
    mipr_engine *e;
    CHECK_OK(mipr_engine_new(&e, m, 0, batch, &err), &err);
    CHECK_OK(mipr_engine_set_backend(e, b, mipr_xnnpack_provider(), &err), &err);
    mipr_engine_set_pool(e, pool);
    return e;
}

/* All logits of ids (n of them) with backend b, in batches of 64. */
static float *logits_of(const mipr_model *m, mipr_backend b, mipr_pool *pool, const int32_t *ids,
                        uint32_t n)
{
    mipr_error err = {0};
    mipr_engine *e = engine(m, b, pool, 64);
    CHECK(mipr_engine_uses_provider(e) == (b == MIPR_BACKEND_XNNPACK));
    float *out = malloc((size_t)n * m->hp.vocab_size * sizeof *out);
    CHECK_OK(mipr_engine_forward(e, ids, n, 0, out, 1, &err), &err);
    mipr_engine_free(e);
    return out;
}

static void compare_logits(const mipr_model *m, mipr_pool *pool, uint32_t n)
{
    int32_t *ids = malloc(n * sizeof *ids);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = i == 0 ? 1 : (int32_t)((i * 7919u) % (m->hp.vocab_size - 3)) + 3;
    float *a = logits_of(m, MIPR_BACKEND_OURS, pool, ids, n);
    float *b = logits_of(m, MIPR_BACKEND_XNNPACK, pool, ids, n);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < (size_t)n * m->hp.vocab_size; i++) {
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    printf("%s, %u thread(s): max |logit diff| %.3g (max |logit| %.3g)\n", m->name,
           mipr_pool_threads(pool), diff, scale);
    CHECK(diff <= TOL * (1.0 + scale));
    CHECK(scale > 0.1); /* the comparison saw real logits */
    free(ids), free(a), free(b);
}

static void greedy_text(const mipr_model *m, const mipr_tokenizer *tok, mipr_backend b,
                        char *text)
{
    mipr_error err = {0};
    mipr_engine *e = engine(m, b, NULL, 0);
    mipr_sampler s;
    CHECK_OK(mipr_sampler_init(&s, m->hp.vocab_size, 0.0f, 0.9f, 1, &err), &err);
    const char *prompt = "Once upon a time, there was a little girl named Lily. She";
    int32_t ids[128];
    uint32_t n = (uint32_t)mipr_tokenizer_encode(tok, prompt, strlen(prompt), 1, ids);
    text[0] = 0;
    collect_tok = tok;
    CHECK_OK(mipr_generate(e, &s, tok, ids, n, 256, collect, text, NULL, NULL, &err), &err);
    mipr_sampler_free(&s);
    mipr_engine_free(e);
}

static void test_stories(mipr_pool *pool2)
{
    mipr_error err = {0};
    mipr_model *m;
    mipr_tokenizer *tok;
    CHECK_OK(mipr_load(&m, &tok, mipr_test_data("stories260K/stories260K.bin"),
                       mipr_test_data("stories260K/tok512.bin"), &err), &err);
    compare_logits(m, NULL, 150);
    compare_logits(m, pool2, 150);
    static char a[4096], b[4096];
    greedy_text(m, tok, MIPR_BACKEND_OURS, a);
    greedy_text(m, tok, MIPR_BACKEND_XNNPACK, b);
    CHECK(strlen(a) > 100);
    CHECK(strcmp(a, b) == 0);
    mipr_tokenizer_free(tok);
    mipr_model_free(m);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float *random_matrix(mipr_model *m, mipr_tensor *t, uint32_t rows, uint32_t cols,
                            float value)
{
    float *p = mipr_model_alloc(m, (size_t)rows * cols * sizeof *p);
    for (size_t i = 0; p && i < (size_t)rows * cols; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        float r = (float)(rng >> 40) * 0x1.0p-24f * 2.0f - 1.0f;
        p[i] = value != 0.0f ? value : r / sqrtf((float)cols);
    }
    *t = (mipr_tensor){.type = MIPR_DT_F32, .rows = rows, .cols = cols, .data = p};
    return p;
}

/* A random model wider than stories260K (dim 256, d_ff 704 and 640, GQA, untied output). */
static mipr_model *random_model(void)
{
    mipr_error err = {0};
    mipr_model *m;
    const uint32_t dim = 256, kv = 128, vocab = 1000, ff[2] = {704, 640};
    CHECK_OK(mipr_model_new(&m, 2, &err), &err);
    m->hp = (mipr_hparams){.dim = dim, .n_layers = 2, .n_heads = 8, .n_kv_heads = 4, .head_size = 32,
                           .n_rot = 32, .vocab_size = vocab, .seq_len = 256, .norm_eps = 1e-5f,
                           .rope_theta = 10000.0f};
    strcpy(m->name, "random-256");
    random_matrix(m, &m->tok_embd, vocab, dim, 0.0f);
    random_matrix(m, &m->output_norm, 1, dim, 1.0f);
    random_matrix(m, &m->output, vocab, dim, 0.0f);
    for (uint32_t l = 0; l < 2; l++) {
        mipr_layer *L = &m->layers[l];
        L->d_ff = ff[l];
        random_matrix(m, &L->attn_norm, 1, dim, 1.0f);
        random_matrix(m, &L->ffn_norm, 1, dim, 1.0f);
        random_matrix(m, &L->wq, dim, dim, 0.0f);
        random_matrix(m, &L->wk, kv, dim, 0.0f);
        random_matrix(m, &L->wv, kv, dim, 0.0f);
        random_matrix(m, &L->wo, dim, dim, 0.0f);
        random_matrix(m, &L->ffn_gate, ff[l], dim, 0.0f);
        random_matrix(m, &L->ffn_up, ff[l], dim, 0.0f);
        random_matrix(m, &L->ffn_down, dim, ff[l], 0.0f);
    }
    CHECK_OK(mipr_model_validate(m, "random-256", &err), &err);
    return m;
}

static void test_random(mipr_pool *pool2)
{
    mipr_model *m = random_model();
    compare_logits(m, NULL, 100);
    compare_logits(m, pool2, 100);
    mipr_model_free(m);
}

static void test_names(void)
{
    mipr_error err = {0};
    mipr_backend b = MIPR_BACKEND_OURS;
    for (int i = 0; i <= MIPR_BACKEND_AUTO; i++) {
        CHECK(mipr_backend_parse(mipr_backend_name((mipr_backend)i), &b, &err) == MIPR_OK);
        CHECK(b == (mipr_backend)i);
    }
    CHECK(mipr_backend_parse("xnn", &b, &err) == MIPR_ERR_ARG);
    CHECK(strstr(err.msg, "'xnn'") != NULL);
    CHECK(mipr_backend_parse(NULL, &b, &err) == MIPR_ERR_ARG);
}

/* Selection on a live engine: errors, what AUTO picks, and OURS dropping the copy. */
static void test_selection(void)
{
    mipr_error err = {0};
    mipr_model *m = random_model();
    mipr_engine *e;
    const mipr_prefill_provider *xnn = mipr_xnnpack_provider();
    CHECK_OK(mipr_engine_new(&e, m, 64, 16, &err), &err);
    CHECK(mipr_engine_backend(e) == MIPR_BACKEND_OURS && !mipr_engine_uses_provider(e));
    CHECK(mipr_engine_set_backend(e, (mipr_backend)7, xnn, &err) == MIPR_ERR_ARG);
    /* without a provider: XNNPACK refused naming the library, AUTO is ours */
    CHECK(mipr_engine_set_backend(e, MIPR_BACKEND_XNNPACK, NULL, &err) == MIPR_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "mipr_xnnpack_provider") != NULL);
    CHECK_OK(mipr_engine_set_backend(e, MIPR_BACKEND_AUTO, NULL, &err), &err);
    CHECK(!mipr_engine_uses_provider(e));
    CHECK_OK(mipr_engine_set_backend(e, MIPR_BACKEND_AUTO, xnn, &err), &err);
    CHECK(mipr_engine_backend(e) == MIPR_BACKEND_AUTO);
    int generic = !strcmp(mipr_kernels()->isa, "generic");
    if (mipr_xnnpack_available()) {
        CHECK(mipr_engine_uses_provider(e) == generic); /* the measured rule */
        CHECK_OK(mipr_engine_set_backend(e, MIPR_BACKEND_XNNPACK, xnn, &err), &err);
        CHECK(mipr_engine_uses_provider(e));
        CHECK_OK(mipr_engine_set_backend(e, MIPR_BACKEND_OURS, xnn, &err), &err);
        CHECK(!mipr_engine_uses_provider(e));
    } else {
        CHECK(!mipr_engine_uses_provider(e));
        CHECK(mipr_engine_set_backend(e, MIPR_BACKEND_XNNPACK, xnn, &err) == MIPR_ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "XNNPACK") != NULL);
        CHECK(mipr_engine_backend(e) == MIPR_BACKEND_AUTO); /* unchanged by the failure */
        printf("without XNNPACK: %s\n", err.msg);
    }
    mipr_engine_free(e);
    mipr_model_free(m);
}

int main(void)
{
    test_names();
    test_selection();
    if (mipr_xnnpack_available()) {
        mipr_error err = {0};
        mipr_pool *pool2;
        CHECK_OK(mipr_pool_new(&pool2, 2, &err), &err);
        test_stories(pool2);
        test_random(pool2);
        mipr_pool_free(pool2);
    }
    printf("kernels: %s\n", mipr_kernels()->isa);
    return mipr_test_finish("xnn");
}
