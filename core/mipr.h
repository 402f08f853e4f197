/* mipr core: model readers and writers, evaluation (later: calibration, MI, pruning).
 * Builds on the runtime (mipr_runtime.h) for the model, tokenizer and engine. */
#ifndef MIPR_H
#define MIPR_H

#include <stdio.h>

#include "mipr_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- GGUF (v2 and v3) --------------------------------------------------------------------- */

enum mipr_gguf_vtype {
    MIPR_GGUF_UINT8 = 0, MIPR_GGUF_INT8 = 1, MIPR_GGUF_UINT16 = 2, MIPR_GGUF_INT16 = 3,
    MIPR_GGUF_UINT32 = 4, MIPR_GGUF_INT32 = 5, MIPR_GGUF_FLOAT32 = 6, MIPR_GGUF_BOOL = 7,
    MIPR_GGUF_STRING = 8, MIPR_GGUF_ARRAY = 9, MIPR_GGUF_UINT64 = 10, MIPR_GGUF_INT64 = 11,
    MIPR_GGUF_FLOAT64 = 12,
    MIPR_GGUF_VTYPE_COUNT
};

/* ggml tensor type ids that mipr reads or writes. */
enum mipr_ggml_type {
    MIPR_GGML_F32 = 0, MIPR_GGML_F16 = 1, MIPR_GGML_Q8_0 = 8, MIPR_GGML_BF16 = 30,
};

typedef struct mipr_gguf mipr_gguf;

typedef struct mipr_gguf_str {
    const char *ptr; /* not NUL-terminated: points into the file */
    uint64_t len;
} mipr_gguf_str;

typedef struct mipr_gguf_tensor_info {
    mipr_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];      /* ne[0] is the row length */
    uint32_t ggml_type;
    uint64_t offset;     /* within the data section */
    const void *data;    /* NULL when the type is not one mipr knows */
    uint64_t nbytes;
} mipr_gguf_tensor_info;

/* Opens and fully validates the file: every count, string and tensor extent is checked
 * against the file size before use. */
mipr_status mipr_gguf_open(mipr_gguf **out, const char *path, mipr_error *err);
void mipr_gguf_close(mipr_gguf *g);
const char *mipr_gguf_path(const mipr_gguf *g);
uint32_t mipr_gguf_version(const mipr_gguf *g);
uint32_t mipr_gguf_alignment(const mipr_gguf *g);

uint64_t mipr_gguf_n_kv(const mipr_gguf *g);
mipr_gguf_str mipr_gguf_key(const mipr_gguf *g, uint64_t i);
enum mipr_gguf_vtype mipr_gguf_kv_type(const mipr_gguf *g, uint64_t i);
/* Index of key, or -1. */
int64_t mipr_gguf_find(const mipr_gguf *g, const char *key);
/* Scalar value of any integer, bool or float type. Returns 0 on type mismatch. */
int mipr_gguf_get_i64(const mipr_gguf *g, uint64_t i, int64_t *v);
int mipr_gguf_get_f64(const mipr_gguf *g, uint64_t i, double *v);
int mipr_gguf_get_str(const mipr_gguf *g, uint64_t i, mipr_gguf_str *v);
/* Arrays: element type and count; element j read with the accessors below. */
int mipr_gguf_get_arr(const mipr_gguf *g, uint64_t i, enum mipr_gguf_vtype *type, uint64_t *n);
int mipr_gguf_arr_i64(const mipr_gguf *g, uint64_t i, uint64_t j, int64_t *v);
int mipr_gguf_arr_f64(const mipr_gguf *g, uint64_t i, uint64_t j, double *v);
int mipr_gguf_arr_str(const mipr_gguf *g, uint64_t i, uint64_t j, mipr_gguf_str *v);
/* Writes a short human rendering of value i (arrays: type, length and first items). */
void mipr_gguf_format_value(const mipr_gguf *g, uint64_t i, char *buf, size_t cap);

uint64_t mipr_gguf_n_tensors(const mipr_gguf *g);
const mipr_gguf_tensor_info *mipr_gguf_tensor(const mipr_gguf *g, uint64_t i);
const mipr_gguf_tensor_info *mipr_gguf_find_tensor(const mipr_gguf *g, const char *name);
const char *mipr_ggml_type_name(uint32_t ggml_type);

