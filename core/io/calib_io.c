/* The .mcal calibration file (docs/CALIB_FORMAT.md): a CRC-protected fixed header, then
 * sections, each a CRC-protected 32-byte header and one zstd frame carrying its own content
 * checksum.
 *
 * Reading never trusts a size: every section is located and checked (bounds, checksum, the
 * size the header implies, the frame's declared content size) before anything is allocated,
 * so a hostile file can make the reader allocate little more than its own size. Values are
 * encoded byte by byte, so the format is little-endian on any host. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "calib_internal.h"
#include "mipr.h"

#define MAGIC "MIPRCAL\0"
#define VERSION 1u
#define FIXED_SIZE 48u  /* magic .. seed; d_ff[] and the names follow */
#define SEC_SIZE 32u    /* section header */
#define NAME_MAX_LEN 255u
/* No real activation data compresses this well; a frame that claims to must be hostile. */
#define MAX_RATIO 1024u

enum { TAG_POS = 0x534F5053u, TAG_STAT = 0x54415453u, TAG_SAMP = 0x504D4153u,
       TAG_HOLD = 0x444C4F48u }; /* SPOS ... ; HOLD is optional */
/* HOLD's layer field holds its token count instead of a layer. */
#define MAX_HELDOUT (1u << 22)

/* ---- little-endian bytes and CRC-32 -------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint64_t f64_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_f64(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static uint32_t f32_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* CRC-32 is the runtime's (mipr_crc32); the table lives with the reader or writer. */
typedef mipr_crc32_table crc_table;

static void crc_init(crc_table *c)
{
    mipr_crc32_init(c);
}

static uint32_t crc_update(const crc_table *c, uint32_t crc, const uint8_t *p, size_t n)
{
    return mipr_crc32(c, crc, p, n);
}

/* ---- section layouts ----------------------------------------------------------------------- */

static int known_tag(uint32_t tag)
{
    return tag == TAG_POS || tag == TAG_STAT || tag == TAG_SAMP || tag == TAG_HOLD;
}

static const char *tag_name(uint32_t tag)
{
    return tag == TAG_POS    ? "SPOS"
           : tag == TAG_STAT ? "STAT"
           : tag == TAG_SAMP ? "SAMP"
           : tag == TAG_HOLD ? "HOLD"
                             : "?";
}

/* Bytes of a section's decompressed content; 0 for unknown tags. */
static uint64_t raw_size_of(uint32_t tag, uint32_t d_ff, uint32_t n_samples)
{
    switch (tag) {
    case TAG_POS: return 8 * (uint64_t)n_samples;
    case TAG_STAT: return 8 + 40 * (uint64_t)d_ff;
    case TAG_SAMP: return 4 * (uint64_t)d_ff * n_samples;
    case TAG_HOLD: return 4 * (uint64_t)d_ff; /* d_ff: the token count */
    default: return 0;
    }
}

/* STAT: u64 count, then mean, m2, sum_abs, sum_sq (f64 arrays), then min, max (f32 arrays). */
static void encode_stats(uint8_t *p, const mipr_calib_layer *L)
{
    const double *arr[4] = {L->mean, L->m2, L->sum_abs, L->sum_sq};
    size_t n = L->d_ff;
    put_u64(p, L->count);
    p += 8;
    for (int a = 0; a < 4; a++, p += 8 * n)
        for (size_t j = 0; j < n; j++)
            put_u64(p + 8 * j, f64_bits(arr[a][j]));
    for (size_t j = 0; j < n; j++) {
        put_u32(p + 4 * j, f32_bits(L->min[j]));
        put_u32(p + 4 * (n + j), f32_bits(L->max[j]));
    }
}

static void decode_stats(mipr_calib_layer *L, const uint8_t *p)
{
    double *arr[4] = {L->mean, L->m2, L->sum_abs, L->sum_sq};
    size_t n = L->d_ff;
    L->count = get_u64(p);
    p += 8;
    for (int a = 0; a < 4; a++, p += 8 * n)
        for (size_t j = 0; j < n; j++)
            arr[a][j] = bits_f64(get_u64(p + 8 * j));
    for (size_t j = 0; j < n; j++) {
        L->min[j] = bits_f32(get_u32(p + 4 * j));
        L->max[j] = bits_f32(get_u32(p + 4 * (n + j)));
    }
}

/* SAMP: the floats split into 4 byte planes (all lowest bytes, then the next, ...). The
 * sign/exponent bytes are highly predictable and the low mantissa bytes are noise; apart,
 * zstd codes each plane with its own statistics (docs/CALIB_FORMAT.md has the numbers). */
static void encode_planes(uint8_t *p, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f32_bits(x[i]);
        for (size_t b = 0; b < 4; b++)
            p[b * n + i] = (uint8_t)(u >> (8 * b));
    }
}

static void decode_planes(float *x, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = 0;
        for (size_t b = 0; b < 4; b++)
            u |= (uint32_t)p[b * n + i] << (8 * b);
        x[i] = bits_f32(u);
    }
}

