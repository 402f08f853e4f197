/* GGUF → mipr_model and mipr_tokenizer. The reader has already bounded every count and
 * extent; this file checks meaning: architecture, hyper-parameter ranges, tensor types and
 * shapes (mipr_model_validate does the final cross-checks). Tensor data stays in a mapping
 * of the file that the model owns (see gguf_internal.h for why it is a second mapping). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytelevel.h"
#include "gguf_internal.h"

typedef struct loader {
    const mipr_gguf *g;
    const char *path;
    char arch[16];
    int qwen2;
    mipr_model *m;
    const uint8_t *base; /* the model's own mapping, or NULL: copy tensor data */
    mipr_error *err;
} loader;

/* ---- keys ------------------------------------------------------------------------------- */

static int64_t find_arch_key(const loader *L, const char *suffix, char *key, size_t cap)
{
    snprintf(key, cap, "%s.%s", L->arch, suffix);
    return mipr_gguf_find(L->g, key);
}

static mipr_status range_error(const loader *L, const char *key, int64_t v, uint64_t lo,
                               uint64_t hi)
{
    /* above one of mipr's limits: valid input this build cannot run; else a broken file */
    int limit = hi == MIPR_MAX_DIM || hi == MIPR_MAX_LAYERS || hi == MIPR_MAX_VOCAB ||
                hi == MIPR_MAX_SEQ || hi == MIPR_MAX_FF;
    mipr_status st = v > (int64_t)hi && limit ? MIPR_ERR_UNSUPPORTED : MIPR_ERR_FORMAT;
    return mipr_error_set(L->err, st, "%s: %s is %" PRId64 ", outside %" PRIu64 "..%" PRIu64,
                          L->path, key, v, lo, hi);
}

/* Integer key <arch>.suffix in lo..hi; absent: *out = dflt when !required. */
static mipr_status get_u32(const loader *L, const char *suffix, int required, uint32_t dflt,
                           uint32_t lo, uint32_t hi, uint32_t *out)
{
    char key[96];
    int64_t i = find_arch_key(L, suffix, key, sizeof key), v;
    if (i < 0) {
        *out = dflt;
        return required ? mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: key %s is missing",
                                         L->path, key)
                        : MIPR_OK;
    }
    if (!mipr_gguf_get_i64(L->g, (uint64_t)i, &v))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: key %s is not an integer", L->path,
                              key);
    if (v < (int64_t)lo || v > (int64_t)hi)
        return range_error(L, key, v, lo, hi);
    *out = (uint32_t)v;
    return MIPR_OK;
}

static mipr_status get_float(const loader *L, const char *suffix, double dflt, float *out)
{
    char key[96];
    int64_t i = find_arch_key(L, suffix, key, sizeof key);
    double v = dflt;
    if (i >= 0 && !mipr_gguf_get_f64(L->g, (uint64_t)i, &v))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: key %s is not a number", L->path,
                              key);
    if (!(v > 0.0 && v < 1e30))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: key %s is %g, not a positive number",
                              L->path, key, v);
    *out = (float)v;
    return MIPR_OK;
}

/* Element l of per-layer key i (an array of n_layers integers), range-checked. */
static mipr_status layer_value(const loader *L, const char *key, int64_t i, uint32_t l,
                               uint32_t lo, uint32_t hi, uint32_t *out)
{
    int64_t v;
    if (!mipr_gguf_arr_i64(L->g, (uint64_t)i, l, &v))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT,
                              "%s: %s must hold integers (layer %" PRIu32 ")", L->path, key, l);
    if (v < (int64_t)lo || v > (int64_t)hi) {
        char what[128];
        snprintf(what, sizeof what, "%s[%" PRIu32 "]", key, l);
        return range_error(L, what, v, lo, hi);
    }
    *out = (uint32_t)v;
    return MIPR_OK;
}

/* A key that is a scalar or an array of one value per layer: per[l] for every layer.
 * *found: 0 absent, 1 scalar, 2 array. */
static mipr_status get_per_layer(const loader *L, const char *suffix, int required,
                                 uint32_t hi, uint32_t *per, int *found)
{
    char key[96];
    uint32_t n_layers = L->m->hp.n_layers;
    int64_t i = find_arch_key(L, suffix, key, sizeof key);
    enum mipr_gguf_vtype et;
    uint64_t n;
    if (i < 0 || !mipr_gguf_get_arr(L->g, (uint64_t)i, &et, &n)) {
        uint32_t v;
        *found = i >= 0;
        mipr_status st = get_u32(L, suffix, required, 0, 0, hi, &v);
        for (uint32_t l = 0; l < n_layers && st == MIPR_OK; l++)
            per[l] = v;
        return st;
    }
    *found = 2;
    if (n != n_layers)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT,
                              "%s: %s has %" PRIu64 " entries for %" PRIu32 " layers", L->path,
                              key, n, n_layers);
    for (uint32_t l = 0; l < n_layers; l++) {
        mipr_status st = layer_value(L, key, i, l, 0, hi, &per[l]);
        if (st != MIPR_OK)
            return st;
    }
    return MIPR_OK;
}

/* In a per-layer array, 0 marks a layer without attention or FFN (deci files do this):
 * valid, but not a model mipr runs. A scalar 0 is a broken file. */
