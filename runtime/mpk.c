/* Reading .mpk files (docs/FORMAT.md): the header and directory, the sections, the tensor
 * table, and a model built from them. Every size is checked against the file before it is
 * used or allocated; every stored byte is covered by a CRC-32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MIPR_HAVE_ZSTD
#include <zstd.h>
#endif

#include "model_internal.h"
#include "mpk_internal.h"

typedef struct mpk_reader {
    const mipr_mapped_file *file; /* set when the bytes are a mapping of ours */
    const uint8_t *p;
    size_t size;
    const char *what;
    uint64_t dir_offset; /* end of the payload */
    uint32_t n_sections, major, minor;
    const uint8_t *dir;
    mipr_crc32_table crc;
} mpk_reader;

#define BAD(...) mipr_error_set(err, MIPR_ERR_FORMAT, __VA_ARGS__)

int mipr_mpk_is_mpk(const void *data, size_t size)
{
    return size >= 8 && memcmp(data, MPK_MAGIC, 8) == 0;
}

/* Sections the loader decodes (load_section checks their checksums); every other one,
 * META included, is checked by check_other_sections. */
static int parsed_tag(const uint8_t *tag)
{
    return !memcmp(tag, "HPAR", 4) || !memcmp(tag, "TOKN", 4) || !memcmp(tag, "TENS", 4);
}

static int known_tag(const uint8_t *tag)
{
    return !memcmp(tag, "HPAR", 4) || !memcmp(tag, "TOKN", 4) || !memcmp(tag, "TENS", 4) ||
           !memcmp(tag, "META", 4);
}

static void tag_str(char out[5], const uint8_t *tag)
{
    for (int i = 0; i < 4; i++)
        out[i] = tag[i] >= 0x20 && tag[i] < 0x7F ? (char)tag[i] : '?';
    out[4] = 0;
}

/* A stored region [off, off + n) must lie inside the payload, between header and directory. */
static int in_payload(const mpk_reader *r, uint64_t off, uint64_t n)
{
    return off >= MPK_HEADER_BYTES && off <= r->dir_offset && n <= r->dir_offset - off;
}

/* Decoded bytes a stored region may claim (MPK_MAX_RATIO). */
static int ratio_ok(uint64_t raw, uint64_t stored)
{
    return raw <= stored * MPK_MAX_RATIO + MPK_RATIO_SLACK;
}

static mipr_status check_entry(const mpk_reader *r, uint32_t i, mipr_error *err)
{
    const uint8_t *e = r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES;
    char tag[5];
    tag_str(tag, e);
    uint32_t flags = mpk_get_u32(e + 4), codec = mpk_get_u32(e + 8);
    uint64_t off = mpk_get_u64(e + 16), stored = mpk_get_u64(e + 24), raw = mpk_get_u64(e + 32);
    if (!known_tag(e) && (flags & MPK_SEC_REQUIRED))
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: needs section '%s', which this "
                              "reader does not know (a newer mipr wrote it)", r->what, tag);
    if (!in_payload(r, off, stored) || off % MPK_ALIGN)
        return BAD("%s: section %s at %llu (+%llu bytes) lies outside the payload", r->what,
                   tag, (unsigned long long)off, (unsigned long long)stored);
    if (!known_tag(e))
        return MIPR_OK; /* optional and unknown: skipped, only its checksum is checked */
    if (codec > MPK_CODEC_ZSTD || (codec == MPK_CODEC_RAW && raw != stored))
        return BAD("%s: section %s: bad codec %u or size", r->what, tag, codec);
    if (!ratio_ok(raw, stored) || raw > ((uint64_t)1 << 31))
        return BAD("%s: section %s claims %llu bytes from %llu stored", r->what, tag,
                   (unsigned long long)raw, (unsigned long long)stored);
    return MIPR_OK;
}

static mipr_status parse_header(mpk_reader *r, mipr_error *err)
{
    const uint8_t *p = r->p;
    if (r->size < MPK_HEADER_BYTES)
        return BAD("%s: %llu bytes is too short for an .mpk header", r->what,
                   (unsigned long long)r->size);
    if (!mipr_mpk_is_mpk(p, r->size))
        return BAD("%s: not an .mpk file (bad magic)", r->what);
    if (mipr_crc32(&r->crc, 0, p, 60) != mpk_get_u32(p + 60))
        return BAD("%s: header checksum mismatch (corrupt header)", r->what);
    r->major = mpk_get_u32(p + 8);
    r->minor = mpk_get_u32(p + 12);
    if (r->major != MPK_VERSION_MAJOR)
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: format version %u.%u; this reader "
                              "knows %u.x", r->what, r->major, r->minor, MPK_VERSION_MAJOR);
    uint64_t file_size = mpk_get_u64(p + 16);
    if (file_size != r->size)
        return BAD("%s: is %llu bytes but its header says %llu (truncated or extended)", r->what,
                   (unsigned long long)r->size, (unsigned long long)file_size);
    r->dir_offset = mpk_get_u64(p + 24);
    r->n_sections = mpk_get_u32(p + 32);
    if (r->n_sections == 0 || r->n_sections > MPK_MAX_SECTIONS ||
        r->dir_offset < MPK_HEADER_BYTES || r->dir_offset > r->size ||
        (uint64_t)r->n_sections * MPK_DIR_ENTRY_BYTES != r->size - r->dir_offset)
        return BAD("%s: directory of %u sections at %llu does not fit the file", r->what,
                   r->n_sections, (unsigned long long)r->dir_offset);
    r->dir = p + r->dir_offset;
    if (mipr_crc32(&r->crc, 0, r->dir, (size_t)r->n_sections * MPK_DIR_ENTRY_BYTES) !=
        mpk_get_u32(p + 36))
        return BAD("%s: directory checksum mismatch (corrupt directory)", r->what);
    mipr_status st;
    for (uint32_t i = 0; i < r->n_sections; i++) {
        if ((st = check_entry(r, i, err)))
            return st;
        /* find_section takes the first: a second copy of a known tag would go unread */
        const uint8_t *e = r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES;
        for (uint32_t j = 0; j < i && known_tag(e); j++)
            if (!memcmp(e, r->dir + (size_t)j * MPK_DIR_ENTRY_BYTES, 4)) {
                char tag[5];
                tag_str(tag, e);
                return BAD("%s: section %s appears twice", r->what, tag);
            }
    }
    return MIPR_OK;
}

