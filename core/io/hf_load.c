/* A Hugging Face folder → mipr_model (+ tokenizer): config.json for the hyper-parameters,
 * model.safetensors or the shards an index names for the weights (mapped; matrices are used
 * in place unless they must be permuted or are misaligned), tokenizer.json for the
 * tokenizer. Llama-family q/k rows are stored rotate-half; mipr's llama rope rotates
 * interleaved pairs, so their rows are permuted on load exactly as llama.cpp's converter
 * does (qwen2 keeps rotate-half and runs NEOX rope). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "hf.h"
#include "safetensors.h"

#define HF_MAX_SHARDS 4096

typedef struct hf_loader {
    const char *dir;
    mipr_hf_config cfg;
    mipr_st_set set;
    mipr_mapped_file *maps;
    char **paths; /* one per map: tensors' `file` points here */
    size_t n_maps;
    char *weights_what; /* the index or model.safetensors: names the weights in messages */
    mipr_model *m;
    mipr_error *err;
} hf_loader;

char *mipr_hf_path(const char *dir, const char *file)
{
    size_t a = strlen(dir), b = strlen(file);
    int slash = a && dir[a - 1] != '/';
    char *p = malloc(a + slash + b + 1);
    if (p) {
        memcpy(p, dir, a);
        if (slash)
            p[a] = '/';
        memcpy(p + a + slash, file, b + 1);
    }
    return p;
}

int mipr_hf_is_dir(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISDIR(s.st_mode);
}

static int exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

static mipr_status oom(hf_loader *L)
{
    return mipr_error_set(L->err, MIPR_ERR_NOMEM, "out of memory");
}

/* ---- files -------------------------------------------------------------------------------- */

static mipr_status map_shard(hf_loader *L, const char *file)
{
    for (size_t i = 0; i < L->n_maps; i++) /* an index names each shard many times */
        if (strcmp(strrchr(L->paths[i], '/') + 1, file) == 0)
            return MIPR_OK;
    if (L->n_maps == HF_MAX_SHARDS)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: more than %d shards",
                              L->weights_what, HF_MAX_SHARDS);
    if (!*file || strchr(file, '/') || strcmp(file, "..") == 0)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: shard \"%.64s\" is not a file name "
                              "in the folder", L->weights_what, file);
    char *path = mipr_hf_path(L->dir, file);
    mipr_mapped_file *maps = realloc(L->maps, (L->n_maps + 1) * sizeof *maps);
    char **paths = maps ? realloc(L->paths, (L->n_maps + 1) * sizeof *paths) : NULL;
    if (maps)
        L->maps = maps;
    if (paths)
        L->paths = paths;
    if (!path || !maps || !paths) {
        free(path);
        return oom(L);
    }
    if (!exists(path)) {
        mipr_status st = mipr_error_set(L->err, MIPR_ERR_IO, "%s names shard %s, which is "
                                        "missing", L->weights_what, path);
        free(path);
        return st;
    }
    mipr_status st = mipr_file_map(&L->maps[L->n_maps], path, L->err);
    if (st) {
        free(path);
        return st;
    }
    L->paths[L->n_maps++] = path;
    return mipr_st_add(&L->set, L->maps[L->n_maps - 1].data, L->maps[L->n_maps - 1].size, path,
                       L->err);
}

/* weight_map of the index: every shard it names, and every tensor found where it says. */
static mipr_status read_index(hf_loader *L, const char *path)
{
    mipr_mapped_file f;
    mipr_status st = mipr_file_map(&f, path, L->err);
    if (st)
        return st;
    cJSON *root = cJSON_ParseWithLength((const char *)f.data, f.size);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm))
        st = mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: not JSON with a weight_map object",
                            path);
    for (const cJSON *e = wm ? wm->child : NULL; e && !st; e = e->next)
        st = cJSON_IsString(e) ? map_shard(L, e->valuestring)
                               : mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: weight_map[%.64s]"
                                                " is not a file name", path, e->string);
    for (const cJSON *e = wm ? wm->child : NULL; e && !st; e = e->next) {
        const mipr_st_tensor *t = mipr_st_find(&L->set, e->string);
        const char *base = t ? strrchr(t->file, '/') + 1 : NULL;
        if (!t || strcmp(base, e->valuestring) != 0)
            st = mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %.64s is not in %s%s%s",
                                path, e->string, e->valuestring, t ? " but in " : "",
                                t ? base : "");
    }
    cJSON_Delete(root);
    mipr_file_unmap(&f);
    return st;
}

