/* GGUF reader: validates the whole header of a mapped file, then answers queries with
 * pointers into the mapping.
 *
 * The file is hostile until proven otherwise: every count and length is compared with the
 * bytes that remain before it is used to allocate or to loop, so work and memory stay
 * proportional to the file size whatever the header claims. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_internal.h"

/* A string array keeps the offset of every STR_STRIDE-th element, so element j is found
 * by skipping fewer than STR_STRIDE strings: no copy of the array, no quadratic walks. */
#define STR_STRIDE 16u
/* Smallest encodings: a KV is a key length, a type and a 1-byte value; a tensor info is a
 * name length, n_dims, one dim, a type and an offset. Used to bound counts before malloc. */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_INFO_BYTES 32u
#define MAX_KEY_LEN 65535u

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

typedef struct kv {
    mipr_gguf_str key;
    uint32_t type;
    uint64_t val_off;   /* scalars: the value; strings: the length field; arrays: element 0 */
    uint32_t arr_type;
    uint64_t arr_n;
    uint64_t *str_index; /* string arrays only */
} kv;

struct mipr_gguf {
    char *path;
    mipr_mapped_file map;
    int has_file;
    const uint8_t *bytes;
    size_t size;
    uint32_t version, alignment;
    uint64_t n_kv, n_tensors, data_off;
    kv *kvs;
    mipr_gguf_tensor_info *tensors;
    uint64_t *kv_hash, *tensor_hash; /* open addressing: index + 1, 0 = empty */
    size_t kv_hash_cap, tensor_hash_cap;
};

/* ---- little-endian loads (the file's byte order, whatever the host's) ------------------ */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static uint64_t ld64(const uint8_t *p) { return ld32(p) | ((uint64_t)ld32(p + 4) << 32); }

/* ---- the cursor ------------------------------------------------------------------------ */

typedef struct cursor {
    const uint8_t *p;
    size_t size, pos;
    const char *name; /* the file, for messages */
    mipr_error *err;
    char what[192];   /* what is being read, for messages */
} cursor;

/* Copies at most 64 bytes of s into out, replacing bytes that would garble a message. */
static const char *printable(mipr_gguf_str s, char *out, size_t cap)
{
    size_t n = s.len < 64 ? (size_t)s.len : 64, o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
    }
    if (s.len > n && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

static mipr_status need(cursor *c, uint64_t n)
{
    if (n <= c->size - c->pos)
        return MIPR_OK;
    return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: truncated at offset %zu while reading %s",
                          c->name, c->pos, c->what);
}

static mipr_status rd_u32(cursor *c, uint32_t *v)
{
    mipr_status st = need(c, 4);
    if (st == MIPR_OK) {
        *v = ld32(c->p + c->pos);
        c->pos += 4;
    }
    return st;
}

static mipr_status rd_u64(cursor *c, uint64_t *v)
{
    mipr_status st = need(c, 8);
    if (st == MIPR_OK) {
        *v = ld64(c->p + c->pos);
        c->pos += 8;
    }
    return st;
}

static mipr_status rd_str(cursor *c, mipr_gguf_str *s)
{
    uint64_t len;
    mipr_status st = rd_u64(c, &len);
    if (st != MIPR_OK)
        return st;
    if (len > c->size - c->pos)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: string of %" PRIu64 " bytes at offset %zu runs past the end "
                              "of the file (%zu bytes) while reading %s",
                              c->name, len, c->pos - 8, c->size, c->what);
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return MIPR_OK;
}

/* ---- values ---------------------------------------------------------------------------- */

