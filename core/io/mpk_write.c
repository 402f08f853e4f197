/* Writing .mpk files (docs/FORMAT.md). Tensors are converted a chunk of rows at a time, so
 * memory use is a few chunks, never a second copy of the model. The header is written last
 * (it holds the directory's place and checksum); the file appears atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "mpk_format.h"
#include "rows.h"

#define DEFAULT_CHUNK (256u << 10)
#define DEFAULT_LEVEL 9
/* A tensor is stored compressed only when zstd saves at least this share: uncompressed
 * tensors are used in place (no copy, no decoding) by the runtime, which beats a few %. */
#define MIN_SAVING 0.03

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
    int oom;
} bytes;

static uint8_t *bytes_add(bytes *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    b->n += n;
    return b->p + b->n - n;
}

static void bytes_u32(bytes *b, uint32_t v)
{
    uint8_t *p = bytes_add(b, 4);
    if (p)
        mpk_put_u32(p, v);
}

typedef struct mw {
    mipr_outfile *o;
    const char *path;
    mipr_error *err;
    mipr_status st;
    uint64_t pos;
    const mipr_mpk_write_opts *opts;
    int level;
    mipr_crc32_table crc;
    ZSTD_CCtx *cctx;
    bytes dir, tens;
    uint32_t n_dir, n_tensors, total_tensors;
    float *rowf;
    uint8_t *raw, *planes, *comp, *comp2;
    size_t chunk_cap, comp_cap;
} mw;

static void w_bytes(mw *w, const void *p, size_t n)
{
    if (w->st == MIPR_OK && n)
        w->st = mipr_outfile_write(w->o, p, n, w->err);
    w->pos += n;
}

static void w_align(mw *w)
{
    static const uint8_t zero[MPK_ALIGN];
    if (w->pos % MPK_ALIGN)
        w_bytes(w, zero, MPK_ALIGN - w->pos % MPK_ALIGN);
}

static mipr_status oom(mw *w)
{
    if (w->st == MIPR_OK)
        w->st = mipr_error_set(w->err, MIPR_ERR_NOMEM, "%s: out of memory", w->path);
    return w->st;
}

/* zstd into dst (capacity cap); returns 0 when it fails or does not fit. */
static size_t compress(mw *w, uint8_t *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t c = ZSTD_compress2(w->cctx, dst, cap, src, n);
    return ZSTD_isError(c) ? 0 : c;
}

/* ---- sections ----------------------------------------------------------------------------- */

static void dir_entry(mw *w, const char tag[4], uint32_t flags, uint32_t codec, uint64_t off,
                      uint64_t stored, uint64_t raw, uint32_t crc)
{
    uint8_t *e = bytes_add(&w->dir, MPK_DIR_ENTRY_BYTES);
    if (!e) {
        oom(w);
        return;
    }
    memset(e, 0, MPK_DIR_ENTRY_BYTES);
    memcpy(e, tag, 4);
    mpk_put_u32(e + 4, flags);
    mpk_put_u32(e + 8, codec);
    mpk_put_u64(e + 16, off);
    mpk_put_u64(e + 24, stored);
    mpk_put_u64(e + 32, raw);
    mpk_put_u32(e + 40, crc);
    w->n_dir++;
}

/* Stores a section, zstd-compressed when that is smaller (and allowed). */
static void add_section(mw *w, const char tag[4], uint32_t flags, const void *data, size_t n)
{
    w_align(w);
    const uint8_t *out = data;
    size_t stored = n;
    uint32_t codec = MPK_CODEC_RAW;
    uint8_t *tmp = NULL;
    if (!w->opts->raw && n > 64) {
        size_t cap = ZSTD_compressBound(n);
        if (!(tmp = malloc(cap))) {
            oom(w);
            return;
        }
        size_t c = compress(w, tmp, cap, data, n);
        if (c && c < n) {
            out = tmp;
            stored = c;
            codec = MPK_CODEC_ZSTD;
        }
    }
    dir_entry(w, tag, flags, codec, w->pos, stored, n, mipr_crc32(&w->crc, 0, out, stored));
    w_bytes(w, out, stored);
    free(tmp);
}

