/* The model in memory: hyper-parameters, tensor views and the storage they point into. */
#if defined(__ANDROID__)
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* Storage blocks are kept in a list: a heap allocation, an adopted file mapping, or a
 * cleanup call. The list is newest first, so a cleanup registered after the storage it uses
 * runs before that storage goes. */
struct mipr_block_ {
    struct mipr_block_ *next;
    mipr_mapped_file file; /* when handle_ is set */
    void *mem;
    void (*cleanup)(void *ctx);
    void *ctx;
};

/* C11's aligned_alloc, except on Android, whose C library has it only from API 28 (we
 * support 24): there posix_memalign, which it has had since API 16. */
static void *alloc_aligned(size_t align, size_t bytes)
{
#if defined(__ANDROID__)
    void *p = NULL;
    return posix_memalign(&p, align, bytes) == 0 ? p : NULL;
#else
    return aligned_alloc(align, bytes);
#endif
}

mipr_status mipr_model_new(mipr_model **out, uint32_t n_layers, mipr_error *err)
{
    *out = NULL;
    if (n_layers == 0 || n_layers > MIPR_MAX_LAYERS)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "layer count %u outside 1..%u", n_layers,
                              MIPR_MAX_LAYERS);
    mipr_model *m = calloc(1, sizeof *m);
    if (m)
        m->layers = calloc(n_layers, sizeof *m->layers);
    if (!m || !m->layers) {
        free(m);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %u layers", n_layers);
    }
    m->hp.n_layers = n_layers;
    *out = m;
    return MIPR_OK;
}

void *mipr_model_alloc(mipr_model *m, size_t bytes)
{
    struct mipr_block_ *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes || !(b->mem = alloc_aligned(64, rounded ? rounded : 64))) {
        free(b);
        return NULL;
    }
    memset(b->mem, 0, rounded ? rounded : 64);
    b->next = m->blocks_;
    m->blocks_ = b;
    return b->mem;
}

mipr_status mipr_model_adopt_file(mipr_model *m, mipr_mapped_file *f, mipr_error *err)
{
    struct mipr_block_ *b = calloc(1, sizeof *b);
    if (!b)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    b->file = *f;
    memset(f, 0, sizeof *f);
    b->next = m->blocks_;
    m->blocks_ = b;
    return MIPR_OK;
}

mipr_status mipr_model_add_cleanup(mipr_model *m, void (*fn)(void *ctx), void *ctx,
                                   mipr_error *err)
{
    struct mipr_block_ *b = calloc(1, sizeof *b);
    if (!b)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    b->cleanup = fn;
    b->ctx = ctx;
    b->next = m->blocks_;
    m->blocks_ = b;
    return MIPR_OK;
}

void mipr_model_free(mipr_model *m)
{
    if (!m)
        return;
    for (struct mipr_block_ *b = m->blocks_, *next; b; b = next) {
        next = b->next;
        if (b->cleanup)
            b->cleanup(b->ctx);
        mipr_file_unmap(&b->file);
        free(b->mem);
        free(b);
    }
    free(m->layers);
    free(m);
}