static mipr_status check_nonzero(const loader *L, const char *suffix, const uint32_t *per,
                                 int found)
{
    for (uint32_t l = 0; l < L->m->hp.n_layers; l++) {
        if (per[l] != 0)
            continue;
        if (found == 2)
            return mipr_error_set(L->err, MIPR_ERR_UNSUPPORTED,
                                  "%s: %s.%s is 0 at layer %" PRIu32 " (a layer without it), "
                                  "which mipr cannot run", L->path, L->arch, suffix, l);
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: %s.%s is 0", L->path, L->arch,
                              suffix);
    }
    return MIPR_OK;
}

/* Head counts may be per-layer arrays in deci files; mipr runs one count for all layers. */
static mipr_status get_uniform(const loader *L, const char *suffix, int required, uint32_t hi,
                               uint32_t *per, uint32_t *out, int *found)
{
    mipr_status st = get_per_layer(L, suffix, required, hi, per, found);
    if (st != MIPR_OK || !*found)
        return st;
    if ((st = check_nonzero(L, suffix, per, *found)) != MIPR_OK)
        return st;
    for (uint32_t l = 1; l < L->m->hp.n_layers; l++)
        if (per[l] != per[0])
            return mipr_error_set(L->err, MIPR_ERR_UNSUPPORTED,
                                  "%s: %s.%s differs at layer %" PRIu32 " (%" PRIu32 " vs %"
                                  PRIu32 "); mipr needs the same value in every layer",
                                  L->path, L->arch, suffix, l, per[l], per[0]);
    *out = per[0];
    return MIPR_OK;
}

/* ---- hyper-parameters ------------------------------------------------------------------- */

static mipr_status read_arch(loader *L)
{
    int64_t i = mipr_gguf_find(L->g, "general.architecture");
    mipr_gguf_str s;
    if (i < 0 || !mipr_gguf_get_str(L->g, (uint64_t)i, &s))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT,
                              "%s: general.architecture is missing or not a string", L->path);
    int qwen2 = mipr_gguf_str_eq(s, "qwen2");
    if (!mipr_gguf_str_eq(s, "llama") && !mipr_gguf_str_eq(s, "deci") && !qwen2) {
        int n = s.len > 40 ? 40 : (int)s.len;
        return mipr_error_set(L->err, MIPR_ERR_UNSUPPORTED,
                              "%s: architecture \"%.*s\" is not supported (mipr reads llama, "
                              "deci and qwen2)", L->path, n, s.ptr);
    }
    memcpy(L->arch, s.ptr, (size_t)s.len);
    L->arch[s.len] = 0;
    /* llama.cpp runs qwen2 with rotate-half RoPE over q/k rows kept in HF's layout */
    L->qwen2 = qwen2;
    return MIPR_OK;
}

static mipr_status read_heads(loader *L, uint32_t *scratch)
{
    mipr_hparams *hp = &L->m->hp;
    int found;
    mipr_status st = get_uniform(L, "attention.head_count", 1, hp->dim, scratch, &hp->n_heads,
                                 &found);
    if (st == MIPR_OK)
        st = get_uniform(L, "attention.head_count_kv", 0, hp->n_heads, scratch,
                         &hp->n_kv_heads, &found);
    if (st == MIPR_OK && !found)
        hp->n_kv_heads = hp->n_heads;
    if (st == MIPR_OK && hp->dim % hp->n_heads)
        st = mipr_error_set(L->err, MIPR_ERR_FORMAT,
                            "%s: embedding length %" PRIu32 " is not a multiple of the %" PRIu32
                            " heads", L->path, hp->dim, hp->n_heads);
    if (st == MIPR_OK && hp->n_heads % hp->n_kv_heads)
        st = mipr_error_set(L->err, MIPR_ERR_FORMAT,
                            "%s: %" PRIu32 " heads are not a multiple of the %" PRIu32
                            " key/value heads", L->path, hp->n_heads, hp->n_kv_heads);
    return st;
}

static mipr_status read_ffn(loader *L, uint32_t *scratch)
{
    int found;
    mipr_status st = get_per_layer(L, "feed_forward_length", 1, MIPR_MAX_FF, scratch, &found);
    if (st == MIPR_OK)
        st = check_nonzero(L, "feed_forward_length", scratch, found);
    for (uint32_t l = 0; l < L->m->hp.n_layers && st == MIPR_OK; l++)
        L->m->layers[l].d_ff = scratch[l];
    return st;
}

/* llama.cpp's rules: rope.scaling.type absent means "linear"; the factor (rope.scaling.factor,
 * or the older rope.scale_linear) absent or 0 means 1; "none" ignores it. Llama 3 scaling
 * needs no key: it travels as the rope_freqs tensor. YaRN and LongRoPE change more than the
 * angles, so they are refused rather than run wrong. */
