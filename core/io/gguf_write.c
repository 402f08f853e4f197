/* GGUF v3 writer. The header is produced twice by the same code: a dry run counts keys and
 * bytes, the real run streams them; tensor data is then converted row by row, so memory
 * use is one row, never a second copy of the model. The output appears atomically (see
 * outfile.c). Numbers are written little-endian; tensor rows are copied as the host holds
 * them, and mipr only runs on little-endian hosts. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytelevel.h"
#include "gguf_internal.h"
#include "rows.h"

#define ALIGN 32u

typedef struct writer {
    mipr_outfile *o; /* NULL: dry run, only count */
    mipr_error *err;
    mipr_status st;
    uint64_t pos, n_kv;
    const char *arch;
} writer;

/* How rows (or, for a bias vector, elements) of q/k move between RoPE layouts: the target
 * architecture fixes the layout (llama/deci interleaved, qwen2 rotate-half), so a model in
 * the other layout is permuted within each head on the way out. Attention is unchanged:
 * q and k get the same permutation. */
enum remap { REMAP_NONE = 0, REMAP_TO_INTERLEAVED, REMAP_TO_NEOX };

typedef struct planned {
    char name[MIPR_GGUF_MAX_NAME + 1];
    const mipr_tensor *src;
    enum mipr_dtype type; /* as written */
    int is_norm;
    enum remap remap;
    uint64_t nbytes, offset;
} planned;

typedef struct plan {
    planned *t;
    size_t n;
    uint32_t max_cols;
    int any_quant;
    const char *arch;
    enum remap remap;        /* for q/k */
    uint32_t head_size, n_rot;
} plan;

/* ---- primitive writes (sticky error) ----------------------------------------------------- */

static void w_bytes(writer *w, const void *p, size_t n)
{
    if (w->st != MIPR_OK)
        return;
    if (w->o)
        w->st = mipr_outfile_write(w->o, p, n, w->err);
    w->pos += n;
}

static void w_u32(writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_bytes(w, b, 4);
}

static void w_u64(writer *w, uint64_t v)
{
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_f32(writer *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    w_u32(w, v);
}

static void w_str(writer *w, const char *s, size_t n)
{
    w_u64(w, n);
    w_bytes(w, s, n);
}

static void w_pad(writer *w)
{
    static const uint8_t zeros[ALIGN];
    w_bytes(w, zeros, (size_t)((ALIGN - w->pos % ALIGN) % ALIGN));
}

/* ---- key/value pairs ---------------------------------------------------------------------- */

static void w_key(writer *w, const char *key, enum mipr_gguf_vtype type)
{
    w->n_kv++;
    w_str(w, key, strlen(key));
    w_u32(w, type);
}

static void w_arch_key(writer *w, const char *suffix, enum mipr_gguf_vtype type)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", w->arch, suffix);
    w_key(w, key, type);
}

static void kv_str(writer *w, const char *key, const char *v)
{
    w_key(w, key, MIPR_GGUF_STRING);
    w_str(w, v, strlen(v));
}

static void kv_u32(writer *w, const char *key, uint32_t v)
{
    w_key(w, key, MIPR_GGUF_UINT32);
    w_u32(w, v);
}

static void kv_arch_u32(writer *w, const char *suffix, uint32_t v)
{
    w_arch_key(w, suffix, MIPR_GGUF_UINT32);
    w_u32(w, v);
}

static void kv_arch_f32(writer *w, const char *suffix, float v)
{
    w_arch_key(w, suffix, MIPR_GGUF_FLOAT32);
    w_f32(w, v);
}

int mipr_model_has_ffn_bias(const mipr_model *m)
{
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        if (m->layers[l].ffn_down_b.data)
            return 1;
    return 0;
}

static int uniform_ffn(const mipr_model *m)
{
    for (uint32_t l = 1; l < m->hp.n_layers; l++)
        if (m->layers[l].d_ff != m->layers[0].d_ff)
            return 0;
    return 1;
}

/* llama.cpp's file-type numbers (LLAMA_FTYPE_*), for what most weights are. */
static uint32_t file_type(enum mipr_dtype t)
{
    switch (t) {
    case MIPR_DT_F16: return 1;
    case MIPR_DT_Q8_0: return 7;
    case MIPR_DT_Q4_0: return 2;
    case MIPR_DT_BF16: return 32;
    default: return 0;
    }
}