static const uint8_t *find_section(const mpk_reader *r, const char *tag)
{
    for (uint32_t i = 0; i < r->n_sections; i++)
        if (!memcmp(r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES, tag, 4))
            return r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES;
    return NULL;
}

/* The decoded bytes of a section (caller frees *out). */
static mipr_status load_section(const mpk_reader *r, const char *tag, uint8_t **out, size_t *n,
                                mipr_error *err)
{
    *out = NULL;
    const uint8_t *e = find_section(r, tag);
    if (!e)
        return BAD("%s: has no %s section", r->what, tag);
    uint64_t off = mpk_get_u64(e + 16), stored = mpk_get_u64(e + 24), raw = mpk_get_u64(e + 32);
    const uint8_t *src = r->p + off;
    if (mipr_crc32(&r->crc, 0, src, (size_t)stored) != mpk_get_u32(e + 40))
        return BAD("%s: section %s checksum mismatch (corrupt data)", r->what, tag);
    if (!(*out = malloc(raw ? (size_t)raw : 1)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for section %s", r->what,
                              tag);
    *n = (size_t)raw;
    if (mpk_get_u32(e + 8) == MPK_CODEC_RAW) {
        memcpy(*out, src, (size_t)raw);
        return MIPR_OK;
    }
#ifdef MIPR_HAVE_ZSTD
    size_t got = ZSTD_decompress(*out, (size_t)raw, src, (size_t)stored);
    if (!ZSTD_isError(got) && got == raw)
        return MIPR_OK;
    free(*out);
    *out = NULL;
    return BAD("%s: section %s does not decompress to its %llu bytes", r->what, tag,
               (unsigned long long)raw);
#else
    free(*out);
    *out = NULL;
    return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: section %s is zstd-compressed and "
                          "this build has no zstd", r->what, tag);
#endif
}

/* ---- hyper-parameters ------------------------------------------------------------------- */

static mipr_status parse_hpar(const mpk_reader *r, mipr_model **out, mipr_error *err)
{
    uint8_t *b;
    size_t n;
    mipr_status st = load_section(r, "HPAR", &b, &n, err);
    if (st)
        return st;
    uint32_t n_layers = n >= MPK_HPAR_FIXED_BYTES ? mpk_get_u32(b + 4) : 0;
    if (n < MPK_HPAR_FIXED_BYTES || n_layers == 0 || n_layers > MIPR_MAX_LAYERS ||
        n < MPK_HPAR_FIXED_BYTES + 4 * (size_t)n_layers) {
        free(b);
        return BAD("%s: hyper-parameter section of %llu bytes is too short or has %u layers",
                   r->what, (unsigned long long)n, n_layers);
    }
    if ((st = mipr_model_new(out, n_layers, err))) {
        free(b);
        return st;
    }
    mipr_hparams *hp = &(*out)->hp;
    hp->dim = mpk_get_u32(b);
    hp->n_heads = mpk_get_u32(b + 8);
    hp->n_kv_heads = mpk_get_u32(b + 12);
    hp->head_size = mpk_get_u32(b + 16);
    hp->n_rot = mpk_get_u32(b + 20);
    hp->vocab_size = mpk_get_u32(b + 24);
    hp->seq_len = mpk_get_u32(b + 28);
    hp->norm_eps = mpk_get_f32(b + 32);
    hp->rope_theta = mpk_get_f32(b + 36);
    (*out)->tied_output = (mpk_get_u32(b + 40) & MPK_HPAR_TIED) != 0;
    memcpy((*out)->name, b + 48, sizeof (*out)->name - 1);
    for (uint32_t l = 0; l < n_layers; l++)
        (*out)->layers[l].d_ff = mpk_get_u32(b + MPK_HPAR_FIXED_BYTES + 4 * (size_t)l);
    size_t tail = MPK_HPAR_FIXED_BYTES + 4 * (size_t)n_layers;
    if (n >= tail + MPK_HPAR_TAIL_BYTES) { /* 1.1 */
        hp->family = mpk_get_u32(b + tail);
        hp->rope_type = mpk_get_u32(b + tail + 4);
        hp->rope_scale = mpk_get_f32(b + tail + 8);
    }
    free(b);
    return mipr_hparams_check(hp, r->what, err);
}

/* ---- tokenizer ---------------------------------------------------------------------------- */