static mipr_status read_rope_scaling(loader *L)
{
    char key[96];
    int64_t i = find_arch_key(L, "rope.scaling.type", key, sizeof key);
    mipr_gguf_str s = {"linear", 6};
    if (i >= 0 && !mipr_gguf_get_str(L->g, (uint64_t)i, &s))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: key %s is not a string", L->path,
                              key);
    int none = mipr_gguf_str_eq(s, "none");
    if (!none && !mipr_gguf_str_eq(s, "linear"))
        return mipr_error_set(L->err, MIPR_ERR_UNSUPPORTED,
                              "%s: %s \"%.*s\" is not supported (mipr runs none and linear; "
                              "Llama 3 scaling comes as rope_freqs.weight)", L->path, key,
                              s.len > 40 ? 40 : (int)s.len, s.ptr);
    double f = 0.0;
    i = find_arch_key(L, "rope.scaling.factor", key, sizeof key);
    if (i < 0)
        i = find_arch_key(L, "rope.scale_linear", key, sizeof key);
    if (i >= 0 && (!mipr_gguf_get_f64(L->g, (uint64_t)i, &f) || !(f == 0.0 ||
                                                                  (f >= 1e-3 && f <= 1e6))))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT,
                              "%s: key %s is not a scaling factor in [0.001, 1e6]", L->path,
                              key);
    double attn = 1.0;
    i = find_arch_key(L, "rope.scaling.attn_factor", key, sizeof key);
    if (i >= 0 && (!mipr_gguf_get_f64(L->g, (uint64_t)i, &attn) || attn != 1.0))
        return mipr_error_set(L->err, MIPR_ERR_UNSUPPORTED,
                              "%s: key %s other than 1 is not supported", L->path, key);
    L->m->hp.rope_scale = none || f == 1.0 ? 0.0f : (float)f;
    return MIPR_OK;
}

static mipr_status read_hparams(loader *L)
{
    mipr_hparams *hp = &L->m->hp;
    uint32_t *scratch = calloc(hp->n_layers, sizeof *scratch);
    if (!scratch)
        return mipr_error_set(L->err, MIPR_ERR_NOMEM, "%s: out of memory", L->path);
    mipr_status st = get_u32(L, "embedding_length", 1, 0, 1, MIPR_MAX_DIM, &hp->dim);
    if (st == MIPR_OK)
        st = read_heads(L, scratch);
    if (st == MIPR_OK)
        st = read_ffn(L, scratch);
    free(scratch);
    if (st != MIPR_OK)
        return st;
    hp->head_size = hp->dim / hp->n_heads;
    if ((st = get_u32(L, "context_length", 1, 0, 1, MIPR_MAX_SEQ, &hp->seq_len)) != MIPR_OK ||
        (st = get_u32(L, "rope.dimension_count", 0, hp->head_size, 2, hp->head_size,
                      &hp->n_rot)) != MIPR_OK ||
        (st = get_u32(L, "vocab_size", 0, 0, 1, MIPR_MAX_VOCAB, &hp->vocab_size)) != MIPR_OK ||
        (st = get_float(L, "attention.layer_norm_rms_epsilon", 1e-5, &hp->norm_eps)) != MIPR_OK)
        return st;
    if ((st = get_float(L, "rope.freq_base", 10000.0, &hp->rope_theta)) != MIPR_OK)
        return st;
    hp->family = L->qwen2 ? MIPR_FAMILY_QWEN2 : MIPR_FAMILY_LLAMA;
    hp->rope_type = L->qwen2 ? MIPR_ROPE_NEOX : MIPR_ROPE_INTERLEAVED;
    return read_rope_scaling(L);
}

/* ---- tensors ---------------------------------------------------------------------------- */

/* Bytes the engine may read as its element type: F32 needs 4-byte alignment, the 16-bit
 * types and Q8_0 / Q4_0 blocks (fp16 scale first, 34 / 18 bytes) need 2. */
static size_t dtype_align(enum mipr_dtype t) { return t == MIPR_DT_F32 ? 4 : 2; }

/* Zero copy into the model's mapping when aligned; otherwise (file with a small
 * general.alignment, or a gguf opened from memory) a copy in model memory. */
static const void *tensor_bytes(loader *L, const mipr_gguf_tensor_info *t, enum mipr_dtype dt)
{
    size_t size;
    const uint8_t *gb = mipr_gguf_bytes(L->g, &size);
    size_t off = (size_t)((const uint8_t *)t->data - gb);
    if (L->base && (uintptr_t)(L->base + off) % dtype_align(dt) == 0)
        return L->base + off;
    if (t->nbytes > SIZE_MAX)
        return NULL;
    void *p = mipr_model_alloc(L->m, (size_t)t->nbytes);
    if (p)
        memcpy(p, t->data, (size_t)t->nbytes);
    return p;
}

static mipr_status find_typed(loader *L, const char *name, const mipr_gguf_tensor_info **out,
                              enum mipr_dtype *dt)
{
    const mipr_gguf_tensor_info *t = mipr_gguf_find_tensor(L->g, name);
    *out = t;
    if (!t)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %s is missing", L->path, name);
    if (!mipr_ggml_to_dtype(t->ggml_type, dt) || !t->data)
        return mipr_error_set(L->err, MIPR_ERR_UNSUPPORTED,
                              "%s: tensor %s has type %s (%" PRIu32 "); mipr reads F32, F16, "
                              "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K..Q6_K", L->path, name,
                              mipr_ggml_type_name(t->ggml_type),
                              t->ggml_type);
    if (t->ne[2] != 1 || t->ne[3] != 1 || t->ne[0] > UINT32_MAX || t->ne[1] > UINT32_MAX)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT,
                              "%s: tensor %s has shape %" PRIu64 "x%" PRIu64 "x%" PRIu64
                              "x%" PRIu64 ", not a matrix", L->path, name, t->ne[0], t->ne[1],
                              t->ne[2], t->ne[3]);
    return MIPR_OK;
}