/* Bytes of a fixed-size value type; 0 for strings and arrays. */
static size_t scalar_size(uint32_t type)
{
    switch (type) {
    case MIPR_GGUF_UINT8: case MIPR_GGUF_INT8: case MIPR_GGUF_BOOL: return 1;
    case MIPR_GGUF_UINT16: case MIPR_GGUF_INT16: return 2;
    case MIPR_GGUF_UINT32: case MIPR_GGUF_INT32: case MIPR_GGUF_FLOAT32: return 4;
    case MIPR_GGUF_UINT64: case MIPR_GGUF_INT64: case MIPR_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *vtype_name(uint32_t t)
{
    static const char *const names[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32",
                                        "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY",
                                        "UINT64", "INT64", "FLOAT64"};
    return t < MIPR_GGUF_VTYPE_COUNT ? names[t] : "invalid";
}

static mipr_status check_vtype(cursor *c, uint32_t type, size_t at)
{
    if (type < MIPR_GGUF_VTYPE_COUNT)
        return MIPR_OK;
    return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                          "%s: invalid value type %" PRIu32 " at offset %zu while reading %s",
                          c->name, type, at, c->what);
}

static mipr_status skip_value(cursor *c, uint32_t type, int depth);

/* Skips n elements of type (n already read); *index, when given, gets string offsets. */
static mipr_status skip_elements(cursor *c, uint32_t type, uint64_t n, int depth,
                                 uint64_t *index)
{
    size_t esz = scalar_size(type);
    size_t at = c->pos;
    if (esz) {
        if (n > (c->size - c->pos) / esz)
            return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                                  "%s: array of %" PRIu64 " %s at offset %zu runs past the end "
                                  "of the file (%zu bytes) while reading %s",
                                  c->name, n, vtype_name(type), at, c->size, c->what);
        c->pos += (size_t)n * esz;
        return MIPR_OK;
    }
    /* Every string or array element takes at least 8 bytes: bound n before looping. */
    if (n > (c->size - c->pos) / 8)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: array of %" PRIu64 " %s at offset %zu cannot fit in the %zu "
                              "bytes left while reading %s",
                              c->name, n, vtype_name(type), at, c->size - c->pos, c->what);
    for (uint64_t j = 0; j < n; j++) {
        if (index && j % STR_STRIDE == 0)
            index[j / STR_STRIDE] = c->pos;
        mipr_status st = skip_value(c, type, depth);
        if (st != MIPR_OK)
            return st;
    }
    return MIPR_OK;
}

/* Reads an array header (element type, count) and skips its elements. */
static mipr_status skip_array(cursor *c, int depth, uint32_t *etype, uint64_t *n)
{
    if (depth >= MIPR_GGUF_MAX_ARRAY_DEPTH)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: arrays nested deeper than %d at offset %zu while reading %s",
                              c->name, MIPR_GGUF_MAX_ARRAY_DEPTH, c->pos, c->what);
    size_t at = c->pos;
    mipr_status st = rd_u32(c, etype);
    if (st == MIPR_OK)
        st = check_vtype(c, *etype, at);
    if (st == MIPR_OK)
        st = rd_u64(c, n);
    if (st == MIPR_OK)
        st = skip_elements(c, *etype, *n, depth + 1, NULL);
    return st;
}

static mipr_status skip_value(cursor *c, uint32_t type, int depth)
{
    if (type == MIPR_GGUF_STRING) {
        mipr_gguf_str s;
        return rd_str(c, &s);
    }
    if (type == MIPR_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        return skip_array(c, depth, &et, &n);
    }
    mipr_status st = need(c, scalar_size(type));
    if (st == MIPR_OK)
        c->pos += scalar_size(type);
    return st;
}

/* ---- hash index of names ---------------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static int str_eq2(mipr_gguf_str a, const char *p, uint64_t n)
{
    return a.len == n && (n == 0 || memcmp(a.ptr, p, (size_t)n) == 0);
}

int mipr_gguf_str_eq(mipr_gguf_str s, const char *cstr)
{
    return cstr && str_eq2(s, cstr, strlen(cstr));
}

static uint64_t *hash_new(uint64_t n, size_t *cap)
{
    size_t c = 16;
    while (c < 2 * n)
        c *= 2;
    *cap = c;
    return calloc(c, sizeof(uint64_t));
}

/* Inserts entry i named s; returns the index of an earlier entry with that name, or -1. */
static int64_t hash_insert(uint64_t *tab, size_t cap, mipr_gguf_str s, uint64_t i,
                           mipr_gguf_str (*name_of)(const mipr_gguf *, uint64_t),
                           const mipr_gguf *g)
{
    size_t h = (size_t)hash_bytes(s.ptr, s.len) & (cap - 1);
    while (tab[h]) {
        if (str_eq2(name_of(g, tab[h] - 1), s.ptr, s.len))
            return (int64_t)(tab[h] - 1);
        h = (h + 1) & (cap - 1);
    }
    tab[h] = i + 1;
    return -1;
}