mipr_status mipr_hparams_check(const mipr_hparams *hp, const char *what, mipr_error *err)
{
#define BAD(...) mipr_error_set(err, MIPR_ERR_FORMAT, __VA_ARGS__)
    if (hp->dim == 0 || hp->dim > MIPR_MAX_DIM)
        return BAD("%s: embedding width %u outside 1..%u", what, hp->dim, MIPR_MAX_DIM);
    if (hp->n_layers == 0 || hp->n_layers > MIPR_MAX_LAYERS)
        return BAD("%s: layer count %u outside 1..%u", what, hp->n_layers, MIPR_MAX_LAYERS);
    if (hp->n_heads == 0 || hp->dim % hp->n_heads)
        return BAD("%s: %u heads do not divide the width %u", what, hp->n_heads, hp->dim);
    if (hp->n_kv_heads == 0 || hp->n_heads % hp->n_kv_heads)
        return BAD("%s: %u KV heads do not divide %u heads", what, hp->n_kv_heads, hp->n_heads);
    if (hp->head_size != hp->dim / hp->n_heads)
        return BAD("%s: head size %u != width / heads", what, hp->head_size);
    if (hp->n_rot == 0 || hp->n_rot > hp->head_size || hp->n_rot % 2)
        return BAD("%s: rotary dimension %u invalid for head size %u", what, hp->n_rot,
                   hp->head_size);
    if (hp->vocab_size == 0 || hp->vocab_size > MIPR_MAX_VOCAB)
        return BAD("%s: vocabulary size %u outside 1..%u", what, hp->vocab_size, MIPR_MAX_VOCAB);
    if (hp->seq_len == 0 || hp->seq_len > MIPR_MAX_SEQ)
        return BAD("%s: context length %u outside 1..%u", what, hp->seq_len, MIPR_MAX_SEQ);
    if (!(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f))
        return BAD("%s: norm epsilon %g outside (0, 1)", what, (double)hp->norm_eps);
    if (!(hp->rope_theta > 1.0f && hp->rope_theta < 1e12f))
        return BAD("%s: rope theta %g outside (1, 1e12)", what, (double)hp->rope_theta);
    if (hp->family > MIPR_FAMILY_QWEN2)
        return BAD("%s: architecture family %u unknown", what, hp->family);
    if (hp->rope_type > MIPR_ROPE_NEOX)
        return BAD("%s: rope type %u unknown", what, hp->rope_type);
    if (!(hp->rope_scale == 0.0f || (hp->rope_scale >= 1e-3f && hp->rope_scale <= 1e6f)))
        return BAD("%s: linear rope scaling factor %g outside [0.001, 1e6] (0: none)", what,
                   (double)hp->rope_scale);
#undef BAD
    return MIPR_OK;
}

static mipr_status check_tensor(const mipr_tensor *t, const char *tname, int layer,
                                uint32_t rows, uint32_t cols, int f32_only, const char *what,
                                mipr_error *err)
{
    char name[64];
    if (layer >= 0)
        snprintf(name, sizeof name, "blk.%d.%s", layer, tname);
    else
        snprintf(name, sizeof name, "%s", tname);
    if (!t->data && !t->stream_)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s is missing", what, name);
    if (f32_only && t->stream_)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s must not be streamed",
                              what, name);
    if (t->rows != rows || t->cols != cols)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s is %ux%u, expected %ux%u",
                              what, name, t->rows, t->cols, rows, cols);
    if ((unsigned)t->type >= MIPR_DT_COUNT || (f32_only && t->type != MIPR_DT_F32))
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: tensor %s has type %s here",
                              what, name, mipr_dtype_name(t->type));
    if (mipr_dtype_row_bytes(t->type, cols) == 0)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: rows of %u can't be %s",
                              what, name, cols, mipr_dtype_name(t->type));
    return MIPR_OK;
}

