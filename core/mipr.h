/* mipr core: model readers and writers, evaluation (later: calibration, MI, pruning).
 * Builds on the runtime (mipr_runtime.h) for the model, tokenizer and engine. */
#ifndef MIPR_H
#define MIPR_H

#include <stdio.h>

#include "mipr_runtime.h"
#include "mipr_xnnpack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared in this header is the library's API: a shared build exports exactly
 * these symbols and hides every other (-fvisibility=hidden). One pragma per header rather
 * than a macro on each declaration, so a new declaration cannot miss it; compilers that do
 * not know it ignore it (C11 6.10.6). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
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
    MIPR_GGML_F32 = 0, MIPR_GGML_F16 = 1, MIPR_GGML_Q4_0 = 2, MIPR_GGML_Q8_0 = 8,
    MIPR_GGML_Q4_1 = 3, MIPR_GGML_Q5_0 = 6, MIPR_GGML_Q5_1 = 7, /* read only, as F32 */
    MIPR_GGML_Q2_K = 10, MIPR_GGML_Q3_K = 11, MIPR_GGML_Q4_K = 12, MIPR_GGML_Q5_K = 13,
    MIPR_GGML_Q6_K = 14, /* read only: dequantized to F32 at load */
    MIPR_GGML_BF16 = 30,
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

enum mipr_file_kind { MIPR_FILE_UNKNOWN = 0, MIPR_FILE_GGUF, MIPR_FILE_LLAMA2C, MIPR_FILE_MPK,
                      MIPR_FILE_HF };

/* Looks at the first bytes (GGUF magic, or a plausible llama2.c header); a directory is a
 * Hugging Face folder (MIPR_FILE_HF) when it holds config.json, else an error naming it. */
enum mipr_file_kind mipr_detect_file(const char *path, mipr_error *err);

/* Loads a model and its tokenizer. GGUF and .mpk carry their tokenizer (an .mpk is decoded
 * whole, as mipr_mpk_open_file does without low_ram); a llama2.c checkpoint needs
 * tokenizer_path (NULL: "tokenizer.bin" beside the model). tok may be NULL when the caller
 * does not need it. Hyper-parameters come from the file only. */
mipr_status mipr_load(mipr_model **model, mipr_tokenizer **tok, const char *path,
                      const char *tokenizer_path, mipr_error *err);

mipr_status mipr_llama2c_load_model(mipr_model **out, const char *path, mipr_error *err);
/* A Hugging Face folder: config.json (llama, mistral, qwen2), model.safetensors or the
 * shards model.safetensors.index.json names (F32/F16/BF16, mapped), tokenizer.json when tok
 * is not NULL. Llama-family q/k rows are permuted to mipr's interleaved RoPE pairs. */
mipr_status mipr_hf_load(mipr_model **model, mipr_tokenizer **tok, const char *dir,
                         mipr_error *err);
/* Writes m as a Hugging Face folder out_dir (atomically: built in a temporary folder beside
 * it, then renamed): config.json from src_dir's with intermediate_size updated,
 * model.safetensors in `type` (F32, F16 or BF16; q/k rows back in rotate-half order), and
 * src_dir's tokenizer files copied. Needs one FFN width for all layers. out_dir must not
 * exist or be an empty folder. */
mipr_status mipr_hf_write(const char *out_dir, const mipr_model *m, const char *src_dir,
                          enum mipr_dtype type, mipr_error *err);
/* What mipr_hf_write checks before any work: src_dir is a Hugging Face folder and out_dir
 * does not exist (or is an empty folder). */
mipr_status mipr_hf_write_check(const char *out_dir, const char *src_dir, mipr_error *err);
/* Reads a llama2.c tokenizer.bin, which must hold exactly n_vocab tokens. */
mipr_status mipr_llama2c_load_tokenizer(mipr_tokenizer **out, const char *path, uint32_t n_vocab,
                                        mipr_error *err);
/* The same readers over bytes in memory (fuzzing, embedded callers); name stands for the
 * file in messages. The model borrows buf (4-byte aligned), which must outlive it; the
 * tokenizer copies what it needs. */