static void put_hpar(mw *w, const mipr_model *m)
{
    size_t tail = MPK_HPAR_FIXED_BYTES + 4 * (size_t)m->hp.n_layers;
    size_t n = tail + MPK_HPAR_TAIL_BYTES;
    uint8_t *b = calloc(1, n);
    if (!b) {
        oom(w);
        return;
    }
    const mipr_hparams *hp = &m->hp;
    uint32_t u[] = {hp->dim, hp->n_layers, hp->n_heads, hp->n_kv_heads, hp->head_size,
                    hp->n_rot, hp->vocab_size, hp->seq_len};
    for (size_t i = 0; i < 8; i++)
        mpk_put_u32(b + 4 * i, u[i]);
    mpk_put_f32(b + 32, hp->norm_eps);
    mpk_put_f32(b + 36, hp->rope_theta);
    mpk_put_u32(b + 40, m->tied_output ? MPK_HPAR_TIED : 0);
    for (size_t i = 0; i < 63 && m->name[i]; i++)
        b[48 + i] = (uint8_t)m->name[i];
    for (uint32_t l = 0; l < hp->n_layers; l++)
        mpk_put_u32(b + MPK_HPAR_FIXED_BYTES + 4 * (size_t)l, m->layers[l].d_ff);
    mpk_put_u32(b + tail, hp->family);
    mpk_put_u32(b + tail + 4, hp->rope_type);
    mpk_put_f32(b + tail + 8, hp->rope_scale);
    add_section(w, "HPAR", MPK_SEC_REQUIRED, b, n);
    free(b);
}

/* TOKN version 1's tail (docs/FORMAT.md): the flags, the split rules and the merges. */
static void put_tokn_v1(bytes *b, const mipr_tokenizer *t)
{
    uint32_t nm = mipr_tokenizer_n_merges(t);
    uint32_t flags = (mipr_tokenizer_is_bpe(t) ? MPK_TOKN_BYTE_LEVEL : 0) |
                     (mipr_tokenizer_ignore_merges(t) ? MPK_TOKN_IGNORE_MERGES : 0) |
                     (mipr_tokenizer_add_bos(t) ? MPK_TOKN_ADD_BOS : 0) |
                     (mipr_tokenizer_add_eos(t) ? MPK_TOKN_ADD_EOS : 0) |
                     (mipr_tokenizer_fuse_unk(t) ? MPK_TOKN_FUSE_UNK : 0);
    bytes_u32(b, flags);
    bytes_u32(b, (uint32_t)mipr_tokenizer_pre(t));
    bytes_u32(b, nm);
    uint8_t *p = bytes_add(b, 8 * (size_t)nm);
    for (uint32_t r = 0; p && r < nm; r++) {
        int32_t l = 0, rt = 0;
        mipr_tokenizer_merge(t, r, &l, &rt);
        mpk_put_u32(p + 8 * (size_t)r, (uint32_t)l);
        mpk_put_u32(p + 8 * (size_t)r + 4, (uint32_t)rt);
    }
}

static void put_tokn(mw *w, const mipr_tokenizer *t)
{
    bytes b = {0};
    uint32_t n = mipr_tokenizer_n_vocab(t);
    bytes_u32(&b, n);
    bytes_u32(&b, (uint32_t)mipr_tokenizer_bos(t));
    bytes_u32(&b, (uint32_t)mipr_tokenizer_eos(t));
    bytes_u32(&b, (uint32_t)mipr_tokenizer_unk(t));
    bytes_u32(&b, (uint32_t)mipr_tokenizer_add_space_prefix(t));
    bytes_u32(&b, MPK_TOKN_VERSION);
    for (uint32_t id = 0; id < n; id++) {
        size_t len;
        const char *piece = mipr_tokenizer_piece(t, id, &len);
        uint8_t *p = bytes_add(&b, 12 + len);
        if (!p)
            break;
        mpk_put_f32(p, mipr_tokenizer_score(t, id));
        mpk_put_u32(p + 4, (uint32_t)mipr_tokenizer_type(t, id));
        mpk_put_u32(p + 8, (uint32_t)len);
        memcpy(p + 12, piece, len);
    }
    put_tokn_v1(&b, t);
    if (b.oom)
        oom(w);
    else
        add_section(w, "TOKN", MPK_SEC_REQUIRED, b.p, b.n);
    free(b.p);
}