static int64_t hash_find(const uint64_t *tab, size_t cap, const char *p, uint64_t n,
                         mipr_gguf_str (*name_of)(const mipr_gguf *, uint64_t),
                         const mipr_gguf *g)
{
    if (!tab)
        return -1;
    size_t h = (size_t)hash_bytes(p, n) & (cap - 1);
    while (tab[h]) {
        if (str_eq2(name_of(g, tab[h] - 1), p, n))
            return (int64_t)(tab[h] - 1);
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

static mipr_gguf_str kv_name(const mipr_gguf *g, uint64_t i) { return g->kvs[i].key; }
static mipr_gguf_str tensor_name(const mipr_gguf *g, uint64_t i) { return g->tensors[i].name; }

/* ---- header ----------------------------------------------------------------------------- */

static mipr_status parse_magic_version(mipr_gguf *g, cursor *c)
{
    snprintf(c->what, sizeof c->what, "the magic");
    mipr_status st = need(c, 4);
    if (st != MIPR_OK)
        return st;
    if (memcmp(c->p, MIPR_GGUF_MAGIC, 4) != 0)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: not a GGUF file (magic at offset 0 is not \"GGUF\")", c->name);
    c->pos = 4;
    snprintf(c->what, sizeof c->what, "the version");
    if ((st = rd_u32(c, &g->version)) != MIPR_OK)
        return st;
    if (g->version == 2 || g->version == 3)
        return MIPR_OK;
    if (g->version != 0 && (g->version & 0xffffu) == 0)
        return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED,
                              "%s: big-endian GGUF (version field 0x%08" PRIx32
                              " at offset 4) is not supported",
                              c->name, g->version);
    return mipr_error_set(c->err, MIPR_ERR_UNSUPPORTED,
                          "%s: unsupported GGUF version %" PRIu32
                          " at offset 4 (mipr reads versions 2 and 3)",
                          c->name, g->version);
}

static mipr_status parse_counts(mipr_gguf *g, cursor *c)
{
    snprintf(c->what, sizeof c->what, "the tensor count");
    mipr_status st = rd_u64(c, &g->n_tensors);
    snprintf(c->what, sizeof c->what, "the metadata count");
    if (st == MIPR_OK)
        st = rd_u64(c, &g->n_kv);
    if (st != MIPR_OK)
        return st;
    size_t left = c->size - c->pos;
    if (g->n_kv > left / MIN_KV_BYTES)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: header at offset 16 claims %" PRIu64 " metadata entries, "
                              "more than the %zu bytes after it can hold",
                              c->name, g->n_kv, left);
    if (g->n_tensors > left / MIN_TENSOR_INFO_BYTES)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: header at offset 8 claims %" PRIu64 " tensors, more than "
                              "the %zu bytes after it can hold",
                              c->name, g->n_tensors, left);
    return MIPR_OK;
}

/* ---- metadata --------------------------------------------------------------------------- */

static mipr_status parse_array_kv(cursor *c, kv *e)
{
    size_t at = c->pos;
    mipr_status st = rd_u32(c, &e->arr_type);
    if (st == MIPR_OK)
        st = check_vtype(c, e->arr_type, at);
    if (st == MIPR_OK)
        st = rd_u64(c, &e->arr_n);
    if (st != MIPR_OK)
        return st;
    e->val_off = c->pos;
    if (e->arr_type == MIPR_GGUF_STRING) {
        /* bounded by skip_elements' own check before anything is written */
        if (e->arr_n > (c->size - c->pos) / 8)
            return skip_elements(c, e->arr_type, e->arr_n, 1, NULL);
        e->str_index = malloc((size_t)(e->arr_n / STR_STRIDE + 1) * sizeof(uint64_t));
        if (!e->str_index)
            return mipr_error_set(c->err, MIPR_ERR_NOMEM, "%s: out of memory while reading %s",
                                  c->name, c->what);
    }
    return skip_elements(c, e->arr_type, e->arr_n, 1, e->str_index);
}

static mipr_status parse_kv(mipr_gguf *g, cursor *c, uint64_t i)
{
    kv *e = &g->kvs[i];
    char nm[80];
    size_t entry = c->pos, at;
    snprintf(c->what, sizeof c->what, "key %" PRIu64, i);
    mipr_status st = rd_str(c, &e->key);
    if (st != MIPR_OK)
        return st;
    if (e->key.len == 0 || e->key.len > MAX_KEY_LEN)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: key %" PRIu64 " at offset %zu has length %" PRIu64
                              " (must be 1..%u)",
                              c->name, i, entry, e->key.len, MAX_KEY_LEN);
    snprintf(c->what, sizeof c->what, "key %" PRIu64 " (\"%s\")", i,
             printable(e->key, nm, sizeof nm));
    at = c->pos;
    if ((st = rd_u32(c, &e->type)) != MIPR_OK || (st = check_vtype(c, e->type, at)) != MIPR_OK)
        return st;
    if (e->type == MIPR_GGUF_ARRAY)
        st = parse_array_kv(c, e);
    else {
        e->val_off = c->pos;
        st = skip_value(c, e->type, 0);
    }
    if (st != MIPR_OK)
        return st;
    if (hash_insert(g->kv_hash, g->kv_hash_cap, e->key, i, kv_name, g) >= 0)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: duplicate key \"%s\" (entry %" PRIu64 " at offset %zu)",
                              c->name, nm, i, entry);
    return MIPR_OK;
}

