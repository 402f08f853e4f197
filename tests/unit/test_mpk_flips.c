/* mipr verify's promise: every single-byte change of an .mpk is detected. A tiny model
 * (stories260K's tokenizer, one layer of width 16) is packed raw and zstd-compressed, with
 * META and an unknown optional section; every byte of each file is changed (xor 0x01, and
 * 0xFF too in the raw file) and mipr_mpk_inspect, which verify runs, must refuse each change
 * and name the file. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static void matrix(mipr_model *m, mipr_tensor *t, uint32_t rows, uint32_t cols, float value)
{
    float *p = mipr_model_alloc(m, (size_t)rows * cols * sizeof *p);
    for (size_t i = 0; p && i < (size_t)rows * cols; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        float r = (float)(rng >> 40) * 0x1.0p-24f * 2.0f - 1.0f;
        p[i] = value != 0.0f ? value : r / sqrtf((float)cols);
    }
    *t = (mipr_tensor){.type = MIPR_DT_F32, .rows = rows, .cols = cols, .data = p};
}

static mipr_model *tiny_model(uint32_t vocab)
{
    mipr_error err = {0};
    mipr_model *m;
    const uint32_t dim = 16, ff = 32;
    CHECK_OK(mipr_model_new(&m, 1, &err), &err);
    m->hp = (mipr_hparams){.dim = dim, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2,
                           .head_size = 8, .n_rot = 8, .vocab_size = vocab, .seq_len = 32,
                           .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    strcpy(m->name, "tiny");
    matrix(m, &m->tok_embd, vocab, dim, 0.0f);
    matrix(m, &m->output_norm, 1, dim, 1.0f);
    m->output = m->tok_embd;
    m->tied_output = 1;
    mipr_layer *L = &m->layers[0];
    L->d_ff = ff;
    matrix(m, &L->attn_norm, 1, dim, 1.0f);
    matrix(m, &L->ffn_norm, 1, dim, 1.0f);
    matrix(m, &L->wq, dim, dim, 0.0f);
    matrix(m, &L->wk, dim, dim, 0.0f);
    matrix(m, &L->wv, dim, dim, 0.0f);
    matrix(m, &L->wo, dim, dim, 0.0f);
    matrix(m, &L->ffn_gate, ff, dim, 0.0f);
    matrix(m, &L->ffn_up, ff, dim, 0.0f);
    matrix(m, &L->ffn_down, dim, ff, 0.0f);
    CHECK_OK(mipr_model_validate(m, "tiny", &err), &err);
    return m;
}

static int refused(const uint8_t *buf, size_t n)
{
    mipr_mpk_info info;
    mipr_error err = {0};
    mipr_status st = mipr_mpk_inspect(buf, n, "flipped.mpk", &info, &err);
    if (st == MIPR_OK) {
        mipr_mpk_info_free(&info);
        return 0;
    }
    return strstr(err.msg, "flipped.mpk") != NULL;
}

static void flip_every_byte(const mipr_model *m, const mipr_tokenizer *t, int raw)
{
    const char *path = mipr_test_tmp(raw ? "flips_raw.mpk" : "flips_zstd.mpk");
    static const uint8_t extra_data[] = "an optional section this reader does not know";
    mipr_mpk_extra extra = {.tag = {'X', 'T', 'R', 'A'}, .data = extra_data, .size = sizeof extra_data};
    mipr_mpk_write_opts o = {.type = MIPR_DT_Q8_0, .raw = raw, .planes = -1,
                             .chunk_bytes = 4096, .meta = "producer=test\nsource=tiny\n",
                             .extra = &extra, .n_extra = 1};
    mipr_error err = {0};
    CHECK_OK(mipr_mpk_write(path, m, t, &o, &err), &err);
    size_t n;
    uint8_t *good = (uint8_t *)mipr_test_read_file(path, &n);
    uint8_t *buf = malloc(n);
    CHECK(good && buf && !refused(good, n));
    static const uint8_t masks[] = {0x01, 0xFF};
    size_t tried = 0, missed = 0;
    for (size_t at = 0; good && buf && at < n; at++)
        for (size_t k = 0; k < (raw ? sizeof masks : 1); k++) { /* ~50 s under ASan */
            memcpy(buf, good, n);
            buf[at] ^= masks[k];
            tried++;
            if (!refused(buf, n) && missed++ < 10)
                fprintf(stderr, "%s: xor 0x%02x at byte %zu of %zu was accepted\n", path,
                        masks[k], at, n);
        }
    printf("%s: %zu bytes, %zu of %zu single-byte changes refused\n", raw ? "raw" : "zstd", n,
           tried - missed, tried);
    CHECK(missed == 0);
    free(buf);
    free(good);
}

int main(void)
{
    mipr_error err = {0};
    size_t len;
    char *bytes = mipr_test_read_file(mipr_test_data("stories260K/tok512.bin"), &len);
    mipr_tokenizer *t = NULL;
    CHECK(bytes != NULL);
    CHECK_OK(mipr_llama2c_read_tokenizer(&t, bytes, len, "tok512.bin", 512, &err), &err);
    mipr_model *m = tiny_model(512);
    flip_every_byte(m, t, 1);
    flip_every_byte(m, t, 0);
    mipr_model_free(m);
    mipr_tokenizer_free(t);
    free(bytes);
    return mipr_test_finish("mpk_flips");
}