/* ---- tensors ------------------------------------------------------------------------------ */

typedef struct tplan {
    const mipr_tensor *src;
    uint32_t layer, slot;
    enum mipr_dtype type;
    size_t row_bytes;
    uint32_t rows_per_chunk, n_chunks;
    uint32_t codec, filter;
} tplan;

static int is_float(enum mipr_dtype t)
{
    return t == MIPR_DT_F32 || t == MIPR_DT_F16 || t == MIPR_DT_BF16;
}

static enum mipr_dtype wanted_type(const mw *w, const mipr_tensor *t, uint32_t slot)
{
    if (t->rows == 1) /* norms and biases */
        return MIPR_DT_F32;
    enum mipr_dtype want = w->opts->type;
    int coarse = !is_float(want) && want != MIPR_DT_Q8_0;
    if (coarse && (slot == MPK_SLOT_TOK_EMBD || slot == MPK_SLOT_OUTPUT))
        return MIPR_DT_Q8_0;
    return want;
}

static void tensor_name(const tplan *p, char *out, size_t cap)
{
    if (p->layer == MPK_NO_LAYER)
        snprintf(out, cap, "%s", mipr_mpk_slot_name(p->slot));
    else
        snprintf(out, cap, "blk.%u.%s", p->layer, mipr_mpk_slot_name(p->slot));
}

/* Rows [r0, r0 + n) of the source in the planned type, into w->raw. A row the type cannot
 * hold (NaN, infinities, overflow) sets w->st. */
static size_t fill_chunk(mw *w, const tplan *p, uint32_t r0, uint32_t n)
{
    const mipr_tensor *t = p->src;
    size_t in_bytes = mipr_dtype_row_bytes(t->type, t->cols);
    const uint8_t *src = (const uint8_t *)t->data + (size_t)r0 * in_bytes;
    if (t->type == p->type) {
        memcpy(w->raw, src, (size_t)n * in_bytes);
        return (size_t)n * in_bytes;
    }
    const struct mipr_kernels *k = mipr_kernels();
    char name[64];
    tensor_name(p, name, sizeof name);
    for (uint32_t r = 0; r < n && w->st == MIPR_OK; r++) {
        k->row_to_f32[t->type](w->rowf, t->data, r0 + r, t->cols);
        w->st = mipr_row_check(w->rowf, t->cols, p->type, w->path, name, r0 + r, w->err);
        if (w->st == MIPR_OK)
            mipr_row_encode(w->raw + (size_t)r * p->row_bytes, w->rowf, p->type, t->cols);
    }
    return (size_t)n * p->row_bytes;
}

/* Codec and filter from the first chunk: raw unless zstd saves MIN_SAVING; byte planes for
 * floats when they compress better (or as asked). */
static void choose_codec(mw *w, tplan *p)
{
    p->codec = MPK_CODEC_RAW;
    p->filter = MPK_FILTER_NONE;
    if (w->opts->raw)
        return;
    size_t n = fill_chunk(w, p, 0, p->rows_per_chunk < p->src->rows ? p->rows_per_chunk
                                                                      : p->src->rows);
    size_t plain = w->opts->planes == 1 && is_float(p->type)
                       ? 0 : compress(w, w->comp, w->comp_cap, w->raw, n);
    size_t planar = 0;
    if (is_float(p->type) && w->opts->planes != 0) {
        mipr_mpk_planes_split(w->planes, w->raw, n / (p->type == MIPR_DT_F32 ? 4 : 2),
                              p->type == MIPR_DT_F32 ? 4 : 2);
        planar = compress(w, w->comp, w->comp_cap, w->planes, n);
    }
    size_t best = plain && (!planar || plain <= planar) ? plain : planar;
    if (best && (double)best <= (1.0 - MIN_SAVING) * (double)n) {
        p->codec = MPK_CODEC_ZSTD;
        p->filter = best == planar && planar ? MPK_FILTER_PLANES : MPK_FILTER_NONE;
    }
}