/* K-quant (and Q4_1 / Q5_x) tensors become F32 in model memory: the engine has no K-quant kernels, and F32
 * keeps ggml's dequantized values exactly (docs/LIMITS.md has the memory this costs). */
static mipr_status bind_kquant(loader *L, const mipr_gguf_tensor_info *t, const char *name,
                               mipr_tensor *out)
{
    if (t->ne[2] != 1 || t->ne[3] != 1 || t->ne[0] > UINT32_MAX || t->ne[1] > UINT32_MAX ||
        t->ne[0] * t->ne[1] > SIZE_MAX / sizeof(float))
        return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %s is not a matrix mipr "
                              "can hold", L->path, name);
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    float *f = mipr_model_alloc(L->m, n * sizeof(float));
    if (!f)
        return mipr_error_set(L->err, MIPR_ERR_NOMEM, "%s: out of memory for tensor %s "
                              "(%zu MiB as F32)", L->path, name, n * sizeof(float) >> 20);
    mipr_kquant_to_f32(f, t->data, t->ggml_type, n);
    out->type = MIPR_DT_F32;
    out->cols = (uint32_t)t->ne[0];
    out->rows = (uint32_t)t->ne[1];
    out->data = f;
    return MIPR_OK;
}

static mipr_status bind_matrix(loader *L, const char *name, mipr_tensor *out)
{
    const mipr_gguf_tensor_info *t = mipr_gguf_find_tensor(L->g, name);
    uint32_t kblock, kbytes;
    if (t && t->data && mipr_kquant_traits(t->ggml_type, &kblock, &kbytes))
        return bind_kquant(L, t, name, out);
    enum mipr_dtype dt;
    mipr_status st = find_typed(L, name, &t, &dt);
    if (st != MIPR_OK)
        return st;
    out->type = dt;
    out->cols = (uint32_t)t->ne[0]; /* ggml's ne[0] is the row length */
    out->rows = (uint32_t)t->ne[1];
    out->data = tensor_bytes(L, t, dt);
    return out->data ? MIPR_OK
                     : mipr_error_set(L->err, MIPR_ERR_NOMEM, "%s: out of memory for tensor %s",
                                      L->path, name);
}

static uint16_t load_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void mipr_gguf_to_f32(float *dst, const void *src_, enum mipr_dtype dt, size_t n)
{
    const uint8_t *src = src_;
    for (size_t i = 0; i < n; i++) {
        if (dt == MIPR_DT_F32)
            memcpy(&dst[i], src + 4 * i, 4);
        else if (dt == MIPR_DT_F16)
            dst[i] = mipr_f16_to_f32(load_u16(src + 2 * i));
        else if (dt == MIPR_DT_BF16)
            dst[i] = mipr_bf16_to_f32(load_u16(src + 2 * i));
        else if (dt == MIPR_DT_Q8_0) {
            const uint8_t *b = src + (i / MIPR_QK8_0) * sizeof(mipr_block_q8_0);
            dst[i] = mipr_f16_to_f32(load_u16(b)) * (float)(int8_t)b[2 + i % MIPR_QK8_0];
        } else {
            const uint8_t *b = src + (i / MIPR_QK4_0) * sizeof(mipr_block_q4_0);
            size_t j = i % MIPR_QK4_0;
            int q = j < MIPR_QK4_0 / 2 ? b[2 + j] & 15 : b[2 + j - MIPR_QK4_0 / 2] >> 4;
            dst[i] = mipr_f16_to_f32(load_u16(b)) * (float)(q - 8);
        }
    }
}

/* Norm weights are F32 in the engine whatever the file holds. */
static mipr_status bind_norm(loader *L, const char *name, mipr_tensor *out)
{
    const mipr_gguf_tensor_info *t;
    enum mipr_dtype dt;
    mipr_status st = find_typed(L, name, &t, &dt);
    if (st != MIPR_OK)
        return st;
    if (t->ne[1] != 1)
        return mipr_error_set(L->err, MIPR_ERR_FORMAT,
                              "%s: tensor %s has %" PRIu64 " rows; a norm is a vector", L->path,
                              name, t->ne[1]);
    out->type = MIPR_DT_F32;
    out->rows = 1;
    out->cols = (uint32_t)t->ne[0];
    if (dt == MIPR_DT_F32) {
        out->data = tensor_bytes(L, t, dt);
    } else {
        float *f = mipr_model_alloc(L->m, (size_t)t->ne[0] * sizeof(float));
        if (f)
            mipr_gguf_to_f32(f, t->data, dt, (size_t)t->ne[0]);
        out->data = f;
    }
    return out->data ? MIPR_OK
                     : mipr_error_set(L->err, MIPR_ERR_NOMEM, "%s: out of memory for tensor %s",
                                      L->path, name);
}

