/* Tokenizers through the writers and back: a vocabulary read from GGUF or tokenizer.json,
 * written with a (tiny, zero-weight) model as GGUF and as .mpk, must come back tokenizing the
 * same way, with the same split rules, merges and BOS/EOS rule; and tokenizer.json files
 * of unknown flavours are refused by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* One layer of width 32 around the tokenizer's vocabulary: enough for the writers. */
static mipr_model *tiny_model(uint32_t vocab)
{
    mipr_model *m = NULL;
    mipr_error err = {0};
    CHECK_OK(mipr_model_new(&m, 1, &err), &err);
    const uint32_t d = 32;
    m->hp = (mipr_hparams){.dim = d, .n_layers = 1, .n_heads = 1, .n_kv_heads = 1,
                           .head_size = d, .n_rot = d, .vocab_size = vocab, .seq_len = 16,
                           .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    snprintf(m->name, sizeof m->name, "tok-io");
#define MAT(t, r, c)                                                                        \
    (t) = (mipr_tensor){.type = MIPR_DT_F32, .rows = (r), .cols = (c),                     \
                        .data = mipr_model_alloc(m, (size_t)(r) * (c) * sizeof(float))}
    MAT(m->tok_embd, vocab, d);
    MAT(m->output_norm, 1, d);
    m->output = m->tok_embd;
    m->tied_output = 1;
    mipr_layer *L = &m->layers[0];
    L->d_ff = d;
    MAT(L->attn_norm, 1, d);
    MAT(L->wq, d, d);
    MAT(L->wk, d, d);
    MAT(L->wv, d, d);
    MAT(L->wo, d, d);
    MAT(L->ffn_norm, 1, d);
    MAT(L->ffn_gate, d, d);
    MAT(L->ffn_up, d, d);
    MAT(L->ffn_down, d, d);
#undef MAT
    return m;
}

static const char *TEXTS[] = {
    "Hello world", " Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "3333333 \n\n\t  x", "Once upon a time, there was a little girl named Lily.",
    "<|begin_of_text|>Hi<|end_of_text|>", "нещо на Български", "",
};

/* Same BOS/EOS rule and ids, same ids for TEXTS with every flag combination. */
static void same_tokenizer(const mipr_tokenizer *a, const mipr_tokenizer *b, const char *what)
{
    CHECK(mipr_tokenizer_n_vocab(a) == mipr_tokenizer_n_vocab(b));
    CHECK(mipr_tokenizer_is_bpe(a) == mipr_tokenizer_is_bpe(b));
    CHECK(mipr_tokenizer_pre(a) == mipr_tokenizer_pre(b));
    CHECK(mipr_tokenizer_add_bos(a) == mipr_tokenizer_add_bos(b));
    CHECK(mipr_tokenizer_add_eos(a) == mipr_tokenizer_add_eos(b));
    /* GGUF has no way to say "no BOS": readers then take llama.cpp's default (11). */
    int no_ids = mipr_tokenizer_bos(a) < 0 && mipr_tokenizer_eos(a) < 0;
    CHECK(no_ids || mipr_tokenizer_bos(a) == mipr_tokenizer_bos(b));
    for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
        size_t len = strlen(TEXTS[i]);
        int32_t x[256], y[256];
        for (unsigned f = 0; f < 8; f++) {
            if (no_ids && (f & (MIPR_ENC_BOS | MIPR_ENC_EOS)))
                continue;
            size_t nx = mipr_tokenizer_encode_ex(a, TEXTS[i], len, f, x);
            size_t ny = mipr_tokenizer_encode_ex(b, TEXTS[i], len, f, y);
            if (nx != ny || memcmp(x, y, nx * sizeof *x) != 0) {
                fprintf(stderr, "%s: '%s' (flags %u) encodes differently\n", what, TEXTS[i], f);
                mipr_test_failures++;
            }
        }
    }
}