/* Writes one chunk; returns its record. */
static void write_chunk(mw *w, const tplan *p, uint32_t c, uint8_t rec[MPK_CHUNK_BYTES])
{
    uint32_t r0 = c * p->rows_per_chunk;
    uint32_t n = p->src->rows - r0 < p->rows_per_chunk ? p->src->rows - r0 : p->rows_per_chunk;
    size_t raw = fill_chunk(w, p, r0, n);
    const uint8_t *out = w->raw;
    size_t stored = raw;
    if (p->codec == MPK_CODEC_ZSTD) {
        const uint8_t *src = w->raw;
        if (p->filter == MPK_FILTER_PLANES) {
            size_t elem = p->type == MIPR_DT_F32 ? 4 : 2;
            mipr_mpk_planes_split(w->planes, w->raw, raw / elem, elem);
            src = w->planes;
        }
        stored = compress(w, w->comp, w->comp_cap, src, raw);
        if (!stored && w->st == MIPR_OK)
            w->st = mipr_error_set(w->err, MIPR_ERR_NOMEM, "%s: zstd failed", w->path);
        out = w->comp;
    } else if (c == 0) {
        w_align(w); /* uncompressed chunks follow each other: the tensor is used in place */
    }
    if (p->codec == MPK_CODEC_ZSTD)
        w_align(w);
    memset(rec, 0, MPK_CHUNK_BYTES);
    mpk_put_u64(rec, w->pos);
    mpk_put_u64(rec + 8, stored);
    mpk_put_u32(rec + 16, mipr_crc32(&w->crc, 0, out, stored));
    w_bytes(w, out, stored);
}

static void report_tensor(mw *w, const tplan *p, uint64_t stored)
{
    if (!w->opts->on_tensor)
        return;
    mipr_mpk_tensor_info t = {0};
    tensor_name(p, t.name, sizeof t.name);
    t.type = p->type;
    t.rows = p->src->rows;
    t.cols = p->src->cols;
    t.n_chunks = p->n_chunks;
    t.codec = p->codec == MPK_CODEC_RAW ? "raw" : "zstd";
    t.planes = p->filter == MPK_FILTER_PLANES;
    t.raw_bytes = (uint64_t)p->row_bytes * p->src->rows;
    t.stored_bytes = stored;
    w->opts->on_tensor(w->opts->ctx, &t, w->n_tensors - 1, w->total_tensors);
}

static void put_tensor(mw *w, const mipr_tensor *t, uint32_t layer, uint32_t slot)
{
    if (w->st)
        return;
    tplan p = {t, layer, slot, wanted_type(w, t, slot), 0, 0, 0, 0, 0};
    p.row_bytes = mipr_dtype_row_bytes(p.type, t->cols);
    p.rows_per_chunk = (uint32_t)(w->chunk_cap / p.row_bytes);
    p.rows_per_chunk = p.rows_per_chunk > t->rows ? t->rows : p.rows_per_chunk;
    p.n_chunks = (t->rows + p.rows_per_chunk - 1) / p.rows_per_chunk;
    choose_codec(w, &p);
    uint8_t *e = bytes_add(&w->tens, MPK_TENSOR_FIXED_BYTES + (size_t)p.n_chunks * MPK_CHUNK_BYTES);
    if (!e) {
        oom(w);
        return;
    }
    uint32_t f[] = {layer, slot, p.type, p.codec, p.filter, t->rows, t->cols, p.rows_per_chunk,
                    p.n_chunks, 0};
    for (size_t i = 0; i < 10; i++)
        mpk_put_u32(e + 4 * i, f[i]);
    size_t rec_at = (size_t)(e - w->tens.p) + MPK_TENSOR_FIXED_BYTES;
    uint64_t stored = 0;
    for (uint32_t c = 0; c < p.n_chunks && w->st == MIPR_OK; c++) {
        uint8_t rec[MPK_CHUNK_BYTES];
        write_chunk(w, &p, c, rec);
        memcpy(w->tens.p + rec_at + (size_t)c * MPK_CHUNK_BYTES, rec, MPK_CHUNK_BYTES);
        stored += mpk_get_u64(rec + 8);
    }
    w->n_tensors++;
    report_tensor(w, &p, stored);
}