static mipr_status parse_kvs(mipr_gguf *g, cursor *c)
{
    g->kvs = calloc((size_t)g->n_kv + 1, sizeof *g->kvs);
    g->kv_hash = hash_new(g->n_kv, &g->kv_hash_cap);
    if (!g->kvs || !g->kv_hash)
        return mipr_error_set(c->err, MIPR_ERR_NOMEM, "%s: out of memory for %" PRIu64 " keys",
                              c->name, g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        mipr_status st = parse_kv(g, c, i);
        if (st != MIPR_OK) {
            g->n_kv = i + 1; /* so close frees the string index of entry i */
            return st;
        }
    }
    return MIPR_OK;
}

static mipr_status parse_alignment(mipr_gguf *g, cursor *c)
{
    g->alignment = MIPR_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = mipr_gguf_find(g, "general.alignment");
    if (i < 0)
        return MIPR_OK;
    int64_t v = 0;
    uint32_t t = g->kvs[i].type;
    if (t == MIPR_GGUF_FLOAT32 || t == MIPR_GGUF_FLOAT64 || t == MIPR_GGUF_BOOL ||
        !mipr_gguf_get_i64(g, (uint64_t)i, &v))
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: general.alignment at offset %" PRIu64 " is a %s, not an integer",
                              c->name, g->kvs[i].val_off, vtype_name(t));
    if (v < 1 || v > (int64_t)MIPR_GGUF_MAX_ALIGNMENT || (v & (v - 1)) != 0)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: general.alignment %" PRId64 " at offset %" PRIu64
                              " is not a power of two in 1..%u",
                              c->name, v, g->kvs[i].val_off, MIPR_GGUF_MAX_ALIGNMENT);
    g->alignment = (uint32_t)v;
    return MIPR_OK;
}

/* ---- tensor infos ----------------------------------------------------------------------- */

typedef struct ggml_traits {
    uint32_t block;     /* elements per block */
    uint32_t block_bytes;
} ggml_traits;

/* Sizes only for the types mipr reads; others are listed but have no data. ggml stores
 * whole blocks only: tensor_size rejects rows that are not a multiple of the block (mipr's
 * own partial last blocks exist in memory and in its runtime format, never in GGUF). */
static int known_traits(uint32_t type, ggml_traits *t)
{
    switch (type) {
    case MIPR_GGML_F32: *t = (ggml_traits){1, 4}; return 1;
    case MIPR_GGML_F16: *t = (ggml_traits){1, 2}; return 1;
    case MIPR_GGML_BF16: *t = (ggml_traits){1, 2}; return 1;
    case MIPR_GGML_Q8_0: *t = (ggml_traits){MIPR_QK8_0, sizeof(mipr_block_q8_0)}; return 1;
    case MIPR_GGML_Q4_0: *t = (ggml_traits){MIPR_QK4_0, sizeof(mipr_block_q4_0)}; return 1;
    default: return mipr_kquant_traits(type, &t->block, &t->block_bytes);
    }
}

static PRINTF_LIKE(3, 4) mipr_status tensor_error(cursor *c, size_t at, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: %s at offset %zu: %s", c->name, c->what,
                          at, msg);
}

static mipr_status parse_dims(cursor *c, mipr_gguf_tensor_info *t)
{
    size_t at = c->pos;
    mipr_status st = rd_u32(c, &t->n_dims);
    if (st != MIPR_OK)
        return st;
    if (t->n_dims < 1 || t->n_dims > 4)
        return tensor_error(c, at, "n_dims is %" PRIu32 " (must be 1..4)", t->n_dims);
    uint64_t count = 1;
    for (uint32_t d = 0; d < 4; d++) {
        t->ne[d] = 1;
        at = c->pos;
        if (d < t->n_dims && (st = rd_u64(c, &t->ne[d])) != MIPR_OK)
            return st;
        if (t->ne[d] < 1 || t->ne[d] > (uint64_t)INT64_MAX)
            return tensor_error(c, at, "dimension %" PRIu32 " is %" PRIu64, d, t->ne[d]);
        if (t->ne[d] > (uint64_t)INT64_MAX / count)
            return tensor_error(c, at, "element count overflows at dimension %" PRIu32, d);
        count *= t->ne[d];
    }
    return MIPR_OK;
}

