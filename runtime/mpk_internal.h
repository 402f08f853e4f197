/* Reader internals shared by runtime/mpk.c (parsing, opening) and runtime/mpk_stream.c
 * (decoding chunks, the low-RAM streamed tensors the engine multiplies with). */
#ifndef MIPR_MPK_INTERNAL_H
#define MIPR_MPK_INTERNAL_H

#include "mipr_runtime.h"
#include "mpk_format.h"

typedef struct mpk_chunk {
    uint64_t offset, stored;
    uint32_t crc;
} mpk_chunk;

typedef struct mpk_tensor {
    uint32_t layer, slot, codec, filter;
    enum mipr_dtype type;
    uint32_t rows, cols, rows_per_chunk, n_chunks;
    size_t row_bytes;
    mpk_chunk *chunks;
} mpk_tensor;

/* What decoding needs: the file's bytes, a decompression context and one chunk of scratch
 * (plus one more for byte planes). A decoder serves one thread: a model keeps one for its
 * streamed tensors, and opening with a pool makes one per thread for the decoding at open. */
typedef struct mpk_decoder {
    const uint8_t *file;
    size_t size;
    char what[256];
    void *zstd;            /* ZSTD_DCtx, or NULL in builds without zstd */
    uint8_t *buf, *planes; /* max chunk bytes each */
    size_t buf_bytes;
    const struct mipr_stream_ *cached; /* the chunk now in buf */
    uint32_t cached_chunk;
    mipr_error err;        /* the first decoding error of a streamed tensor */
} mpk_decoder;

/* A tensor left compressed: the engine asks for its rows chunk by chunk. */
struct mipr_stream_ {
    mpk_decoder *dec;
    mpk_tensor t;
};

mipr_status mipr_mpk_decoder_init(mpk_decoder *d, const uint8_t *file, size_t size,
                                  const char *what, size_t max_chunk, mipr_error *err);
void mipr_mpk_decoder_free(mpk_decoder *d);
/* Decodes chunk c of t into dst (rows of the chunk x row_bytes). */
mipr_status mipr_mpk_decode_chunk(mpk_decoder *d, const mpk_tensor *t, uint32_t c,
                                  uint8_t *dst, mipr_error *err);
/* "blk.3.ffn_up.weight" for messages. */
void mipr_mpk_tensor_name(uint32_t layer, uint32_t slot, char *out, size_t n);
/* Rows in chunk c. */
uint32_t mipr_mpk_chunk_rows(const mpk_tensor *t, uint32_t c);

/* The engine's side (declared in stream.h for runtime/engine.c). */
#include "stream.h"

#endif