static mipr_status read_weights(hf_loader *L)
{
    char *single = mipr_hf_path(L->dir, "model.safetensors");
    char *index = mipr_hf_path(L->dir, "model.safetensors.index.json");
    mipr_status st = MIPR_OK;
    if (!single || !index)
        st = oom(L);
    else if (exists(single)) {
        L->weights_what = single, single = NULL;
        st = map_shard(L, "model.safetensors");
    } else if (exists(index)) {
        L->weights_what = index, index = NULL;
        st = read_index(L, L->weights_what);
    } else {
        st = mipr_error_set(L->err, MIPR_ERR_IO, "%s: Hugging Face folder without weights: "
                            "neither model.safetensors nor model.safetensors.index.json",
                            L->dir);
    }
    free(single);
    free(index);
    return st;
}

static mipr_status read_config(hf_loader *L)
{
    char *path = mipr_hf_path(L->dir, "config.json");
    if (!path)
        return oom(L);
    mipr_mapped_file f;
    mipr_status st = exists(path) ? mipr_file_map(&f, path, L->err)
                                  : mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: a folder, but "
                                                   "not a Hugging Face model folder: it has no "
                                                   "config.json", L->dir);
    if (st == MIPR_OK) {
        st = mipr_hf_config_parse(&L->cfg, (const char *)f.data, f.size, path, L->err);
        mipr_file_unmap(&f);
    }
    free(path);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------------ */

static void to_f32(float *out, const mipr_st_tensor *t, uint64_t n)
{
    const uint8_t *p = t->data;
    for (uint64_t i = 0; i < n; i++) {
        uint16_t h;
        if (t->type == MIPR_DT_F32) {
            memcpy(&out[i], p + 4 * i, 4);
            continue;
        }
        memcpy(&h, p + 2 * i, 2);
        out[i] = t->type == MIPR_DT_F16 ? mipr_f16_to_f32(h) : mipr_bf16_to_f32(h);
    }
}

static mipr_status find_shaped(hf_loader *L, const char *name, uint32_t rows, uint32_t cols,
                               const mipr_st_tensor **out)
{
    const mipr_st_tensor *t = mipr_st_find(&L->set, name);
    if (!t)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %s is missing",
                              L->weights_what, name);
    int ok = rows ? t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols
                  : t->n_dims == 1 && t->shape[0] == cols;
    if (!ok) {
        char got[96] = "[", *p = got + 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            p += snprintf(p, (size_t)(got + sizeof got - p), "%s%llu", d ? ", " : "",
                          (unsigned long long)t->shape[d]);
        snprintf(p, (size_t)(got + sizeof got - p), "]");
        if (rows)
            return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %s has shape %s but "
                                  "config.json gives [%u, %u]", t->file, name, got, rows, cols);
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %s has shape %s but "
                              "config.json gives [%u]", t->file, name, got, cols);
    }
    *out = t;
    return MIPR_OK;
}

/* A vector (norm weight, bias) as F32 in the model's memory. */
static mipr_status bind_vector(hf_loader *L, const char *name, uint32_t n, mipr_tensor *out)
{
    const mipr_st_tensor *t;
    mipr_status st = find_shaped(L, name, 0, n, &t);
    if (st)
        return st;
    float *f = mipr_model_alloc(L->m, (size_t)n * sizeof *f);
    if (!f)
        return oom(L);
    to_f32(f, t, n);
    *out = (mipr_tensor){.type = MIPR_DT_F32, .rows = 1, .cols = n, .data = f};
    return MIPR_OK;
}