static void roundtrip(mipr_tokenizer *t, const char *name)
{
    mipr_model *m = tiny_model(mipr_tokenizer_n_vocab(t)), *m2 = NULL;
    mipr_error err = {0};
    mipr_gguf_write_opts go = {.type = MIPR_DT_F32};
    const char *gpath = mipr_test_tmp("tokio.gguf");
    CHECK_OK(mipr_gguf_write(gpath, m, t, &go, &err), &err);
    mipr_gguf *g = NULL;
    mipr_tokenizer *t2 = NULL;
    CHECK_OK(mipr_gguf_open(&g, gpath, &err), &err);
    CHECK_OK(mipr_gguf_load_tokenizer(&t2, g, &err), &err);
    mipr_gguf_close(g);
    char what[64];
    snprintf(what, sizeof what, "%s via GGUF", name);
    /* GGUF cannot hold fuse_unk: it reads back as llama.cpp tokenizes that file */
    int fuse = mipr_tokenizer_fuse_unk(t);
    mipr_tokenizer_set_fuse_unk(t, 0);
    same_tokenizer(t, t2, what);
    mipr_tokenizer_set_fuse_unk(t, fuse);
    CHECK(!mipr_tokenizer_fuse_unk(t2));
    mipr_tokenizer_free(t2);
    remove(gpath);

    const char *mpath = mipr_test_tmp("tokio.mpk");
    mipr_mpk_write_opts mo = {.type = MIPR_DT_F32, .raw = 1};
    CHECK_OK(mipr_mpk_write(mpath, m, t, &mo, &err), &err);
    t2 = NULL;
    CHECK_OK(mipr_mpk_open_file(&m2, &t2, mpath, NULL, &err), &err);
    snprintf(what, sizeof what, "%s via .mpk", name);
    same_tokenizer(t, t2, what);
    CHECK(mipr_tokenizer_n_merges(t2) == mipr_tokenizer_n_merges(t));
    CHECK(mipr_tokenizer_fuse_unk(t2) == mipr_tokenizer_fuse_unk(t));
    mipr_tokenizer_free(t2);
    mipr_model_free(m2);
    remove(mpath);
    mipr_model_free(m);
}

static void test_file(const char *rel)
{
    mipr_tokenizer *t = NULL;
    mipr_error err = {0};
    const char *path = mipr_test_data(rel);
    size_t n = strlen(path);
    if (strcmp(path + n - 5, ".json") == 0) {
        CHECK_OK(mipr_tokenizer_json_load(&t, path, &err), &err);
    } else {
        mipr_gguf *g = NULL;
        CHECK_OK(mipr_gguf_open(&g, path, &err), &err);
        CHECK_OK(mipr_gguf_load_tokenizer(&t, g, &err), &err);
        mipr_gguf_close(g);
    }
    roundtrip(t, rel);
    mipr_tokenizer_free(t);
}

/* The BOS rules: TinyStories' config says add BOS 1; Qwen2.5 says none; Llama 3 adds it. */
static void test_bos_rules(void)
{
    static const struct {
        const char *rel;
        int add_bos, bos;
    } want[] = {
        {"tinystories-656k/tokenizer.json", 1, 1}, /* and fuse_unk, checked below */
        {"vocab/hf/qwen2.5/tokenizer.json", 0, -1},
        {"vocab/hf/llama3/tokenizer.json", 1, 128000},
        {"vocab/hf/smollm2/tokenizer.json", 0, -1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        mipr_tokenizer *t = NULL;
        mipr_error err = {0};
        CHECK_OK(mipr_tokenizer_json_load(&t, mipr_test_data(want[i].rel), &err), &err);
        CHECK(mipr_tokenizer_add_bos(t) == want[i].add_bos);
        CHECK(mipr_tokenizer_bos(t) == want[i].bos);
        CHECK(mipr_tokenizer_fuse_unk(t) == (i == 0));
        mipr_tokenizer_free(t);
    }
}

static void expect_error(const char *json, const char *needle)
{
    mipr_tokenizer *t = NULL;
    mipr_error err = {0};
    mipr_status st = mipr_tokenizer_json_read(&t, json, strlen(json), NULL, 0, "bad.json", &err);
    CHECK(st != MIPR_OK && t == NULL);
    if (!strstr(err.msg, needle) || !strstr(err.msg, "bad.json")) {
        fprintf(stderr, "message '%s' does not name '%s' and the file\n", err.msg, needle);
        mipr_test_failures++;
    }
}

static void test_bad_json(void)
{
    expect_error("{", "not valid JSON");
    expect_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "WordPiece");
    expect_error("{\"model\": {\"type\": \"Unigram\"}}", "Unigram");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                 "\"Split\", \"pattern\": {\"Regex\": \"\\\\p{L}+\"}, \"behavior\": \"Isolated\"},"
                 " {\"type\": \"ByteLevel\", \"use_regex\": false}]},"
                 " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
                 "pre_tokenizer");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"type\": \"BPE\","
                 " \"byte_fallback\": true, \"vocab\": {\"a\": 0}}}", "Whitespace");
    expect_error("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\","
                 " \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}", "model.merges[0]");
    expect_error("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\","
                 " \"vocab\": {\"a\": -4}}}", "model.vocab");
    expect_error("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\","
                 " \"continuing_subword_prefix\": \"##\", \"vocab\": {\"a\": 0}}}",
                 "model.continuing_subword_prefix");
    expect_error("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\","
                 " \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "merge 0");
}

