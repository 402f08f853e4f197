/* llama2.c checkpoints, version 0 ("legacy"): a 7 x int32 header, then float32 arrays. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mipr.h"

struct l2c_header {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

static mipr_status check_header(const struct l2c_header *h, const char *path, mipr_error *err)
{
    struct { const char *name; int32_t v; uint32_t max; } f[] = {
        {"dim", h->dim, MIPR_MAX_DIM},           {"hidden_dim", h->hidden_dim, MIPR_MAX_FF},
        {"n_layers", h->n_layers, MIPR_MAX_LAYERS}, {"n_heads", h->n_heads, MIPR_MAX_DIM},
        {"n_kv_heads", h->n_kv_heads, MIPR_MAX_DIM}, {"seq_len", h->seq_len, MIPR_MAX_SEQ},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (f[i].v <= 0 || (uint32_t)f[i].v > f[i].max)
            return mipr_error_set(err, MIPR_ERR_FORMAT,
                                  "%s: header field %s = %d is outside 1..%u (not a llama2.c "
                                  "version 0 checkpoint, or a corrupt one)",
                                  path, f[i].name, f[i].v, f[i].max);
    uint32_t vocab = h->vocab_size < 0 ? (uint32_t)0 - (uint32_t)h->vocab_size
                                       : (uint32_t)h->vocab_size;
    if (vocab == 0 || vocab > MIPR_MAX_VOCAB)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: header field vocab_size = %d is outside "
                              "1..%u in magnitude", path, h->vocab_size, MIPR_MAX_VOCAB);
    if (h->dim % h->n_heads || h->n_heads % h->n_kv_heads || (h->dim / h->n_heads) % 2)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: dim %d, n_heads %d and n_kv_heads %d "
                              "are inconsistent", path, h->dim, h->n_heads, h->n_kv_heads);
    return MIPR_OK;
}

/* Walks the arrays in file order, handing out views; returns the floats consumed. */
static uint64_t place(mipr_model *m, const float *base, const struct l2c_header *h)
{
    const uint64_t dim = (uint64_t)h->dim, ff = (uint64_t)h->hidden_dim, L = (uint64_t)h->n_layers;
    const uint64_t hs = dim / (uint64_t)h->n_heads, kv = hs * (uint64_t)h->n_kv_heads;
    const uint64_t vocab = m->hp.vocab_size;
    uint64_t at = 0;
#define TAKE(T, R, C) (T = (mipr_tensor){.type = MIPR_DT_F32, .rows = (uint32_t)(R), .cols = (uint32_t)(C), .data = base + at}, at += (uint64_t)(R) * (C))
    TAKE(m->tok_embd, vocab, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].attn_norm, 1, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].wq, dim, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].wk, kv, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].wv, kv, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].wo, dim, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].ffn_norm, 1, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].ffn_gate, ff, dim);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].ffn_down, dim, ff);
    for (uint64_t l = 0; l < L; l++) TAKE(m->layers[l].ffn_up, ff, dim);
    TAKE(m->output_norm, 1, dim);
    at += (uint64_t)h->seq_len * hs; /* freq_cis_real and _imag: unused, RoPE is recomputed */
    if (h->vocab_size < 0)
        TAKE(m->output, vocab, dim);
    else
        m->output = m->tok_embd;
#undef TAKE
    return at;
}

/* Floats the arrays need, computed without placing anything (all factors are bounded). */
static uint64_t needed_floats(const struct l2c_header *h)
{
    const uint64_t dim = (uint64_t)h->dim, ff = (uint64_t)h->hidden_dim, L = (uint64_t)h->n_layers;
    const uint64_t hs = dim / (uint64_t)h->n_heads, kv = hs * (uint64_t)h->n_kv_heads;
    const uint64_t vocab = h->vocab_size < 0 ? (uint64_t)-(int64_t)h->vocab_size
                                             : (uint64_t)h->vocab_size;
    uint64_t n = vocab * dim * (h->vocab_size < 0 ? 2 : 1) + dim;
    n += L * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * ff * dim);
    return n + (uint64_t)h->seq_len * hs;
}