static void write_general(writer *w, const mipr_model *m, const plan *p, enum mipr_dtype type)
{
    kv_str(w, "general.architecture", w->arch);
    kv_str(w, "general.name", m->name[0] ? m->name : "mipr");
    kv_u32(w, "general.alignment", ALIGN);
    kv_u32(w, "general.file_type", file_type(type));
    if (p->any_quant)
        kv_u32(w, "general.quantization_version", 2);
}

/* llama.cpp reads feed_forward_length as a scalar or an array of block_count INT32/UINT32
 * (get_key_or_arr); deci keeps head counts scalar, which it also accepts. */
static void write_ffn(writer *w, const mipr_model *m)
{
    if (uniform_ffn(m)) {
        kv_arch_u32(w, "feed_forward_length", m->layers[0].d_ff);
        return;
    }
    w_arch_key(w, "feed_forward_length", MIPR_GGUF_ARRAY);
    w_u32(w, MIPR_GGUF_INT32);
    w_u64(w, m->hp.n_layers);
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        w_u32(w, m->layers[l].d_ff);
}

static void write_hparams(writer *w, const mipr_model *m)
{
    const mipr_hparams *hp = &m->hp;
    kv_arch_u32(w, "context_length", hp->seq_len);
    kv_arch_u32(w, "embedding_length", hp->dim);
    kv_arch_u32(w, "block_count", hp->n_layers);
    write_ffn(w, m);
    kv_arch_u32(w, "attention.head_count", hp->n_heads);
    kv_arch_u32(w, "attention.head_count_kv", hp->n_kv_heads);
    kv_arch_u32(w, "rope.dimension_count", hp->n_rot);
    kv_arch_f32(w, "rope.freq_base", hp->rope_theta);
    kv_arch_f32(w, "attention.layer_norm_rms_epsilon", hp->norm_eps);
    kv_arch_u32(w, "vocab_size", hp->vocab_size);
    if (hp->rope_scale > 0.0f && hp->rope_scale != 1.0f) {
        w_arch_key(w, "rope.scaling.type", MIPR_GGUF_STRING);
        w_str(w, "linear", 6);
        kv_arch_f32(w, "rope.scaling.factor", hp->rope_scale);
    }
}

/* SentencePiece spells a space U+2581 (E2 96 81). */
static size_t spaces_to_sp(char *dst, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(dst + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            dst[o++] = s[i];
        }
    }
    return o;
}

/* A piece as GGUF spells it: U+2581 spaces (SentencePiece), or GPT-2's byte map for the
 * vocabulary of a byte-level tokenizer (its control and user-defined tokens are text). */
static size_t gguf_piece(const mipr_tokenizer *t, uint32_t id, char *buf)
{
    size_t len = 0;
    const char *piece = mipr_tokenizer_piece(t, id, &len);
    enum mipr_token_type type = mipr_tokenizer_type(t, id);
    if (!mipr_tokenizer_is_bpe(t))
        return spaces_to_sp(buf, piece, len);
    if (type == MIPR_TOK_CONTROL || type == MIPR_TOK_USER) {
        memcpy(buf, piece, len);
        return len;
    }
    return mipr_bytelevel_encode(buf, piece, len);
}

static void write_pieces(writer *w, const mipr_tokenizer *t, char *buf)
{
    uint32_t n = mipr_tokenizer_n_vocab(t);
    w_key(w, "tokenizer.ggml.tokens", MIPR_GGUF_ARRAY);
    w_u32(w, MIPR_GGUF_STRING);
    w_u64(w, n);
    for (uint32_t id = 0; id < n; id++)
        w_str(w, buf, gguf_piece(t, id, buf));
}

/* tokenizer.ggml.merges: "left right" by rank. */
static void write_merges(writer *w, const mipr_tokenizer *t, char *buf)
{
    uint32_t n = mipr_tokenizer_n_merges(t);
    w_key(w, "tokenizer.ggml.merges", MIPR_GGUF_ARRAY);
    w_u32(w, MIPR_GGUF_STRING);
    w_u64(w, n);
    for (uint32_t r = 0; r < n; r++) {
        int32_t a = 0, b = 0;
        mipr_tokenizer_merge(t, r, &a, &b);
        size_t la = gguf_piece(t, (uint32_t)a, buf);
        size_t lb = gguf_piece(t, (uint32_t)b, buf + la + 1);
        buf[la] = ' ';
        w_str(w, buf, la + 1 + lb);
    }
}