static void put_layer(mw *w, const mipr_layer *L, uint32_t l)
{
    const mipr_tensor *t[] = {&L->attn_norm, &L->wq,       &L->wk,     &L->wv,
                              &L->wo,        &L->ffn_norm, &L->ffn_gate, &L->ffn_up,
                              &L->ffn_down,  &L->ffn_down_b, &L->bq,     &L->bk,
                              &L->bv};
    for (uint32_t i = 0; i < 13; i++)
        if (t[i]->data)
            put_tensor(w, t[i], l, MPK_SLOT_ATTN_NORM + i);
}

static uint32_t count_tensors(const mipr_model *m)
{
    uint32_t n = (m->tied_output ? 2 : 3) + (m->rope_freqs.data != NULL);
    for (uint32_t l = 0; l < m->hp.n_layers; l++) {
        const mipr_layer *L = &m->layers[l];
        n += 9 + (L->ffn_down_b.data != NULL) + (L->bq.data != NULL) + (L->bk.data != NULL) +
             (L->bv.data != NULL);
    }
    return n;
}

static void put_tensors(mw *w, const mipr_model *m)
{
    w->total_tensors = count_tensors(m);
    bytes_u32(&w->tens, w->total_tensors);
    put_tensor(w, &m->tok_embd, MPK_NO_LAYER, MPK_SLOT_TOK_EMBD);
    put_tensor(w, &m->output_norm, MPK_NO_LAYER, MPK_SLOT_OUTPUT_NORM);
    if (!m->tied_output)
        put_tensor(w, &m->output, MPK_NO_LAYER, MPK_SLOT_OUTPUT);
    if (m->rope_freqs.data)
        put_tensor(w, &m->rope_freqs, MPK_NO_LAYER, MPK_SLOT_ROPE_FREQS);
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        put_layer(w, &m->layers[l], l);
    if (w->tens.oom)
        oom(w);
    if (w->st == MIPR_OK)
        add_section(w, "TENS", MPK_SEC_REQUIRED, w->tens.p, w->tens.n);
}

/* ---- the file ----------------------------------------------------------------------------- */

static void put_header(mw *w)
{
    uint8_t h[MPK_HEADER_BYTES] = {0};
    memcpy(h, MPK_MAGIC, 8);
    mpk_put_u32(h + 8, MPK_VERSION_MAJOR);
    mpk_put_u32(h + 12, MPK_VERSION_MINOR);
    mpk_put_u64(h + 16, w->pos);
    mpk_put_u64(h + 24, w->pos - w->dir.n);
    mpk_put_u32(h + 32, w->n_dir);
    mpk_put_u32(h + 36, mipr_crc32(&w->crc, 0, w->dir.p, w->dir.n));
    mpk_put_u32(h + 60, mipr_crc32(&w->crc, 0, h, 60));
    if (w->st == MIPR_OK && fseek(w->o->fp, 0, SEEK_SET) != 0)
        w->st = mipr_error_set(w->err, MIPR_ERR_IO, "%s: cannot seek", w->path);
    if (w->st == MIPR_OK)
        w->st = mipr_outfile_write(w->o, h, sizeof h, w->err);
}