static void encode_pos(uint8_t *p, const uint64_t *pos, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        put_u64(p + 8 * (size_t)k, pos[k]);
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct writer {
    mipr_outfile out;
    ZSTD_CCtx *z;
    crc_table crc;
    uint8_t *raw, *dst;
    size_t raw_cap, dst_cap;
} writer;

static mipr_status reserve(uint8_t **buf, size_t *cap, size_t n, mipr_error *err)
{
    if (n <= *cap)
        return MIPR_OK;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %zu bytes", n);
    *buf = p;
    *cap = n;
    return MIPR_OK;
}

/* Compresses w->raw[0..raw) into w->dst as one frame. parts > 1 ends a zstd block at each
 * part boundary, so that each byte plane of the samples gets its own entropy tables rather
 * than sharing one when the planes fit in a single 128 KiB block. */
static mipr_status compress(writer *w, size_t raw, size_t parts, size_t *stored,
                            mipr_error *err)
{
    size_t cap = ZSTD_compressBound(raw) + 64 * parts; /* + block headers of the flushes */
    mipr_status st = reserve(&w->dst, &w->dst_cap, cap, err);
    if (st)
        return st;
    ZSTD_CCtx_reset(w->z, ZSTD_reset_session_only);
    ZSTD_CCtx_setPledgedSrcSize(w->z, raw); /* puts the content size in the frame header */
    ZSTD_outBuffer out = {w->dst, cap, 0};
    size_t per = raw / parts, left = 0;
    for (size_t k = 0; k < parts; k++) {
        ZSTD_inBuffer in = {w->raw + k * per, k + 1 < parts ? per : raw - k * per, 0};
        ZSTD_EndDirective end = k + 1 < parts ? ZSTD_e_flush : ZSTD_e_end;
        do
            left = ZSTD_compressStream2(w->z, &out, &in, end);
        while (!ZSTD_isError(left) && left != 0 && out.pos < out.size);
        if (ZSTD_isError(left) || left != 0)
            return mipr_error_set(err, MIPR_ERR_IO, "%s: zstd compression failed: %s",
                                  w->out.final_path,
                                  ZSTD_isError(left) ? ZSTD_getErrorName(left) : "no room");
    }
    *stored = out.pos;
    return MIPR_OK;
}

/* Compresses w->raw[0..raw) and appends the section. */
static mipr_status write_section(writer *w, uint32_t tag, uint32_t layer, size_t raw,
                                 mipr_error *err)
{
    size_t stored = 0;
    mipr_status st = compress(w, raw, tag == TAG_SAMP && raw ? 4 : 1, &stored, err);
    if (st)
        return st;
    uint8_t h[SEC_SIZE] = {0};
    put_u32(h, tag);
    put_u32(h + 4, layer);
    put_u64(h + 8, raw);
    put_u64(h + 16, stored);
    uint32_t crc = crc_update(&w->crc, crc_update(&w->crc, 0, h, 28), w->dst, stored);
    put_u32(h + 28, crc);
    st = mipr_outfile_write(&w->out, h, sizeof h, err);
    return st ? st : mipr_outfile_write(&w->out, w->dst, stored, err);
}

static mipr_status write_header(writer *w, const mipr_calib *c, mipr_error *err)
{
    size_t ml = strlen(c->model), tl = strlen(c->text);
    size_t n = FIXED_SIZE + 4 * (size_t)c->n_layers + 4 + ml + 4 + tl + 4;
    mipr_status st = reserve(&w->raw, &w->raw_cap, n, err);
    if (st)
        return st;
    uint8_t *p = w->raw;
    memset(p, 0, FIXED_SIZE);
    memcpy(p, MAGIC, 8);
    put_u32(p + 8, VERSION);
    put_u32(p + 12, c->n_layers);
    put_u32(p + 16, c->dim);
    put_u32(p + 20, c->window);
    put_u32(p + 24, c->n_samples);
    put_u64(p + 32, c->tokens);
    put_u64(p + 40, c->seed);
    p += FIXED_SIZE;
    for (uint32_t l = 0; l < c->n_layers; l++, p += 4)
        put_u32(p, c->layers[l].d_ff);
    put_u32(p, (uint32_t)ml);
    memcpy(p + 4, c->model, ml);
    p += 4 + ml;
    put_u32(p, (uint32_t)tl);
    memcpy(p + 4, c->text, tl);
    put_u32(p + 4 + tl, crc_update(&w->crc, 0, w->raw, n - 4));
    return mipr_outfile_write(&w->out, w->raw, n, err);
}

static mipr_status write_layer(writer *w, const mipr_calib *c, uint32_t l, mipr_error *err)
{
    const mipr_calib_layer *L = &c->layers[l];
    size_t raw = (size_t)raw_size_of(TAG_STAT, L->d_ff, c->n_samples);
    mipr_status st = reserve(&w->raw, &w->raw_cap, raw, err);
    if (st)
        return st;
    encode_stats(w->raw, L);
    if ((st = write_section(w, TAG_STAT, l, raw, err)))
        return st;
    raw = (size_t)raw_size_of(TAG_SAMP, L->d_ff, c->n_samples);
    if ((st = reserve(&w->raw, &w->raw_cap, raw, err)))
        return st;
    if (raw)
        encode_planes(w->raw, L->samples, raw / 4);
    return write_section(w, TAG_SAMP, l, raw, err);
}

static mipr_status write_all(writer *w, const mipr_calib *c, mipr_error *err)
{
    mipr_status st = write_header(w, c, err);
    size_t raw = (size_t)raw_size_of(TAG_POS, 0, c->n_samples);
    if (st == MIPR_OK)
        st = reserve(&w->raw, &w->raw_cap, raw, err);
    if (st == MIPR_OK) {
        if (raw)
            encode_pos(w->raw, c->sample_pos, c->n_samples);
        st = write_section(w, TAG_POS, 0, raw, err);
    }
    for (uint32_t l = 0; st == MIPR_OK && l < c->n_layers; l++)
        st = write_layer(w, c, l, err);
    raw = 4 * (size_t)c->n_heldout;
    if (st == MIPR_OK && raw && (st = reserve(&w->raw, &w->raw_cap, raw, err)) == MIPR_OK) {
        for (uint32_t i = 0; i < c->n_heldout; i++)
            put_u32(w->raw + 4 * (size_t)i, (uint32_t)c->heldout[i]);
        st = write_section(w, TAG_HOLD, c->n_heldout, raw, err);
    }
    return st;
}

/* Sample positions strictly ascending below tokens, and every layer's count equal to
 * tokens: what the checksums cannot vouch for, checked on both sides. */
static int positions_ok(const mipr_calib *c)
{
    for (uint32_t k = 0; k < c->n_samples; k++)
        if (c->sample_pos[k] >= c->tokens || (k && c->sample_pos[k] <= c->sample_pos[k - 1]))
            return 0;
    return 1;
}

/* First layer whose count differs from tokens, or n_layers. */
static uint32_t bad_count(const mipr_calib *c)
{
    uint32_t l = 0;
    while (l < c->n_layers && c->layers[l].count == c->tokens)
        l++;
    return l;
}

static int shapes_ok(const mipr_calib *c)
{
    int ok = c->n_layers >= 1 && c->n_layers <= MIPR_MAX_LAYERS && c->layers &&
             (c->n_samples == 0 || c->sample_pos) && memchr(c->model, 0, sizeof c->model) &&
             memchr(c->text, 0, sizeof c->text);
    for (uint32_t l = 0; ok && l < c->n_layers; l++) {
        const mipr_calib_layer *L = &c->layers[l];
        ok = L->d_ff >= 1 && L->d_ff <= MIPR_MAX_FF && L->mean && L->m2 && L->sum_abs &&
             L->sum_sq && L->min && L->max && (c->n_samples == 0 || L->samples);
    }
    return ok;
}

static mipr_status check_values_to_save(const mipr_calib *c, const char *path, mipr_error *err);

/* The writer refuses what the reader would refuse. */
static mipr_status check_record(const mipr_calib *c, const char *path, mipr_error *err)
{
    const char *why = NULL;
    if (!shapes_ok(c))
        why = "its shapes or arrays are incomplete";
    else if (c->dim == 0 || c->dim > MIPR_MAX_DIM || c->window < 2 || c->window > MIPR_MAX_SEQ)
        why = "its width or window is out of range";
    else if (c->n_samples > c->tokens || !positions_ok(c))
        why = "its sample positions are not ascending token indices";
    else if (bad_count(c) < c->n_layers)
        why = "a layer's count differs from its token count";
    if (why)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: cannot save the calibration record: %s",
                              path, why);
    return check_values_to_save(c, path, err);
}