mipr_status mipr_llama2c_read_model(mipr_model **out, const void *buf, size_t len,
                                    const char *name, mipr_error *err);
mipr_status mipr_llama2c_read_tokenizer(mipr_tokenizer **out, const void *buf, size_t len,
                                        const char *name, uint32_t n_vocab, mipr_error *err);
mipr_status mipr_gguf_load_model(mipr_model **out, const mipr_gguf *g, mipr_error *err);
mipr_status mipr_gguf_load_tokenizer(mipr_tokenizer **out, const mipr_gguf *g, mipr_error *err);
/* Reads a Hugging Face tokenizer.json (model.type "BPE": byte-level, or SentencePiece style
 * with byte fallback and U+2581 spaces), and tokenizer_config.json beside it when present
 * (add_bos_token / add_eos_token, bos_token / eos_token). Errors name the file and field. */
mipr_status mipr_tokenizer_json_load(mipr_tokenizer **out, const char *path, mipr_error *err);
/* The same for a model with vocab_size embedding rows: when the file lists fewer tokens
 * (Qwen2.5: 151,665 of 151,936) the rest become unused "[PADi]" tokens, as llama.cpp's
 * converter makes them, so the tokenizer and the model agree; more tokens than rows stays
 * the caller's error. */
mipr_status mipr_tokenizer_json_load_padded(mipr_tokenizer **out, const char *path,
                                            uint32_t vocab_size, mipr_error *err);
/* The same over bytes in memory (config may be NULL); name stands for the file. */
mipr_status mipr_tokenizer_json_read(mipr_tokenizer **out, const char *json, size_t len,
                                     const char *config, size_t config_len, const char *name,
                                     mipr_error *err);

/* ---- atomic output ------------------------------------------------------------------------ */

typedef struct mipr_outfile {
    FILE *fp;
    char *final_path;
    char *tmp_path;
} mipr_outfile;

/* Opens a temporary file in path's directory. An existing path that is not a regular file
 * (a device, FIFO, socket or directory, also behind a symbolic link) is refused: the rename
 * would replace it. */
mipr_status mipr_outfile_open(mipr_outfile *o, const char *path, mipr_error *err);
/* mipr_outfile_open that also refuses a path resolving to the same file (device and inode,
 * links followed) as any of the n inputs: the rename would destroy that input. NULL inputs
 * and inputs that do not exist are skipped. */
mipr_status mipr_outfile_open_from(mipr_outfile *o, const char *path, const char *const *inputs,
                                   size_t n, mipr_error *err);
/* Flushes, syncs and renames onto the final path; on failure (a write error on the stream
 * included) the temporary is removed. */
mipr_status mipr_outfile_commit(mipr_outfile *o, mipr_error *err);
/* Removes the temporary; the final path is untouched. Safe after commit. */
void mipr_outfile_abort(mipr_outfile *o);
/* Writes n bytes or records an I/O error naming the file. */
mipr_status mipr_outfile_write(mipr_outfile *o, const void *p, size_t n, mipr_error *err);

/* ---- GGUF writer -------------------------------------------------------------------------- */

typedef struct mipr_gguf_write_opts {
    enum mipr_dtype type; /* of 2-D weights; norms stay F32 */
    /* Called once per tensor that could not take `type` (e.g. Q8_0 rows not a multiple of
     * 32) with the type it was written in instead. May be NULL. */
    void (*on_fallback)(void *ctx, const char *tensor, enum mipr_dtype wanted,
                        enum mipr_dtype used);
    void *ctx;
    int keep_types; /* each 2-D weight keeps its own type (type is then ignored) */
} mipr_gguf_write_opts;

/* Whether any layer has an ffn_down bias (then a qwen2 model is written as llama). */
int mipr_model_has_ffn_bias(const mipr_model *m);
/* Writes model + tokenizer as GGUF v3 (32-byte aligned). Uniform FFN widths give
 * architecture "llama" (qwen2 models "qwen2" when llama.cpp can read them so: see
 * core/io/gguf_write.c); per-layer widths give "deci" with an INT32 feed_forward_length
 * array. The file appears atomically: written to a temporary beside it, then renamed. */