/* Size in bytes of a known type's data; the count was already bounded by INT64_MAX. */
static mipr_status tensor_size(cursor *c, mipr_gguf_tensor_info *t, size_t at)
{
    ggml_traits tr;
    if (!known_traits(t->ggml_type, &tr))
        return MIPR_OK; /* listed; fails only when a loader needs it */
    if (t->ne[0] % tr.block)
        return tensor_error(c, at, "row length %" PRIu64 " is not a multiple of %" PRIu32
                            " as type %s requires", t->ne[0], tr.block,
                            mipr_ggml_type_name(t->ggml_type));
    uint64_t n = t->ne[0] / tr.block * t->ne[1] * t->ne[2] * t->ne[3];
    if (n > UINT64_MAX / tr.block_bytes)
        return tensor_error(c, at, "size overflows (%" PRIu64 " blocks of %" PRIu32 " bytes)",
                            n, tr.block_bytes);
    t->nbytes = n * tr.block_bytes;
    return MIPR_OK;
}

static mipr_status parse_tensor(mipr_gguf *g, cursor *c, uint64_t i)
{
    mipr_gguf_tensor_info *t = &g->tensors[i];
    char nm[80];
    size_t at = c->pos;
    snprintf(c->what, sizeof c->what, "tensor %" PRIu64, i);
    mipr_status st = rd_str(c, &t->name);
    if (st != MIPR_OK)
        return st;
    if (t->name.len == 0 || t->name.len > MIPR_GGUF_MAX_NAME)
        return tensor_error(c, at, "name length is %" PRIu64 " (must be 1..%d)", t->name.len,
                            MIPR_GGUF_MAX_NAME);
    snprintf(c->what, sizeof c->what, "tensor %" PRIu64 " (\"%s\")", i,
             printable(t->name, nm, sizeof nm));
    if ((st = parse_dims(c, t)) != MIPR_OK)
        return st;
    at = c->pos;
    if ((st = rd_u32(c, &t->ggml_type)) != MIPR_OK || (st = tensor_size(c, t, at)) != MIPR_OK)
        return st;
    at = c->pos;
    if ((st = rd_u64(c, &t->offset)) != MIPR_OK)
        return st;
    if (t->offset % g->alignment)
        return tensor_error(c, at, "data offset %" PRIu64 " is not a multiple of the "
                            "alignment %" PRIu32, t->offset, g->alignment);
    if (hash_insert(g->tensor_hash, g->tensor_hash_cap, t->name, i, tensor_name, g) >= 0)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT, "%s: duplicate tensor name \"%s\" "
                              "(tensor %" PRIu64 ")", c->name, nm, i);
    return MIPR_OK;
}

/* Every tensor's data must lie inside the file, after the header. */
static mipr_status place_tensors(mipr_gguf *g, cursor *c)
{
    uint64_t pos = c->pos, a = g->alignment;
    g->data_off = (pos + a - 1) / a * a;
    if (g->n_tensors && g->data_off > c->size)
        return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                              "%s: truncated at offset %zu: the data section starts at %" PRIu64,
                              c->name, c->size, g->data_off);
    uint64_t avail = g->data_off <= c->size ? c->size - g->data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        mipr_gguf_tensor_info *t = &g->tensors[i];
        char nm[80];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return mipr_error_set(c->err, MIPR_ERR_FORMAT,
                                  "%s: tensor %" PRIu64 " (\"%s\"): data of %" PRIu64
                                  " bytes at offset %" PRIu64 " runs past the end of the file "
                                  "(%zu bytes)",
                                  c->name, i, printable(t->name, nm, sizeof nm), t->nbytes,
                                  g->data_off + t->offset, c->size);
        ggml_traits tr;
        if (known_traits(t->ggml_type, &tr))
            t->data = c->p + g->data_off + t->offset;
    }
    return MIPR_OK;
}

static mipr_status parse_tensors(mipr_gguf *g, cursor *c)
{
    g->tensors = calloc((size_t)g->n_tensors + 1, sizeof *g->tensors);
    g->tensor_hash = hash_new(g->n_tensors, &g->tensor_hash_cap);
    if (!g->tensors || !g->tensor_hash)
        return mipr_error_set(c->err, MIPR_ERR_NOMEM,
                              "%s: out of memory for %" PRIu64 " tensors", c->name, g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        mipr_status st = parse_tensor(g, c, i);
        if (st != MIPR_OK)
            return st;
    }
    return place_tensors(g, c);
}

/* ---- open / close ----------------------------------------------------------------------- */

