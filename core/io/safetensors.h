/* safetensors (Hugging Face): an 8-byte little-endian header length, a JSON header naming
 * every tensor's dtype, shape and [begin, end) byte range in the data that follows, then the
 * data. Internal to mipr_core (the HF folder loader and writer, tests, fuzzing). */
#ifndef MIPR_SAFETENSORS_H
#define MIPR_SAFETENSORS_H

#include "mipr.h"

#define MIPR_ST_MAX_DIMS 4
/* A header is JSON text; real ones are kilobytes. Beyond this it is not a checkpoint. */
#define MIPR_ST_MAX_HEADER (64u << 20)

typedef struct mipr_st_tensor {
    char *name;
    const char *file;    /* the name given to mipr_st_add (borrowed) */
    enum mipr_dtype type; /* F32, F16 or BF16 */
    uint32_t n_dims;
    uint64_t shape[MIPR_ST_MAX_DIMS];
    const uint8_t *data;  /* inside the buffer given to mipr_st_add */
    uint64_t nbytes;
} mipr_st_tensor;

/* The tensors of one or more files (the shards of a checkpoint). */
typedef struct mipr_st_set {
    mipr_st_tensor *t;
    size_t n, cap;
} mipr_st_set;

/* Parses one file's bytes and appends its tensors. Everything is checked before use: the
 * header length against the size, the JSON, each entry's dtype, shape and offsets (inside
 * the data, consistent with the shape, not overlapping another tensor), and names (unique
 * across the set). name is kept (borrowed) for messages; data must outlive the set. */
mipr_status mipr_st_add(mipr_st_set *s, const uint8_t *data, size_t size, const char *name,
                        mipr_error *err);
const mipr_st_tensor *mipr_st_find(const mipr_st_set *s, const char *name);
void mipr_st_free(mipr_st_set *s);

/* The header of a file describing tensors in the given dtypes and shapes, data in order,
 * padded with spaces so that the data starts on an 8-byte boundary. Returns the JSON
 * (malloc'd; *len without the terminator) and fills offsets[i] (within the data). */
typedef struct mipr_st_out {
    const char *name;
    enum mipr_dtype type;
    uint32_t n_dims;
    uint64_t shape[MIPR_ST_MAX_DIMS];
} mipr_st_out;
char *mipr_st_header(const mipr_st_out *t, size_t n, size_t *len, uint64_t *offsets);

#endif