/* A matrix in its own type; head_size != 0: rows permuted from rotate-half to interleaved
 * pairs per head (a copy). Misaligned data is copied too. */
static mipr_status bind_matrix(hf_loader *L, const char *name, uint32_t rows, uint32_t cols,
                               uint32_t head_size, mipr_tensor *out)
{
    const mipr_st_tensor *t;
    mipr_status st = find_shaped(L, name, rows, cols, &t);
    if (st)
        return st;
    size_t esz = mipr_dtype_row_bytes(t->type, 1), row = esz * cols;
    const uint8_t *data = t->data;
    if (head_size || (uintptr_t)data % esz) {
        uint8_t *copy = mipr_model_alloc(L->m, (size_t)t->nbytes);
        if (!copy)
            return oom(L);
        for (uint32_t r = 0; r < rows; r++)
            memcpy(copy + r * row, data + (head_size ? mipr_hf_qk_src(r, head_size) : r) * row,
                   row);
        data = copy;
    }
    *out = (mipr_tensor){.type = t->type, .rows = rows, .cols = cols, .data = data};
    return MIPR_OK;
}

static mipr_status bind_layer(hf_loader *L, uint32_t l)
{
    const mipr_hparams *hp = &L->m->hp;
    mipr_layer *y = &L->m->layers[l];
    uint32_t kv = hp->n_kv_heads * hp->head_size, ff = L->cfg.d_ff;
    uint32_t perm = L->cfg.permute_qk ? hp->head_size : 0;
    char n[128];
    mipr_status st = MIPR_OK;
    y->d_ff = ff;
#define NAME(s) (snprintf(n, sizeof n, "model.layers.%u.%s", l, s), n)
    if (!st) st = bind_vector(L, NAME("input_layernorm.weight"), hp->dim, &y->attn_norm);
    if (!st) st = bind_matrix(L, NAME("self_attn.q_proj.weight"), hp->dim, hp->dim, perm, &y->wq);
    if (!st) st = bind_matrix(L, NAME("self_attn.k_proj.weight"), kv, hp->dim, perm, &y->wk);
    if (!st) st = bind_matrix(L, NAME("self_attn.v_proj.weight"), kv, hp->dim, 0, &y->wv);
    if (!st) st = bind_matrix(L, NAME("self_attn.o_proj.weight"), hp->dim, hp->dim, 0, &y->wo);
    if (!st) st = bind_vector(L, NAME("post_attention_layernorm.weight"), hp->dim, &y->ffn_norm);
    if (!st) st = bind_matrix(L, NAME("mlp.gate_proj.weight"), ff, hp->dim, 0, &y->ffn_gate);
    if (!st) st = bind_matrix(L, NAME("mlp.up_proj.weight"), ff, hp->dim, 0, &y->ffn_up);
    if (!st) st = bind_matrix(L, NAME("mlp.down_proj.weight"), hp->dim, ff, 0, &y->ffn_down);
    if (L->cfg.qkv_bias) {
        if (!st) st = bind_vector(L, NAME("self_attn.q_proj.bias"), hp->dim, &y->bq);
        if (!st) st = bind_vector(L, NAME("self_attn.k_proj.bias"), kv, &y->bk);
        if (!st) st = bind_vector(L, NAME("self_attn.v_proj.bias"), kv, &y->bv);
    }
#undef NAME
    return st;
}