static mipr_status writer_setup(writer *w, int level, const char *path, mipr_error *err)
{
    if (level == 0)
        level = ZSTD_CLEVEL_DEFAULT;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return mipr_error_set(err, MIPR_ERR_ARG, "zstd level %d outside %d..%d", level,
                              ZSTD_minCLevel(), ZSTD_maxCLevel());
    crc_init(&w->crc);
    w->z = ZSTD_createCCtx();
    if (!w->z)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for zstd", path);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->z, ZSTD_c_contentSizeFlag, 1)))
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: zstd rejected level %d", path, level);
    return MIPR_OK;
}

mipr_status mipr_calib_write(mipr_outfile *o, const mipr_calib *c, int level, mipr_error *err)
{
    const char *path = o && o->final_path ? o->final_path : "(output)";
    writer w = {0};
    mipr_status st = check_record(c, path, err);
    if (st == MIPR_OK)
        st = writer_setup(&w, level, path, err);
    if (st == MIPR_OK) {
        w.out = *o; /* the stream is shared; o stays the caller's to commit or abort */
        st = write_all(&w, c, err);
    }
    ZSTD_freeCCtx(w.z);
    free(w.raw);
    free(w.dst);
    return st;
}

mipr_status mipr_calib_save(const mipr_calib *c, const char *path, int level, mipr_error *err)
{
    mipr_outfile o;
    mipr_status st = check_record(c, path, err);
    if (st != MIPR_OK || (st = mipr_outfile_open(&o, path, err)) != MIPR_OK)
        return st;
    st = mipr_calib_write(&o, c, level, err);
    if (st == MIPR_OK)
        return mipr_outfile_commit(&o, err);
    mipr_outfile_abort(&o);
    return st;
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct section {
    uint64_t off;    /* of the frame in the file */
    uint64_t raw, stored;
    int seen;
} section;

typedef struct reader {
    const char *path;
    const uint8_t *data;
    size_t size;
    crc_table crc;
    /* from the header */
    uint32_t n_layers, dim, window, n_samples;
    uint64_t tokens, seed;
    uint32_t *d_ff;
    const uint8_t *model, *text;
    uint32_t model_len, text_len;
    size_t header_size;
    /* sections by slot: 0 positions, 1 + 2l stats of layer l, 2 + 2l samples of layer l */
    section *sec;
    size_t n_sec;
    int with_samples; /* 0: leave SAMP sections in the file (mipr_calib_open) */
    mipr_error *err;
} reader;

/* Where each layer's samples are, for records opened without them. */
struct mipr_calib_file_ {
    char *path;
    uint64_t size;
    section *samp; /* n_layers */
};

void mipr_calib_file_free(struct mipr_calib_file_ *f)
{
    if (f) {
        free(f->path);
        free(f->samp);
        free(f);
    }
}

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static mipr_status fail_at(const reader *r, mipr_status st, const char *where, uint64_t off,
                           const char *fmt, ...) PRINTF_LIKE(5, 6);

/* "FILE: WHERE at offset OFF: what went wrong". */
static mipr_status fail_at(const reader *r, mipr_status st, const char *where, uint64_t off,
                           const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mipr_error_set(r->err, st, "%s: %s at offset %llu: %s", r->path, where,
                          (unsigned long long)off, what);
}

#define HDR_FAIL(r, off, ...) fail_at(r, MIPR_ERR_FORMAT, "header", off, __VA_ARGS__)

/* Slots: SPOS, then STAT and SAMP per layer, then the optional HOLD. */
static void slot_id(size_t slot, size_t n_sec, uint32_t *tag, uint32_t *layer)
{
    *tag = slot == 0 ? TAG_POS : slot == n_sec - 1 ? TAG_HOLD : (slot - 1) % 2 == 0 ? TAG_STAT : TAG_SAMP;
    *layer = slot == 0 || slot == n_sec - 1 ? 0 : (uint32_t)((slot - 1) / 2);
}

static mipr_status sec_fail(const reader *r, uint32_t tag, uint32_t layer, uint64_t off,
                            const char *what)
{
    char where[64];
    snprintf(where, sizeof where, "section %s (layer %u)", tag_name(tag), layer);
    if (!known_tag(tag))
        snprintf(where, sizeof where, "section 0x%08x", tag);
    return fail_at(r, MIPR_ERR_FORMAT, where, off, "%s", what);
}

/* A length-prefixed name of at most NAME_MAX_LEN bytes without NUL. */
static mipr_status read_name(reader *r, size_t *off, const uint8_t **s, uint32_t *len)
{
    if (r->size - *off < 4)
        return HDR_FAIL(r, *off, "file ends inside the header");
    *len = get_u32(r->data + *off);
    if (*len > NAME_MAX_LEN)
        return HDR_FAIL(r, *off, "name of %u bytes (at most %u)", *len, NAME_MAX_LEN);
    if (r->size - *off - 4 < *len)
        return HDR_FAIL(r, *off, "file ends inside the header");
    *s = r->data + *off + 4;
    *off += 4 + (size_t)*len;
    return MIPR_OK;
}

static mipr_status read_widths(reader *r)
{
    if ((r->size - FIXED_SIZE) / 4 < r->n_layers)
        return HDR_FAIL(r, FIXED_SIZE, "file ends inside the header");
    r->d_ff = malloc(r->n_layers * sizeof *r->d_ff);
    if (!r->d_ff)
        return mipr_error_set(r->err, MIPR_ERR_NOMEM, "%s: out of memory", r->path);
    for (uint32_t l = 0; l < r->n_layers; l++) {
        r->d_ff[l] = get_u32(r->data + FIXED_SIZE + 4 * (size_t)l);
        if (r->d_ff[l] == 0 || r->d_ff[l] > MIPR_MAX_FF)
            return HDR_FAIL(r, FIXED_SIZE + 4 * (size_t)l, "layer %u width %u outside 1..%u",
                            l, r->d_ff[l], MIPR_MAX_FF);
    }
    return MIPR_OK;
}

/* Magic, version, the layer count and every length: what locates the rest of the header. */
static mipr_status read_layout(reader *r)
{
    const uint8_t *p = r->data;
    if (r->size < FIXED_SIZE)
        return HDR_FAIL(r, 0, "the file is %zu bytes, too short for a calibration file",
                        r->size);
    if (memcmp(p, MAGIC, 8) != 0)
        return HDR_FAIL(r, 0, "not a mipr calibration file (bad magic)");
    uint32_t version = get_u32(p + 8);
    if (version != VERSION)
        return fail_at(r, version > VERSION ? MIPR_ERR_UNSUPPORTED : MIPR_ERR_FORMAT, "header",
                       8, "version %u, this build reads version %u", version, VERSION);
    r->n_layers = get_u32(p + 12);
    if (r->n_layers == 0 || r->n_layers > MIPR_MAX_LAYERS)
        return HDR_FAIL(r, 12, "%u layers outside 1..%u", r->n_layers, MIPR_MAX_LAYERS);
    mipr_status st = read_widths(r);
    size_t off = FIXED_SIZE + 4 * (size_t)r->n_layers;
    if (st == MIPR_OK)
        st = read_name(r, &off, &r->model, &r->model_len);
    if (st == MIPR_OK)
        st = read_name(r, &off, &r->text, &r->text_len);
    if (st == MIPR_OK && r->size - off < 4)
        st = HDR_FAIL(r, off, "file ends inside the header");
    r->header_size = off + 4;
    return st;
}

/* Every header value against the others (after the checksum has vouched for the bytes). */
static mipr_status read_values(reader *r)
{
    const uint8_t *p = r->data;
    size_t crc_off = r->header_size - 4;
    if (crc_update(&r->crc, 0, p, crc_off) != get_u32(p + crc_off))
        return HDR_FAIL(r, crc_off, "header checksum mismatch (the file is damaged)");
    r->dim = get_u32(p + 16);
    r->window = get_u32(p + 20);
    r->n_samples = get_u32(p + 24);
    r->tokens = get_u64(p + 32);
    r->seed = get_u64(p + 40);
    if (get_u32(p + 28) != 0)
        return HDR_FAIL(r, 28, "reserved field is not zero");
    if (r->dim == 0 || r->dim > MIPR_MAX_DIM)
        return HDR_FAIL(r, 16, "width %u outside 1..%u", r->dim, MIPR_MAX_DIM);
    if (r->window < 2 || r->window > MIPR_MAX_SEQ)
        return HDR_FAIL(r, 20, "window %u outside 2..%u", r->window, MIPR_MAX_SEQ);
    if (r->n_samples > r->tokens)
        return HDR_FAIL(r, 24, "%u samples of only %llu tokens", r->n_samples,
                        (unsigned long long)r->tokens);
    if (memchr(r->model, 0, r->model_len) || memchr(r->text, 0, r->text_len))
        return HDR_FAIL(r, FIXED_SIZE, "a name holds a NUL byte");
    return MIPR_OK;
}

/* Index in r->sec of a known section whose layer has been checked. */
static size_t slot_of(const reader *r, uint32_t tag, uint32_t layer)
{
    if (tag == TAG_HOLD)
        return r->n_sec - 1;
    return tag == TAG_POS ? 0 : 1 + 2 * (size_t)layer + (tag == TAG_SAMP);
}

/* Everything about a known section that can be checked without decompressing it. */
static mipr_status check_section(reader *r, uint32_t tag, uint32_t layer, uint64_t raw,
                                 uint64_t off, uint64_t stored)
{
    const uint8_t *frame = r->data + off;
    uint64_t at = off - SEC_SIZE;
    if (tag == TAG_HOLD ? layer == 0 || layer > MAX_HELDOUT
                        : tag == TAG_POS ? layer != 0 : layer >= r->n_layers)
        return sec_fail(r, tag, layer, at, tag == TAG_HOLD ? "held-out token count out of range"
                                                           : "no such layer in this file");
    section *s = &r->sec[slot_of(r, tag, layer)];
    uint32_t d = tag == TAG_POS ? 0 : tag == TAG_HOLD ? layer : r->d_ff[layer];
    uint64_t want = raw_size_of(tag, d, r->n_samples);
    if (s->seen)
        return sec_fail(r, tag, layer, at, "the section appears twice");
    if (raw != want || (uint64_t)(size_t)want != want)
        return sec_fail(r, tag, layer, at, "its size does not match the header's shapes");
    if (raw / MAX_RATIO > stored + 64)
        return sec_fail(r, tag, layer, at, "implausible compression ratio");
    if (ZSTD_findFrameCompressedSize(frame, stored) != stored)
        return sec_fail(r, tag, layer, at, "the data is not exactly one zstd frame");
    if (ZSTD_getFrameContentSize(frame, stored) != raw)
        return sec_fail(r, tag, layer, at, "the zstd frame's content size differs");
    *s = (section){off, raw, stored, 1};
    return MIPR_OK;
}

/* Locates and checks every section; unknown tags are skipped (their checksum still holds). */
static mipr_status walk_sections(reader *r)
{
    r->n_sec = 2 + 2 * (size_t)r->n_layers;
    if (!(r->sec = calloc(r->n_sec, sizeof *r->sec)))
        return mipr_error_set(r->err, MIPR_ERR_NOMEM, "%s: out of memory", r->path);
    for (size_t off = r->header_size; off < r->size;) {
        const uint8_t *h = r->data + off;
        if (r->size - off < SEC_SIZE)
            return fail_at(r, MIPR_ERR_FORMAT, "section", off, "file ends inside a header");
        uint32_t tag = get_u32(h), layer = get_u32(h + 4);
        uint64_t raw = get_u64(h + 8), stored = get_u64(h + 16);
        if (stored > r->size - off - SEC_SIZE)
            return sec_fail(r, tag, layer, off, "its data runs past the end of the file");
        uint32_t crc = crc_update(&r->crc, crc_update(&r->crc, 0, h, 28), h + SEC_SIZE, stored);
        if (crc != get_u32(h + 28))
            return sec_fail(r, tag, layer, off, "checksum mismatch (the file is damaged)");
        if (known_tag(tag)) {
            mipr_status st = get_u32(h + 24) != 0
                                 ? sec_fail(r, tag, layer, off, "reserved field is not zero")
                                 : check_section(r, tag, layer, raw, off + SEC_SIZE, stored);
            if (st)
                return st;
        }
        off += SEC_SIZE + stored;
    }
    for (size_t i = 0; i + 1 < r->n_sec; i++) /* all but the optional HOLD */
        if (!r->sec[i].seen) {
            uint32_t tag, layer;
            slot_id(i, r->n_sec, &tag, &layer);
            return sec_fail(r, tag, layer, r->size, "missing (the file is truncated?)");
        }
    return MIPR_OK;
}

/* ---- values: every float and token id checked once, as it is read -------------------------- */

/* Index of the first value of x[0..n) that is NaN or infinite (or negative when the field
 * cannot be), or n. */
static size_t bad_double(const double *x, size_t n, int nonneg)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(x[j]) || (nonneg && x[j] < 0.0))
            return j;
    return n;
}