/* The tokenizer's own checks (piece limit, special ids) do not know the file: name it. */
static mipr_status in_file(const mpk_reader *r, mipr_status st, mipr_error *err)
{
    if (st != MIPR_OK && err && strncmp(err->msg, r->what, strlen(r->what)) != 0) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        mipr_error_set(err, st, "%s: %s", r->what, msg);
    }
    return st;
}

static mipr_status parse_tokens(const mpk_reader *r, mipr_tokenizer *t, const uint8_t *b,
                                size_t n, uint32_t n_vocab, size_t *end, mipr_error *err)
{
    size_t at = 24;
    for (uint32_t id = 0; id < n_vocab; id++) {
        if (n - at < 12)
            return BAD("%s: tokenizer ends at token %u of %u", r->what, id, n_vocab);
        float score = mpk_get_f32(b + at);
        uint32_t type = mpk_get_u32(b + at + 4), len = mpk_get_u32(b + at + 8);
        at += 12;
        if (len > n - at || type < MIPR_TOK_NORMAL || type > MIPR_TOK_BYTE)
            return BAD("%s: tokenizer entry %u has length %u or type %u out of range", r->what,
                       id, len, type);
        mipr_status st = mipr_tokenizer_set(t, id, (const char *)b + at, len, score,
                                            (enum mipr_token_type)type, err);
        if (st)
            return in_file(r, st, err);
        at += len;
    }
    *end = at;
    return MIPR_OK;
}

/* TOKN version 1's tail: flags, split rules, merges (version 0 files have none of it:
 * SentencePiece, BOS added, no EOS). */
static mipr_status parse_tokn_v1(const mpk_reader *r, mipr_tokenizer *t, const uint8_t *b,
                                 size_t n, size_t at, mipr_error *err)
{
    uint32_t version = mpk_get_u32(b + 20);
    if (version == 0)
        return MIPR_OK;
    if (version > MPK_TOKN_VERSION)
        return BAD("%s: TOKN version %u is newer than this reader (%u)", r->what, version,
                   MPK_TOKN_VERSION);
    if (n - at < 12)
        return BAD("%s: TOKN ends before its flags", r->what);
    uint32_t flags = mpk_get_u32(b + at), pre = mpk_get_u32(b + at + 4);
    uint32_t nm = mpk_get_u32(b + at + 8);
    at += 12;
    if (nm > (n - at) / 8)
        return BAD("%s: TOKN holds %u merges but only %zu bytes", r->what, nm, n - at);
    mipr_tokenizer_set_flags(t, (flags & MPK_TOKN_ADD_BOS) != 0, (flags & MPK_TOKN_ADD_EOS) != 0);
    mipr_tokenizer_set_fuse_unk(t, (flags & MPK_TOKN_FUSE_UNK) != 0);
    mipr_status st = MIPR_OK;
    if (flags & MPK_TOKN_BYTE_LEVEL)
        st = mipr_tokenizer_set_bpe(t, (enum mipr_pre_type)pre,
                                    (flags & MPK_TOKN_IGNORE_MERGES) != 0, err);
    if (st == MIPR_OK && nm) {
        int32_t *pairs = malloc(8 * (size_t)nm);
        if (!pairs)
            return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for %u merges",
                                  r->what, nm);
        for (uint32_t i = 0; i < 2 * nm; i++)
            pairs[i] = (int32_t)mpk_get_u32(b + at + 4 * (size_t)i);
        st = mipr_tokenizer_set_merges(t, pairs, nm, err);
        free(pairs);
    }
    return in_file(r, st, err);
}

static int32_t special_id(const uint8_t *p, uint32_t n_vocab)
{
    int32_t v = (int32_t)mpk_get_u32(p);
    return v >= 0 && (uint32_t)v < n_vocab ? v : -1;
}

static mipr_status parse_tokn(const mpk_reader *r, uint32_t vocab, mipr_tokenizer **out,
                              mipr_error *err)
{
    uint8_t *b;
    size_t n;
    mipr_status st = load_section(r, "TOKN", &b, &n, err);
    if (st)
        return st;
    if (n < 24 || mpk_get_u32(b) != vocab) {
        st = BAD("%s: tokenizer has %u tokens, the model %u", r->what, n < 24 ? 0 : mpk_get_u32(b),
                 vocab);
    } else if ((st = in_file(r, mipr_tokenizer_new(out, vocab, err), err)) == MIPR_OK) {
        size_t end = 24;
        st = parse_tokens(r, *out, b, n, vocab, &end, err);
        if (st == MIPR_OK)
            st = parse_tokn_v1(r, *out, b, n, end, err);
        if (st == MIPR_OK)
            st = in_file(r, mipr_tokenizer_finish(*out, special_id(b + 4, vocab),
                                                  special_id(b + 8, vocab),
                                                  special_id(b + 12, vocab),
                                                  mpk_get_u32(b + 16) != 0, err), err);
        if (st) {
            mipr_tokenizer_free(*out);
            *out = NULL;
        }
    }
    free(b);
    return st;
}

/* ---- tensor table --------------------------------------------------------------------------- */

