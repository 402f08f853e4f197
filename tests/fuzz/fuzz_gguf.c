/* GGUF: the header parser (every accessor over what it accepted), then the model and
 * tokenizer loaders, then the engine over a model that validated. */
#include <string.h>

#include "fuzz.h"
#include "gguf_internal.h"

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
    mipr_tokenizer_free(t);
    mipr_model_free(m);
    mipr_gguf_close(g);
    return 0;
}