static size_t bad_float(const float *x, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(x[j]))
            return j;
    return n;
}

static mipr_status value_fail(mipr_error *err, const char *path, const char *sec, uint32_t l,
                              const char *field, size_t j, double v)
{
    return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: section %s (layer %u): %s of neuron %zu "
                          "is %g (a statistic must be finite%s)", path, sec, l, field, j, v,
                          strcmp(field, "mean") && strcmp(field, "min") && strcmp(field, "max")
                              ? " and not negative" : "");
}

/* Every statistic of neuron j is a sum over `count` values inside [min, max]: the bounds that
 * follow (with room for double rounding, 1e-9 relative) hold for any honest record, and
 * refuse finite but absurd values (1e300) that would overflow the pruned model. NULL when
 * they hold, else the field that breaks them. */
static const char *stat_outside_range(const mipr_calib_layer *L, size_t j)
{
    double lo = L->min[j], hi = L->max[j], n = (double)L->count;
    double big = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi), slack = 1e-9 * big + 1e-300;
    if (L->mean[j] < lo - slack || L->mean[j] > hi + slack)
        return "mean";
    if (L->m2[j] > n * (hi - lo) * (hi - lo) * (1.0 + 1e-9) + 1e-300)
        return "m2";
    if (L->sum_abs[j] > n * big * (1.0 + 1e-9) + 1e-300)
        return "sum_abs";
    if (L->sum_sq[j] > n * big * big * (1.0 + 1e-9) + 1e-300)
        return "sum_sq";
    return NULL;
}

