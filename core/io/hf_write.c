/* mipr_model → a Hugging Face folder (config.json, model.safetensors, tokenizer files), for
 * users of the transformers ecosystem. The folder is built beside the target under a
 * temporary name and renamed into place only when every file is written and synced, so a
 * failure or interrupt never leaves a partial folder at the target. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "hf.h"
#include "safetensors.h"

/* Files copied from the source folder when present (the tokenizer and generation defaults). */
static const char *const copied[] = {"tokenizer.json", "tokenizer_config.json",
                                     "special_tokens_map.json", "generation_config.json",
                                     "tokenizer.model"};

typedef struct hf_writer {
    const mipr_model *m;
    const char *src;
    char *tmp;         /* the temporary folder */
    enum mipr_dtype type;
    int permute_qk;
    mipr_error *err;
} hf_writer;

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

mipr_status mipr_hf_write_check(const char *out_dir, const char *src_dir, mipr_error *err)
{
    struct stat s;
    if (!mipr_hf_is_dir(src_dir) || mipr_detect_file(src_dir, err) != MIPR_FILE_HF)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: Hugging Face output needs a Hugging Face "
                              "folder as input (its config.json and tokenizer files are carried "
                              "over); write GGUF instead", src_dir);
    if (stat(out_dir, &s) == 0 && !(S_ISDIR(s.st_mode) && dir_empty(out_dir)))
        return mipr_error_set(err, MIPR_ERR_ARG, "%s already exists%s; mipr writes a new folder "
                              "(remove it or choose another name)", out_dir,
                              S_ISDIR(s.st_mode) ? " and is not empty" : " as a file");
    return MIPR_OK;
}

static mipr_status io_error(hf_writer *w, const char *path)
{
    return mipr_error_set(w->err, MIPR_ERR_IO, "%s: cannot write (%s)", path, strerror(errno));
}

/* Writes n bytes to a new file in the temporary folder, synced. */
static mipr_status put_file(hf_writer *w, const char *name,
                            mipr_status (*fill)(hf_writer *, FILE *, const void *),
                            const void *ctx)
{
    char *path = mipr_hf_path(w->tmp, name);
    if (!path)
        return mipr_error_set(w->err, MIPR_ERR_NOMEM, "out of memory");
    FILE *f = fopen(path, "wb");
    mipr_status st = f ? fill(w, f, ctx) : io_error(w, path);
    if (f) {
        int bad = ferror(f) | fflush(f) | fsync(fileno(f));
        if (fclose(f) || (bad && st == MIPR_OK))
            st = st ? st : io_error(w, path);
    }
    free(path);
    return st;
}

/* ---- config.json -------------------------------------------------------------------------- */

static const char *torch_dtype(enum mipr_dtype t)
{
    return t == MIPR_DT_F16 ? "float16" : t == MIPR_DT_BF16 ? "bfloat16" : "float32";
}

static void set_item(cJSON *root, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(root, key))
        cJSON_ReplaceItemInObjectCaseSensitive(root, key, v);
    else
        cJSON_AddItemToObject(root, key, v);
}

static mipr_status fill_config(hf_writer *w, FILE *f, const void *ctx)
{
    const char *path = ctx;
    mipr_mapped_file in;
    mipr_status st = mipr_file_map(&in, path, w->err);
    if (st)
        return st;
    cJSON *root = cJSON_ParseWithLength((const char *)in.data, in.size);
    mipr_file_unmap(&in);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mipr_error_set(w->err, MIPR_ERR_FORMAT, "%s: not a JSON object", path);
    }
    set_item(root, "intermediate_size", cJSON_CreateNumber(w->m->layers[0].d_ff));
    set_item(root, "torch_dtype", cJSON_CreateString(torch_dtype(w->type)));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return mipr_error_set(w->err, MIPR_ERR_NOMEM, "out of memory");
    fputs(text, f);
    fputc('\n', f);
    cJSON_free(text);
    return MIPR_OK;
}

/* ---- model.safetensors -------------------------------------------------------------------- */

typedef struct out_tensor {
    char name[96];
    const mipr_tensor *t;
    int qk; /* rows go back from interleaved pairs to rotate-half */
} out_tensor;

