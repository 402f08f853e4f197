/* safetensors reading and header writing (safetensors.h). The format's promises are only
 * promises: every length, offset, shape and name is checked against the bytes at hand. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "safetensors.h"

typedef struct dtype_name {
    const char *name;
    int read;              /* 1: mipr reads it (type below) */
    enum mipr_dtype type;
} dtype_name;

/* The dtypes of the format: the three float types are read; the others are named in the
 * error so that a user knows what the file holds. */
static const dtype_name dtypes[] = {
    {"F32", 1, MIPR_DT_F32}, {"F16", 1, MIPR_DT_F16}, {"BF16", 1, MIPR_DT_BF16},
    {"F64", 0, 0}, {"I64", 0, 0}, {"I32", 0, 0}, {"I16", 0, 0}, {"I8", 0, 0}, {"U8", 0, 0},
    {"U16", 0, 0}, {"U32", 0, 0}, {"U64", 0, 0}, {"BOOL", 0, 0}, {"F8_E4M3", 0, 0},
    {"F8_E5M2", 0, 0},
};

static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static mipr_status parse_dtype(const cJSON *e, const char *file, const char *tname,
                               enum mipr_dtype *out, mipr_error *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(d))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: dtype is missing or not a "
                              "string", file, tname);
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++) {
        if (strcmp(d->valuestring, dtypes[i].name) != 0)
            continue;
        if (!dtypes[i].read)
            return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: tensor %s: dtype %s is not "
                                  "read (mipr reads F32, F16 and BF16)", file, tname,
                                  d->valuestring);
        *out = dtypes[i].type;
        return MIPR_OK;
    }
    return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: unknown dtype \"%.32s\"", file,
                          tname, d->valuestring);
}

/* A JSON number that is a whole number in 0..2^53 (exact in a double). */
static int get_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble <= 9007199254740992.0))
        return 0;
    *out = (uint64_t)v->valuedouble;
    return (double)*out == v->valuedouble;
}

static mipr_status parse_shape(const cJSON *e, const char *file, mipr_st_tensor *t,
                               uint64_t *elems, mipr_error *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "shape");
    int n = cJSON_IsArray(s) ? cJSON_GetArraySize(s) : -1;
    if (n < 0 || n > MIPR_ST_MAX_DIMS)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: shape must be an array of "
                              "at most %d sizes", file, t->name, MIPR_ST_MAX_DIMS);
    t->n_dims = (uint32_t)n;
    *elems = 1;
    for (int i = 0; i < n; i++) {
        uint64_t d;
        if (!get_u64(cJSON_GetArrayItem(s, i), &d) || d > UINT32_MAX)
            return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a size "
                                  "in 0..%" PRIu32, file, t->name, i, UINT32_MAX);
        t->shape[i] = d;
        /* each factor < 2^32 and the product is checked before each step: no overflow */
        if (d && *elems > UINT64_MAX / 4 / d)
            return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: shape is too large",
                                  file, t->name);
        *elems *= d;
    }
    return MIPR_OK;
}

static mipr_status parse_offsets(const cJSON *e, const char *file, mipr_st_tensor *t,
                                 uint64_t elems, uint64_t data_size, uint64_t *begin,
                                 mipr_error *err)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t b, end;
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != 2 ||
        !get_u64(cJSON_GetArrayItem(o, 0), &b) || !get_u64(cJSON_GetArrayItem(o, 1), &end) ||
        b > end)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: data_offsets must be "
                              "[begin, end] with 0 <= begin <= end", file, t->name);
    if (end > data_size)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: data_offsets [%" PRIu64
                              ", %" PRIu64 "] run past the end of the data (%" PRIu64
                              " bytes; truncated file?)", file, t->name, b, end, data_size);
    uint64_t want = elems * (uint64_t)mipr_dtype_row_bytes(t->type, 1);
    if (end - b != want)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s: data_offsets span %" PRIu64
                              " bytes but shape and dtype need %" PRIu64, file, t->name,
                              end - b, want);
    t->nbytes = want;
    *begin = b;
    return MIPR_OK;
}

static mipr_status grow(mipr_st_set *s, mipr_error *err)
{
    if (s->n < s->cap)
        return MIPR_OK;
    size_t cap = s->cap ? 2 * s->cap : 64;
    mipr_st_tensor *t = realloc(s->t, cap * sizeof *t);
    if (!t)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    s->t = t, s->cap = cap;
    return MIPR_OK;
}