static mipr_status build(hf_loader *L)
{
    mipr_status st = mipr_model_new(&L->m, L->cfg.hp.n_layers, L->err);
    if (st)
        return st;
    mipr_model *m = L->m;
    m->hp = L->cfg.hp;
    const char *base = strrchr(L->dir, '/');
    snprintf(m->name, sizeof m->name, "%s", base && base[1] ? base + 1 : L->dir);
    /* torch saves a tied pair once, under either name (TinyStories-656K keeps lm_head) */
    const char *embd = L->cfg.tied && !mipr_st_find(&L->set, "model.embed_tokens.weight") &&
                       mipr_st_find(&L->set, "lm_head.weight") ? "lm_head.weight"
                                                               : "model.embed_tokens.weight";
    st = bind_matrix(L, embd, m->hp.vocab_size, m->hp.dim, 0, &m->tok_embd);
    for (uint32_t l = 0; l < m->hp.n_layers && !st; l++)
        st = bind_layer(L, l);
    if (!st)
        st = bind_vector(L, "model.norm.weight", m->hp.dim, &m->output_norm);
    m->tied_output = L->cfg.tied;
    if (!st && L->cfg.tied)
        m->output = m->tok_embd;
    else if (!st)
        st = bind_matrix(L, "lm_head.weight", m->hp.vocab_size, m->hp.dim, 0, &m->output);
    if (!st && L->cfg.rope_freqs) {
        float *f = mipr_model_alloc(m, L->cfg.n_rope_freqs * sizeof *f);
        if (!f)
            return oom(L);
        memcpy(f, L->cfg.rope_freqs, L->cfg.n_rope_freqs * sizeof *f);
        m->rope_freqs = (mipr_tensor){.type = MIPR_DT_F32, .rows = 1,
                                      .cols = L->cfg.n_rope_freqs, .data = f};
    }
    for (size_t i = 0; i < L->n_maps && !st; i++)
        st = mipr_model_adopt_file(m, &L->maps[i], L->err);
    return st ? st : mipr_model_validate(m, L->dir, L->err);
}

mipr_status mipr_hf_build(mipr_model **out, const mipr_hf_config *cfg, const mipr_st_set *set,
                          const char *dir, const char *what, mipr_error *err)
{
    hf_loader L = {.dir = dir, .cfg = *cfg, .set = *set, .weights_what = (char *)what,
                   .err = err};
    mipr_status st = build(&L);
    if (st)
        mipr_model_free(L.m);
    *out = st ? NULL : L.m;
    return st;
}

static void loader_free(hf_loader *L)
{
    for (size_t i = 0; i < L->n_maps; i++) {
        mipr_file_unmap(&L->maps[i]); /* adopted ones were zeroed */
        free(L->paths[i]);
    }
    free(L->maps);
    free(L->paths);
    free(L->weights_what);
    mipr_st_free(&L->set);
    mipr_hf_config_free(&L->cfg);
}

static mipr_status load_tokenizer(const char *dir, const mipr_model *m, mipr_tokenizer **tok,
                                  mipr_error *err)
{
    char *path = mipr_hf_path(dir, "tokenizer.json");
    if (!path)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    mipr_status st = exists(path) ? mipr_tokenizer_json_load_padded(tok, path, m->hp.vocab_size, err)
                                  : mipr_error_set(err, MIPR_ERR_IO, "%s: the folder has no "
                                                   "tokenizer.json", dir);
    if (st == MIPR_OK && mipr_tokenizer_n_vocab(*tok) != m->hp.vocab_size)
        st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: %u tokens but config.json's vocab_size "
                            "is %u", path, mipr_tokenizer_n_vocab(*tok), m->hp.vocab_size);
    free(path);
    return st;
}

mipr_status mipr_hf_load(mipr_model **model, mipr_tokenizer **tok, const char *dir,
                         mipr_error *err)
{
    hf_loader L = {.dir = dir, .err = err};
    mipr_status st = read_config(&L);
    if (!st)
        st = read_weights(&L);
    if (!st)
        st = build(&L);
    if (!st && tok)
        st = load_tokenizer(dir, L.m, tok, err);
    loader_free(&L);
    if (st)
        mipr_model_free(L.m);
    *model = st ? NULL : L.m;
    return st;
}