static size_t list_tensors(const hf_writer *w, out_tensor *o)
{
    const mipr_model *m = w->m;
    size_t n = 0;
#define ADD(T, QK, ...) (snprintf(o[n].name, sizeof o[n].name, __VA_ARGS__), o[n].t = (T), \
                         o[n].qk = (QK) && w->permute_qk, n++)
    ADD(&m->tok_embd, 0, "model.embed_tokens.weight");
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        const mipr_layer *y = &m->layers[l];
        ADD(&y->attn_norm, 0, "model.layers.%u.input_layernorm.weight", l);
        ADD(&y->wq, 1, "model.layers.%u.self_attn.q_proj.weight", l);
        ADD(&y->wk, 1, "model.layers.%u.self_attn.k_proj.weight", l);
        ADD(&y->wv, 0, "model.layers.%u.self_attn.v_proj.weight", l);
        ADD(&y->wo, 0, "model.layers.%u.self_attn.o_proj.weight", l);
        if (y->bq.data) {
            ADD(&y->bq, 0, "model.layers.%u.self_attn.q_proj.bias", l);
            ADD(&y->bk, 0, "model.layers.%u.self_attn.k_proj.bias", l);
            ADD(&y->bv, 0, "model.layers.%u.self_attn.v_proj.bias", l);
        }
        ADD(&y->ffn_norm, 0, "model.layers.%u.post_attention_layernorm.weight", l);
        ADD(&y->ffn_gate, 0, "model.layers.%u.mlp.gate_proj.weight", l);
        ADD(&y->ffn_up, 0, "model.layers.%u.mlp.up_proj.weight", l);
        ADD(&y->ffn_down, 0, "model.layers.%u.mlp.down_proj.weight", l);
    }
    ADD(&m->output_norm, 0, "model.norm.weight");
    if (!m->tied_output)
        ADD(&m->output, 0, "lm_head.weight");
#undef ADD
    return n;
}

/* One row of t in the output type. */
static void put_row(const hf_writer *w, const mipr_tensor *t, uint32_t r, float *f32,
                    uint16_t *h, FILE *f)
{
    mipr_kernels()->row_to_f32[t->type](f32, t->data, r, t->cols);
    if (w->type == MIPR_DT_F32) {
        fwrite(f32, sizeof *f32, t->cols, f);
        return;
    }
    for (uint32_t c = 0; c < t->cols; c++)
        h[c] = w->type == MIPR_DT_F16 ? mipr_f32_to_f16(f32[c]) : mipr_f32_to_bf16(f32[c]);
    fwrite(h, sizeof *h, t->cols, f);
}

static mipr_status fill_weights(hf_writer *w, FILE *f, const void *ctx)
{
    const out_tensor *o = ctx;
    size_t n = 0;
    while (o[n].t)
        n++;
    mipr_st_out *desc = calloc(n, sizeof *desc);
    uint64_t *off = calloc(n, sizeof *off);
    uint32_t maxc = 0;
    for (size_t i = 0; desc && i < n; i++) {
        const mipr_tensor *t = o[i].t;
        int vec = t->rows == 1 && strstr(o[i].name, "proj.weight") == NULL;
        desc[i] = (mipr_st_out){o[i].name, w->type, vec ? 1u : 2u,
                                {vec ? t->cols : t->rows, t->cols}};
        maxc = t->cols > maxc ? t->cols : maxc;
    }
    size_t hlen = 0;
    char *header = desc && off ? mipr_st_header(desc, n, &hlen, off) : NULL;
    float *f32 = malloc((size_t)maxc * sizeof *f32);
    uint16_t *h = malloc((size_t)maxc * sizeof *h);
    mipr_status st = MIPR_OK;
    if (!header || !f32 || !h) {
        st = mipr_error_set(w->err, MIPR_ERR_NOMEM, "out of memory");
    } else {
        uint8_t len[8];
        for (int i = 0; i < 8; i++)
            len[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        fwrite(len, 1, 8, f);
        fwrite(header, 1, hlen, f);
        for (size_t i = 0; i < n; i++) {
            const mipr_tensor *t = o[i].t;
            uint32_t hs = w->m->hp.head_size;
            for (uint32_t r = 0; r < t->rows; r++) /* rotate-half row r holds interleaved src */
                put_row(w, t, o[i].qk ? (r / hs) * hs + 2 * (r % hs % (hs / 2)) +
                                        (r % hs) / (hs / 2) : r, f32, h, f);
        }
    }
    free(desc);
    free(off);
    free(header);
    free(f32);
    free(h);
    return st;
}

/* ---- copies and the folder ---------------------------------------------------------------- */

static mipr_status fill_copy(hf_writer *w, FILE *f, const void *ctx)
{
    mipr_mapped_file in;
    mipr_status st = mipr_file_map(&in, ctx, w->err);
    if (st)
        return st;
    if (in.size)
        fwrite(in.data, 1, in.size, f);
    mipr_file_unmap(&in);
    return MIPR_OK;
}

static mipr_status write_all(hf_writer *w)
{
    char *cfg = mipr_hf_path(w->src, "config.json");
    out_tensor *o = calloc(16 + 12 * (size_t)w->m->hp.n_layers, sizeof *o);
    if (!cfg || !o) {
        free(cfg);
        free(o);
        return mipr_error_set(w->err, MIPR_ERR_NOMEM, "out of memory");
    }
    list_tensors(w, o);
    mipr_status st = put_file(w, "config.json", fill_config, cfg);
    if (!st)
        st = put_file(w, "model.safetensors", fill_weights, o);
    for (size_t i = 0; i < sizeof copied / sizeof *copied && !st; i++) {
        char *p = mipr_hf_path(w->src, copied[i]);
        struct stat s;
        if (!p)
            st = mipr_error_set(w->err, MIPR_ERR_NOMEM, "out of memory");
        else if (stat(p, &s) == 0)
            st = put_file(w, copied[i], fill_copy, p);
        free(p);
    }
    free(cfg);
    free(o);
    return st;
}

static void remove_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = mipr_hf_path(tmp, e->d_name);
        if (p)
            remove(p);
        free(p);
    }
    if (d)
        closedir(d);
    rmdir(tmp);
}