/* The statistics of one layer: finite, m2 / sum_abs / sum_sq not negative, min <= max, and
 * each inside what values in [min, max] can give. */
static mipr_status check_stats(const mipr_calib_layer *L, uint32_t l, const char *path,
                               mipr_error *err)
{
    const double *arr[4] = {L->mean, L->m2, L->sum_abs, L->sum_sq};
    static const char *const names[4] = {"mean", "m2", "sum_abs", "sum_sq"};
    for (int a = 0; a < 4; a++) {
        size_t j = bad_double(arr[a], L->d_ff, a > 0);
        if (j < L->d_ff)
            return value_fail(err, path, "STAT", l, names[a], j, arr[a][j]);
    }
    size_t j = bad_float(L->min, L->d_ff);
    if (j < L->d_ff)
        return value_fail(err, path, "STAT", l, "min", j, L->min[j]);
    if ((j = bad_float(L->max, L->d_ff)) < L->d_ff)
        return value_fail(err, path, "STAT", l, "max", j, L->max[j]);
    for (j = 0; L->count && j < L->d_ff; j++) {
        if (L->min[j] > L->max[j])
            return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: section STAT (layer %u): neuron "
                                  "%zu has min %g above max %g", path, l, j, L->min[j],
                                  L->max[j]);
        const char *bad = stat_outside_range(L, j);
        if (bad)
            return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: section STAT (layer %u): %s of "
                                  "neuron %zu is impossible for values in [%g, %g]", path, l,
                                  bad, j, L->min[j], L->max[j]);
    }
    return MIPR_OK;
}