mipr_status mipr_gguf_write(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                            const mipr_gguf_write_opts *opts, mipr_error *err);
/* The same into an open output, which the caller then commits or aborts (so that it can
 * decide, e.g. after an interrupt, that the new file must not replace the old one). */
mipr_status mipr_gguf_write_to(mipr_outfile *o, const mipr_model *m, const mipr_tokenizer *tok,
                               const mipr_gguf_write_opts *opts, mipr_error *err);

/* ---- .mpk writer (docs/FORMAT.md; the reader is the runtime's) --------------------------- */

typedef struct mipr_mpk_extra {
    char tag[4];
    int required;
    const void *data;
    size_t size;
} mipr_mpk_extra;

typedef struct mipr_mpk_write_opts {
    /* Type of the layers' 2-D weights: F32, F16, BF16, Q8_0 or Q4_0. Norms and biases stay
     * F32; with Q4_0 the embedding and output matrices take Q8_0 (they are the most
     * sensitive, as llama.cpp's Q4_0 also keeps them finer). Rows already in the wanted
     * type are copied bit for bit. */
    enum mipr_dtype type;
    int raw;              /* store every tensor uncompressed (firmware: no zstd) */
    int level;            /* zstd level 1..19; 0: 9 */
    int planes;           /* byte planes for float tensors: -1 try both per tensor, 0 off, 1 on */
    uint32_t chunk_bytes; /* decoded bytes per chunk (whole rows); 0: 256 KiB */
    const char *meta;     /* free text for the META section (producer, source); may be NULL */
    const mipr_mpk_extra *extra; /* more sections (tests use this for unknown ones) */
    size_t n_extra;
    /* Called after each tensor is written (info as mipr_mpk_inspect gives it). */
    void (*on_tensor)(void *ctx, const mipr_mpk_tensor_info *t, uint32_t index, uint32_t total);
    void *ctx;
} mipr_mpk_write_opts;

/* Writes model + tokenizer as .mpk, atomically (temporary file, then rename). */
mipr_status mipr_mpk_write(const char *path, const mipr_model *m, const mipr_tokenizer *tok,
                           const mipr_mpk_write_opts *opts, mipr_error *err);
/* The same into an open output (seekable), which the caller then commits or aborts. */
mipr_status mipr_mpk_write_to(mipr_outfile *o, const mipr_model *m, const mipr_tokenizer *tok,
                              const mipr_mpk_write_opts *opts, mipr_error *err);



/* ---- evaluation --------------------------------------------------------------------------- */

/* How a text is cut and scored. STREAM: one token stream cut into windows of `window`
 * tokens, each starting with BOS, every token after BOS scored. DOCS: each document (text
 * between `doc_sep`) alone from BOS. LLAMA_CPP: llama-perplexity's scoring, so its numbers
 * can be compared: the text tokenized once with BOS, cut into chunks of `window` tokens whose
 * first token is replaced by BOS, and only the second half of each chunk scored (positions
 * window/2 .. window-1 predict the tokens after them); needs at least 2 windows of tokens. */
typedef enum { MIPR_PPL_STREAM = 0, MIPR_PPL_DOCS, MIPR_PPL_LLAMA_CPP } mipr_ppl_mode;