static void kv_bool(writer *w, const char *key, int v)
{
    uint8_t b = v ? 1 : 0;
    w_key(w, key, MIPR_GGUF_BOOL);
    w_bytes(w, &b, 1);
}

/* GGUF "llama" merges by score: a SentencePiece-style tokenizer that merges by rank (read
 * from tokenizer.json) gets score -rank for the token its lowest-ranked rule makes, and
 * -1e30 (never merged) for tokens no rule makes, which is the same order. */
static float spm_score(const mipr_tokenizer *t, uint32_t id, const float *rank_score)
{
    return rank_score ? rank_score[id] : mipr_tokenizer_score(t, id);
}

static float *rank_scores(const mipr_tokenizer *t)
{
    uint32_t n = mipr_tokenizer_n_vocab(t), nm = mipr_tokenizer_n_merges(t);
    if (mipr_tokenizer_is_bpe(t) || nm == 0)
        return NULL;
    float *s = malloc(n * sizeof *s);
    char *buf = s ? malloc(2 * 1024 + 2) : NULL;
    if (!buf) {
        free(s);
        return NULL;
    }
    for (uint32_t id = 0; id < n; id++) {
        size_t len = 0;
        mipr_tokenizer_piece(t, id, &len);
        s[id] = len > 1 || mipr_tokenizer_type(t, id) != MIPR_TOK_NORMAL ? -1e30f : 0.0f;
    }
    /* Rules from the last: each token ends with its lowest rank. */
    for (uint32_t r = nm; r-- > 0;) {
        int32_t a = 0, b = 0;
        size_t la, lb;
        mipr_tokenizer_merge(t, r, &a, &b);
        const char *pa = mipr_tokenizer_piece(t, (uint32_t)a, &la);
        const char *pb = mipr_tokenizer_piece(t, (uint32_t)b, &lb);
        memcpy(buf, pa, la);
        memcpy(buf + la, pb, lb);
        int32_t res = mipr_tokenizer_lookup(t, buf, la + lb);
        if (res >= 0)
            s[res] = -(float)r;
    }
    free(buf);
    return s;
}

static void write_token_meta(writer *w, const mipr_tokenizer *t, const float *rank_score)
{
    uint32_t n = mipr_tokenizer_n_vocab(t);
    int bpe = mipr_tokenizer_is_bpe(t);
    if (!bpe) {
        w_key(w, "tokenizer.ggml.scores", MIPR_GGUF_ARRAY);
        w_u32(w, MIPR_GGUF_FLOAT32);
        w_u64(w, n);
        for (uint32_t id = 0; id < n; id++)
            w_f32(w, spm_score(t, id, rank_score));
    }
    w_key(w, "tokenizer.ggml.token_type", MIPR_GGUF_ARRAY);
    w_u32(w, MIPR_GGUF_INT32);
    w_u64(w, n);
    for (uint32_t id = 0; id < n; id++)
        w_u32(w, (uint32_t)mipr_tokenizer_type(t, id));
    if (mipr_tokenizer_bos(t) >= 0)
        kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)mipr_tokenizer_bos(t));
    if (mipr_tokenizer_eos(t) >= 0)
        kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)mipr_tokenizer_eos(t));
    if (mipr_tokenizer_unk(t) >= 0)
        kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)mipr_tokenizer_unk(t));
    if (!bpe)
        kv_bool(w, "tokenizer.ggml.add_space_prefix", mipr_tokenizer_add_space_prefix(t));
    /* SentencePiece files without these keys mean BOS yes, EOS no: only write a change. */
    if (bpe || !mipr_tokenizer_add_bos(t) || mipr_tokenizer_add_eos(t)) {
        kv_bool(w, "tokenizer.ggml.add_bos_token", mipr_tokenizer_add_bos(t));
        kv_bool(w, "tokenizer.ggml.add_eos_token", mipr_tokenizer_add_eos(t));
    }
}

/* buf holds two of the longest pieces with every byte tripled. */
static void write_tokenizer(writer *w, const mipr_tokenizer *t, char *buf)
{
    if (!t)
        return;
    int bpe = mipr_tokenizer_is_bpe(t);
    kv_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
    if (bpe)
        kv_str(w, "tokenizer.ggml.pre", mipr_pre_name(mipr_tokenizer_pre(t)));
    write_pieces(w, t, buf);
    if (bpe)
        write_merges(w, t, buf);
    float *rank_score = rank_scores(t);
    write_token_meta(w, t, rank_score);
    free(rank_score);
}