/* Samples are stored neuron-major: value i belongs to neuron i / n_samples. */
static mipr_status check_samples(const float *x, uint32_t d_ff, uint32_t n_samples, uint32_t l,
                                 const char *path, mipr_error *err)
{
    size_t n = (size_t)d_ff * n_samples, i = bad_float(x, n);
    if (i == n)
        return MIPR_OK;
    return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: section SAMP (layer %u): sample %zu of "
                          "neuron %zu is %g (samples must be finite)", path, l, i % n_samples,
                          i / n_samples, x[i]);
}

static mipr_status check_values(const mipr_calib *c, const char *path, mipr_error *err)
{
    mipr_status st = MIPR_OK;
    for (uint32_t l = 0; l < c->n_layers && st == MIPR_OK; l++) {
        st = check_stats(&c->layers[l], l, path, err);
        if (st == MIPR_OK && c->layers[l].samples)
            st = check_samples(c->layers[l].samples, c->layers[l].d_ff, c->n_samples, l, path,
                               err);
    }
    for (uint32_t i = 0; i < c->n_heldout && st == MIPR_OK; i++)
        if (c->heldout[i] < 0)
            st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: section HOLD: held-out token %u "
                                "has the negative id %d", path, i, (int)c->heldout[i]);
    return st;
}

static mipr_status check_values_to_save(const mipr_calib *c, const char *path, mipr_error *err)
{
    mipr_error e = {0};
    if (check_values(c, path, &e) == MIPR_OK)
        return MIPR_OK;
    return mipr_error_set(err, MIPR_ERR_ARG, "%s: cannot save the calibration record: %s", path,
                          e.msg + strlen(path) + 2);
}