static mipr_tensor *slot_tensor(mipr_model *m, uint32_t layer, uint32_t slot)
{
    if (layer == MPK_NO_LAYER) {
        mipr_tensor *g[] = {&m->tok_embd, &m->output_norm, &m->output, &m->rope_freqs};
        return slot <= MPK_SLOT_ROPE_FREQS ? g[slot] : NULL;
    }
    if (layer >= m->hp.n_layers || slot < MPK_SLOT_ATTN_NORM || slot >= MPK_SLOT_END)
        return NULL;
    mipr_layer *L = &m->layers[layer];
    mipr_tensor *t[] = {&L->attn_norm, &L->wq,       &L->wk,     &L->wv,       &L->wo,
                        &L->ffn_norm,  &L->ffn_gate, &L->ffn_up, &L->ffn_down, &L->ffn_down_b,
                        &L->bq,        &L->bk,       &L->bv};
    return t[slot - MPK_SLOT_ATTN_NORM];
}

static mipr_status check_chunk(const mpk_reader *r, const mpk_tensor *t, uint32_t c,
                               const char *name, mipr_error *err)
{
    const mpk_chunk *ch = &t->chunks[c];
    uint64_t raw = (uint64_t)mipr_mpk_chunk_rows(t, c) * t->row_bytes;
    /* uncompressed chunks follow each other (the tensor is used in place): only the first
     * is aligned */
    int aligned = t->codec == MPK_CODEC_ZSTD || c == 0;
    if (!in_payload(r, ch->offset, ch->stored) || (aligned && ch->offset % MPK_ALIGN))
        return BAD("%s: tensor %s chunk %u lies outside the payload", r->what, name, c);
    if (t->codec == MPK_CODEC_RAW) {
        uint64_t expect = t->chunks[0].offset + (uint64_t)c * t->rows_per_chunk * t->row_bytes;
        if (ch->stored != raw || ch->offset != expect)
            return BAD("%s: tensor %s: uncompressed chunk %u is not where its rows belong",
                       r->what, name, c);
    } else if (!ratio_ok(raw, ch->stored)) {
        return BAD("%s: tensor %s chunk %u claims %llu bytes from %llu stored", r->what, name, c,
                   (unsigned long long)raw, (unsigned long long)ch->stored);
    }
    return MIPR_OK;
}

