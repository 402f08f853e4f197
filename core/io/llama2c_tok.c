/* llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length
 * and the piece bytes (little-endian). The file has no token count: it must match the model.
 *
 * llama2.c's export stores BOS and EOS as "\n<s>\n" and "\n</s>\n" (so run.c prints them
 * on their own line); they are renamed "<s>" and "</s>" here, like SentencePiece names them,
 * so that a GGUF written from this tokenizer is clean. */
#include <math.h>
#include <string.h>

#include "mipr.h"

#define PIECE_LIMIT 1024 /* mipr_tokenizer_set's limit; real files stay under 64 */

typedef struct tok_reader {
    const uint8_t *data;
    size_t size, off;
    const char *path;
    int32_t max_len;
} tok_reader;

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int32_t rd_i32(const uint8_t *p)
{
    uint32_t u = rd_u32(p);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static float rd_f32(const uint8_t *p)
{
    uint32_t u = rd_u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static int is_byte_piece(const char *p, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    return len == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>' && p[3] && p[4] &&
           strchr(hex, p[3]) && strchr(hex, p[4]);
}

/* The type of token id and, for the special ids, the piece it is stored under. */
static enum mipr_token_type classify(uint32_t id, const char **piece, size_t *len)
{
    static const char *const special[3] = {"<unk>", "<s>", "</s>"};
    if (id < 3) {
        *piece = special[id];
        *len = strlen(special[id]);
        return id == 0 ? MIPR_TOK_UNKNOWN : MIPR_TOK_CONTROL;
    }
    return is_byte_piece(*piece, *len) ? MIPR_TOK_BYTE : MIPR_TOK_NORMAL;
}

/* Reads token i at r->off. */
static mipr_status read_token(tok_reader *r, uint32_t i, uint32_t n_vocab, float *score,
                              const char **piece, size_t *len, mipr_error *err)
{
    size_t at = r->off, left = r->size - r->off;
    if (left == 0)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: truncated: has only %u tokens, the "
                              "model needs %u", r->path, i, n_vocab);
    if (left < 8)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: truncated in token %u at byte offset "
                              "%zu (file size %zu)", r->path, i, at, r->size);
    *score = rd_f32(r->data + at);
    int32_t n = rd_i32(r->data + at + 4);
    if (n < 0 || n > r->max_len || n > PIECE_LIMIT)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: token %u at byte offset %zu has "
                              "length %d (allowed 0..%d)", r->path, i, at, (int)n,
                              r->max_len < PIECE_LIMIT ? (int)r->max_len : PIECE_LIMIT);
    if (isnan(*score))
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: token %u at byte offset %zu has a NaN "
                              "score", r->path, i, at);
    if ((size_t)n > left - 8)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: truncated in token %u at byte offset "
                              "%zu: its %d bytes run past the end (file size %zu)", r->path, i,
                              at, (int)n, r->size);
    *piece = (const char *)r->data + at + 8;
    *len = (size_t)n;
    r->off = at + 8 + (size_t)n;
    return MIPR_OK;
}

static mipr_status read_tokens(mipr_tokenizer *t, tok_reader *r, uint32_t n_vocab,
                               mipr_error *err)
{
    for (uint32_t i = 0; i < n_vocab; i++) {
        float score = 0.0f;
        const char *piece = NULL;
        size_t len = 0;
        mipr_status st = read_token(r, i, n_vocab, &score, &piece, &len, err);
        if (st != MIPR_OK)
            return st;
        enum mipr_token_type type = classify(i, &piece, &len);
        if ((st = mipr_tokenizer_set(t, i, piece, len, score, type, err)) != MIPR_OK)
            return st;
    }
    if (r->off != r->size)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: holds more than %u tokens: it does not "
                              "match the model (vocab %u)", r->path, n_vocab, n_vocab);
    return MIPR_OK;
}

static mipr_status read_header(tok_reader *r, mipr_error *err)
{
    if (r->size < 4)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: truncated: %zu bytes, too short for a "
                              "llama2.c tokenizer", r->path, r->size);
    r->max_len = rd_i32(r->data);
    if (r->max_len < 0)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: max_token_length %d is negative: not a "
                              "llama2.c tokenizer", r->path, (int)r->max_len);
    r->off = 4;
    return MIPR_OK;
}

static int32_t special_id(uint32_t id, uint32_t n_vocab)
{
    return id < n_vocab ? (int32_t)id : -1;
}

/* Every token takes at least 8 bytes (score and length), so the file bounds the count
 * before the tokenizer's tables are allocated. */
static mipr_status read_tokenizer(mipr_tokenizer **out, const uint8_t *data, size_t size,
                                  const char *name, uint32_t n_vocab, mipr_error *err)
{
    if (n_vocab == 0 || n_vocab > MIPR_MAX_VOCAB)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: vocabulary size %u out of range (1..%u)",
                              name, n_vocab, MIPR_MAX_VOCAB);
    tok_reader r = {data, size, 0, name, 0};
    mipr_status st = read_header(&r, err);
    if (st)
        return st;
    if ((size - 4) / 8 < n_vocab)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: %zu bytes cannot hold the %u tokens "
                              "the model needs (truncated, or not its tokenizer)", name, size,
                              n_vocab);
    mipr_tokenizer *t = NULL;
    if ((st = mipr_tokenizer_new(&t, n_vocab, err)) == MIPR_OK &&
        (st = read_tokens(t, &r, n_vocab, err)) == MIPR_OK)
        st = mipr_tokenizer_finish(t, special_id(1, n_vocab), special_id(2, n_vocab),
                                   special_id(0, n_vocab), 1, err);
    if (st != MIPR_OK) {
        mipr_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MIPR_OK;
}

mipr_status mipr_llama2c_read_tokenizer(mipr_tokenizer **out, const void *buf, size_t len,
                                        const char *name, uint32_t n_vocab, mipr_error *err)
{
    *out = NULL;
    return read_tokenizer(out, buf, len, name ? name : "(memory)", n_vocab, err);
}

mipr_status mipr_llama2c_load_tokenizer(mipr_tokenizer **out, const char *path, uint32_t n_vocab,
                                        mipr_error *err)
{
    *out = NULL;
    if (n_vocab == 0 || n_vocab > MIPR_MAX_VOCAB)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: vocabulary size %u out of range (1..%u)",
                              path, n_vocab, MIPR_MAX_VOCAB);
    mipr_mapped_file f;
    mipr_status st = mipr_file_map(&f, path, err);
    if (st != MIPR_OK)
        return st;
    st = read_tokenizer(out, f.data, f.size, path, n_vocab, err);
    mipr_file_unmap(&f);
    return st;
}
