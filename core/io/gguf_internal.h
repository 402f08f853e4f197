/* Internal GGUF helpers shared by core/gguf_*.c and the unit tests; not public API.
 *
 * Mapping ownership: a mipr_gguf opened from a path owns its mapping for its whole life.
 * mipr_gguf_load_model does not take it away (the same mipr_gguf is still needed for the
 * tokenizer and by tools that inspect it); instead the loader maps the file a second time,
 * checks that the size and every byte before the data section are identical to what was
 * validated, and hands that second mapping to the model (mipr_model_adopt_file). Both
 * mappings share the page cache, so this costs no memory, and the model stays zero-copy
 * and independent of the mipr_gguf's lifetime. A mipr_gguf opened from memory has no file
 * to map: the loader then copies tensor data into model-owned memory. */
#ifndef MIPR_GGUF_INTERNAL_H
#define MIPR_GGUF_INTERNAL_H

#include "mipr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIPR_GGUF_MAGIC "GGUF"
#define MIPR_GGUF_DEFAULT_ALIGNMENT 32u
#define MIPR_GGUF_MAX_ALIGNMENT (1u << 20)
#define MIPR_GGUF_MAX_ARRAY_DEPTH 8
#define MIPR_GGUF_MAX_NAME 64 /* tensor names, as ggml limits them */

/* Parses len bytes at buf, which must stay valid (and unchanged) until mipr_gguf_close.
 * name stands for the file in messages. Same checks as mipr_gguf_open. */
mipr_status mipr_gguf_open_memory(mipr_gguf **out, const void *buf, size_t len, const char *name,
                                  mipr_error *err);

/* Byte offset of the data section and the file size, as validated. */
uint64_t mipr_gguf_data_offset(const mipr_gguf *g);
/* The validated bytes (the mapping or the caller's buffer). */
const uint8_t *mipr_gguf_bytes(const mipr_gguf *g, size_t *size);
/* 1 when g was opened from a path (the file can be mapped again). */
int mipr_gguf_has_file(const mipr_gguf *g);

/* ggml type of a mipr dtype, and back (returns 0 when the ggml type is not one mipr uses). */
uint32_t mipr_ggml_from_dtype(enum mipr_dtype t);
int mipr_ggml_to_dtype(uint32_t ggml_type, enum mipr_dtype *out);

/* n elements of type dt at src (any alignment, little-endian) as floats; a quantized row
 * of n elements may end in a partial block. */
void mipr_gguf_to_f32(float *dst, const void *src, enum mipr_dtype dt, size_t n);

/* Types mipr dequantizes to F32 at load (core/io/kquant.c): K-quants (256-element blocks) and
 * Q4_1 / Q5_0 / Q5_1 (32). Returns 0 for other types; else elements and bytes per block.
 * mipr_kquant_to_f32 turns n elements (whole blocks) into floats bit-identical to ggml's
 * dequantize_row_*. */
int mipr_kquant_traits(uint32_t ggml_type, uint32_t *block, uint32_t *bytes);
void mipr_kquant_to_f32(float *dst, const void *src, uint32_t ggml_type, size_t n);

/* Key lookup with a NUL-free length-delimited string compare. */
int mipr_gguf_str_eq(mipr_gguf_str s, const char *cstr);

#ifdef __cplusplus
}
#endif
#endif