/* One TENS entry at b (n bytes left): fields, then its chunk records. */
static mipr_status parse_tensor(const mpk_reader *r, const uint8_t *b, size_t n, mpk_tensor *t,
                                size_t *used, mipr_error *err)
{
    if (n < MPK_TENSOR_FIXED_BYTES)
        return BAD("%s: tensor table ends inside an entry", r->what);
    t->layer = mpk_get_u32(b);
    t->slot = mpk_get_u32(b + 4);
    uint32_t type = mpk_get_u32(b + 8);
    t->codec = mpk_get_u32(b + 12);
    t->filter = mpk_get_u32(b + 16);
    t->rows = mpk_get_u32(b + 20);
    t->cols = mpk_get_u32(b + 24);
    t->rows_per_chunk = mpk_get_u32(b + 28);
    t->n_chunks = mpk_get_u32(b + 32);
    char name[64];
    mipr_mpk_tensor_name(t->layer, t->slot, name, sizeof name);
    if (!mipr_mpk_slot_name(t->slot) || type >= MIPR_DT_COUNT || t->codec > MPK_CODEC_ZSTD ||
        t->filter > MPK_FILTER_PLANES ||
        (t->filter && (t->codec != MPK_CODEC_ZSTD || type > MIPR_DT_BF16)))
        return BAD("%s: tensor %s: unknown slot %u, type %u, codec %u or filter %u", r->what,
                   name, t->slot, type, t->codec, t->filter);
    t->type = (enum mipr_dtype)type;
    t->row_bytes = t->cols <= MIPR_MAX_FF ? mipr_dtype_row_bytes(t->type, t->cols) : 0;
    if (t->rows == 0 || t->rows > MIPR_MAX_VOCAB || t->row_bytes == 0 ||
        t->rows_per_chunk == 0 || t->rows_per_chunk > t->rows ||
        t->n_chunks != (t->rows - 1) / t->rows_per_chunk + 1 ||
        (uint64_t)t->rows_per_chunk * t->row_bytes > MPK_MAX_CHUNK_RAW)
        return BAD("%s: tensor %s: %u x %u %s in chunks of %u rows (%u chunks) is invalid",
                   r->what, name, t->rows, t->cols, mipr_dtype_name(t->type), t->rows_per_chunk,
                   t->n_chunks);
    size_t recs = (size_t)t->n_chunks * MPK_CHUNK_BYTES;
    if (n - MPK_TENSOR_FIXED_BYTES < recs)
        return BAD("%s: tensor %s: chunk table runs past its section", r->what, name);
    if (!(t->chunks = malloc(t->n_chunks * sizeof *t->chunks)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", r->what);
    const uint8_t *c = b + MPK_TENSOR_FIXED_BYTES;
    for (uint32_t i = 0; i < t->n_chunks; i++, c += MPK_CHUNK_BYTES) {
        t->chunks[i].offset = mpk_get_u64(c);
        t->chunks[i].stored = mpk_get_u64(c + 8);
        t->chunks[i].crc = mpk_get_u32(c + 16);
    }
    mipr_status st = MIPR_OK;
    for (uint32_t i = 0; i < t->n_chunks && st == MIPR_OK; i++)
        st = check_chunk(r, t, i, name, err);
    *used = MPK_TENSOR_FIXED_BYTES + recs;
    return st;
}

typedef struct mpk_table {
    mpk_tensor *t;
    uint32_t n;
} mpk_table;

static void table_free(mpk_table *tab)
{
    for (uint32_t i = 0; tab->t && i < tab->n; i++)
        free(tab->t[i].chunks);
    free(tab->t);
    memset(tab, 0, sizeof *tab);
}

static mipr_status parse_tens(const mpk_reader *r, mpk_table *tab, mipr_error *err)
{
    uint8_t *b;
    size_t n;
    memset(tab, 0, sizeof *tab);
    mipr_status st = load_section(r, "TENS", &b, &n, err);
    if (st)
        return st;
    uint32_t count = n >= 4 ? mpk_get_u32(b) : 0;
    if (count == 0 || count > MPK_MAX_TENSORS ||
        (size_t)count * MPK_TENSOR_FIXED_BYTES > n - 4) {
        free(b);
        return BAD("%s: tensor table of %llu bytes cannot hold %u tensors", r->what,
                   (unsigned long long)n, count);
    }
    if (!(tab->t = calloc(count, sizeof *tab->t))) {
        free(b);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", r->what);
    }
    size_t at = 4;
    for (uint32_t i = 0; i < count && st == MIPR_OK; i++) {
        size_t used = 0;
        st = parse_tensor(r, b + at, n - at, &tab->t[i], &used, err);
        tab->n = i + 1;
        at += used;
    }
    free(b);
    if (st)
        table_free(tab);
    return st;
}

static mipr_status check_chunk_crc(const mpk_reader *r, const mpk_tensor *t, uint32_t c,
                                   mipr_error *err)
{
    const mpk_chunk *ch = &t->chunks[c];
    if (mipr_crc32(&r->crc, 0, r->p + ch->offset, (size_t)ch->stored) == ch->crc)
        return MIPR_OK;
    char name[64];
    mipr_mpk_tensor_name(t->layer, t->slot, name, sizeof name);
    return BAD("%s: tensor %s chunk %u: checksum mismatch (corrupt data)", r->what, name, c);
}

static mipr_status verify_chunks(const mpk_reader *r, const mpk_tensor *t, mipr_error *err)
{
    mipr_status st = MIPR_OK;
    for (uint32_t c = 0; c < t->n_chunks && st == MIPR_OK; c++)
        st = check_chunk_crc(r, t, c, err);
    return st;
}

/* ---- no byte unaccounted for ---------------------------------------------------------------- */

typedef struct region {
    uint64_t off, n;
} region;

static int region_cmp(const void *a, const void *b)
{
    uint64_t x = ((const region *)a)->off, y = ((const region *)b)->off;
    return x < y ? -1 : x > y;
}

/* Sections and chunks must not overlap, and the padding between them must be zero: then a
 * flipped byte anywhere in the file is caught, by a checksum or here. */
static mipr_status check_layout(const mpk_reader *r, const mpk_table *tab, mipr_error *err)
{
    size_t n = r->n_sections, k = 0;
    for (uint32_t i = 0; i < tab->n; i++)
        n += tab->t[i].n_chunks;
    region *g = malloc(n * sizeof *g);
    if (!g)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", r->what);
    for (uint32_t i = 0; i < r->n_sections; i++, k++) {
        g[k].off = mpk_get_u64(r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES + 16);
        g[k].n = mpk_get_u64(r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES + 24);
    }
    for (uint32_t i = 0; i < tab->n; i++)
        for (uint32_t c = 0; c < tab->t[i].n_chunks; c++, k++)
            g[k] = (region){tab->t[i].chunks[c].offset, tab->t[i].chunks[c].stored};
    qsort(g, n, sizeof *g, region_cmp);
    uint64_t at = MPK_HEADER_BYTES;
    mipr_status st = MIPR_OK;
    for (size_t i = 0; i <= n && st == MIPR_OK; i++) {
        uint64_t end = i < n ? g[i].off : r->dir_offset;
        if (end < at)
            st = BAD("%s: stored regions overlap at byte %llu", r->what, (unsigned long long)end);
        for (uint64_t b = at; b < end && st == MIPR_OK; b++)
            if (r->p[b])
                st = BAD("%s: byte %llu lies between stored regions and is not zero (corrupt "
                         "padding)", r->what, (unsigned long long)b);
        if (i < n)
            at = end + g[i].n;
    }
    free(g);
    return st;
}

/* The checksums of the sections the loader does not decode: META and unknown ones. */
static mipr_status check_other_sections(const mpk_reader *r, mipr_error *err)
{
    for (uint32_t i = 0; i < r->n_sections; i++) {
        const uint8_t *e = r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES;
        if (parsed_tag(e))
            continue;
        char tag[5];
        tag_str(tag, e);
        if (mipr_crc32(&r->crc, 0, r->p + mpk_get_u64(e + 16), (size_t)mpk_get_u64(e + 24)) !=
            mpk_get_u32(e + 40))
            return BAD("%s: section %s checksum mismatch (corrupt data)", r->what, tag);
    }
    return MIPR_OK;
}

/* ---- building the model ----------------------------------------------------------------- */

static size_t max_chunk_bytes(const mpk_table *tab)
{
    size_t m = 0;
    for (uint32_t i = 0; i < tab->n; i++) {
        size_t b = (size_t)tab->t[i].rows_per_chunk * tab->t[i].row_bytes;
        if (tab->t[i].codec != MPK_CODEC_RAW && b > m)
            m = b;
    }
    return m;
}

static void decoder_cleanup(void *ctx)
{
    mipr_mpk_decoder_free(ctx);
    free(ctx);
}

/* Decoding at open on several threads: task i owns dec[i] and a contiguous run of chunks,
 * so no decoder is shared, and it checks each chunk's CRC just before decoding it (the
 * serial CRC pass skips these tensors). */
typedef struct resident_job {
    const mpk_reader *r;
    const mpk_tensor *t;
    uint8_t *mem;
    mpk_decoder *dec;
    mipr_error *errs;
    mipr_status *sts;
    uint32_t n_tasks;
    int verify;
} resident_job;

static void resident_task(void *ctx, size_t i)
{
    const resident_job *j = ctx;
    const mpk_tensor *t = j->t;
    uint32_t c0 = (uint32_t)((uint64_t)t->n_chunks * i / j->n_tasks);
    uint32_t c1 = (uint32_t)((uint64_t)t->n_chunks * (i + 1) / j->n_tasks);
    mipr_status st = MIPR_OK;
    for (uint32_t c = c0; c < c1 && st == MIPR_OK; c++) {
        if (j->verify)
            st = check_chunk_crc(j->r, t, c, &j->errs[i]);
        if (st == MIPR_OK)
            st = mipr_mpk_decode_chunk(&j->dec[i], t, c,
                                       j->mem + (size_t)c * t->rows_per_chunk * t->row_bytes,
                                       &j->errs[i]);
    }
    j->sts[i] = st;
}

/* Runs resident_task over n_tasks on the pool; each task reports into its own slot (on
 * the heap: a 64-slot array would cost firmware 33 KiB of stack for a path it never takes). */
static mipr_status run_resident(resident_job *j, mipr_pool *pool, mipr_error *err)
{
    j->errs = malloc(j->n_tasks * sizeof *j->errs);
    j->sts = malloc(j->n_tasks * sizeof *j->sts);
    mipr_status st = MIPR_OK;
    if (!j->errs || !j->sts) {
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", j->r->what);
    } else {
        mipr_pool_run(pool, resident_task, j, j->n_tasks);
        for (uint32_t i = 0; i < j->n_tasks && st == MIPR_OK; i++)
            if ((st = j->sts[i]) != MIPR_OK && err)
                *err = j->errs[i];
    }
    free(j->errs);
    free(j->sts);
    return st;
}

/* Decodes (and, with verify, checks) every chunk of t into one block the model owns. */
static mipr_status decode_resident(const mpk_reader *r, mpk_decoder *dec, uint32_t n_dec,
                                   mipr_pool *pool, mipr_model *m, const mpk_tensor *t,
                                   mipr_tensor *dst, int verify, mipr_error *err)
{
    uint8_t *mem = mipr_model_alloc(m, (size_t)t->rows * t->row_bytes);
    if (!mem)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for a %u x %u tensor",
                              r->what, t->rows, t->cols);
    mipr_error one_err;
    mipr_status one_st;
    resident_job j = {r, t, mem, dec, &one_err, &one_st,
                      n_dec < t->n_chunks ? n_dec : t->n_chunks, verify};
    mipr_status st;
    if (j.n_tasks > 1 && pool) {
        st = run_resident(&j, pool, err);
    } else {
        j.n_tasks = 1;
        resident_task(&j, 0);
        if ((st = one_st) != MIPR_OK && err)
            *err = one_err;
    }
    if (st == MIPR_OK)
        dst->data = mem;
    return st;
}

/* After decoding, the compressed bytes of a mapped file are not needed any more: without
 * this, a decoded model would also keep the whole file resident. */
static void release_stored(const mpk_reader *r, const mpk_tensor *t)
{
    const mpk_chunk *first = &t->chunks[0], *last = &t->chunks[t->n_chunks - 1];
    if (r->file)
        mipr_file_release(r->file, r->p + first->offset,
                          (size_t)(last->offset + last->stored - first->offset));
}

/* Hands t to the engine as a streamed tensor; its chunk table moves into the model. */
static mipr_status attach_stream(mpk_decoder *d, mipr_model *m, mpk_tensor *t, mipr_tensor *dst,
                                 mipr_error *err)
{
    struct mipr_stream_ *s = mipr_model_alloc(m, sizeof *s);
    mpk_chunk *chunks = mipr_model_alloc(m, t->n_chunks * sizeof *chunks);
    if (!s || !chunks)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", d->what);
    memcpy(chunks, t->chunks, t->n_chunks * sizeof *chunks);
    s->dec = d;
    s->t = *t;
    s->t.chunks = chunks;
    dst->stream_ = s;
    return MIPR_OK;
}

/* Decoders for build_tensors: the first also serves streamed tensors, the others only the
 * parallel decoding at open. */
typedef struct decoders {
    mpk_decoder *d;
    uint32_t n;
    mipr_pool *pool;
} decoders;

static int streamed(const mpk_tensor *t, int low_ram)
{
    /* vectors (norms, biases) are read whole by the engine: always decoded */
    return t->codec != MPK_CODEC_RAW && low_ram && t->rows > 1;
}

static mipr_status attach(const mpk_reader *r, const decoders *ds, mipr_model *m, mpk_tensor *t,
                          const mipr_mpk_options *opt, mipr_error *err)
{
    mipr_tensor *dst = slot_tensor(m, t->layer, t->slot);
    char name[64];
    mipr_mpk_tensor_name(t->layer, t->slot, name, sizeof name);
    if (!dst)
        return BAD("%s: tensor %s: the model has %u layers", r->what, name, m->hp.n_layers);
    if (dst->data || dst->stream_)
        return BAD("%s: tensor %s appears twice", r->what, name);
    dst->type = t->type;
    dst->rows = t->rows;
    dst->cols = t->cols;
    if (t->codec == MPK_CODEC_RAW) {
        dst->data = r->p + t->chunks[0].offset; /* in place */
        return MIPR_OK;
    }
    if (streamed(t, opt->low_ram))
        return attach_stream(ds->d, m, t, dst, err);
    mipr_status st = decode_resident(r, ds->d, ds->n, ds->pool, m, t, dst, !opt->skip_verify,
                                     err);
    release_stored(r, t);
    return st;
}

static void decoders_free(decoders *ds, int keep_first)
{
    for (uint32_t i = keep_first ? 1 : 0; i < ds->n; i++)
        mipr_mpk_decoder_free(&ds->d[i]);
    if (!keep_first)
        free(ds->d);
}

static mipr_status decoders_init(decoders *ds, const mpk_reader *r, const mpk_table *tab,
                                 const mipr_mpk_options *opt, mipr_error *err)
{
    /* low RAM decodes only vectors at open: one decoder, no extra chunk buffers */
    uint32_t n = opt->pool && !opt->low_ram ? mipr_pool_threads(opt->pool) : 1;
    n = n < 1 ? 1 : n > 64 ? 64 : n;
    ds->pool = opt->pool;
    ds->d = calloc(n, sizeof *ds->d);
    if (!ds->d)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", r->what);
    ds->n = n;
    size_t max_chunk = max_chunk_bytes(tab);
    for (uint32_t i = 0; i < ds->n; i++) {
        mipr_status st = mipr_mpk_decoder_init(&ds->d[i], r->p, r->size, r->what, max_chunk, err);
        if (st) {
            ds->n = i + 1;
            return st;
        }
    }
    return MIPR_OK;
}

static mipr_status build_tensors(const mpk_reader *r, mipr_model *m, mpk_table *tab,
                                 const mipr_mpk_options *opt, mipr_error *err)
{
    decoders ds = {0};
    int model_owns = 0; /* low RAM: streamed tensors keep using the first decoder */
    mipr_status st = decoders_init(&ds, r, tab, opt, err);
    if (st == MIPR_OK && opt->low_ram &&
        (st = mipr_model_add_cleanup(m, decoder_cleanup, ds.d, err)) == MIPR_OK)
        model_owns = 1;
    for (uint32_t i = 0; i < tab->n && st == MIPR_OK; i++) {
        const mpk_tensor *t = &tab->t[i];
        int decoded_here = t->codec != MPK_CODEC_RAW && !streamed(t, opt->low_ram);
        if (!opt->skip_verify && !decoded_here)
            st = verify_chunks(r, t, err);
        if (st == MIPR_OK)
            st = attach(r, &ds, m, &tab->t[i], opt, err);
    }
    decoders_free(&ds, model_owns);
    if (st == MIPR_OK && m->tied_output) {
        if (m->output.data || m->output.stream_)
            return BAD("%s: output matrix present in a model with a tied output", r->what);
        m->output = m->tok_embd;
    }
    return st;
}

static mipr_status open_reader(mpk_reader *r, const void *data, size_t size, const char *what,
                               mipr_error *err)
{
    memset(r, 0, sizeof *r);
    r->p = data;
    r->size = size;
    r->what = what;
    mipr_crc32_init(&r->crc);
    if (!data && size)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: no data", what);
    return parse_header(r, err);
}

static mipr_status open_model(mipr_model **model, mipr_tokenizer **tok,
                              const mipr_mapped_file *file, const void *data, size_t size,
                              const char *what, const mipr_mpk_options *opt, mipr_error *err)
{
    static const mipr_mpk_options defaults = {0, 0, NULL};
    mpk_reader r;
    mpk_table tab = {0};
    *model = NULL;
    if (tok)
        *tok = NULL;
    mipr_status st = open_reader(&r, data, size, what, err);
    r.file = file;
    if (st == MIPR_OK)
        st = parse_hpar(&r, model, err);
    if (st == MIPR_OK && tok)
        st = parse_tokn(&r, (*model)->hp.vocab_size, tok, err);
    if (st == MIPR_OK)
        st = parse_tens(&r, &tab, err);
    opt = opt ? opt : &defaults;
    if (st == MIPR_OK && !opt->skip_verify)
        st = check_layout(&r, &tab, err);
    if (st == MIPR_OK && !opt->skip_verify)
        st = check_other_sections(&r, err);
    if (st == MIPR_OK)
        st = build_tensors(&r, *model, &tab, opt, err);
    if (st == MIPR_OK)
        st = mipr_model_validate(*model, what, err);
    table_free(&tab);
    if (st) {
        mipr_model_free(*model);
        *model = NULL;
        if (tok) {
            mipr_tokenizer_free(*tok);
            *tok = NULL;
        }
    }
    return st;
}

mipr_status mipr_mpk_open_memory(mipr_model **model, mipr_tokenizer **tok, const void *data,
                                 size_t size, const mipr_mpk_options *opt, mipr_error *err)
{
    return open_model(model, tok, NULL, data, size, "memory buffer", opt, err);
}

mipr_status mipr_mpk_open_file(mipr_model **model, mipr_tokenizer **tok, const char *path,
                               const mipr_mpk_options *opt, mipr_error *err)
{
    mipr_mapped_file f;
    *model = NULL;
    if (tok)
        *tok = NULL;
    mipr_status st = mipr_file_map(&f, path, err);
    if (st)
        return st;
    st = open_model(model, tok, &f, f.data, f.size, path, opt, err);
    if (st == MIPR_OK)
        st = mipr_model_adopt_file(*model, &f, err);
    if (st) {
        mipr_file_unmap(&f);
        mipr_model_free(*model);
        *model = NULL;
        if (tok) {
            mipr_tokenizer_free(*tok);
            *tok = NULL;
        }
    }
    return st;
}

/* ---- inspection ------------------------------------------------------------------------- */

static void describe_sections(const mpk_reader *r, mipr_mpk_info *info)
{
    for (uint32_t i = 0; i < r->n_sections; i++) {
        const uint8_t *e = r->dir + (size_t)i * MPK_DIR_ENTRY_BYTES;
        mipr_mpk_section_info *s = &info->sections[i];
        tag_str(s->tag, e);
        s->required = (mpk_get_u32(e + 4) & MPK_SEC_REQUIRED) != 0;
        s->known = known_tag(e);
        s->codec = mpk_get_u32(e + 8) == MPK_CODEC_RAW ? "raw" : "zstd";
        s->stored_bytes = mpk_get_u64(e + 24);
        s->raw_bytes = mpk_get_u64(e + 32);
    }
}

static void describe_tensor(const mpk_tensor *t, mipr_mpk_tensor_info *o)
{
    mipr_mpk_tensor_name(t->layer, t->slot, o->name, sizeof o->name);
    o->type = t->type;
    o->rows = t->rows;
    o->cols = t->cols;
    o->n_chunks = t->n_chunks;
    o->codec = t->codec == MPK_CODEC_RAW ? "raw" : "zstd";
    o->planes = t->filter == MPK_FILTER_PLANES;
    o->raw_bytes = (uint64_t)t->rows * t->row_bytes;
    for (uint32_t c = 0; c < t->n_chunks; c++)
        o->stored_bytes += t->chunks[c].stored;
}

/* Everything open_model checks, plus decoding META and every chunk once into scratch. */
static mipr_status inspect_all(const mpk_reader *r, const mpk_table *tab, mipr_mpk_info *info,
                               mipr_error *err)
{
    if (find_section(r, "META")) {
        uint8_t *meta;
        size_t n;
        mipr_status st = load_section(r, "META", &meta, &n, err);
        free(meta);
        if (st)
            return st;
    }
    mpk_decoder d;
    size_t max = 0;
    for (uint32_t i = 0; i < tab->n; i++) {
        size_t b = (size_t)tab->t[i].rows_per_chunk * tab->t[i].row_bytes;
        max = b > max ? b : max;
    }
    mipr_status st = mipr_mpk_decoder_init(&d, r->p, r->size, r->what, max, err);
    for (uint32_t i = 0; i < tab->n && st == MIPR_OK; i++) {
        const mpk_tensor *t = &tab->t[i];
        st = verify_chunks(r, t, err);
        for (uint32_t c = 0; c < t->n_chunks && st == MIPR_OK; c++)
            st = mipr_mpk_decode_chunk(&d, t, c, d.buf, err);
        describe_tensor(t, &info->tensors[i]);
    }
    mipr_mpk_decoder_free(&d);
    return st;
}

mipr_status mipr_mpk_inspect(const void *data, size_t size, const char *what, mipr_mpk_info *out,
                             mipr_error *err)
{
    memset(out, 0, sizeof *out);
    mpk_reader r;
    mpk_table tab = {0};
    mipr_model *m = NULL;
    mipr_tokenizer *tok = NULL;
    mipr_status st = open_reader(&r, data, size, what, err);
    if (st == MIPR_OK)
        st = parse_hpar(&r, &m, err);
    if (st == MIPR_OK)
        st = parse_tokn(&r, m->hp.vocab_size, &tok, err);
    if (st == MIPR_OK)
        st = parse_tens(&r, &tab, err);
    if (st == MIPR_OK) {
        out->version_major = r.major;
        out->version_minor = r.minor;
        out->file_size = size;
        out->n_sections = r.n_sections;
        out->n_tensors = tab.n;
        out->sections = calloc(r.n_sections, sizeof *out->sections);
        out->tensors = calloc(tab.n, sizeof *out->tensors);
        if (!out->sections || !out->tensors)
            st = mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", what);
    }
    if (st == MIPR_OK && (st = check_layout(&r, &tab, err)) == MIPR_OK &&
        (st = check_other_sections(&r, err)) == MIPR_OK) {
        describe_sections(&r, out);
        st = inspect_all(&r, &tab, out, err);
    }
    table_free(&tab);
    mipr_model_free(m);
    mipr_tokenizer_free(tok);
    if (st)
        mipr_mpk_info_free(out);
    return st;
}

void mipr_mpk_info_free(mipr_mpk_info *info)
{
    free(info->sections);
    free(info->tensors);
    memset(info, 0, sizeof *info);
}