static mipr_status bind_layer(loader *L, uint32_t l)
{
    static const char *const names[9] = {"attn_norm", "attn_q",   "attn_k",
                                         "attn_v",    "attn_output", "ffn_norm",
                                         "ffn_gate",  "ffn_up",   "ffn_down"};
    mipr_layer *ly = &L->m->layers[l];
    mipr_tensor *dst[9] = {&ly->attn_norm, &ly->wq, &ly->wk, &ly->wv, &ly->wo,
                           &ly->ffn_norm, &ly->ffn_gate, &ly->ffn_up, &ly->ffn_down};
    for (int k = 0; k < 9; k++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%" PRIu32 ".%s.weight", l, names[k]);
        mipr_status st = (k == 0 || k == 5) ? bind_norm(L, name, dst[k])
                                            : bind_matrix(L, name, dst[k]);
        if (st != MIPR_OK)
            return st;
    }
    /* optional: the output bias pruning's compensation writes, and q/k/v biases (qwen2
     * requires them, as llama.cpp does; llama may have them) */
    static const char *const biases[4] = {"ffn_down", "attn_q", "attn_k", "attn_v"};
    mipr_tensor *bdst[4] = {&ly->ffn_down_b, &ly->bq, &ly->bk, &ly->bv};
    for (int k = 0; k < 4; k++) {
        char bias[64];
        snprintf(bias, sizeof bias, "blk.%" PRIu32 ".%s.bias", l, biases[k]);
        mipr_status st = MIPR_OK;
        if (mipr_gguf_find_tensor(L->g, bias) || (L->qwen2 && k > 0))
            st = bind_norm(L, bias, bdst[k]);
        if (st != MIPR_OK)
            return st;
    }
    return MIPR_OK;
}

/* block_count against the tensor set: a "blk.N." tensor with N >= block_count means the
 * count contradicts the file (llama.cpp refuses it too); running the first layers only
 * would be a silently different model. A missing layer is caught by bind_layer. */
static mipr_status check_block_count(const loader *L)
{
    uint32_t n = L->m->hp.n_layers;
    for (uint64_t i = 0; i < mipr_gguf_n_tensors(L->g); i++) {
        mipr_gguf_str s = mipr_gguf_tensor(L->g, i)->name;
        uint64_t layer = 0;
        size_t k = 4;
        if (s.len < 6 || memcmp(s.ptr, "blk.", 4) != 0)
            continue;
        while (k < s.len && k < 14 && s.ptr[k] >= '0' && s.ptr[k] <= '9')
            layer = layer * 10 + (uint64_t)(s.ptr[k++] - '0');
        if (k > 4 && k < s.len && s.ptr[k] == '.' && layer >= n)
            return mipr_error_set(L->err, MIPR_ERR_FORMAT, "%s: tensor %.*s belongs to layer "
                                  "%llu, but %s.block_count is %u: the file contradicts "
                                  "itself", L->path, (int)s.len, s.ptr,
                                  (unsigned long long)layer, L->arch, n);
    }
    return MIPR_OK;
}

static mipr_status bind_tensors(loader *L)
{
    mipr_model *m = L->m;
    mipr_status st = bind_matrix(L, "token_embd.weight", &m->tok_embd);
    if (st == MIPR_OK)
        st = bind_norm(L, "output_norm.weight", &m->output_norm);
    if (st == MIPR_OK && mipr_gguf_find_tensor(L->g, "output.weight")) {
        st = bind_matrix(L, "output.weight", &m->output);
    } else if (st == MIPR_OK) {
        m->output = m->tok_embd;
        m->tied_output = 1;
    }
    for (uint32_t l = 0; l < m->hp.n_layers && st == MIPR_OK; l++)
        st = bind_layer(L, l);
    if (st == MIPR_OK)
        st = check_block_count(L);
    /* Llama 3 RoPE scaling: one divisor per rotary pair (mipr_model_validate checks it) */
    if (st == MIPR_OK && mipr_gguf_find_tensor(L->g, "rope_freqs.weight"))
        st = bind_norm(L, "rope_freqs.weight", &m->rope_freqs);
    if (st == MIPR_OK && m->hp.vocab_size == 0) {
        if (m->tok_embd.rows > MIPR_MAX_VOCAB)
            return range_error(L, "token_embd.weight rows", m->tok_embd.rows, 1, MIPR_MAX_VOCAB);
        m->hp.vocab_size = m->tok_embd.rows;
    }
    return st;
}

/* ---- storage ---------------------------------------------------------------------------- */

/* Maps the file again for the model and proves it is the file that was validated: same
 * size and same bytes up to the data section, so every checked offset still holds. */
static mipr_status map_for_model(loader *L)
{
    if (!mipr_gguf_has_file(L->g))
        return MIPR_OK;
    size_t size;
    const uint8_t *bytes = mipr_gguf_bytes(L->g, &size);
    uint64_t head = mipr_gguf_data_offset(L->g);
    if (head > size)
        head = size;
    mipr_mapped_file f;
    mipr_status st = mipr_file_map(&f, L->path, L->err);
    if (st != MIPR_OK)
        return st;
    if (f.size != size || (head && memcmp(f.data, bytes, (size_t)head) != 0)) {
        mipr_file_unmap(&f);
        return mipr_error_set(L->err, MIPR_ERR_IO, "%s: the file changed while being loaded",
                              L->path);
    }
    const uint8_t *base = f.data;
    if ((st = mipr_model_adopt_file(L->m, &f, L->err)) != MIPR_OK) {
        mipr_file_unmap(&f);
        return st;
    }
    L->base = base;
    return MIPR_OK;
}

static void read_name(loader *L)
{
    int64_t i = mipr_gguf_find(L->g, "general.name");
    mipr_gguf_str s;
    if (i < 0 || !mipr_gguf_get_str(L->g, (uint64_t)i, &s))
        return;
    size_t n = s.len < sizeof L->m->name - 1 ? (size_t)s.len : sizeof L->m->name - 1;
    memcpy(L->m->name, s.ptr, n);
    L->m->name[n] = 0;
}