static void write_kvs(writer *w, const mipr_model *m, const mipr_tokenizer *tok, const plan *p,
                      enum mipr_dtype type, char *buf)
{
    write_general(w, m, p, type);
    write_hparams(w, m);
    write_tokenizer(w, tok, buf);
}

/* ---- the tensor plan ---------------------------------------------------------------------- */

static mipr_status add_tensor(plan *p, const char *path, const char *name, const mipr_tensor *t,
                              int is_norm, const mipr_gguf_write_opts *opts, mipr_error *err)
{
    planned *e = &p->t[p->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->src = t;
    e->is_norm = is_norm;
    if (t->type >= MIPR_DT_COUNT || !t->data || t->rows == 0 || t->cols == 0 ||
        mipr_dtype_row_bytes(t->type, t->cols) == 0)
        return mipr_error_set(err, MIPR_ERR_ARG,
                              "%s: tensor %s is invalid (type %d, %" PRIu32 "x%" PRIu32 ")", path,
                              name, (int)t->type, t->rows, t->cols);
    e->type = is_norm ? MIPR_DT_F32 : opts->keep_types ? t->type : opts->type;
    size_t block = mipr_dtype_block_size(e->type);
    if (block > 1 && t->cols % block) {
        /* ggml's blocks cannot split a row (no partial last block in GGUF) */
        if (opts->on_fallback)
            opts->on_fallback(opts->ctx, name, e->type, MIPR_DT_F16);
        e->type = MIPR_DT_F16;
    }
    p->any_quant |= mipr_dtype_block_size(e->type) > 1;
    if (t->cols > p->max_cols)
        p->max_cols = t->cols;
    e->nbytes = (uint64_t)mipr_dtype_row_bytes(e->type, t->cols) * t->rows;
    return MIPR_OK;
}

static mipr_status plan_layer(plan *p, const char *path, const mipr_model *m, uint32_t l,
                              const mipr_gguf_write_opts *opts, mipr_error *err)
{
    static const char *const names[9] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                         "attn_norm", "ffn_gate", "ffn_down", "ffn_up",
                                         "ffn_norm"};
    const mipr_layer *ly = &m->layers[l];
    const mipr_tensor *src[9] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->attn_norm,
                                 &ly->ffn_gate, &ly->ffn_down, &ly->ffn_up, &ly->ffn_norm};
    for (int k = 0; k < 9; k++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%" PRIu32 ".%s.weight", l, names[k]);
        mipr_status st = add_tensor(p, path, name, src[k], k == 4 || k == 8, opts, err);
        if (st != MIPR_OK)
            return st;
    }
    p->t[p->n - 9].remap = p->t[p->n - 8].remap = p->remap; /* attn_q, attn_k */
    static const char *const biases[4] = {"attn_q", "attn_k", "attn_v", "ffn_down"};
    const mipr_tensor *bsrc[4] = {&ly->bq, &ly->bk, &ly->bv, &ly->ffn_down_b};
    for (int k = 0; k < 4; k++) {
        if (!bsrc[k]->data)
            continue;
        char bias[64];
        snprintf(bias, sizeof bias, "blk.%" PRIu32 ".%s.bias", l, biases[k]);
        mipr_status st = add_tensor(p, path, bias, bsrc[k], 1, opts, err);
        if (st != MIPR_OK)
            return st;
        if (k < 2)
            p->t[p->n - 1].remap = p->remap;
    }
    return MIPR_OK;
}

/* qwen2 stays qwen2 when llama.cpp can read it back as such: its qwen2 loader takes one FFN
 * width for all layers (hparams.n_ff(), layer 0), no rope_freqs and no ffn_down bias (which
 * pruning's compensation adds; llama.cpp refuses a file with tensors it does not expect).
 * Otherwise the model goes
 * out as llama (uniform) or deci (per-layer widths), which take q/k/v biases too, with q/k
 * permuted into their interleaved RoPE layout. */
static void choose_arch(plan *p, const mipr_model *m)
{
    int uniform = uniform_ffn(m);
    int qwen2 = m->hp.family == MIPR_FAMILY_QWEN2 && uniform && !m->rope_freqs.data &&
                !mipr_model_has_ffn_bias(m);
    p->arch = qwen2 ? "qwen2" : uniform ? "llama" : "deci";
    int neox = m->hp.rope_type == MIPR_ROPE_NEOX;
    p->remap = qwen2 == neox ? REMAP_NONE : qwen2 ? REMAP_TO_NEOX : REMAP_TO_INTERLEAVED;
    p->head_size = m->hp.head_size;
    p->n_rot = m->hp.n_rot;
}