static mipr_status add_entry(mipr_st_set *s, const cJSON *e, const char *file,
                             const uint8_t *data, uint64_t data_size, mipr_error *err)
{
    if (!cJSON_IsObject(e))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %.64s: entry is not an object",
                              file, e->string);
    mipr_status st = grow(s, err);
    if (st)
        return st;
    mipr_st_tensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(e->string)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    t->file = file;
    uint64_t elems = 0, begin = 0;
    if ((st = parse_dtype(e, file, t->name, &t->type, err)) ||
        (st = parse_shape(e, file, t, &elems, err)) ||
        (st = parse_offsets(e, file, t, elems, data_size, &begin, err))) {
        free(t->name);
        return st;
    }
    t->data = data + begin;
    s->n++;
    return MIPR_OK;
}

static int by_data(const void *a, const void *b)
{
    const mipr_st_tensor *x = *(mipr_st_tensor *const *)a, *y = *(mipr_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(mipr_st_tensor *const *)a)->name, (*(mipr_st_tensor *const *)b)->name);
}

/* Tensors of one file must not share bytes; names must be unique across the set. */
static mipr_status check_set(const mipr_st_set *s, size_t first, mipr_error *err)
{
    size_t n = s->n;
    mipr_st_tensor **p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n - first; i++)
        p[i] = &s->t[first + i];
    qsort(p, n - first, sizeof *p, by_data);
    mipr_status st = MIPR_OK;
    for (size_t i = 1; i < n - first && !st; i++)
        if (p[i - 1]->nbytes && p[i]->nbytes && p[i]->data < p[i - 1]->data + p[i - 1]->nbytes)
            st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensors %s and %s overlap in the "
                                "data", p[i]->file, p[i - 1]->name, p[i]->name);
    for (size_t i = 0; i < n; i++)
        p[i] = &s->t[i];
    qsort(p, n, sizeof *p, by_name);
    for (size_t i = 1; i < n && !st; i++)
        if (strcmp(p[i - 1]->name, p[i]->name) == 0)
            st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s is defined twice (also in "
                                "%s)", p[i]->file, p[i]->name, p[i - 1]->file);
    free(p);
    return st;
}

static mipr_status parse_header(mipr_st_set *s, const cJSON *root, const char *name,
                                const uint8_t *data, uint64_t data_size, mipr_error *err)
{
    if (!cJSON_IsObject(root))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: the safetensors header is not a JSON "
                              "object", name);
    size_t first = s->n;
    mipr_status st = MIPR_OK;
    for (const cJSON *e = root->child; e && !st; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0)
            st = add_entry(s, e, name, data, data_size, err);
    if (!st)
        st = check_set(s, first, err);
    return st;
}

mipr_status mipr_st_add(mipr_st_set *s, const uint8_t *data, size_t size, const char *name,
                        mipr_error *err)
{
    if (size < 8)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: %zu bytes is too short for a "
                              "safetensors file (8-byte header length)", name, size);
    uint64_t hlen = read_le64(data);
    if (hlen < 2 || hlen > size - 8 || hlen > MIPR_ST_MAX_HEADER)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: header length %" PRIu64 " does not fit "
                              "the file (%zu bytes; at most %u)", name, hlen, size,
                              MIPR_ST_MAX_HEADER);
    const char *json = (const char *)data + 8;
    if (json[0] != '{')
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: the safetensors header does not start "
                              "with '{'", name);
    cJSON *root = cJSON_ParseWithLength(json, (size_t)hlen);
    if (!root)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: the safetensors header is not valid "
                              "JSON (near byte %td)", name,
                              cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json + 8 : (ptrdiff_t)0);
    size_t start = 8 + (size_t)hlen;
    mipr_status st = parse_header(s, root, name, data + start, size - start, err);
    cJSON_Delete(root);
    return st;
}

const mipr_st_tensor *mipr_st_find(const mipr_st_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return &s->t[i];
    return NULL;
}

void mipr_st_free(mipr_st_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->t[i].name);
    free(s->t);
    memset(s, 0, sizeof *s);
}

static const char *dtype_str(enum mipr_dtype t)
{
    return t == MIPR_DT_F16 ? "F16" : t == MIPR_DT_BF16 ? "BF16" : "F32";
}

char *mipr_st_header(const mipr_st_out *t, size_t n, size_t *len, uint64_t *offsets)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name), *shape, *off;
        cJSON_AddStringToObject(e, "dtype", dtype_str(t[i].type));
        uint64_t bytes = (uint64_t)mipr_dtype_row_bytes(t[i].type, 1);
        shape = cJSON_AddArrayToObject(e, "shape");
        for (uint32_t d = 0; d < t[i].n_dims; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
            bytes *= t[i].shape[d];
        }
        off = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(at + bytes)));
        offsets[i] = at;
        at += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json)
        return NULL;
    size_t l = strlen(json), padded = (l + 7) / 8 * 8;
    char *out = malloc(padded + 1);
    if (out) {
        memcpy(out, json, l);
        memset(out + l, ' ', padded - l);
        out[padded] = 0;
        *len = padded;
    }
    cJSON_free(json);
    return out;
}