/* A GGUF whose tokenizer.ggml.pre we do not know is refused by name (the written gpt-2 file
 * with its "gpt-2" value patched in place to "gpt-9"). */
static void test_unknown_pre(void)
{
    mipr_gguf *g = NULL;
    mipr_tokenizer *t = NULL;
    mipr_error err = {0};
    CHECK_OK(mipr_gguf_open(&g, mipr_test_data("vocab/llama.cpp/ggml-vocab-gpt-2.gguf"), &err),
             &err);
    CHECK_OK(mipr_gguf_load_tokenizer(&t, g, &err), &err);
    mipr_gguf_close(g);
    mipr_model *m = tiny_model(mipr_tokenizer_n_vocab(t));
    mipr_gguf_write_opts go = {.type = MIPR_DT_F32};
    const char *path = mipr_test_tmp("tokio-pre.gguf");
    CHECK_OK(mipr_gguf_write(path, m, t, &go, &err), &err);
    size_t len;
    char *d = mipr_test_read_file(path, &len);
    static const char key[] = "tokenizer.ggml.pre";
    char *k = NULL;
    for (size_t i = 0; !k && i + sizeof key + 20 < len; i++)
        if (memcmp(d + i, key, sizeof key - 1) == 0)
            k = d + i;
    CHECK(k != NULL);
    char *v = k ? k + (sizeof key - 1) + 4 + 8 : NULL; /* u32 type, u64 length */
    CHECK(v && memcmp(v, "gpt-2", 5) == 0);
    if (v) {
        v[4] = '9';
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(d, 1, len, f) == len && fclose(f) == 0);
        mipr_tokenizer *t2 = NULL;
        CHECK_OK(mipr_gguf_open(&g, path, &err), &err);
        CHECK(mipr_gguf_load_tokenizer(&t2, g, &err) == MIPR_ERR_UNSUPPORTED && !t2);
        CHECK(strstr(err.msg, "tokenizer.ggml.pre \"gpt-9\"") && strstr(err.msg, path));
        mipr_gguf_close(g);
    }
    free(d);
    remove(path);
    mipr_model_free(m);
    mipr_tokenizer_free(t);
}

int main(void)
{
    test_unknown_pre();
    test_bos_rules();
    test_bad_json();
    test_file("tinystories-656k/tokenizer.json");
    test_file("vocab/hf/llama3/tokenizer.json");
    test_file("vocab/hf/smollm2/tokenizer.json");
    test_file("vocab/llama.cpp/ggml-vocab-gpt-2.gguf");
    test_file("vocab/llama.cpp/ggml-vocab-falcon.gguf");
    test_file("vocab/llama.cpp/ggml-vocab-llama-spm.gguf");
    return mipr_test_finish("tokenizer_io");
}