static mipr_status check_model(const hf_writer *w, const char *out_dir)
{
    const mipr_model *m = w->m;
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        if (m->layers[l].d_ff != m->layers[0].d_ff)
            return mipr_error_set(w->err, MIPR_ERR_UNSUPPORTED, "%s: layer %u keeps %u FFN "
                                  "neurons but layer 0 keeps %u: a Hugging Face llama config has "
                                  "one intermediate_size; write GGUF (deci) for per-layer "
                                  "widths, or use --allocation uniform", out_dir, l,
                                  m->layers[l].d_ff, m->layers[0].d_ff);
        if (m->layers[l].ffn_down_b.data)
            return mipr_error_set(w->err, MIPR_ERR_UNSUPPORTED, "%s: layer %u has an ffn_down "
                                  "bias (bias compensation), which a Hugging Face llama/qwen2 "
                                  "checkpoint cannot hold: prune with --no-bias, or write GGUF",
                                  out_dir, l);
    }
    if (w->type != MIPR_DT_F32 && w->type != MIPR_DT_F16 && w->type != MIPR_DT_BF16)
        return mipr_error_set(w->err, MIPR_ERR_ARG, "%s: safetensors output is f32, f16 or "
                              "bf16, not %s", out_dir, mipr_dtype_name(w->type));
    return MIPR_OK;
}

mipr_status mipr_hf_write(const char *out_dir, const mipr_model *m, const char *src_dir,
                          enum mipr_dtype type, mipr_error *err)
{
    hf_writer w = {m, src_dir, NULL, type, m->hp.family != MIPR_FAMILY_QWEN2, err};
    mipr_status st = mipr_hf_write_check(out_dir, src_dir, err);
    if (st || (st = check_model(&w, out_dir)))
        return st;
    size_t n = strlen(out_dir);
    while (n > 1 && out_dir[n - 1] == '/')
        n--;
    if (!(w.tmp = malloc(n + sizeof ".mipr-tmp-XXXXXX")))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    memcpy(w.tmp, out_dir, n);
    memcpy(w.tmp + n, ".mipr-tmp-XXXXXX", sizeof ".mipr-tmp-XXXXXX");
    if (!mkdtemp(w.tmp)) {
        st = mipr_error_set(err, MIPR_ERR_IO, "%s: cannot create a temporary folder beside it "
                            "(%s)", out_dir, strerror(errno));
        free(w.tmp);
        return st;
    }
    st = write_all(&w);
    if (!st && rename(w.tmp, out_dir) != 0)
        st = mipr_error_set(err, MIPR_ERR_IO, "%s: cannot move the finished folder into place "
                            "(%s)", out_dir, strerror(errno));
    if (st)
        remove_tmp(w.tmp);
    free(w.tmp);
    return st;
}