static mipr_status parse(mipr_gguf *g, mipr_error *err)
{
    cursor c = {.p = g->bytes, .size = g->size, .name = g->path, .err = err};
    if (!g->bytes)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: empty file, not GGUF", g->path);
    mipr_status st = parse_magic_version(g, &c);
    if (st == MIPR_OK)
        st = parse_counts(g, &c);
    if (st == MIPR_OK)
        st = parse_kvs(g, &c);
    if (st == MIPR_OK)
        st = parse_alignment(g, &c);
    if (st == MIPR_OK)
        st = parse_tensors(g, &c);
    return st;
}

static mipr_status gguf_new(mipr_gguf **out, const char *name, mipr_error *err)
{
    *out = NULL;
    mipr_gguf *g = calloc(1, sizeof *g);
    size_t n = strlen(name);
    if (g)
        g->path = malloc(n + 1);
    if (!g || !g->path) {
        free(g);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(g->path, name, n + 1);
    *out = g;
    return MIPR_OK;
}

static mipr_status finish_open(mipr_gguf **out, mipr_gguf *g, mipr_error *err)
{
    mipr_status st = parse(g, err);
    if (st != MIPR_OK) {
        mipr_gguf_close(g);
        return st;
    }
    *out = g;
    return MIPR_OK;
}

mipr_status mipr_gguf_open(mipr_gguf **out, const char *path, mipr_error *err)
{
    mipr_gguf *g;
    *out = NULL;
    mipr_status st = gguf_new(&g, path, err);
    if (st != MIPR_OK)
        return st;
    if ((st = mipr_file_map(&g->map, path, err)) != MIPR_OK) {
        mipr_gguf_close(g);
        return st;
    }
    g->has_file = 1;
    g->bytes = g->map.data;
    g->size = g->map.size;
    return finish_open(out, g, err);
}

mipr_status mipr_gguf_open_memory(mipr_gguf **out, const void *buf, size_t len, const char *name,
                                  mipr_error *err)
{
    mipr_gguf *g;
    *out = NULL;
    mipr_status st = gguf_new(&g, name ? name : "(memory)", err);
    if (st != MIPR_OK)
        return st;
    g->bytes = len ? buf : NULL;
    g->size = len;
    return finish_open(out, g, err);
}

void mipr_gguf_close(mipr_gguf *g)
{
    if (!g)
        return;
    if (g->kvs)
        for (uint64_t i = 0; i < g->n_kv; i++)
            free(g->kvs[i].str_index);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_hash);
    free(g->tensor_hash);
    if (g->has_file)
        mipr_file_unmap(&g->map);
    free(g->path);
    free(g);
}

/* ---- simple accessors ------------------------------------------------------------------- */

const char *mipr_gguf_path(const mipr_gguf *g) { return g->path; }
uint32_t mipr_gguf_version(const mipr_gguf *g) { return g->version; }
uint32_t mipr_gguf_alignment(const mipr_gguf *g) { return g->alignment; }
uint64_t mipr_gguf_n_kv(const mipr_gguf *g) { return g->n_kv; }
uint64_t mipr_gguf_n_tensors(const mipr_gguf *g) { return g->n_tensors; }
uint64_t mipr_gguf_data_offset(const mipr_gguf *g) { return g->data_off; }
int mipr_gguf_has_file(const mipr_gguf *g) { return g->has_file; }

const uint8_t *mipr_gguf_bytes(const mipr_gguf *g, size_t *size)
{
    *size = g->size;
    return g->bytes;
}

mipr_gguf_str mipr_gguf_key(const mipr_gguf *g, uint64_t i)
{
    mipr_gguf_str none = {"", 0};
    return i < g->n_kv ? g->kvs[i].key : none;
}

enum mipr_gguf_vtype mipr_gguf_kv_type(const mipr_gguf *g, uint64_t i)
{
    return i < g->n_kv ? (enum mipr_gguf_vtype)g->kvs[i].type : MIPR_GGUF_VTYPE_COUNT;
}

int64_t mipr_gguf_find(const mipr_gguf *g, const char *key)
{
    if (!key)
        return -1;
    return hash_find(g->kv_hash, g->kv_hash_cap, key, strlen(key), kv_name, g);
}