mipr_status mipr_gguf_load_model(mipr_model **out, const mipr_gguf *g, mipr_error *err)
{
    loader L = {.g = g, .path = mipr_gguf_path(g), .err = err};
    uint32_t n_layers;
    *out = NULL;
    mipr_status st = read_arch(&L);
    if (st == MIPR_OK)
        st = get_u32(&L, "block_count", 1, 0, 1, MIPR_MAX_LAYERS, &n_layers);
    if (st == MIPR_OK)
        st = mipr_model_new(&L.m, n_layers, err);
    if (st != MIPR_OK)
        return st;
    if ((st = map_for_model(&L)) == MIPR_OK && (st = read_hparams(&L)) == MIPR_OK &&
        (st = bind_tensors(&L)) == MIPR_OK) {
        read_name(&L);
        st = mipr_model_validate(L.m, L.path, err);
    }
    if (st != MIPR_OK) {
        mipr_model_free(L.m);
        return st;
    }
    *out = L.m;
    return MIPR_OK;
}

/* ---- tokenizer -------------------------------------------------------------------------- */

typedef struct tok_arrays {
    int64_t tokens, scores, types; /* key indices; scores/types may be -1 */
    uint32_t n;
    int bpe; /* "gpt2": byte-level BPE */
    int pre; /* enum mipr_pre_type */
} tok_arrays;

static int is_byte_piece(mipr_gguf_str s)
{
    static const char hex[] = "0123456789ABCDEFabcdef";
    return s.len == 6 && memcmp(s.ptr, "<0x", 3) == 0 && s.ptr[5] == '>' &&
           memchr(hex, s.ptr[3], sizeof hex - 1) && memchr(hex, s.ptr[4], sizeof hex - 1);
}

/* SentencePiece writes a space as U+2581 (E2 96 81); the tokenizer wants ' '. */
static size_t sp_to_spaces(char *dst, mipr_gguf_str s)
{
    size_t o = 0;
    for (uint64_t i = 0; i < s.len; i++) {
        if (i + 2 < s.len && (unsigned char)s.ptr[i] == 0xE2 &&
            (unsigned char)s.ptr[i + 1] == 0x96 && (unsigned char)s.ptr[i + 2] == 0x81) {
            dst[o++] = ' ';
            i += 2;
        } else {
            dst[o++] = s.ptr[i];
        }
    }
    return o;
}

static mipr_status optional_array(const mipr_gguf *g, const char *key, uint32_t n, int64_t *idx,
                                  mipr_error *err)
{
    uint64_t len;
    enum mipr_gguf_vtype et;
    *idx = mipr_gguf_find(g, key);
    if (*idx < 0)
        return MIPR_OK;
    if (!mipr_gguf_get_arr(g, (uint64_t)*idx, &et, &len) || len != n ||
        et == MIPR_GGUF_STRING || et == MIPR_GGUF_ARRAY)
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: %s must be a numeric array of %" PRIu32 " entries",
                              mipr_gguf_path(g), key, n);
    return MIPR_OK;
}

/* tokenizer.ggml.pre: which split rules a byte-level vocabulary was trained with. */
static mipr_status tok_pre(const mipr_gguf *g, tok_arrays *a, mipr_error *err)
{
    int64_t i = mipr_gguf_find(g, "tokenizer.ggml.pre");
    mipr_gguf_str s;
    if (i < 0 || !mipr_gguf_get_str(g, (uint64_t)i, &s))
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: byte-level tokenizer (\"gpt2\") "
                              "without tokenizer.ggml.pre (its split rules are unknown)",
                              mipr_gguf_path(g));
    a->pre = mipr_pre_from_name(s.ptr, (size_t)s.len);
    if (a->pre <= MIPR_PRE_NONE)
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre \"%.*s\" is "
                              "not supported (mipr reads llama-bpe, qwen2, smollm, gpt-2, "
                              "starcoder, falcon, deepseek-llm, deepseek-coder and their "
                              "aliases)", mipr_gguf_path(g), s.len > 40 ? 40 : (int)s.len, s.ptr);
    return MIPR_OK;
}

static mipr_status tok_find_arrays(const mipr_gguf *g, tok_arrays *a, mipr_error *err)
{
    const char *path = mipr_gguf_path(g);
    int64_t i = mipr_gguf_find(g, "tokenizer.ggml.model");
    mipr_gguf_str s;
    if (i < 0 || !mipr_gguf_get_str(g, (uint64_t)i, &s))
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: no tokenizer (tokenizer.ggml.model missing)", path);
    a->bpe = mipr_gguf_str_eq(s, "gpt2");
    if (!a->bpe && !mipr_gguf_str_eq(s, "llama"))
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED,
                              "%s: tokenizer model \"%.*s\" is not supported (mipr reads "
                              "\"llama\" and \"gpt2\")", path, s.len > 40 ? 40 : (int)s.len,
                              s.ptr);
    if (a->bpe) {
        mipr_status st = tok_pre(g, a, err);
        if (st != MIPR_OK)
            return st;
    }
    enum mipr_gguf_vtype et;
    uint64_t n = 0;
    a->tokens = mipr_gguf_find(g, "tokenizer.ggml.tokens");
    if (a->tokens < 0 || !mipr_gguf_get_arr(g, (uint64_t)a->tokens, &et, &n) ||
        et != MIPR_GGUF_STRING || n < 1 || n > MIPR_MAX_VOCAB)
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: tokenizer.ggml.tokens must be an array of 1..%u strings",
                              path, MIPR_MAX_VOCAB);
    a->n = (uint32_t)n;
    mipr_status st = optional_array(g, "tokenizer.ggml.scores", a->n, &a->scores, err);
    if (st == MIPR_OK)
        st = optional_array(g, "tokenizer.ggml.token_type", a->n, &a->types, err);
    return st;
}

