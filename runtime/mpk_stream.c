/* Decoding .mpk chunks: zstd (when the build has it), byte planes, and the streamed tensors
 * of low-RAM models. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MIPR_HAVE_ZSTD
#include <zstd.h>
#endif

#include "mpk_internal.h"

void mipr_mpk_planes_split(uint8_t *dst, const uint8_t *src, size_t n_elems, size_t elem)
{
    for (size_t k = 0; k < elem; k++)
        for (size_t i = 0; i < n_elems; i++)
            dst[k * n_elems + i] = src[i * elem + k];
}

void mipr_mpk_planes_join(uint8_t *dst, const uint8_t *src, size_t n_elems, size_t elem)
{
    for (size_t k = 0; k < elem; k++)
        for (size_t i = 0; i < n_elems; i++)
            dst[i * elem + k] = src[k * n_elems + i];
}

const char *mipr_mpk_slot_name(uint32_t slot)
{
    static const char *const global[] = {"token_embd.weight", "output_norm.weight",
                                         "output.weight", "rope_freqs.weight"};
    static const char *const layer[] = {
        "attn_norm.weight", "attn_q.weight",   "attn_k.weight",   "attn_v.weight",
        "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
        "ffn_down.weight", "ffn_down.bias", "attn_q.bias", "attn_k.bias", "attn_v.bias"};
    if (slot <= MPK_SLOT_ROPE_FREQS)
        return global[slot];
    if (slot >= MPK_SLOT_ATTN_NORM && slot < MPK_SLOT_END)
        return layer[slot - MPK_SLOT_ATTN_NORM];
    return NULL;
}

mipr_status mipr_mpk_decoder_init(mpk_decoder *d, const uint8_t *file, size_t size,
                                  const char *what, size_t max_chunk, mipr_error *err)
{
    memset(d, 0, sizeof *d);
    d->file = file;
    d->size = size;
    snprintf(d->what, sizeof d->what, "%s", what);
    d->buf_bytes = max_chunk;
    if (max_chunk && (!(d->buf = malloc(max_chunk)) || !(d->planes = malloc(max_chunk))))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for a %llu-byte chunk",
                              what, (unsigned long long)max_chunk);
#ifdef MIPR_HAVE_ZSTD
    if (!(d->zstd = ZSTD_createDCtx()))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for zstd", what);
#endif
    return MIPR_OK;
}

void mipr_mpk_decoder_free(mpk_decoder *d)
{
#ifdef MIPR_HAVE_ZSTD
    ZSTD_freeDCtx(d->zstd);
#endif
    free(d->buf);
    free(d->planes);
    memset(d, 0, sizeof *d);
}

uint32_t mipr_mpk_chunk_rows(const mpk_tensor *t, uint32_t c)
{
    uint32_t first = c * t->rows_per_chunk;
    return t->rows - first < t->rows_per_chunk ? t->rows - first : t->rows_per_chunk;
}

static mipr_status decompress(mpk_decoder *d, uint8_t *dst, size_t raw, const uint8_t *src,
                              size_t stored, const char *name, uint32_t c, mipr_error *err)
{
#ifdef MIPR_HAVE_ZSTD
    size_t got = ZSTD_decompressDCtx(d->zstd, dst, raw, src, stored);
    if (ZSTD_isError(got))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s chunk %u: zstd: %s", d->what,
                              name, c, ZSTD_getErrorName(got));
    if (got != raw)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s chunk %u decodes to %llu "
                              "bytes, expected %llu", d->what, name, c,
                              (unsigned long long)got, (unsigned long long)raw);
    return MIPR_OK;
#else
    (void)dst, (void)raw, (void)src, (void)stored, (void)c;
    return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: tensor %s is zstd-compressed and this "
                          "build has no zstd: repack with `mipr pack --codec raw`", d->what, name);
#endif
}

void mipr_mpk_tensor_name(uint32_t layer, uint32_t slot, char *out, size_t n)
{
    const char *s = mipr_mpk_slot_name(slot);
    if (layer == MPK_NO_LAYER)
        snprintf(out, n, "%s", s ? s : "?");
    else
        snprintf(out, n, "blk.%u.%s", layer, s ? s : "?");
}

mipr_status mipr_mpk_decode_chunk(mpk_decoder *d, const mpk_tensor *t, uint32_t c,
                                  uint8_t *dst, mipr_error *err)
{
    const mpk_chunk *ch = &t->chunks[c];
    size_t raw = (size_t)mipr_mpk_chunk_rows(t, c) * t->row_bytes;
    const uint8_t *src = d->file + ch->offset;
    char name[64];
    if (t->codec == MPK_CODEC_RAW) {
        memcpy(dst, src, raw);
        return MIPR_OK;
    }
    mipr_mpk_tensor_name(t->layer, t->slot, name, sizeof name);
    if (t->filter == MPK_FILTER_NONE)
        return decompress(d, dst, raw, src, (size_t)ch->stored, name, c, err);
    mipr_status st = decompress(d, d->planes, raw, src, (size_t)ch->stored, name, c, err);
    if (st == MIPR_OK) {
        size_t elem = t->type == MIPR_DT_F32 ? 4 : 2;
        mipr_mpk_planes_join(dst, d->planes, raw / elem, elem);
    }
    return st;
}

uint32_t mipr_stream_n_chunks(const struct mipr_stream_ *s)
{
    return s->t.n_chunks;
}

uint32_t mipr_stream_rows_per_chunk(const struct mipr_stream_ *s)
{
    return s->t.rows_per_chunk;
}

const void *mipr_stream_chunk(const struct mipr_stream_ *s, uint32_t c, uint32_t *first_row,
                              uint32_t *n_rows)
{
    mpk_decoder *d = s->dec;
    *first_row = c * s->t.rows_per_chunk;
    *n_rows = mipr_mpk_chunk_rows(&s->t, c);
    if (d->cached == s && d->cached_chunk == c)
        return d->buf;
    d->cached = NULL;
    mipr_error e;
    if (mipr_mpk_decode_chunk(d, &s->t, c, d->buf, &e)) {
        if (d->err.status == MIPR_OK)
            d->err = e;
        return NULL;
    }
    d->cached = s;
    d->cached_chunk = c;
    return d->buf;
}

mipr_status mipr_stream_take_error(const struct mipr_stream_ *s, mipr_error *err)
{
    mpk_decoder *d = s->dec;
    mipr_status st = d->err.status;
    if (st && err)
        *err = d->err;
    memset(&d->err, 0, sizeof d->err);
    return st;
}