static mipr_status check_layer(const mipr_model *m, int l, const char *what, mipr_error *err)
{
    const mipr_hparams *hp = &m->hp;
    const mipr_layer *L = &m->layers[l];
    uint32_t kv = hp->head_size * hp->n_kv_heads;
    if (L->d_ff == 0 || L->d_ff > MIPR_MAX_FF)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: layer %d FFN width %u outside 1..%u",
                              what, l, L->d_ff, MIPR_MAX_FF);
    mipr_status st;
    if ((st = check_tensor(&L->attn_norm, "attn_norm", l, 1, hp->dim, 1, what, err)) ||
        (st = check_tensor(&L->wq, "attn_q", l, hp->dim, hp->dim, 0, what, err)) ||
        (st = check_tensor(&L->wk, "attn_k", l, kv, hp->dim, 0, what, err)) ||
        (st = check_tensor(&L->wv, "attn_v", l, kv, hp->dim, 0, what, err)) ||
        (st = check_tensor(&L->wo, "attn_output", l, hp->dim, hp->dim, 0, what, err)) ||
        (st = check_tensor(&L->ffn_norm, "ffn_norm", l, 1, hp->dim, 1, what, err)) ||
        (st = check_tensor(&L->ffn_gate, "ffn_gate", l, L->d_ff, hp->dim, 0, what, err)) ||
        (st = check_tensor(&L->ffn_up, "ffn_up", l, L->d_ff, hp->dim, 0, what, err)) ||
        (st = check_tensor(&L->ffn_down, "ffn_down", l, hp->dim, L->d_ff, 0, what, err)))
        return st;
    const mipr_tensor *opt[4] = {&L->ffn_down_b, &L->bq, &L->bk, &L->bv};
    static const char *const names[4] = {"ffn_down.bias", "attn_q.bias", "attn_k.bias",
                                         "attn_v.bias"};
    uint32_t width[4] = {hp->dim, hp->dim, kv, kv};
    for (int i = 0; i < 4; i++)
        if ((opt[i]->data || opt[i]->stream_) &&
            (st = check_tensor(opt[i], names[i], l, 1, width[i], 1, what, err)))
            return st;
    return MIPR_OK;
}

/* Divisors of the rotary frequencies: finite and positive, or the angles are garbage. */
static mipr_status check_rope_freqs(const mipr_model *m, const char *what, mipr_error *err)
{
    const mipr_tensor *t = &m->rope_freqs;
    if (!t->data && !t->stream_)
        return MIPR_OK;
    mipr_status st = check_tensor(t, "rope_freqs", -1, 1, m->hp.n_rot / 2, 1, what, err);
    for (uint32_t i = 0; st == MIPR_OK && i < t->cols; i++) {
        float f = ((const float *)t->data)[i];
        if (!(f > 0.0f && f < 1e30f))
            return mipr_error_set(err, MIPR_ERR_FORMAT,
                                  "%s: tensor rope_freqs[%u] is %g, not a positive divisor",
                                  what, i, (double)f);
    }
    return st;
}

mipr_status mipr_model_validate(const mipr_model *m, const char *what, mipr_error *err)
{
    const mipr_hparams *hp = &m->hp;
    mipr_status st = mipr_hparams_check(hp, what, err);
    if (st)
        return st;
    if ((st = check_tensor(&m->tok_embd, "token_embd", -1, hp->vocab_size, hp->dim, 0, what,
                           err)) ||
        (st = check_tensor(&m->output_norm, "output_norm", -1, 1, hp->dim, 1, what, err)) ||
        (st = check_tensor(&m->output, "output", -1, hp->vocab_size, hp->dim, 0, what, err)))
        return st;
    for (uint32_t l = 0; l < hp->n_layers; l++)
        if ((st = check_layer(m, (int)l, what, err)))
            return st;
    return check_rope_freqs(m, what, err);
}

static uint64_t numel(const mipr_tensor *t)
{
    return (uint64_t)t->rows * t->cols;
}

uint64_t mipr_model_n_params(const mipr_model *m)
{
    uint64_t n = numel(&m->tok_embd) + numel(&m->output_norm);
    if (!m->tied_output)
        n += numel(&m->output);
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        const mipr_layer *L = &m->layers[l];
        n += numel(&L->attn_norm) + numel(&L->wq) + numel(&L->wk) + numel(&L->wv) +
             numel(&L->wo) + numel(&L->ffn_norm) + numel(&L->ffn_gate) + numel(&L->ffn_up) +
             numel(&L->ffn_down) + (L->ffn_down_b.data ? numel(&L->ffn_down_b) : 0) +
             (L->bq.data ? numel(&L->bq) : 0) + (L->bk.data ? numel(&L->bk) : 0) +
             (L->bv.data ? numel(&L->bv) : 0);
    }
    return n;
}