/* Same order as llama.cpp's converters write: embeddings, output, then layer by layer. */
static mipr_status make_plan(plan *p, const char *path, const mipr_model *m,
                             const mipr_gguf_write_opts *opts, mipr_error *err)
{
    memset(p, 0, sizeof *p);
    choose_arch(p, m);
    p->t = calloc(4 + 13 * (size_t)m->hp.n_layers, sizeof *p->t);
    if (!p->t)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", path);
    mipr_status st = MIPR_OK;
    if (m->rope_freqs.data) /* first, where llama.cpp's converter puts it */
        st = add_tensor(p, path, "rope_freqs.weight", &m->rope_freqs, 1, opts, err);
    if (st == MIPR_OK)
        st = add_tensor(p, path, "token_embd.weight", &m->tok_embd, 0, opts, err);
    if (st == MIPR_OK)
        st = add_tensor(p, path, "output_norm.weight", &m->output_norm, 1, opts, err);
    if (st == MIPR_OK && !m->tied_output)
        st = add_tensor(p, path, "output.weight", &m->output, 0, opts, err);
    for (uint32_t l = 0; l < m->hp.n_layers && st == MIPR_OK; l++)
        st = plan_layer(p, path, m, l, opts, err);
    uint64_t off = 0;
    for (size_t i = 0; i < p->n && st == MIPR_OK; i++) {
        p->t[i].offset = off;
        off += (p->t[i].nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    return st;
}

static void write_infos(writer *w, const plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        const planned *e = &p->t[i];
        w_str(w, e->name, strlen(e->name));
        w_u32(w, e->is_norm ? 1 : 2);
        w_u64(w, e->src->cols); /* ne[0] is the row length */
        if (!e->is_norm)
            w_u64(w, e->src->rows);
        w_u32(w, mipr_ggml_from_dtype(e->type));
        w_u64(w, e->offset);
    }
}

/* ---- tensor data -------------------------------------------------------------------------- */

/* Index in the source of element (or row) j of a head written in the other RoPE layout;
 * dimensions past n_rot are not rotated and stay put. */
static uint32_t remap_index(const plan *p, enum remap how, uint32_t j)
{
    uint32_t head = j / p->head_size * p->head_size, i = j % p->head_size, half = p->n_rot / 2;
    if (how == REMAP_NONE || i >= p->n_rot)
        return j;
    if (how == REMAP_TO_INTERLEAVED) /* out (2k, 2k+1) <- in (k, k + half) */
        return head + (i % 2 ? i / 2 + half : i / 2);
    return head + (i < half ? 2 * i : 2 * (i - half) + 1); /* out (k, k + half) <- (2k, 2k+1) */
}

/* A bias vector in the other layout: its elements move as the rows of its matrix do. */
static void write_remapped_vector(writer *w, const plan *p, const planned *e, float *rowf,
                                  uint8_t *rowb)
{
    const mipr_tensor *t = e->src;
    const float *src = t->data; /* biases are F32 (mipr_model_validate) */
    for (uint32_t j = 0; j < t->cols; j++)
        rowf[j] = src[remap_index(p, e->remap, j)];
    w_bytes(w, rowb, mipr_row_encode(rowb, rowf, e->type, t->cols));
    w_pad(w);
}

/* Rows already in the wanted type are copied bit for bit; others go through f32. */
static void write_data(writer *w, const plan *p, const planned *e, float *rowf, uint8_t *rowb)
{
    const mipr_tensor *t = e->src;
    if (e->remap && t->rows == 1) {
        write_remapped_vector(w, p, e, rowf, rowb);
        return;
    }
    size_t in_bytes = mipr_dtype_row_bytes(t->type, t->cols);
    const uint8_t *src = t->data;
    for (uint32_t r = 0; r < t->rows && w->st == MIPR_OK; r++) {
        const uint8_t *row = src + (size_t)remap_index(p, e->remap, r) * in_bytes;
        if (t->type == e->type) {
            w_bytes(w, row, in_bytes);
        } else {
            mipr_gguf_to_f32(rowf, row, t->type, t->cols);
            w->st = mipr_row_check(rowf, t->cols, e->type, w->o->final_path, e->name, r, w->err);
            if (w->st == MIPR_OK)
                w_bytes(w, rowb, mipr_row_encode(rowb, rowf, e->type, t->cols));
        }
    }
    w_pad(w);
}

static mipr_status write_all_data(writer *w, const plan *p)
{
    size_t cols = p->max_cols ? p->max_cols : 1;
    float *rowf = malloc(cols * sizeof(float));
    uint8_t *rowb = malloc(cols * sizeof(float));
    if (!rowf || !rowb)
        w->st = mipr_error_set(w->err, MIPR_ERR_NOMEM, "out of memory for a row of %zu", cols);
    for (size_t i = 0; i < p->n && w->st == MIPR_OK; i++)
        write_data(w, p, &p->t[i], rowf, rowb);
    free(rowf);
    free(rowb);
    return w->st;
}

/* ---- the file ----------------------------------------------------------------------------- */

static void write_header(writer *w, const mipr_model *m, const mipr_tokenizer *tok,
                         const plan *p, enum mipr_dtype type, char *buf)
{
    writer dry = {.err = w->err, .arch = w->arch};
    write_kvs(&dry, m, tok, p, type, buf);
    w_bytes(w, MIPR_GGUF_MAGIC, 4);
    w_u32(w, 3);
    w_u64(w, p->n);
    w_u64(w, dry.n_kv);
    write_kvs(w, m, tok, p, type, buf);
    write_infos(w, p);
    w_pad(w);
}

static mipr_status check_args(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                              const mipr_gguf_write_opts *opts, mipr_error *err)
{
    if (!path || !m || !opts)
        return mipr_error_set(err, MIPR_ERR_ARG, "gguf write: missing path, model or options");
    if (opts->type >= MIPR_DT_COUNT)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: invalid tensor type %d", path,
                              (int)opts->type);
    if (tok && mipr_tokenizer_n_vocab(tok) != m->hp.vocab_size)
        return mipr_error_set(err, MIPR_ERR_ARG,
                              "%s: tokenizer has %" PRIu32 " tokens, model vocabulary %" PRIu32,
                              path, mipr_tokenizer_n_vocab(tok), m->hp.vocab_size);
    return mipr_model_validate(m, path, err);
}