static mipr_status check_content(const reader *r, const mipr_calib *c)
{
    uint32_t l = bad_count(c);
    if (!positions_ok(c))
        return sec_fail(r, TAG_POS, 0, r->sec[0].off - SEC_SIZE,
                        "positions are not ascending token indices");
    if (l < c->n_layers)
        return sec_fail(r, TAG_STAT, l, r->sec[1 + 2 * (size_t)l].off - SEC_SIZE,
                        "token count differs from the header's");
    return check_values(c, r->path, r->err);
}

mipr_status mipr_calib_check_model(const mipr_calib *c, const mipr_model *m, const char *path,
                                   mipr_error *err)
{
    if (c->n_layers != m->hp.n_layers)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: the calibration record has %u layers, "
                              "the model %u: it was made for another model", path, c->n_layers,
                              m->hp.n_layers);
    if (c->dim != m->hp.dim)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: the calibration record is of a model of "
                              "width %u, this model's is %u: it was made for another model",
                              path, c->dim, m->hp.dim);
    for (uint32_t l = 0; l < c->n_layers; l++)
        if (c->layers[l].d_ff != m->layers[l].d_ff)
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: layer %u: the calibration record has "
                                  "%u neurons, the model %u", path, l, c->layers[l].d_ff,
                                  m->layers[l].d_ff);
    for (uint32_t i = 0; i < c->n_heldout; i++)
        if ((uint32_t)c->heldout[i] >= m->hp.vocab_size)
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: section HOLD: held-out token %u has "
                                  "the id %d, outside the model's %u-token vocabulary", path, i,
                                  (int)c->heldout[i], m->hp.vocab_size);
    return MIPR_OK;
}

static int decode_section(mipr_calib *c, size_t slot, size_t n_sec, const uint8_t *raw, size_t n)
{
    uint32_t tag, layer;
    slot_id(slot, n_sec, &tag, &layer);
    if (tag == TAG_HOLD) {
        if (!(c->heldout = malloc(n)))
            return 0;
        c->n_heldout = (uint32_t)(n / 4);
        for (uint32_t i = 0; i < c->n_heldout; i++)
            c->heldout[i] = (int32_t)get_u32(raw + 4 * (size_t)i);
    } else if (tag == TAG_POS)
        for (uint32_t k = 0; k < c->n_samples; k++)
            c->sample_pos[k] = get_u64(raw + 8 * (size_t)k);
    else if (tag == TAG_STAT)
        decode_stats(&c->layers[layer], raw);
    else if (n)
        decode_planes(c->layers[layer].samples, raw, n / 4);
    return 1;
}

/* One layer's samples decoded into scratch only to be checked (mipr_calib_open). */
static mipr_status check_file_samples(const reader *r, uint32_t l, const uint8_t *raw, size_t n)
{
    float *x = malloc(n ? n : 1);
    if (!x)
        return mipr_error_set(r->err, MIPR_ERR_NOMEM, "%s: out of memory", r->path);
    decode_planes(x, raw, n / 4);
    mipr_status st = check_samples(x, r->d_ff[l], r->n_samples, l, r->path, r->err);
    free(x);
    return st;
}