static mipr_status fill_model(mipr_model *m, const struct l2c_header *h)
{
    mipr_hparams *hp = &m->hp;
    hp->dim = (uint32_t)h->dim;
    hp->n_heads = (uint32_t)h->n_heads;
    hp->n_kv_heads = (uint32_t)h->n_kv_heads;
    hp->head_size = hp->dim / hp->n_heads;
    hp->n_rot = hp->head_size;
    hp->vocab_size = h->vocab_size < 0 ? (uint32_t)-(int64_t)h->vocab_size : (uint32_t)h->vocab_size;
    hp->seq_len = (uint32_t)h->seq_len;
    hp->norm_eps = 1e-5f;
    hp->rope_theta = 10000.0f;
    m->tied_output = h->vocab_size > 0;
    for (uint32_t l = 0; l < hp->n_layers; l++)
        m->layers[l].d_ff = (uint32_t)h->hidden_dim;
    return MIPR_OK;
}

/* Validates the header and the size, then builds the model over data (borrowed). */
static mipr_status read_model(mipr_model **out, const uint8_t *data, size_t size,
                              const char *name, mipr_error *err)
{
    struct l2c_header h;
    if (size < sizeof h)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: %zu bytes is too short for a llama2.c "
                              "checkpoint header (28 bytes)", name, size);
    memcpy(&h, data, sizeof h);
    if (h.dim == 0x616b3432)
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: llama2.c version %d checkpoint "
                              "(magic ak42); only version 0 is supported", name, h.hidden_dim);
    mipr_status st = check_header(&h, name, err);
    if (st)
        return st;
    /* Every factor is bounded by the limits above, so this cannot overflow 64 bits, and
     * nothing is allocated before the file is known to hold exactly these bytes. */
    uint64_t need = sizeof h + 4 * needed_floats(&h);
    if (need != size)
        return mipr_error_set(err, MIPR_ERR_FORMAT,
                              "%s: the header describes %llu bytes of weights but the file has "
                              "%zu bytes (%s)", name, (unsigned long long)need, size,
                              need > size ? "truncated?" : "wrong header or trailing data");
    mipr_model *m = NULL;
    if ((st = mipr_model_new(&m, (uint32_t)h.n_layers, err)))
        return st;
    fill_model(m, &h);
    place(m, (const float *)(const void *)(data + sizeof h), &h);
    snprintf(m->name, sizeof m->name, "llama2.c");
    *out = m;
    return MIPR_OK;
}

mipr_status mipr_llama2c_read_model(mipr_model **out, const void *buf, size_t len,
                                    const char *name, mipr_error *err)
{
    *out = NULL;
    if (!name)
        name = "(memory)";
    if (len && ((uintptr_t)buf % sizeof(float)))
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: buffer is not aligned for floats", name);
    mipr_model *m = NULL;
    mipr_status st = read_model(&m, buf, len, name, err);
    if (st == MIPR_OK && (st = mipr_model_validate(m, name, err)) != MIPR_OK) {
        mipr_model_free(m);
        m = NULL;
    }
    *out = m;
    return st;
}

mipr_status mipr_llama2c_load_model(mipr_model **out, const char *path, mipr_error *err)
{
    *out = NULL;
    mipr_mapped_file f;
    mipr_status st = mipr_file_map(&f, path, err);
    if (st)
        return st;
    mipr_model *m = NULL;
    if ((st = read_model(&m, f.data, f.size, path, err)) == MIPR_OK &&
        (st = mipr_model_adopt_file(m, &f, err)) == MIPR_OK)
        st = mipr_model_validate(m, path, err);
    if (st) {
        mipr_model_free(m);
        mipr_file_unmap(&f);
        return st;
    }
    *out = m;
    return MIPR_OK;
}