/* Scratch for two token pieces with spaces widened to U+2581 (or byte-mapped). */
static char *piece_buffer(const mipr_tokenizer *tok)
{
    size_t longest = 0;
    uint32_t n = tok ? mipr_tokenizer_n_vocab(tok) : 0;
    for (uint32_t id = 0; id < n; id++) {
        size_t len = 0;
        mipr_tokenizer_piece(tok, id, &len);
        longest = len > longest ? len : longest;
    }
    return malloc(6 * longest + 2);
}

/* Header and data into o; the caller commits or aborts. */
static mipr_status write_into(mipr_outfile *o, const mipr_model *m, const mipr_tokenizer *tok,
                              const plan *p, enum mipr_dtype type, char *buf, mipr_error *err)
{
    writer w = {.o = o, .err = err, .arch = p->arch};
    write_header(&w, m, tok, p, type, buf);
    if (w.st == MIPR_OK)
        write_all_data(&w, p);
    return w.st;
}

mipr_status mipr_gguf_write_to(mipr_outfile *o, const mipr_model *m, const mipr_tokenizer *tok,
                               const mipr_gguf_write_opts *opts, mipr_error *err)
{
    const char *path = o && o->final_path ? o->final_path : "(output)";
    mipr_status st = check_args(path, m, tok, opts, err);
    if (st != MIPR_OK)
        return st;
    plan p;
    char *buf = NULL;
    st = make_plan(&p, path, m, opts, err);
    if (st == MIPR_OK && !(buf = piece_buffer(tok)))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", path);
    if (st == MIPR_OK)
        st = write_into(o, m, tok, &p, opts->type, buf, err);
    free(buf);
    free(p.t);
    return st;
}

mipr_status mipr_gguf_write(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                            const mipr_gguf_write_opts *opts, mipr_error *err)
{
    mipr_status st = check_args(path, m, tok, opts, err);
    mipr_outfile o;
    if (st != MIPR_OK || (st = mipr_outfile_open(&o, path, err)) != MIPR_OK)
        return st;
    st = mipr_gguf_write_to(&o, m, tok, opts, err);
    if (st == MIPR_OK)
        return mipr_outfile_commit(&o, err);
    mipr_outfile_abort(&o);
    return st;
}