const mipr_gguf_tensor_info *mipr_gguf_tensor(const mipr_gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const mipr_gguf_tensor_info *mipr_gguf_find_tensor(const mipr_gguf *g, const char *name)
{
    if (!name)
        return NULL;
    int64_t i = hash_find(g->tensor_hash, g->tensor_hash_cap, name, strlen(name), tensor_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- typed values ----------------------------------------------------------------------- */

typedef struct num {
    int is_float;
    int64_t i;  /* valid when !is_float, or for UINT64 that fits */
    double f;
    int u64_big; /* a UINT64 above INT64_MAX */
} num;

static num load_num(const uint8_t *p, uint32_t type)
{
    num n = {0, 0, 0.0, 0};
    switch (type) {
    case MIPR_GGUF_UINT8: case MIPR_GGUF_BOOL: n.i = p[0]; break;
    case MIPR_GGUF_INT8: n.i = (int8_t)p[0]; break;
    case MIPR_GGUF_UINT16: n.i = ld16(p); break;
    case MIPR_GGUF_INT16: n.i = (int16_t)ld16(p); break;
    case MIPR_GGUF_UINT32: n.i = ld32(p); break;
    case MIPR_GGUF_INT32: n.i = (int32_t)ld32(p); break;
    case MIPR_GGUF_INT64: n.i = (int64_t)ld64(p); break;
    case MIPR_GGUF_UINT64: {
        uint64_t u = ld64(p);
        n.u64_big = u > (uint64_t)INT64_MAX;
        n.i = n.u64_big ? INT64_MAX : (int64_t)u;
        n.f = (double)u;
        return n;
    }
    case MIPR_GGUF_FLOAT32: {
        uint32_t b = ld32(p);
        float f;
        memcpy(&f, &b, 4);
        n.is_float = 1;
        n.f = f;
        return n;
    }
    case MIPR_GGUF_FLOAT64: {
        uint64_t b = ld64(p);
        memcpy(&n.f, &b, 8);
        n.is_float = 1;
        return n;
    }
    }
    if (type == MIPR_GGUF_BOOL)
        n.i = n.i != 0;
    n.f = (double)n.i;
    return n;
}

static int num_to_i64(num n, int64_t *v)
{
    if (n.u64_big)
        return 0;
    if (n.is_float) {
        /* integral floats only: 2^63 itself is out of range */
        if (!(n.f >= -9223372036854775808.0 && n.f < 9223372036854775808.0) ||
            n.f != (double)(int64_t)n.f)
            return 0;
        *v = (int64_t)n.f;
        return 1;
    }
    *v = n.i;
    return 1;
}

int mipr_gguf_get_i64(const mipr_gguf *g, uint64_t i, int64_t *v)
{
    if (i >= g->n_kv || !scalar_size(g->kvs[i].type))
        return 0;
    return num_to_i64(load_num(g->bytes + g->kvs[i].val_off, g->kvs[i].type), v);
}

int mipr_gguf_get_f64(const mipr_gguf *g, uint64_t i, double *v)
{
    if (i >= g->n_kv || !scalar_size(g->kvs[i].type))
        return 0;
    *v = load_num(g->bytes + g->kvs[i].val_off, g->kvs[i].type).f;
    return 1;
}

/* A string stored at off (validated at open). */
static mipr_gguf_str str_at(const mipr_gguf *g, uint64_t off)
{
    mipr_gguf_str s = {(const char *)g->bytes + off + 8, ld64(g->bytes + off)};
    return s;
}

int mipr_gguf_get_str(const mipr_gguf *g, uint64_t i, mipr_gguf_str *v)
{
    if (i >= g->n_kv || g->kvs[i].type != MIPR_GGUF_STRING)
        return 0;
    *v = str_at(g, g->kvs[i].val_off);
    return 1;
}

int mipr_gguf_get_arr(const mipr_gguf *g, uint64_t i, enum mipr_gguf_vtype *type, uint64_t *n)
{
    if (i >= g->n_kv || g->kvs[i].type != MIPR_GGUF_ARRAY)
        return 0;
    if (type)
        *type = (enum mipr_gguf_vtype)g->kvs[i].arr_type;
    if (n)
        *n = g->kvs[i].arr_n;
    return 1;
}

/* Element j of a numeric array, or 0. */
static int arr_num(const mipr_gguf *g, uint64_t i, uint64_t j, num *out)
{
    if (i >= g->n_kv || g->kvs[i].type != MIPR_GGUF_ARRAY || j >= g->kvs[i].arr_n)
        return 0;
    size_t esz = scalar_size(g->kvs[i].arr_type);
    if (!esz)
        return 0;
    *out = load_num(g->bytes + g->kvs[i].val_off + j * esz, g->kvs[i].arr_type);
    return 1;
}

int mipr_gguf_arr_i64(const mipr_gguf *g, uint64_t i, uint64_t j, int64_t *v)
{
    num n;
    return arr_num(g, i, j, &n) && num_to_i64(n, v);
}

int mipr_gguf_arr_f64(const mipr_gguf *g, uint64_t i, uint64_t j, double *v)
{
    num n;
    if (!arr_num(g, i, j, &n))
        return 0;
    *v = n.f;
    return 1;
}

int mipr_gguf_arr_str(const mipr_gguf *g, uint64_t i, uint64_t j, mipr_gguf_str *v)
{
    if (i >= g->n_kv || g->kvs[i].type != MIPR_GGUF_ARRAY ||
        g->kvs[i].arr_type != MIPR_GGUF_STRING || j >= g->kvs[i].arr_n)
        return 0;
    uint64_t off = g->kvs[i].str_index[j / STR_STRIDE];
    for (uint64_t k = j % STR_STRIDE; k > 0; k--)
        off += 8 + ld64(g->bytes + off);
    *v = str_at(g, off);
    return 1;
}

/* ---- rendering -------------------------------------------------------------------------- */

/* Appends printf output to buf at *o, never past cap. */
static PRINTF_LIKE(4, 5) void emit(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o = (size_t)n >= cap - *o ? cap : *o + (size_t)n;
}

static void emit_num(char *buf, size_t cap, size_t *o, num n, uint32_t type)
{
    if (type == MIPR_GGUF_BOOL)
        emit(buf, cap, o, "%s", n.i ? "true" : "false");
    else if (n.is_float)
        emit(buf, cap, o, "%.9g", n.f);
    else if (n.u64_big)
        emit(buf, cap, o, "%.0f", n.f);
    else
        emit(buf, cap, o, "%" PRId64, n.i);
}

static void emit_str(char *buf, size_t cap, size_t *o, mipr_gguf_str s)
{
    char tmp[80];
    emit(buf, cap, o, "\"%s\"", printable(s, tmp, sizeof tmp));
}

static void emit_array(const mipr_gguf *g, uint64_t i, char *buf, size_t cap, size_t *o)
{
    const kv *e = &g->kvs[i];
    emit(buf, cap, o, "[%s x %" PRIu64 "]", vtype_name(e->arr_type), e->arr_n);
    uint64_t shown = e->arr_n < 4 ? e->arr_n : 4;
    for (uint64_t j = 0; j < shown && e->arr_type != MIPR_GGUF_ARRAY; j++) {
        emit(buf, cap, o, j ? ", " : " ");
        mipr_gguf_str s;
        num n;
        if (mipr_gguf_arr_str(g, i, j, &s))
            emit_str(buf, cap, o, s);
        else if (arr_num(g, i, j, &n))
            emit_num(buf, cap, o, n, e->arr_type);
    }
    if (shown < e->arr_n && e->arr_type != MIPR_GGUF_ARRAY)
        emit(buf, cap, o, ", ...");
}

void mipr_gguf_format_value(const mipr_gguf *g, uint64_t i, char *buf, size_t cap)
{
    size_t o = 0;
    if (!buf || cap == 0)
        return;
    buf[0] = 0;
    if (i >= g->n_kv)
        return;
    const kv *e = &g->kvs[i];
    if (e->type == MIPR_GGUF_STRING)
        emit_str(buf, cap, &o, str_at(g, e->val_off));
    else if (e->type == MIPR_GGUF_ARRAY)
        emit_array(g, i, buf, cap, &o);
    else
        emit_num(buf, cap, &o, load_num(g->bytes + e->val_off, e->type), e->type);
}

/* ---- ggml types ------------------------------------------------------------------------- */

const char *mipr_ggml_type_name(uint32_t t)
{
    static const char *const names[] = {
        "F32", "F16", "Q4_0", "Q4_1", NULL, NULL, "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
        "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64",
        "IQ1_M", "BF16", NULL, NULL, NULL, "TQ1_0", "TQ2_0"};
    if (t < sizeof names / sizeof names[0] && names[t])
        return names[t];
    return "unknown";
}

uint32_t mipr_ggml_from_dtype(enum mipr_dtype t)
{
    switch (t) {
    case MIPR_DT_F16: return MIPR_GGML_F16;
    case MIPR_DT_BF16: return MIPR_GGML_BF16;
    case MIPR_DT_Q8_0: return MIPR_GGML_Q8_0;
    case MIPR_DT_Q4_0: return MIPR_GGML_Q4_0;
    default: return MIPR_GGML_F32;
    }
}

int mipr_ggml_to_dtype(uint32_t ggml_type, enum mipr_dtype *out)
{
    switch (ggml_type) {
    case MIPR_GGML_F32: *out = MIPR_DT_F32; return 1;
    case MIPR_GGML_F16: *out = MIPR_DT_F16; return 1;
    case MIPR_GGML_BF16: *out = MIPR_DT_BF16; return 1;
    case MIPR_GGML_Q8_0: *out = MIPR_DT_Q8_0; return 1;
    case MIPR_GGML_Q4_0: *out = MIPR_DT_Q4_0; return 1;
    default: return 0;
    }
}