static mipr_status token_type(const mipr_gguf *g, const tok_arrays *a, uint32_t id,
                              mipr_gguf_str piece, enum mipr_token_type *out, mipr_error *err)
{
    int64_t v;
    if (a->types < 0) {
        *out = !a->bpe && is_byte_piece(piece) ? MIPR_TOK_BYTE : MIPR_TOK_NORMAL;
        return MIPR_OK;
    }
    if (!mipr_gguf_arr_i64(g, (uint64_t)a->types, id, &v) || v < 0 || v > MIPR_TOK_BYTE)
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: tokenizer.ggml.token_type[%" PRIu32 "] is not a token type",
                              mipr_gguf_path(g), id);
    *out = v == 0 ? MIPR_TOK_NORMAL : (enum mipr_token_type)v; /* 0: "undefined" */
    return MIPR_OK;
}

static mipr_status in_file(const mipr_gguf *g, uint32_t id, mipr_error *err)
{
    char what[sizeof err->msg];
    snprintf(what, sizeof what, "%s", err->msg);
    return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%" PRIu32 "]: %s",
                          mipr_gguf_path(g), id, what);
}

static mipr_status tok_fill(mipr_tokenizer *t, const mipr_gguf *g, const tok_arrays *a,
                            mipr_error *err)
{
    char *buf = NULL;
    size_t cap = 0;
    mipr_status st = MIPR_OK;
    for (uint32_t id = 0; id < a->n && st == MIPR_OK; id++) {
        mipr_gguf_str s;
        double score = 0.0;
        enum mipr_token_type type = MIPR_TOK_NORMAL;
        mipr_gguf_arr_str(g, (uint64_t)a->tokens, id, &s);
        if (s.len + 1 > cap) {
            size_t ncap = (size_t)s.len + 64;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                st = mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", mipr_gguf_path(g));
                break;
            }
            buf = nb;
            cap = ncap;
        }
        if (a->scores >= 0)
            mipr_gguf_arr_f64(g, (uint64_t)a->scores, id, &score);
        if ((st = token_type(g, a, id, s, &type, err)) != MIPR_OK)
            break;
        /* Byte-level: the vocabulary's pieces are spelled through GPT-2's byte map, while
         * control and user-defined tokens are plain text. */
        size_t len = !a->bpe ? sp_to_spaces(buf, s)
                     : type == MIPR_TOK_CONTROL || type == MIPR_TOK_USER
                         ? (memcpy(buf, s.ptr, s.len), (size_t)s.len)
                         : mipr_bytelevel_decode(buf, s.ptr, s.len);
        st = mipr_tokenizer_set(t, id, buf, len, (float)score, type, err);
        if (st == MIPR_ERR_ARG) /* the runtime does not know the file: name it */
            st = in_file(g, id, err);
    }
    free(buf);
    return st;
}

/* A special id: the key when present (must be inside the vocabulary), else dflt if it is. */
static mipr_status special_id(const mipr_gguf *g, const char *key, int32_t dflt, uint32_t n,
                              int32_t *out, mipr_error *err)
{
    int64_t i = mipr_gguf_find(g, key), v;
    *out = (uint32_t)dflt < n ? dflt : -1;
    if (i < 0)
        return MIPR_OK;
    if (!mipr_gguf_get_i64(g, (uint64_t)i, &v) || v < 0 || v >= (int64_t)n)
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: %s is not a token id of the %" PRIu32 "-token vocabulary",
                              mipr_gguf_path(g), key, n);
    *out = (int32_t)v;
    return MIPR_OK;
}

static mipr_status get_flag(const mipr_gguf *g, const char *key, int64_t *v, mipr_error *err)
{
    int64_t i = mipr_gguf_find(g, key);
    if (i >= 0 && !mipr_gguf_get_i64(g, (uint64_t)i, v))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: %s is not a bool", mipr_gguf_path(g),
                              key);
    return MIPR_OK;
}

