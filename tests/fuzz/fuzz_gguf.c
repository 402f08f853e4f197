/* GGUF: the header parser (every accessor over what it accepted), then the model and
 * tokenizer loaders, then the engine over a model that validated. */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "gguf_internal.h"
#include "testutil.h"

#define NAME "fuzz.gguf"

static void walk_metadata(const mipr_gguf *g)
{
    char text[256];
    for (uint64_t i = 0; i < mipr_gguf_n_kv(g); i++) {
        mipr_gguf_format_value(g, i, text, sizeof text);
        mipr_gguf_str key = mipr_gguf_key(g, i);
        if (key.len < sizeof text && !memchr(key.ptr, 0, (size_t)key.len)) {
            memcpy(text, key.ptr, (size_t)key.len);
            text[key.len] = 0;
            if (mipr_gguf_find(g, text) < 0)
                fuzz_fail("a key that was read is not found", text);
        }
        enum mipr_gguf_vtype et;
        uint64_t n;
        if (!mipr_gguf_get_arr(g, i, &et, &n))
            continue;
        for (uint64_t j = n > 8 ? n - 8 : 0; j < n; j++) { /* the end: past every stride */
            int64_t iv;
            double fv;
            mipr_gguf_str sv;
            mipr_gguf_arr_i64(g, i, j, &iv);
            mipr_gguf_arr_f64(g, i, j, &fv);
            if (mipr_gguf_arr_str(g, i, j, &sv) && sv.len)
                (void)*(volatile const char *)(sv.ptr + sv.len - 1);
        }
    }
}

static void walk_tensors(const mipr_gguf *g)
{
    for (uint64_t i = 0; i < mipr_gguf_n_tensors(g); i++) {
        const mipr_gguf_tensor_info *t = mipr_gguf_tensor(g, i);
        char name[MIPR_GGUF_MAX_NAME + 1];
        memcpy(name, t->name.ptr, (size_t)t->name.len);
        name[t->name.len] = 0;
        if (!memchr(name, 0, (size_t)t->name.len) && mipr_gguf_find_tensor(g, name) != t)
            fuzz_fail("a tensor that was read is not found", name);
        if (t->data && t->nbytes) /* the extent lies inside the input */
            (void)*((volatile const uint8_t *)t->data + t->nbytes - 1);
    }
}

/* The NaN/Inf mutator: a model that loaded gets one planted non-finite weight (chosen from
 * the input's bytes), as a corrupted or badly exported file would hold. It must still run
 * without undefined behaviour (the quantizers' non-finite rules), and a conversion that has
 * to go through floats must refuse it naming a tensor. */
static uint32_t hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void plant(mipr_model *m, uint32_t h)
{
    static const float bad[] = {NAN, INFINITY, -INFINITY, 3e38f};
    mipr_layer *L = &m->layers[h % m->hp.n_layers];
    mipr_tensor *slots[] = {&L->wq, &L->wo, &L->ffn_up, &L->ffn_down, &L->attn_norm, &L->ffn_norm};
    mipr_tensor *t = slots[(h >> 8) % 6];
    size_t n = (size_t)t->rows * t->cols, at = (h >> 11) % (n ? n : 1);
    float v = bad[(h >> 3) % 4];
    if (!t->data || !n)
        return;
    if (t->type == MIPR_DT_F32) {
        memcpy((float *)(uintptr_t)t->data + at, &v, sizeof v);
    } else if (t->type == MIPR_DT_Q8_0 || t->type == MIPR_DT_Q4_0) { /* a block's f16 scale */
        size_t bb = t->type == MIPR_DT_Q8_0 ? sizeof(mipr_block_q8_0) : sizeof(mipr_block_q4_0);
        uint16_t d = v != v ? 0x7e00 : v > 0 ? 0x7c00 : 0xfc00;
        memcpy((uint8_t *)(uintptr_t)t->data + at / 32 * bb, &d, 2);
    } else { /* f16, bf16 */
        uint16_t d = t->type == MIPR_DT_F16 ? (v != v ? 0x7e00 : 0x7c00) : (v != v ? 0x7fc0 : 0x7f80);
        memcpy((uint16_t *)(uintptr_t)t->data + at, &d, 2);
    }
}

static void write_planted(const mipr_model *m, const mipr_tokenizer *t)
{
    static const enum mipr_dtype to[] = {MIPR_DT_Q8_0, MIPR_DT_Q4_0, MIPR_DT_F16};
    mipr_outfile o;
    mipr_error err = {0};
    mipr_gguf_write_opts wo = {.type = to[m->layers[0].d_ff % 3]};
    if (mipr_outfile_open(&o, mipr_test_tmp("fuzz_planted.gguf"), &err) != MIPR_OK)
        return;
    mipr_status st = mipr_gguf_write_to(&o, m, t, &wo, &err);
    if (st != MIPR_OK && st != MIPR_ERR_NOMEM && st != MIPR_ERR_IO && !strstr(err.msg, "tensor"))
        fuzz_fail("a planted non-finite weight is refused without naming a tensor", err.msg);
    mipr_outfile_abort(&o); /* nothing is kept, and no fsync */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mipr_gguf *g = NULL;
    mipr_error err = {0};
    mipr_status st = mipr_gguf_open_memory(&g, data, size, NAME, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st != MIPR_OK)
        return 0;
    walk_metadata(g);
    walk_tensors(g);
    mipr_model *m = NULL;
    mipr_tokenizer *t = NULL;
    st = mipr_gguf_load_model(&m, g, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st == MIPR_OK)
        fuzz_run_model(m);
    st = mipr_gguf_load_tokenizer(&t, g, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st == MIPR_OK)
        fuzz_use_tokenizer(t);
    if (m && t && mipr_tokenizer_n_vocab(t) == m->hp.vocab_size) {
        plant(m, hash(data, size));
        fuzz_run_model(m);
        write_planted(m, t);
    }
    mipr_tokenizer_free(t);
    mipr_model_free(m);
    mipr_gguf_close(g);
    return 0;
}
