/* mipr_runtime: the model in memory, the tokenizer, the sampler and the transformer engine.
 *
 * This is what ships to devices: it knows nothing of pruning or of file formats other than
 * its own, and has no stdio in its core (file access lives in runtime/file.c only).
 * Errors are values: functions return a mipr_status and fill a mipr_error with context. */
#ifndef MIPR_RUNTIME_H
#define MIPR_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "mipr_arch.h"

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

/* ---- errors ---------------------------------------------------------------------------- */

typedef enum {
    MIPR_OK = 0,
    MIPR_ERR_IO,          /* a file could not be opened, read or written */
    MIPR_ERR_FORMAT,      /* the bytes are not what the format requires */
    MIPR_ERR_NOMEM,       /* an allocation failed */
    MIPR_ERR_ARG,         /* a caller's argument is out of range */
    MIPR_ERR_UNSUPPORTED, /* valid input this build cannot handle */
} mipr_status;

typedef struct mipr_error {
    mipr_status status;
    char msg[512];
} mipr_error;

/* Records status and a printf-style message in e (which may be NULL); returns status. */
mipr_status mipr_error_set(mipr_error *e, mipr_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *mipr_status_name(mipr_status s);

/* ---- files (the one place the runtime touches the file system) -------------------------- */

typedef struct mipr_mapped_file {
    const uint8_t *data;
    size_t size;
    void *handle_; /* private */
} mipr_mapped_file;

/* Maps (or reads) the whole file read-only. An empty file is mapped with data == NULL. */
mipr_status mipr_file_map(mipr_mapped_file *out, const char *path, mipr_error *err);
void mipr_file_unmap(mipr_mapped_file *f);
/* Tells the system the pages of [p, p + n) in f will not be read soon (they stop counting
 * as this process's memory; a later read maps them again). A hint: never fails. */
void mipr_file_release(const mipr_mapped_file *f, const void *p, size_t n);

/* ---- checksums ------------------------------------------------------------------------- */

/* CRC-32 as zlib computes it. The 8 KiB table is the caller's (no global state). */
typedef struct mipr_crc32_table {
    uint32_t t[8][256];
} mipr_crc32_table;

void mipr_crc32_init(mipr_crc32_table *c);
/* crc: 0 to start, or a previous result to continue over more bytes. */
uint32_t mipr_crc32(const mipr_crc32_table *c, uint32_t crc, const void *data, size_t n);

/* ---- the model ------------------------------------------------------------------------- */

/* A matrix of rows x cols elements (row-major, rows of `cols` elements); vectors have
 * rows == 1. Data is borrowed from the model's storage. */
typedef struct mipr_tensor {
    enum mipr_dtype type;
    uint32_t rows, cols;
    const void *data;
    /* Set (and data NULL) when the tensor stays compressed in a low-RAM .mpk model: the
     * engine decodes it chunk by chunk as it multiplies (runtime/mpk_stream.c). */
    const struct mipr_stream_ *stream_;
} mipr_tensor;

/* The architecture family a model came as: it decides the names a writer gives it back
 * (GGUF `llama`/`deci` or `qwen2`). Zero is llama. */
enum mipr_family { MIPR_FAMILY_LLAMA = 0, MIPR_FAMILY_QWEN2 = 1 };

/* How rotary embedding pairs the dimensions of a head. INTERLEAVED rotates (2i, 2i+1), as
 * llama2.c and GGUF `llama` store q/k; NEOX rotates (i, i + n_rot/2), the rotate-half layout
 * of Hugging Face checkpoints and of GGUF `qwen2`. Zero is interleaved. */
enum mipr_rope_type { MIPR_ROPE_INTERLEAVED = 0, MIPR_ROPE_NEOX = 1 };

typedef struct mipr_hparams {
    uint32_t dim;        /* embedding width */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads; /* grouped-query attention when < n_heads */
    uint32_t head_size;  /* dim / n_heads */
    uint32_t n_rot;      /* rotary dimensions per head (== head_size for llama) */
    uint32_t vocab_size;
    uint32_t seq_len;    /* context length the model was built for */
    float norm_eps;
    float rope_theta;
    uint32_t family;     /* enum mipr_family */
    uint32_t rope_type;  /* enum mipr_rope_type */
    float rope_scale;    /* linear RoPE scaling: positions are divided by it; 0 or 1: none */
} mipr_hparams;

typedef struct mipr_layer {
    uint32_t d_ff; /* this layer's FFN width: pruning makes it differ between layers */
    mipr_tensor attn_norm, wq, wk, wv, wo;
    mipr_tensor ffn_norm, ffn_gate, ffn_up, ffn_down; /* gate, up: d_ff x dim; down: dim x d_ff */
    mipr_tensor ffn_down_b; /* optional F32 output bias of the FFN (data NULL when absent):
                             * pruning's bias compensation puts E[z] of removed neurons here */
    mipr_tensor bq, bk, bv; /* optional F32 biases of q, k, v (qwen2; data NULL when absent) */
} mipr_layer;

typedef struct mipr_model {
    mipr_hparams hp;
    mipr_tensor tok_embd;    /* vocab x dim */
    mipr_tensor output_norm; /* dim */
    mipr_tensor output;      /* vocab x dim; same data as tok_embd when tied */
    mipr_tensor rope_freqs;  /* optional n_rot/2 F32 divisors of the RoPE frequencies (Llama 3
                              * scaling, GGUF `rope_freqs.weight`; data NULL when absent) */
    int tied_output;
    mipr_layer *layers;      /* hp.n_layers */
    char name[64];
    /* storage: blocks owned by the model, freed with it */
    struct mipr_block_ *blocks_;
} mipr_model;

/* An empty model with n_layers layers (hp.n_layers set). */
mipr_status mipr_model_new(mipr_model **out, uint32_t n_layers, mipr_error *err);
/* Memory owned by the model (zeroed, 64-byte aligned), freed by mipr_model_free. */
void *mipr_model_alloc(mipr_model *m, size_t bytes);
/* Hands a mapped file to the model: it is unmapped by mipr_model_free. */
mipr_status mipr_model_adopt_file(mipr_model *m, mipr_mapped_file *f, mipr_error *err);
void mipr_model_free(mipr_model *m);
/* Checks hyper-parameters for sanity and every tensor's type and shape against them.
 * `what` names the source (a file name) in messages. */
mipr_status mipr_model_validate(const mipr_model *m, const char *what, mipr_error *err);
/* Total weights (elements of all tensors; a tied output counts once). */
uint64_t mipr_model_n_params(const mipr_model *m);
/* Limits that keep every derived size far from overflow; documented in docs/LIMITS.md. */
#define MIPR_MAX_DIM (1u << 16)
#define MIPR_MAX_LAYERS 1024u
#define MIPR_MAX_VOCAB (1u << 22)
#define MIPR_MAX_SEQ (1u << 20)
#define MIPR_MAX_FF (1u << 20)

/* ---- the tokenizer ---------------------------------------------------------------------- */

/* Token types as GGUF numbers them. */
enum mipr_token_type {
    MIPR_TOK_NORMAL = 1,
    MIPR_TOK_UNKNOWN = 2,
    MIPR_TOK_CONTROL = 3,
    MIPR_TOK_USER = 4,
    MIPR_TOK_UNUSED = 5,
    MIPR_TOK_BYTE = 6,
};

typedef struct mipr_tokenizer mipr_tokenizer;

/* Builds a SentencePiece-style BPE tokenizer from n pieces. Spaces are real spaces in
 * pieces (callers convert U+2581). Byte tokens are pieces "<0xXX>" of type BYTE. */
mipr_status mipr_tokenizer_new(mipr_tokenizer **out, uint32_t n_vocab, mipr_error *err);
/* Sets piece id (copied). */
mipr_status mipr_tokenizer_set(mipr_tokenizer *t, uint32_t id, const char *piece, size_t len,
                               float score, enum mipr_token_type type, mipr_error *err);
/* Finishes construction: builds the lookup tables. bos/eos/unk < 0 when absent. */
mipr_status mipr_tokenizer_finish(mipr_tokenizer *t, int32_t bos, int32_t eos, int32_t unk,
                                  int add_space_prefix, mipr_error *err);
void mipr_tokenizer_free(mipr_tokenizer *t);

uint32_t mipr_tokenizer_n_vocab(const mipr_tokenizer *t);
int32_t mipr_tokenizer_bos(const mipr_tokenizer *t);
int32_t mipr_tokenizer_eos(const mipr_tokenizer *t);
int32_t mipr_tokenizer_unk(const mipr_tokenizer *t);
int mipr_tokenizer_add_space_prefix(const mipr_tokenizer *t);
const char *mipr_tokenizer_piece(const mipr_tokenizer *t, uint32_t id, size_t *len);
float mipr_tokenizer_score(const mipr_tokenizer *t, uint32_t id);
enum mipr_token_type mipr_tokenizer_type(const mipr_tokenizer *t, uint32_t id);

/* Byte-level BPE (GPT-2 style: GGUF tokenizer.ggml.model "gpt2", tokenizer.json with a
 * ByteLevel pre-tokenizer). Pieces hold raw bytes (callers undo the GPT-2 byte-to-unicode
 * map); text is split into pre-tokens by `pre`'s rules, then merged by rank. */
enum mipr_pre_type {
    MIPR_PRE_NONE = 0, /* SentencePiece style: no split */
    MIPR_PRE_GPT2,
    MIPR_PRE_LLAMA3,
    MIPR_PRE_QWEN2,
    MIPR_PRE_SMOLLM, /* each digit apart, then GPT-2's rule */
    MIPR_PRE_FALCON,
    MIPR_PRE_DEEPSEEK_LLM,
    MIPR_PRE_DEEPSEEK_CODER,
    MIPR_PRE_STARCODER, /* SmolLM's rules under starcoder's name (refact, command-r, ...) */
    MIPR_PRE_COUNT
};
/* GGUF's name of a pre type ("gpt-2", "llama-bpe", ...); NULL when out of range. */
const char *mipr_pre_name(enum mipr_pre_type pre);
/* The pre type GGUF calls `name` (aliases included), or -1. */
int mipr_pre_from_name(const char *name, size_t len);
/* Makes t byte-level with the given split rules (call before finish). ignore_merges: a
 * pre-token that is a whole piece is that token (Llama 3). */
mipr_status mipr_tokenizer_set_bpe(mipr_tokenizer *t, enum mipr_pre_type pre, int ignore_merges,
                                   mipr_error *err);
/* Merge rules by rank (Hugging Face BPE): pair i (pairs[2i], pairs[2i + 1]) joins into the
 * token spelled by their concatenation; lower ranks merge first. Without merges, a
 * SentencePiece-style tokenizer merges by score. Copied; call before finish. */
mipr_status mipr_tokenizer_set_merges(mipr_tokenizer *t, const int32_t *pairs, uint32_t n,
                                      mipr_error *err);
/* Whether encoders should add BOS / EOS (the model's rule; mipr_tokenizer_encode's add_bos
 * argument still decides there). */
void mipr_tokenizer_set_flags(mipr_tokenizer *t, int add_bos, int add_eos);
/* Hugging Face's fuse_unk (SentencePiece style): a run of unknown characters is one UNK. */
void mipr_tokenizer_set_fuse_unk(mipr_tokenizer *t, int fuse);
int mipr_tokenizer_fuse_unk(const mipr_tokenizer *t);
int mipr_tokenizer_is_bpe(const mipr_tokenizer *t);
enum mipr_pre_type mipr_tokenizer_pre(const mipr_tokenizer *t);
int mipr_tokenizer_ignore_merges(const mipr_tokenizer *t);
int mipr_tokenizer_add_bos(const mipr_tokenizer *t);
int mipr_tokenizer_add_eos(const mipr_tokenizer *t);
uint32_t mipr_tokenizer_n_merges(const mipr_tokenizer *t);
/* Bytes the tokenizer holds (its tables, pieces and merges; not encode's scratch). */
size_t mipr_tokenizer_memory(const mipr_tokenizer *t);
/* Id of the text piece (a token that merges and text can turn into) spelled s, or -1. */
int32_t mipr_tokenizer_lookup(const mipr_tokenizer *t, const char *s, size_t len);
/* Merge `rank` as token ids; 0 when out of range. */
int mipr_tokenizer_merge(const mipr_tokenizer *t, uint32_t rank, int32_t *left, int32_t *right);

enum {
    MIPR_ENC_BOS = 1,     /* prepend BOS (when the tokenizer has one) */
    MIPR_ENC_EOS = 2,     /* append EOS */
    MIPR_ENC_SPECIAL = 4, /* control and unknown tokens written in the text are matched
                           * (user-defined tokens always are) */
};
/* mipr_tokenizer_encode with flags; out must hold len + 3 ids. Byte-level tokenizers split
 * text into pre-tokens first (this allocates; on failure it returns SIZE_MAX). */
size_t mipr_tokenizer_encode_ex(const mipr_tokenizer *t, const char *text, size_t len,
                                unsigned flags, int32_t *out);

/* Encodes len bytes of text as llama2.c does (optional BOS, a dummy-prefix space when the
 * text is not empty and the tokenizer asks for it, greedy merges by highest score, byte
 * fallback or UNK for unknown characters); byte-level tokenizers as encode_ex does. out must
 * hold len + 2 ids. Returns the count (0 when a byte-level split runs out of memory). */
size_t mipr_tokenizer_encode(const mipr_tokenizer *t, const char *text, size_t len, int add_bos,
                             int32_t *out);
/* The bytes token `id` stands for when it follows `prev`: byte tokens give their byte,
 * control tokens give nothing, the leading space after BOS is dropped. */
const char *mipr_tokenizer_decode(const mipr_tokenizer *t, int32_t prev, int32_t id, size_t *len);

/* ---- the .mpk runtime format (docs/FORMAT.md) -------------------------------------------- */

typedef struct mipr_pool mipr_pool;

typedef struct mipr_mpk_options {
    /* 0: decode every tensor at open (fastest; RAM = decoded weights). 1: compressed tensors
     * stay compressed and are decoded chunk by chunk (about 256 KiB) while the engine
     * multiplies with them; RAM = the file's bytes + one chunk. Uncompressed tensors are
     * used in place either way. A low-RAM model serves one engine at a time. */
    int low_ram;
    /* Skip the CRC-32 pass over every chunk at open (zstd's own checksums still apply). */
    int skip_verify;
    /* Threads that check and decode the tensors decoded at open (NULL: the calling thread).
     * Only used during the open call; the engine's pool can serve. */
    mipr_pool *pool;
} mipr_mpk_options;

/* Opens a model held in memory. The buffer must stay valid and unchanged until the model is
 * freed: uncompressed tensors point into it (e.g. straight into flash). opt may be NULL. */
mipr_status mipr_mpk_open_memory(mipr_model **model, mipr_tokenizer **tok, const void *data,
                                 size_t size, const mipr_mpk_options *opt, mipr_error *err);
/* Opens a file (mapped where the platform can). tok may be NULL. */
mipr_status mipr_mpk_open_file(mipr_model **model, mipr_tokenizer **tok, const char *path,
                               const mipr_mpk_options *opt, mipr_error *err);
/* Whether the first bytes are an .mpk's magic. */
int mipr_mpk_is_mpk(const void *data, size_t size);

typedef struct mipr_mpk_tensor_info {
    char name[48];            /* GGUF-style, e.g. "blk.0.ffn_up.weight" */
    enum mipr_dtype type;
    uint32_t rows, cols, n_chunks;
    const char *codec;        /* "raw" or "zstd" */
    int planes;               /* byte planes before compression */
    uint64_t raw_bytes, stored_bytes;
} mipr_mpk_tensor_info;

typedef struct mipr_mpk_section_info {
    char tag[5];
    int required, known;
    const char *codec;
    uint64_t raw_bytes, stored_bytes;
} mipr_mpk_section_info;

typedef struct mipr_mpk_info {
    uint32_t version_major, version_minor;
    uint64_t file_size;
    uint32_t n_sections, n_tensors;
    mipr_mpk_section_info *sections;
    mipr_mpk_tensor_info *tensors;
} mipr_mpk_info;

/* Checks every checksum and decodes every tensor once (without keeping it), and describes
 * the file. what names the source in messages. Free with mipr_mpk_info_free. */
mipr_status mipr_mpk_inspect(const void *data, size_t size, const char *what, mipr_mpk_info *out,
                             mipr_error *err);
void mipr_mpk_info_free(mipr_mpk_info *info);

/* ---- the sampler ------------------------------------------------------------------------ */

typedef struct mipr_sampler {
    uint32_t n_vocab;
    float temperature; /* 0: greedy (argmax, ties to the lowest id) */
    float top_p;       /* in (0, 1): nucleus sampling; otherwise plain sampling */
    uint64_t rng;
    void *scratch_;    /* n_vocab (prob, index) pairs for top-p */
    float *logits_;    /* n_vocab floats for mipr_generate: nothing is allocated per call */
} mipr_sampler;

mipr_status mipr_sampler_init(mipr_sampler *s, uint32_t n_vocab, float temperature, float top_p,
                              uint64_t seed, mipr_error *err);
void mipr_sampler_free(mipr_sampler *s);
/* Picks the next token; logits are overwritten. */
int32_t mipr_sampler_sample(mipr_sampler *s, float *logits);
/* Index of the largest value; ties go to the lowest index. */
int32_t mipr_argmax(const float *x, size_t n);

/* ---- threads ----------------------------------------------------------------------------- */

/* A pool of worker threads (pthreadpool where the build has it; otherwise, and for a NULL
 * pool, work runs on the calling thread). mipr_pool is declared with the .mpk options. */

/* threads == 0: the MIPR_THREADS environment variable when set, else one per physical core
 * (cpuinfo; processors online when cpuinfo is not in the build). */
mipr_status mipr_pool_new(mipr_pool **out, uint32_t threads, mipr_error *err);
void mipr_pool_free(mipr_pool *p);
uint32_t mipr_pool_threads(const mipr_pool *p);
/* Calls fn(ctx, i) for i in [0, n), spread over the pool; returns when all are done. */
void mipr_pool_run(mipr_pool *p, void (*fn)(void *ctx, size_t i), void *ctx, size_t n);
/* Cores available to this process. */
uint32_t mipr_cpu_count(void);

/* ---- the engine -------------------------------------------------------------------------- */

/* Called for every layer with the FFN intermediate activations (input of ffn_down):
 * n_tokens rows of d_ff floats, tokens at positions pos .. pos + n_tokens - 1. */
typedef void (*mipr_ffn_observer)(void *ctx, uint32_t layer, uint32_t pos, uint32_t n_tokens,
                                  uint32_t d_ff, const float *act);

typedef struct mipr_engine mipr_engine;

/* max_ctx: positions in the KV cache (0: the model's seq_len). max_batch: tokens processed
 * together in prefill (0: 64). */
mipr_status mipr_engine_new(mipr_engine **out, const mipr_model *m, uint32_t max_ctx,
                            uint32_t max_batch, mipr_error *err);
void mipr_engine_free(mipr_engine *e);
void mipr_engine_set_observer(mipr_engine *e, mipr_ffn_observer fn, void *ctx);
/* Spreads matmuls and attention over the pool (NULL: one thread). Results do not depend on
 * the thread count: every output element is computed by the same kernel call shape. */
void mipr_engine_set_pool(mipr_engine *e, mipr_pool *pool);
uint32_t mipr_engine_max_ctx(const mipr_engine *e);
const mipr_model *mipr_engine_model(const mipr_engine *e);
/* Runs n tokens at positions pos .. pos + n - 1 (earlier positions must already be in the
 * cache). logits (may be NULL) receives vocab floats for the last token, or, when
 * all_logits is set, n x vocab floats, one row per token. */
mipr_status mipr_engine_forward(mipr_engine *e, const int32_t *tokens, uint32_t n, uint32_t pos,
                                float *logits, int all_logits, mipr_error *err);

/* Matrix-multiply backend of batched prefill (n > 1 tokens; decode always runs our gemv).
 * OURS (the default): our gemm, whose per-element reduction equals gemv's, so prefill and
 *   decode give bit-identical logits.
 * XNNPACK: XNNPACK's f32 fully-connected operator for every F32 weight matrix (other types
 *   stay on our kernels). It sums in another order, so logits differ from OURS by rounding
 *   (about 1e-6 of the largest logit; tests/unit/test_xnn.c states the tolerance) and prefill/decode
 *   bit-identity no longer holds. It copies the weights it uses: F32 weight memory doubles
 *   (the tied output matrix included) for as long as the backend is selected.
 * AUTO: XNNPACK only where it was measured to beat our gemm (runtime/xnnpack/xnnpack.c has
 *   the rule and the numbers: on x86-64 with AVX2+FMA never; with our scalar kernel table
 *   always); otherwise OURS with no copy. Opt-in for the same rounding reason.
 * The runtime itself never links XNNPACK (a device binary such as mipr-run stays without
 * it): the operator comes from a provider, libmipr_xnnpack's mipr_xnnpack_provider(), that
 * the caller passes in. Selecting XNNPACK without a provider, or with one built without
 * XNNPACK, fails with MIPR_ERR_UNSUPPORTED (AUTO then stays on OURS). The engine's pool
 * (mipr_engine_set_pool) also runs the provider's threads. */
typedef enum {
    MIPR_BACKEND_OURS = 0,
    MIPR_BACKEND_XNNPACK,
    MIPR_BACKEND_AUTO,
} mipr_backend;

/* Batched F32 matmuls from another library, used by an engine in place of its gemm for
 * the weight matrices the provider took. */
typedef struct mipr_prefill_provider {
    const char *name;
    /* The AUTO rule: whether it beats our gemm over the kernel table named isa. */
    int (*beats_ours)(const char *isa);
    /* Prepares the model's matrices (copies them if it must); *state is the provider's. */
    mipr_status (*create)(void **state, const mipr_model *m, mipr_error *err);
    void (*destroy)(void *state);
    /* y (n x w->rows) = x (n x w->cols) times w transposed, w a tensor of the model (by
     * address): returns 1 when done (or failed: see take_error), 0 when it has no operator
     * for w and the engine runs its own kernel. */
    int (*matmul)(void *state, float *y, const mipr_tensor *w, const float *x, size_t n,
                  mipr_pool *pool);
    /* The first failure since the last call, copied to err; MIPR_OK when none. */
    mipr_status (*take_error)(void *state, mipr_error *err);
} mipr_prefill_provider;

/* p: the provider XNNPACK and AUTO use (may be NULL: then only OURS). */
mipr_status mipr_engine_set_backend(mipr_engine *e, mipr_backend b,
                                    const mipr_prefill_provider *p, mipr_error *err);
/* The backend that was selected (AUTO stays AUTO). */
mipr_backend mipr_engine_backend(const mipr_engine *e);
/* Whether a provider runs any prefill matmul of this engine (its copy exists). */
int mipr_engine_uses_provider(const mipr_engine *e);
/* "ours", "xnnpack", "auto" and back; an unknown name is MIPR_ERR_ARG. */
const char *mipr_backend_name(mipr_backend b);
mipr_status mipr_backend_parse(const char *name, mipr_backend *out, mipr_error *err);

/* ---- generation ------------------------------------------------------------------------ */

/* Receives each emitted token with the one before it (prompt tokens included, so a caller
 * can print the prompt as llama2.c does); a non-zero return stops generation. */
typedef int (*mipr_token_fn)(void *ctx, int32_t prev, int32_t token);

typedef struct mipr_gen_stats {
    uint32_t prompt_tokens; /* prompt positions run through the engine */
    uint32_t generated;     /* sampled tokens emitted */
    double prefill_seconds, decode_seconds;
} mipr_gen_stats;

/* llama2.c's loop: `steps` counts positions from 0, prompt included (capped at the engine's
 * context); the prompt is prefilled in one batch; generation stops early at BOS or EOS.
 * prompt[0] is normally BOS. `now` (may be NULL) returns seconds for the statistics. */
mipr_status mipr_generate(mipr_engine *e, mipr_sampler *s, const mipr_tokenizer *tok,
                          const int32_t *prompt, uint32_t n_prompt, uint32_t steps,
                          mipr_token_fn fn, void *ctx, double (*now)(void),
                          mipr_gen_stats *stats, mipr_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