static mipr_status tok_finish(mipr_tokenizer *t, const mipr_gguf *g, const tok_arrays *a,
                              mipr_error *err)
{
    int32_t bos, eos, unk;
    int64_t space = !a->bpe, add_bos = !a->bpe || a->pre == MIPR_PRE_LLAMA3, add_eos = 0;
    uint32_t n = a->n;
    /* Defaults as llama.cpp's: 1/2/0 for SentencePiece, 11/11/none for byte-level. */
    mipr_status st = special_id(g, "tokenizer.ggml.bos_token_id", a->bpe ? 11 : 1, n, &bos, err);
    if (st == MIPR_OK)
        st = special_id(g, "tokenizer.ggml.eos_token_id", a->bpe ? 11 : 2, n, &eos, err);
    if (st == MIPR_OK)
        st = special_id(g, "tokenizer.ggml.unknown_token_id", a->bpe ? -1 : 0, n, &unk, err);
    if (st == MIPR_OK)
        st = get_flag(g, "tokenizer.ggml.add_bos_token", &add_bos, err);
    if (st == MIPR_OK)
        st = get_flag(g, "tokenizer.ggml.add_eos_token", &add_eos, err);
    if (st != MIPR_OK)
        return st;
    mipr_tokenizer_set_flags(t, add_bos != 0, add_eos != 0);
    int64_t i = mipr_gguf_find(g, "tokenizer.ggml.add_space_prefix");
    if (i >= 0 && !mipr_gguf_get_i64(g, (uint64_t)i, &space))
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: tokenizer.ggml.add_space_prefix is not a bool",
                              mipr_gguf_path(g));
    return mipr_tokenizer_finish(t, bos, eos, unk, space != 0, err);
}

static uint32_t gstr_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static int32_t gstr_find(const mipr_gguf *g, const tok_arrays *a, const int32_t *slot,
                         uint32_t mask, const char *p, size_t n)
{
    for (uint32_t i = gstr_hash(p, n) & mask; slot[i] >= 0; i = (i + 1) & mask) {
        mipr_gguf_str s;
        mipr_gguf_arr_str(g, (uint64_t)a->tokens, (uint64_t)slot[i], &s);
        if (s.len == n && memcmp(s.ptr, p, n) == 0)
            return slot[i];
    }
    return -1;
}

/* tokenizer.ggml.merges: "left right" strings by rank, spelled like the tokens. */
static mipr_status tok_merges(mipr_tokenizer *t, const mipr_gguf *g, const tok_arrays *a,
                              mipr_error *err)
{
    const char *path = mipr_gguf_path(g);
    int64_t k = mipr_gguf_find(g, "tokenizer.ggml.merges");
    enum mipr_gguf_vtype et;
    uint64_t n = 0;
    if (k < 0 || !mipr_gguf_get_arr(g, (uint64_t)k, &et, &n) || et != MIPR_GGUF_STRING ||
        n >= (1u << 24))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tokenizer.ggml.merges must be an array "
                              "of under 2^24 strings", path);
    uint32_t cap = 16;
    while (cap < 2 * (uint64_t)a->n)
        cap *= 2;
    int32_t *slot = malloc(cap * sizeof *slot), *pairs = malloc((2 * n + 1) * sizeof *pairs);
    mipr_status st = MIPR_OK;
    if (!slot || !pairs)
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for the merges", path);
    for (uint32_t i = 0; st == MIPR_OK && i < cap; i++)
        slot[i] = -1;
    for (uint32_t id = 0; st == MIPR_OK && id < a->n; id++) {
        mipr_gguf_str s;
        mipr_gguf_arr_str(g, (uint64_t)a->tokens, id, &s);
        if (gstr_find(g, a, slot, cap - 1, s.ptr, (size_t)s.len) >= 0)
            continue; /* a duplicate spelling keeps its lowest id */
        uint32_t i = gstr_hash(s.ptr, (size_t)s.len) & (cap - 1);
        while (slot[i] >= 0)
            i = (i + 1) & (cap - 1);
        slot[i] = (int32_t)id;
    }
    for (uint64_t r = 0; st == MIPR_OK && r < n; r++) {
        mipr_gguf_str s;
        mipr_gguf_arr_str(g, (uint64_t)k, r, &s);
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
        size_t la = sp ? (size_t)(sp - s.ptr) : 0;
        int32_t l = sp ? gstr_find(g, a, slot, cap - 1, s.ptr, la) : -1;
        int32_t rt = sp ? gstr_find(g, a, slot, cap - 1, sp + 1, (size_t)s.len - la - 1) : -1;
        if (l < 0 || rt < 0)
            st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tokenizer.ggml.merges[%" PRIu64 "] "
                                "(\"%.*s\") is not two tokens of the vocabulary", path, r,
                                s.len > 60 ? 60 : (int)s.len, s.ptr);
        pairs[2 * r] = l;
        pairs[2 * r + 1] = rt;
    }
    if (st == MIPR_OK)
        st = mipr_tokenizer_set_merges(t, pairs, (uint32_t)n, err);
    free(slot);
    free(pairs);
    return st;
}

mipr_status mipr_gguf_load_tokenizer(mipr_tokenizer **out, const mipr_gguf *g, mipr_error *err)
{
    tok_arrays a = {-1, -1, -1, 0, 0, 0};
    mipr_tokenizer *t = NULL;
    *out = NULL;
    mipr_status st = tok_find_arrays(g, &a, err);
    if (st == MIPR_OK)
        st = mipr_tokenizer_new(&t, a.n, err);
    if (st == MIPR_OK && a.bpe)
        st = mipr_tokenizer_set_bpe(t, (enum mipr_pre_type)a.pre, a.pre == MIPR_PRE_LLAMA3, err);
    if (st == MIPR_OK)
        st = tok_fill(t, g, &a, err);
    if (st == MIPR_OK && a.bpe)
        st = tok_merges(t, g, &a, err);
    if (st == MIPR_OK)
        st = tok_finish(t, g, &a, err);
    if (st != MIPR_OK) {
        mipr_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MIPR_OK;
}