typedef struct mipr_ppl_opts {
    uint32_t window;      /* tokens per window, BOS included */
    const char *doc_sep;  /* DOCS: the separator (DOCS is implied when set) */
    uint32_t max_windows; /* 0: all */
    mipr_ppl_mode mode;
    /* DOCS: keep the whitespace at the start of each document (after each separator); by
     * default it is dropped, as the published TinyStories bits-per-byte method does. */
    int keep_doc_space;
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    mipr_pool *pool;      /* NULL: one thread */
    mipr_backend backend; /* prefill matmuls (mipr_engine_set_backend); 0: MIPR_BACKEND_OURS */
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

/* ---- calibration: what every FFN neuron does on real text -------------------------------- */

/* One layer's record. Statistics cover every calibration token; samples are the
 * activations of n_samples chosen tokens, stored neuron-major (neuron j's samples are
 * samples[j * n_samples .. + n_samples)) because MI estimators read one neuron at a time. */
typedef struct mipr_calib_layer {
    uint32_t d_ff;
    uint64_t count;        /* tokens seen */
    double *mean, *m2;     /* Welford/Chan: variance = m2 / count */
    double *sum_abs, *sum_sq;
    float *min, *max;
    float *samples;        /* d_ff x n_samples */
} mipr_calib_layer;

typedef struct mipr_calib {
    uint32_t n_layers, dim, window, n_samples;
    uint64_t tokens;       /* calibration tokens run (predictions from BOS windows) */
    uint64_t seed;
    char model[256], text[256]; /* names as given, for the record */
    uint64_t *sample_pos;  /* n_samples global token indices, ascending */
    mipr_calib_layer *layers;
    /* Held-out tokens: the stream's last tokens, never run for the statistics, kept so
     * pruning can score candidates (KL from the unpruned model) without the text. */
    int32_t *heldout;
    uint32_t n_heldout;
    struct mipr_calib_file_ *file_; /* private: where samples left in the file are */
} mipr_calib;

typedef struct mipr_calib_opts {
    uint64_t max_tokens;   /* 0: the whole text */
    uint32_t window;       /* tokens per window, BOS included (like perplexity) */
    uint32_t n_samples;    /* sample tokens kept per layer (spread over the whole text) */
    uint64_t seed;
    const char *model_name, *text_name;
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    mipr_pool *pool;
    uint32_t heldout;      /* tokens set aside at the end of the text (0: none) */
} mipr_calib_opts;

/* Runs the text through the engine in windows (as perplexity's stream mode does) and
 * records every layer's FFN intermediate activations. */
mipr_status mipr_calibrate(mipr_calib **out, const mipr_model *m, const mipr_tokenizer *tok,
                           const char *text, size_t len, const mipr_calib_opts *opts,
                           mipr_error *err);
/* The .mcal file (docs/CALIB_FORMAT.md): versioned, sections zstd-compressed with checksums,
 * written atomically. level: zstd level (0: default). */
mipr_status mipr_calib_save(const mipr_calib *c, const char *path, int level, mipr_error *err);
/* The same into an open output, which the caller commits or aborts. */
mipr_status mipr_calib_write(mipr_outfile *o, const mipr_calib *c, int level, mipr_error *err);
mipr_status mipr_calib_load(mipr_calib **out, const char *path, mipr_error *err);
/* mipr_calib_load over len bytes in memory (samples included); name is for messages. */
mipr_status mipr_calib_read(mipr_calib **out, const void *buf, size_t len, const char *name,
                            mipr_error *err);
/* Like mipr_calib_load, but the samples stay in the file (every layer's `samples` is NULL):
 * mipr_calib_samples reads one layer at a time, so pruning holds one layer's samples. They
 * are still decoded once here, one layer at a time, to be checked like every value. */
mipr_status mipr_calib_open(mipr_calib **out, const char *path, mipr_error *err);
/* Layer l's samples (d_ff x n_samples): the record's own when it holds them, else read
 * from its file (checksums verified again) into a buffer returned in *owned, which the
 * caller frees. */
mipr_status mipr_calib_samples(const mipr_calib *c, uint32_t l, const float **samples,
                               float **owned, mipr_error *err);
void mipr_calib_free(mipr_calib *c);
/* The record against the model it is used with: layer count, widths, and every held-out
 * token id inside the model's vocabulary (the reader has already refused non-finite
 * statistics and samples and negative ids). path names the record in messages. */
mipr_status mipr_calib_check_model(const mipr_calib *c, const mipr_model *m, const char *path,
                                   mipr_error *err);
/* An empty record with the given shapes (all arrays allocated and zeroed). */
mipr_status mipr_calib_new(mipr_calib **out, uint32_t n_layers, const uint32_t *d_ff,
                           uint32_t n_samples, mipr_error *err);

/* ---- mutual information between neurons (matrix-based Renyi alpha-entropy) ---------------- */

/* How the Gaussian kernel width sigma follows a neuron's samples (docs/MI.md). */
enum mipr_width_rule {
    MIPR_WIDTH_SILVERMAN,  /* 1.06 std n^-1/5 */
    MIPR_WIDTH_ROBUST,     /* 1.06 (1.4826 MAD) n^-1/5; std when the MAD is 0 */
    MIPR_WIDTH_KNN,        /* mean distance to the k nearest samples (param k, default 5) */
    MIPR_WIDTH_PERCENTILE, /* param-th percentile of pairwise distances (default 10) */
    MIPR_WIDTH_FIXED,      /* param, whatever the data */
    MIPR_WIDTH_TUNED,      /* param x robust (default param from measurements, docs/MI.md) */
    MIPR_WIDTH_COUNT
};

typedef struct mipr_width {
    enum mipr_width_rule rule;
    double param; /* 0: the rule's default */
} mipr_width;

const char *mipr_width_name(enum mipr_width_rule r);
int mipr_width_parse(const char *s, mipr_width *out); /* "robust", "knn:5", "fixed:0.3", ... */
/* Kernel width for n samples; a constant neuron gets 1 (any width gives the same MI, 0). */
double mipr_kernel_width(const float *x, size_t n, const mipr_width *w);

/* Exact reference path, any alpha > 0, alpha != 1, through eigenvalues of the n x n
 * normalised Gram matrices (O(n^3): for tests and small n). */
mipr_status mipr_mi_eig(const float *x, const float *y, size_t n, double sx, double sy,
                        double alpha, double *mi, mipr_error *err);
mipr_status mipr_entropy_eig(const float *x, size_t n, double sx, double alpha, double *h,
                             mipr_error *err);
/* alpha = 2 closed form for one pair, O(n^2): log2(n^2 sum KaKb^2 / (sum Ka^2 sum Kb^2)). */
double mipr_mi2_pair(const float *x, const float *y, size_t n, double sx, double sy);

typedef struct mipr_mi_opts {
    mipr_width width;
    uint64_t sample_pairs; /* 0: exact over all (i, j); else this many random (i, j) pairs */
    uint64_t seed;
    mipr_pool *pool;
} mipr_mi_opts;

/* All-pairs alpha = 2 MI of one layer: samples is d x n, neuron-major. */
typedef struct mipr_mi_matrix {
    uint32_t d;
    float *mi;      /* d x d, symmetric; the diagonal holds each neuron's self-MI */
    double *h;      /* d: alpha = 2 entropy of each neuron */
    float *sigma;   /* d: kernel widths used */
} mipr_mi_matrix;

mipr_status mipr_mi_all_pairs(const float *samples, uint32_t d, uint32_t n,
                              const mipr_mi_opts *opts, mipr_mi_matrix *out, mipr_error *err);
void mipr_mi_matrix_free(mipr_mi_matrix *m);
/* Normalised MI: I_ab / ((I_aa + I_bb) / 2), at most 1 (a Cauchy-Schwarz bound of this
 * estimator), exactly 1 for a neuron and a scaled copy of it. It is not bounded below by
 * 0: the alpha = 2 estimate of independent samples scatters around 0 and goes down to
 * about -0.15 on real layers. */
double mipr_mi_normalized(const mipr_mi_matrix *m, uint32_t a, uint32_t b);

/* Redundant neurons (docs/MI.md): a pair is a candidate when its normalised MI exceeds the
 * threshold and a least-squares fit z_lose ~ alpha z_keep + beta explains z_lose (R^2 at
 * least min_r2). Up to MIPR_REDUNDANCY_MATRIX_MAX neurons every pair is looked at (the
 * all-pairs MI matrix); beyond, candidates come from sign-invariant locality-sensitive
 * hashing of the z-scored samples (negated copies hash alike). Candidates are visited in
 * seed-random order (the paper's stochastic procedure: the seed changes only which member
 * of overlapping pairs goes); a neuron already marked, or already the kept partner of a
 * marked one, is not marked again, and a kept partner inherits the importance of what it
 * absorbs. Stops when `target` neurons are marked. */
#define MIPR_REDUNDANCY_MATRIX_MAX 4096u
#define MIPR_REDUNDANCY_NULL_PAIRS 255u
typedef struct mipr_redundancy_opts {
    double threshold;         /* on normalised MI; <= 0: the layer's permutation null (the
                               * largest of MIPR_REDUNDANCY_NULL_PAIRS shuffled pairs) */
    double min_r2;            /* 0: 0.4 (docs/MI.md: measured) */
    uint32_t target;          /* neurons to mark (0: no limit) */
    uint64_t max_draws;       /* beyond the matrix bound: cap on hashed candidate pairs
                               * (0: 64 x d) */
    uint32_t clusters;        /* > 1: k-means on sign-canonical z-scored samples first;
                               * only pairs inside a cluster count */
    uint64_t seed;
    const double *importance; /* d scores, higher = keep; NULL: all equal (the second goes) */
    mipr_mi_opts mi;
} mipr_redundancy_opts;

typedef struct mipr_redundancy {
    uint32_t marked;
    uint64_t draws;           /* candidate pairs visited */
    uint64_t redundant_pairs; /* candidates: R^2 >= min_r2 (and, up to the matrix bound,
                               * above the threshold) */
    uint64_t significant;     /* pairs whose normalised MI exceeds the threshold (all pairs
                               * up to the matrix bound; beyond, of the candidates visited) */
    double threshold;         /* the threshold used */
    double null_level;        /* with the null: the per-pair significance level, else 0 */
    double rho_equiv;         /* |rho| of a Gaussian pair with that normalised MI at this n */
    uint64_t ties;            /* candidates of equal R^2 (the seed orders them; 0: the seed
                               * changes nothing) */
    uint8_t *is_marked;       /* d */
    uint32_t *partner;        /* d: for a marked neuron, the kept neuron it duplicated */
    float *pair_mi;           /* d: that pair's normalised MI */
    float *alpha, *beta, *r2; /* d: z_marked ~ alpha z_partner + beta over the samples */
} mipr_redundancy;

mipr_status mipr_find_redundant(const float *samples, uint32_t d, uint32_t n,
                                const mipr_redundancy_opts *opts, mipr_redundancy *out,
                                mipr_error *err);
/* The |rho| at which a jointly Gaussian pair of n samples has normalised MI nmi under the
 * width rule w (bisection on a fixed synthetic sample; 0 for nmi <= 0, 1 above the curve). */
double mipr_mi_rho_equivalent(double nmi, uint32_t n, const mipr_width *w);
void mipr_redundancy_free(mipr_redundancy *r);

/* ---- evaluation on token ids, against a reference model -------------------------------- */

typedef struct mipr_eval_result {
    uint64_t tokens;           /* predictions scored */
    double nll_sum, mean_nll, perplexity;
    double kl_sum, mean_kl;    /* KL(reference || model) in nats per token; 0 without one */
} mipr_eval_result;

/* Scores ids (a token stream without BOS) in windows of `window` tokens each starting with
 * bos, like perplexity's stream mode. With a reference model (same vocabulary), also the
 * mean KL divergence of the model's next-token distribution from the reference's. */
mipr_status mipr_eval_tokens(const mipr_model *m, const mipr_model *reference,
                             const int32_t *ids, size_t n, uint32_t window, int32_t bos,
                             mipr_pool *pool, mipr_eval_result *res, mipr_error *err);

/* The reference's next-token log-probabilities over ids, computed once (with its own result
 * in *res) so that many models are scored against it without running it again: what
 * benchmarks that prune one model hundreds of times need. Holds n x vocab floats. */
typedef struct mipr_eval_ref mipr_eval_ref;
mipr_status mipr_eval_ref_new(mipr_eval_ref **out, const mipr_model *reference,
                              const int32_t *ids, size_t n, uint32_t window, int32_t bos,
                              mipr_pool *pool, mipr_eval_result *res, mipr_error *err);
/* mipr_eval_tokens of m on the cached reference's tokens and windows (KL within float
 * rounding of the uncached value). */
mipr_status mipr_eval_tokens_ref(const mipr_model *m, const mipr_eval_ref *ref, mipr_pool *pool,
                                 mipr_eval_result *res, mipr_error *err);
void mipr_eval_ref_free(mipr_eval_ref *r);

/* ---- structured pruning of FFN neurons (docs/PRUNING.md) -------------------------------- */

enum mipr_criterion {
    MIPR_CRIT_MI,         /* wanda-sp, with redundant neurons merged into partners (MI.md) */
    MIPR_CRIT_MAGNITUDE,  /* |gate_j| |up_j| |down_:,j| */
    MIPR_CRIT_ACTIVATION, /* |z_j| over the calibration tokens */
    MIPR_CRIT_WANDA_SP,   /* |z_j| |down_:,j| */
    MIPR_CRIT_FLAP,       /* Var(z_j) |down_:,j|^2 */
    MIPR_CRIT_RANDOM,     /* uniform, seeded */
    MIPR_CRIT_COUNT
};

const char *mipr_criterion_name(enum mipr_criterion c);
int mipr_criterion_parse(const char *s, enum mipr_criterion *out);

typedef struct mipr_prune_opts {
    enum mipr_criterion criterion;
    double ratio;           /* share of the prunable layers' FFN neurons removed, in (0, 1) */
    int adaptive;           /* scores standardised per layer, ranked across layers (FLAP) */
    uint32_t align;         /* kept widths are multiples of this (1, 8, 16, 32, 64, 128, 256;
                             * 32: ggml's Q8_0/Q4_0 blocks, 256: K-quants); 0: 1 */
    uint32_t min_width;     /* no layer keeps fewer (0: align) */
    uint32_t first_layer, last_layer; /* layers pruned, inclusive; last < first: all */
    const uint8_t *keep_whole;        /* n_layers flags of layers left alone, or NULL */
    uint64_t seed;
    /* the mi criterion */
    double mi_threshold;    /* on normalised MI (0: each layer's permutation null) */
    double mi_min_r2;       /* least-squares R^2 of a marked neuron from its partner
                             * (0: 0.4) */
    mipr_width width;
    uint32_t clusters;
    mipr_pool *pool;
    /* compensation */
    int bias;               /* fold E[z] of removed neurons into an ffn_down bias (FLAP) */
    int least_squares;      /* kept for compatibility: mi always folds the least-squares
                             * reconstruction of a removed redundant neuron from its partner
                             * into the partner's ffn_down column and the bias */
} mipr_prune_opts;
/* Whether a is an alignment mipr_prune_opts.align accepts. */
int mipr_prune_align_ok(uint32_t a);

typedef struct mipr_prune_plan {
    uint32_t n_layers;
    uint32_t *width;        /* kept per layer */
    uint8_t **keep;         /* per layer: d_ff flags */
    double **score;         /* per layer: the criterion's scores (higher = keep) */
    uint32_t **partner;     /* per layer (mi only): the redundant partner of a neuron, or
                             * UINT32_MAX */
    uint32_t *redundant;    /* mi: neurons found redundant per layer */
    /* mi, per layer: the MI threshold used, its Gaussian |rho|, pairs above it */
    double *mi_threshold, *mi_rho;
    uint64_t *mi_significant;
    double mi_null_level;   /* the per-pair significance level of a null threshold, or 0 */
    uint64_t mi_ties;       /* candidate pairs of equal R^2, all layers (0: seed-independent) */
} mipr_prune_plan;

/* Scores every neuron and decides which ones each layer keeps. */
mipr_status mipr_prune_plan_make(const mipr_model *m, const mipr_calib *c,
                                 const mipr_prune_opts *o, mipr_prune_plan *plan,
                                 mipr_error *err);
void mipr_prune_plan_free(mipr_prune_plan *p);
/* The pruned model. Its FFN tensors are new; the others are borrowed from m, which must
 * outlive it. Compensation (o->bias, o->least_squares) uses the calibration record. */
mipr_status mipr_prune_apply(const mipr_model *m, const mipr_calib *c, const mipr_prune_plan *p,
                             const mipr_prune_opts *o, mipr_model **out, mipr_error *err);

/* Prunes with o and scores the result against the unpruned model on held-out token ids
 * (KL and perplexity); the pruned model is freed. */
typedef struct mipr_heldout {
    const int32_t *ids;
    size_t n;
    uint32_t window;
    int32_t bos;
} mipr_heldout;

mipr_status mipr_prune_trial(const mipr_model *m, const mipr_calib *c, const mipr_prune_opts *o,
                             const mipr_heldout *h, mipr_eval_result *res, mipr_error *err);

/* ---- the size-aware policy (--criterion auto) ---------------------------------------------- */

/* Models up to this many parameters get a tournament of criteria; larger ones take the
 * cheapest criterion the evidence supports (docs/PRUNING.md, "policy"). */
#define MIPR_POLICY_TOURNAMENT_MAX_PARAMS 2000000000ull

typedef struct mipr_policy_candidate {
    enum mipr_criterion criterion;
    int adaptive;
    double kl, perplexity;
    uint32_t redundant;     /* mi: neurons merged (0: the plan is wanda-sp's) */
} mipr_policy_candidate;

typedef struct mipr_policy {
    enum mipr_criterion criterion;
    int adaptive, bias;
    char reason[1024];
    uint32_t n_candidates;
    mipr_policy_candidate candidates[16];
} mipr_policy;

/* Decides criterion and allocation for m at base->ratio (other fields of base are kept).
 * Candidates are tried cheapest first and a later one must be strictly better to win, so
 * a tie (mi that found nothing is wanda-sp's plan) goes to the cheaper deterministic one. */
mipr_status mipr_policy_decide(const mipr_model *m, const mipr_calib *c,
                               const mipr_prune_opts *base, const mipr_heldout *h,
                               mipr_policy *out, mipr_error *err);

/* What `mipr prune` and the criteria benchmark both run: the held-out tokens are split
 * into a selection half (the policy's tournament and the choice of seed see only it) and
 * a reporting half (where the caller scores the chosen model). */
#define MIPR_DECIDE_MAX_SEEDS 100u
typedef struct mipr_prune_request {
    mipr_prune_opts o;      /* criterion: used unless auto_criterion; seed: the first seed */
    int auto_criterion;
    int allocation;         /* 0: the policy's (auto) or uniform, 1 uniform, 2 adaptive */
    uint32_t seeds;         /* randomised criteria (mi, random): seeds tried (0: 1) */
    int no_bias;            /* the output cannot hold an ffn_down bias (a Hugging Face
                             * folder): the policy's bias compensation is not added */
} mipr_prune_request;

typedef struct mipr_prune_decision {
    mipr_prune_opts o;      /* resolved: criterion, adaptive, bias, seed */
    int used_policy;
    mipr_policy policy;
    uint32_t n_seeds;       /* seeds scored (mi stops after one when its seed cannot matter:
                             * no candidate pairs of equal R^2) */
    uint64_t seed[MIPR_DECIDE_MAX_SEEDS];
    double seed_kl[MIPR_DECIDE_MAX_SEEDS]; /* on the selection half */
    double selection_kl;    /* the chosen model's (-1: a deterministic criterion given
                             * by the caller, not scored) */
    uint32_t redundant;     /* mi: neurons merged by the chosen plan */
    uint32_t merges_rejected; /* mi: merges found but not better than wanda-sp on the
                               * selection half (the plan is then wanda-sp's) */
    mipr_heldout selection, reporting;
    char label[96];         /* "wanda-sp", "mi", "mi: no redundancy found, = wanda-sp", ... */
} mipr_prune_decision;

/* req is not modified. h needs at least 4 tokens. */
mipr_status mipr_prune_decide(const mipr_model *m, const mipr_calib *c,
                              const mipr_prune_request *req, const mipr_heldout *h,
                              mipr_prune_decision *out, mipr_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