/* ---- model files -------------------------------------------------------------------------- */

enum mipr_file_kind { MIPR_FILE_UNKNOWN = 0, MIPR_FILE_GGUF, MIPR_FILE_LLAMA2C };

/* Looks at the first bytes (GGUF magic, or a plausible llama2.c header). */
enum mipr_file_kind mipr_detect_file(const char *path, mipr_error *err);

/* Loads a model and its tokenizer. GGUF carries its tokenizer; a llama2.c checkpoint needs
 * tokenizer_path (NULL: "tokenizer.bin" beside the model). tok may be NULL when the caller
 * does not need it. Hyper-parameters come from the file only. */
mipr_status mipr_load(mipr_model **model, mipr_tokenizer **tok, const char *path,
                      const char *tokenizer_path, mipr_error *err);

mipr_status mipr_llama2c_load_model(mipr_model **out, const char *path, mipr_error *err);
/* Reads a llama2.c tokenizer.bin, which must hold exactly n_vocab tokens. */
mipr_status mipr_llama2c_load_tokenizer(mipr_tokenizer **out, const char *path, uint32_t n_vocab,
                                        mipr_error *err);
mipr_status mipr_gguf_load_model(mipr_model **out, const mipr_gguf *g, mipr_error *err);
mipr_status mipr_gguf_load_tokenizer(mipr_tokenizer **out, const mipr_gguf *g, mipr_error *err);

/* ---- GGUF writer -------------------------------------------------------------------------- */

typedef struct mipr_gguf_write_opts {
    enum mipr_dtype type; /* of 2-D weights; norms stay F32 */
    /* Called once per tensor that could not take `type` (e.g. Q8_0 rows not a multiple of
     * 32) with the type it was written in instead. May be NULL. */
    void (*on_fallback)(void *ctx, const char *tensor, enum mipr_dtype wanted,
                        enum mipr_dtype used);
    void *ctx;
} mipr_gguf_write_opts;

/* Writes model + tokenizer as GGUF v3 (32-byte aligned). Uniform FFN widths give
 * architecture "llama"; per-layer widths give "deci" with an INT32 feed_forward_length
 * array. The file appears atomically: written to a temporary beside it, then renamed. */
mipr_status mipr_gguf_write(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                            const mipr_gguf_write_opts *opts, mipr_error *err);

/* ---- atomic output ------------------------------------------------------------------------ */

typedef struct mipr_outfile {
    FILE *fp;
    char *final_path;
    char *tmp_path;
} mipr_outfile;

/* Opens a temporary file in path's directory. */
mipr_status mipr_outfile_open(mipr_outfile *o, const char *path, mipr_error *err);
/* Flushes, syncs and renames onto the final path; on failure the temporary is removed. */
mipr_status mipr_outfile_commit(mipr_outfile *o, mipr_error *err);
/* Removes the temporary; the final path is untouched. Safe after commit. */
void mipr_outfile_abort(mipr_outfile *o);
/* Writes n bytes or records an I/O error naming the file. */
mipr_status mipr_outfile_write(mipr_outfile *o, const void *p, size_t n, mipr_error *err);

/* ---- evaluation --------------------------------------------------------------------------- */

typedef struct mipr_ppl_opts {
    uint32_t window;      /* tokens per window, BOS included */
    const char *doc_sep;  /* NULL: one stream cut into windows; else each document alone */
    uint32_t max_windows; /* 0: all */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    mipr_pool *pool;      /* NULL: one thread */
} mipr_ppl_opts;

typedef struct mipr_ppl_result {
    uint64_t tokens;     /* tokens scored (predicted) */
    uint64_t bytes;      /* bytes of the decoded pieces of the scored tokens */
    uint64_t windows;
    double nll_sum;      /* natural log */
    double mean_nll, perplexity, bits_per_byte;
} mipr_ppl_result;

mipr_status mipr_perplexity(const mipr_model *m, const mipr_tokenizer *tok, const char *text,
                            size_t len, const mipr_ppl_opts *opts, mipr_ppl_result *res,
                            mipr_error *err);

#ifdef __cplusplus
}
#endif
#endif