static mipr_status check_opts(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                              const mipr_mpk_write_opts *o, mipr_error *err)
{
    if ((unsigned)o->type >= MIPR_DT_COUNT)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: unknown weight type %d", path, (int)o->type);
    if (o->level < 0 || o->level > 19)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: zstd level %d outside 1..19", path,
                              o->level);
    if (o->chunk_bytes && (o->chunk_bytes < 4096 || o->chunk_bytes > MPK_MAX_CHUNK_RAW / 2))
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: chunk size %u outside 4 KiB..8 MiB", path,
                              o->chunk_bytes);
    if (!tok || mipr_tokenizer_n_vocab(tok) != m->hp.vocab_size)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: the tokenizer must match the vocabulary",
                              path);
    for (size_t i = 0; i < o->n_extra; i++)
        if (!memcmp(o->extra[i].tag, "HPAR", 4) || !memcmp(o->extra[i].tag, "TOKN", 4) ||
            !memcmp(o->extra[i].tag, "TENS", 4))
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: extra section uses a reserved tag",
                                  path);
    return mipr_model_validate(m, path, err);
}

static mipr_status alloc_scratch(mw *w, const mipr_model *m)
{
    uint32_t max_cols = m->hp.dim;
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        max_cols = m->layers[l].d_ff > max_cols ? m->layers[l].d_ff : max_cols;
    /* a chunk holds at least one row, whatever the row's size */
    size_t row_max = (size_t)max_cols * sizeof(float);
    w->chunk_cap = w->opts->chunk_bytes ? w->opts->chunk_bytes : DEFAULT_CHUNK;
    w->chunk_cap = w->chunk_cap < row_max ? row_max : w->chunk_cap;
    w->comp_cap = ZSTD_compressBound(w->chunk_cap);
    w->rowf = malloc(row_max);
    w->raw = malloc(w->chunk_cap);
    w->planes = malloc(w->chunk_cap);
    w->comp = malloc(w->comp_cap);
    w->cctx = ZSTD_createCCtx();
    if (!(w->rowf && w->raw && w->planes && w->comp && w->cctx))
        return oom(w);
    /* frames carry zstd's checksum too: a reader that skips the CRC pass still catches damage */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1)))
        return w->st = mipr_error_set(w->err, MIPR_ERR_ARG, "%s: zstd rejects level %d", w->path,
                                      w->level);
    return MIPR_OK;
}

static void mw_free(mw *w)
{
    free(w->rowf);
    free(w->raw);
    free(w->planes);
    free(w->comp);
    free(w->dir.p);
    free(w->tens.p);
    ZSTD_freeCCtx(w->cctx);
}

mipr_status mipr_mpk_write_to(mipr_outfile *o, const mipr_model *m, const mipr_tokenizer *tok,
                              const mipr_mpk_write_opts *opts, mipr_error *err)
{
    const char *path = o->final_path;
    mipr_status st = check_opts(path, m, tok, opts, err);
    if (st)
        return st;
    mw w = {.o = o, .path = path, .err = err, .opts = opts,
            .level = opts->level ? opts->level : DEFAULT_LEVEL};
    mipr_crc32_init(&w.crc);
    if (alloc_scratch(&w, m) == MIPR_OK) {
        static const uint8_t blank[MPK_HEADER_BYTES];
        w_bytes(&w, blank, sizeof blank);
        put_hpar(&w, m);
        put_tokn(&w, tok);
        if (opts->meta)
            add_section(&w, "META", 0, opts->meta, strlen(opts->meta));
        for (size_t i = 0; i < opts->n_extra; i++)
            add_section(&w, opts->extra[i].tag, opts->extra[i].required ? MPK_SEC_REQUIRED : 0,
                        opts->extra[i].data, opts->extra[i].size);
        put_tensors(&w, m);
        w_align(&w);
        w_bytes(&w, w.dir.p, w.dir.n);
        if (w.dir.oom)
            oom(&w);
        put_header(&w);
    }
    mw_free(&w);
    return w.st;
}

mipr_status mipr_mpk_write(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                           const mipr_mpk_write_opts *opts, mipr_error *err)
{
    mipr_outfile o;
    mipr_status st = mipr_outfile_open(&o, path, err);
    if (st)
        return st;
    st = mipr_mpk_write_to(&o, m, tok, opts, err);
    if (st == MIPR_OK)
        st = mipr_outfile_commit(&o, err);
    mipr_outfile_abort(&o);
    return st;
}