static mipr_status decode_sections(const reader *r, mipr_calib *c)
{
    size_t max = 1;
    for (size_t i = 0; i < r->n_sec; i++)
        max = r->sec[i].raw > max ? (size_t)r->sec[i].raw : max;
    uint8_t *buf = malloc(max);
    ZSTD_DCtx *z = ZSTD_createDCtx();
    mipr_status st = MIPR_OK;
    if (!buf || !z)
        st = mipr_error_set(r->err, MIPR_ERR_NOMEM, "%s: out of memory for %zu bytes", r->path,
                            max);
    for (size_t i = 0; st == MIPR_OK && i < r->n_sec; i++) {
        const section *s = &r->sec[i];
        int samples = i > 0 && i + 1 < r->n_sec && (i - 1) % 2 == 1;
        if (!s->seen)
            continue;
        size_t got = ZSTD_decompressDCtx(z, buf, max, r->data + s->off, (size_t)s->stored);
        if (ZSTD_isError(got) || got != s->raw) {
            uint32_t tag, layer;
            slot_id(i, r->n_sec, &tag, &layer);
            st = sec_fail(r, tag, layer, s->off - SEC_SIZE,
                          ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short zstd frame");
        } else if (samples && !r->with_samples) {
            /* left in the file, but validated now, once: a later read finds the same CRC */
            st = check_file_samples(r, (uint32_t)((i - 1) / 2), buf, got);
        } else if (!decode_section(c, i, r->n_sec, buf, got)) {
            st = mipr_error_set(r->err, MIPR_ERR_NOMEM, "%s: out of memory", r->path);
        }
    }
    ZSTD_freeDCtx(z);
    free(buf);
    return st ? st : check_content(r, c);
}

static void fill_header(mipr_calib *c, const reader *r)
{
    c->dim = r->dim;
    c->window = r->window;
    c->tokens = r->tokens;
    c->seed = r->seed;
    memcpy(c->model, r->model, r->model_len);
    c->model[r->model_len] = 0;
    memcpy(c->text, r->text, r->text_len);
    c->text[r->text_len] = 0;
}

static mipr_status remember_samples(const reader *r, mipr_calib *c)
{
    struct mipr_calib_file_ *f = calloc(1, sizeof *f);
    if (f) {
        f->path = malloc(strlen(r->path) + 1);
        f->samp = calloc(r->n_layers, sizeof *f->samp);
    }
    c->file_ = f;
    if (!f || !f->path || !f->samp)
        return mipr_error_set(r->err, MIPR_ERR_NOMEM, "%s: out of memory", r->path);
    memcpy(f->path, r->path, strlen(r->path) + 1);
    f->size = r->size;
    for (uint32_t l = 0; l < r->n_layers; l++)
        f->samp[l] = r->sec[2 + 2 * (size_t)l];
    return MIPR_OK;
}

static mipr_status read_all(reader *r, mipr_calib **out)
{
    mipr_status st = read_layout(r);
    if (st == MIPR_OK)
        st = read_values(r);
    if (st == MIPR_OK)
        st = walk_sections(r);
    if (st)
        return st;
    mipr_error e = {0};
    if ((st = mipr_calib_new_shapes(out, r->n_layers, r->d_ff, r->n_samples, r->with_samples,
                                    &e)))
        return mipr_error_set(r->err, st, "%s: %s", r->path, e.msg);
    fill_header(*out, r);
    if (!r->with_samples && (st = remember_samples(r, *out)))
        return st;
    return decode_sections(r, *out);
}

static mipr_status read_bytes(mipr_calib **out, const uint8_t *data, size_t size,
                              const char *name, int with_samples, mipr_error *err)
{
    reader r = {.path = name, .data = data, .size = size, .with_samples = with_samples,
                .err = err};
    crc_init(&r.crc);
    mipr_calib *c = NULL;
    mipr_status st = read_all(&r, &c);
    free(r.d_ff);
    free(r.sec);
    if (st) {
        mipr_calib_free(c);
        return st;
    }
    *out = c;
    return MIPR_OK;
}

static mipr_status load(mipr_calib **out, const char *path, int with_samples, mipr_error *err)
{
    *out = NULL;
    mipr_mapped_file f;
    mipr_status st = mipr_file_map(&f, path, err);
    if (st)
        return st;
    st = read_bytes(out, f.data, f.size, path, with_samples, err);
    mipr_file_unmap(&f);
    return st;
}

mipr_status mipr_calib_read(mipr_calib **out, const void *buf, size_t len, const char *name,
                            mipr_error *err)
{
    *out = NULL;
    return read_bytes(out, buf, len, name ? name : "(memory)", 1, err);
}

mipr_status mipr_calib_load(mipr_calib **out, const char *path, mipr_error *err)
{
    return load(out, path, 1, err);
}

mipr_status mipr_calib_open(mipr_calib **out, const char *path, mipr_error *err)
{
    return load(out, path, 0, err);
}

/* One SAMP section read again from a file that was validated when opened: its size and the
 * section's CRC must still match. */
static mipr_status read_samples(const mipr_calib *c, uint32_t l, const mipr_mapped_file *f,
                                float *out, mipr_error *err)
{
    const struct mipr_calib_file_ *cf = c->file_;
    const section *s = &cf->samp[l];
    const uint8_t *h = f->data + s->off - SEC_SIZE;
    crc_table crc;
    crc_init(&crc);
    if (f->size != cf->size ||
        crc_update(&crc, crc_update(&crc, 0, h, 28), h + SEC_SIZE, s->stored) != get_u32(h + 28))
        return mipr_error_set(err, MIPR_ERR_IO, "%s: changed since it was opened (layer %u "
                              "samples)", cf->path, l);
    uint8_t *raw = malloc(s->raw ? s->raw : 1);
    if (!raw)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", cf->path);
    size_t got = ZSTD_decompress(raw, s->raw, f->data + s->off, s->stored);
    mipr_status st = MIPR_OK;
    if (ZSTD_isError(got) || got != s->raw)
        st = mipr_error_set(err, MIPR_ERR_FORMAT, "%s: layer %u samples: %s", cf->path, l,
                            ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short zstd frame");
    else if (got) /* the same bytes the opening checked (same CRC) */
        decode_planes(out, raw, got / 4);
    free(raw);
    return st;
}

mipr_status mipr_calib_samples(const mipr_calib *c, uint32_t l, const float **samples,
                               float **owned, mipr_error *err)
{
    *owned = NULL;
    *samples = NULL;
    if (l >= c->n_layers)
        return mipr_error_set(err, MIPR_ERR_ARG, "layer %u of %u", l, c->n_layers);
    if (c->layers[l].samples || !c->n_samples) {
        *samples = c->layers[l].samples;
        return MIPR_OK;
    }
    if (!c->file_)
        return mipr_error_set(err, MIPR_ERR_ARG, "the calibration record has no samples");
    size_t n = (size_t)c->layers[l].d_ff * c->n_samples;
    float *buf = malloc(n * sizeof *buf);
    mipr_mapped_file f;
    mipr_status st = buf ? mipr_file_map(&f, c->file_->path, err)
                         : mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for samples");
    if (st == MIPR_OK) {
        st = read_samples(c, l, &f, buf, err);
        mipr_file_unmap(&f);
    }
    if (st) {
        free(buf);
        return st;
    }
    *samples = *owned = buf;
    return MIPR_OK;
}
