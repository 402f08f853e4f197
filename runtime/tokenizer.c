/* SentencePiece-style BPE tokenizer with llama2.c (run.c) encode and decode semantics.
 *
 * Rules that run.c leaves implicit or gets wrong on unusual vocabularies, decided here:
 *  - Pieces are counted bytes and may hold any byte, NUL included: GGUF vocabularies carry
 *    such pieces, and everything here works on (pointer, length). The arena still ends every
 *    piece with a NUL so C-string callers see a usable prefix.
 *  - A "byte token" is a token of type BYTE, NORMAL or USER spelled exactly "<0xXX>"
 *    (uppercase hex, as SentencePiece writes it). It decodes to its raw byte.
 *  - Only NORMAL and USER tokens that are not byte tokens take part in text lookups and
 *    merges. So text never turns into BOS/EOS/UNK or a byte token through merging (as in
 *    SentencePiece); for llama2.c's own vocabularies this gives run.c's ids exactly.
 *  - A code point missing from the vocabulary becomes its byte tokens when the vocabulary
 *    has one for each of its bytes; otherwise one UNK (nothing when there is no UNK).
 *    run.c adds 3 to the byte instead, which is only right for llama2.c's own layout.
 *  - BOS never merges with the text (run.c scans it too, but no real piece starts "\n<s>").
 *  - Like run.c, a merge must score above -1e10; NaN scores never merge. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define TOK_MAX_PIECE 1024u   /* longest piece accepted by mipr_tokenizer_set */
#define MERGE_MIN_SCORE -1e10f /* run.c's initial best score: merges must beat it */
#define NONE UINT32_MAX

/* 12 bytes a token: a 49,152-token vocabulary costs 576 KiB here, which matters on the
 * low-RAM path (the goal there is model file + KV cache + under 1 MiB). */
typedef struct tok_entry {
    uint32_t off; /* piece bytes in the arena */
    float score;
    uint16_t len; /* <= TOK_MAX_PIECE */
    uint8_t type; /* enum mipr_token_type */
    uint8_t flags;
} tok_entry;

enum { TOK_MERGEABLE = 1, TOK_SPELLS_BYTE = 2 /* spelled exactly "<0xXX>" */ };

struct mipr_tokenizer {
    uint32_t n_vocab;
    int finished;
    int32_t bos, eos, unk, space_id;
    int add_space_prefix;
    tok_entry *tok;
    char *arena;
    size_t arena_len, arena_cap;
    /* Open-addressing hash of mergeable pieces: slot -> id (-1 empty), and the hash's top
     * byte per slot, which rejects most probes without touching the token table. */
    int32_t *slots;
    uint8_t *slot_tag;
    uint32_t mask;
    uint32_t max_merge_len; /* longest mergeable piece: longer concatenations cannot match */
    uint8_t pair_bits[8192]; /* bit x*256+y: some mergeable piece holds bytes x, y in a row */
    int32_t byte_tok[256];
    char byte_str[512]; /* byte b at [2b], NUL at [2b + 1] */
    /* Byte-level BPE: pieces are raw bytes, text is split by `pre` before merging. */
    uint8_t bpe, pre, ignore_merges, add_bos, add_eos, fuse_unk;
    /* Merges by rank (when n_merges > 0, scores play no part in merging): 3 ids per rank
     * (left, right, result) and an open-addressing hash of (left, right) -> rank + 1. */
    uint32_t n_merges, merge_mask;
    int32_t *merges;
    uint32_t *merge_slots;
    /* Tokens matched in the text before the split (byte-level): ids by length, longest first,
     * and a bit per byte that starts one. */
    int32_t *specials;
    uint32_t n_specials;
    uint8_t special_first[32];
};

/* ---- construction ------------------------------------------------------------------------ */

mipr_status mipr_tokenizer_new(mipr_tokenizer **out, uint32_t n_vocab, mipr_error *err)
{
    *out = NULL;
    if (n_vocab == 0 || n_vocab > MIPR_MAX_VOCAB)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: vocabulary size %u out of range "
                              "(1..%u)", n_vocab, MIPR_MAX_VOCAB);
    mipr_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory");
    t->n_vocab = n_vocab;
    t->tok = calloc(n_vocab, sizeof *t->tok);
    t->arena_cap = 1 + (size_t)n_vocab * 8;
    t->arena = malloc(t->arena_cap);
    if (!t->tok || !t->arena) {
        mipr_tokenizer_free(t);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory (%u tokens)",
                              n_vocab);
    }
    t->arena[0] = 0; /* offset 0: the empty piece of tokens never set */
    t->arena_len = 1;
    for (uint32_t i = 0; i < n_vocab; i++)
        t->tok[i].type = MIPR_TOK_UNUSED;
    t->bos = t->eos = t->unk = t->space_id = -1;
    t->add_bos = 1; /* SentencePiece models (llama2.c, GGUF llama) start with BOS */
    for (int b = 0; b < 256; b++)
        t->byte_str[2 * b] = (char)b;
    *out = t;
    return MIPR_OK;
}

void mipr_tokenizer_free(mipr_tokenizer *t)
{
    if (!t)
        return;
    free(t->tok);
    free(t->arena);
    free(t->slots);
    free(t->slot_tag);
    free(t->merges);
    free(t->merge_slots);
    free(t->specials);
    free(t);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte a piece spelled exactly "<0xXX>" stands for, or -1. */
static int parse_byte_piece(const char *p, size_t len)
{
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int arena_reserve(mipr_tokenizer *t, size_t more)
{
    if (more > UINT32_MAX - t->arena_len) /* offsets are 32-bit */
        return 0;
    size_t need = t->arena_len + more;
    if (need <= t->arena_cap)
        return 1;
    size_t cap = t->arena_cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(t->arena, cap);
    if (!p)
        return 0;
    t->arena = p;
    t->arena_cap = cap;
    return 1;
}

mipr_status mipr_tokenizer_set(mipr_tokenizer *t, uint32_t id, const char *piece, size_t len,
                               float score, enum mipr_token_type type, mipr_error *err)
{
    if (!t || id >= t->n_vocab)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: token id %u out of range", id);
    if (t->finished)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: token %u set after finish", id);
    if (len > TOK_MAX_PIECE || (len > 0 && !piece))
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: token %u has a piece of %llu bytes "
                              "(limit %u)", id, (unsigned long long)len, TOK_MAX_PIECE);
    if (type < MIPR_TOK_NORMAL || type > MIPR_TOK_BYTE)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: token %u has unknown type %d", id,
                              (int)type);
    /* A second set of the same id leaves the old bytes unused in the arena: rare, harmless. */
    if (!arena_reserve(t, len + 1))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory at token %u", id);
    tok_entry *e = &t->tok[id];
    e->off = (uint32_t)t->arena_len;
    if (len)
        memcpy(t->arena + t->arena_len, piece, len);
    t->arena[t->arena_len + len] = 0;
    t->arena_len += len + 1;
    e->len = (uint16_t)len;
    e->score = score;
    e->type = (uint8_t)type;
    e->flags = len && parse_byte_piece(piece, len) >= 0 ? TOK_SPELLS_BYTE : 0;
    return MIPR_OK;
}

static int is_byte_token(const tok_entry *e)
{
    return (e->flags & TOK_SPELLS_BYTE) && (e->type == MIPR_TOK_BYTE ||
                                            e->type == MIPR_TOK_NORMAL || e->type == MIPR_TOK_USER);
}

static int byte_value(const mipr_tokenizer *t, const tok_entry *e)
{
    return parse_byte_piece(t->arena + e->off, e->len);
}

/* Lowest id per byte value, BYTE-typed tokens first (a NORMAL "<0x41>" only fills a gap). */
static void build_byte_table(mipr_tokenizer *t)
{
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < t->n_vocab; i++) {
            const tok_entry *e = &t->tok[i];
            if (!is_byte_token(e) || (pass == 0) != (e->type == MIPR_TOK_BYTE))
                continue;
            int b = byte_value(t, e);
            if (t->byte_tok[b] < 0)
                t->byte_tok[b] = (int32_t)i;
        }
    }
}

/* FNV-1a over the concatenation a + b, so pairs are hashed without copying them. */
static uint32_t hash2(const char *a, size_t la, const char *b, size_t lb)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < la; i++)
        h = (h ^ (uint8_t)a[i]) * 16777619u;
    for (size_t i = 0; i < lb; i++)
        h = (h ^ (uint8_t)b[i]) * 16777619u;
    return h;
}

/* Id of the mergeable piece equal to a + b, or -1. */
static int32_t lookup2(const mipr_tokenizer *t, const char *a, size_t la, const char *b,
                       size_t lb)
{
    if (la + lb > t->max_merge_len || la + lb == 0)
        return -1;
    uint32_t h = hash2(a, la, b, lb);
    uint8_t tag = (uint8_t)(h >> 24);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        int32_t id = t->slots[i];
        if (id < 0)
            return -1;
        if (t->slot_tag[i] != tag)
            continue;
        const tok_entry *e = &t->tok[id];
        const char *p = t->arena + e->off;
        if (e->len == la + lb && (la == 0 || memcmp(p, a, la) == 0) &&
            (lb == 0 || memcmp(p + la, b, lb) == 0))
            return id;
    }
}

static int32_t lookup(const mipr_tokenizer *t, const char *s, size_t len)
{
    return lookup2(t, s, len, s, 0);
}

static void hash_insert(mipr_tokenizer *t, uint32_t id)
{
    const tok_entry *e = &t->tok[id];
    const char *p = t->arena + e->off;
    uint32_t h = hash2(p, e->len, p, 0);
    uint32_t i = h & t->mask;
    for (; t->slots[i] >= 0; i = (i + 1) & t->mask) {
        const tok_entry *o = &t->tok[t->slots[i]];
        if (t->slot_tag[i] == (uint8_t)(h >> 24) && o->len == e->len &&
            memcmp(t->arena + o->off, p, e->len) == 0)
            return; /* duplicate piece: ids are inserted in order, so the lowest id stays */
    }
    t->slots[i] = (int32_t)id;
    t->slot_tag[i] = (uint8_t)(h >> 24);
}

static void build_pair_bits(mipr_tokenizer *t)
{
    memset(t->pair_bits, 0, sizeof t->pair_bits);
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        const tok_entry *e = &t->tok[i];
        const uint8_t *p = (const uint8_t *)t->arena + e->off;
        for (uint32_t k = 0; (e->flags & TOK_MERGEABLE) && k + 1 < e->len; k++) {
            unsigned bit = (unsigned)p[k] << 8 | p[k + 1];
            t->pair_bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
}

static mipr_status build_hash(mipr_tokenizer *t, mipr_error *err)
{
    uint32_t n = 0;
    t->max_merge_len = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        tok_entry *e = &t->tok[i];
        int mergeable = e->len > 0 && !is_byte_token(e) &&
                        (e->type == MIPR_TOK_NORMAL || e->type == MIPR_TOK_USER);
        e->flags = (uint8_t)((e->flags & ~TOK_MERGEABLE) | (mergeable ? TOK_MERGEABLE : 0));
        n += (uint32_t)mergeable;
        if (mergeable && e->len > t->max_merge_len)
            t->max_merge_len = e->len;
    }
    build_pair_bits(t);
    /* Load at most 3/4: with the tags, a miss still costs only a few byte compares. */
    uint32_t cap = 16;
    while ((uint64_t)cap * 3 < 4 * (uint64_t)n)
        cap *= 2;
    free(t->slots);
    free(t->slot_tag);
    t->slots = malloc(cap * sizeof *t->slots);
    t->slot_tag = malloc(cap);
    if (!t->slots || !t->slot_tag)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory for the piece "
                              "table");
    memset(t->slots, 0xff, cap * sizeof *t->slots);
    t->mask = cap - 1;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        if (t->tok[i].flags & TOK_MERGEABLE)
            hash_insert(t, i);
    return MIPR_OK;
}

static mipr_status check_special(const mipr_tokenizer *t, const char *what, int32_t id,
                                 int32_t *dst, mipr_error *err)
{
    if (id >= 0 && (uint32_t)id >= t->n_vocab)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: %s id %d is outside the "
                              "vocabulary (%u tokens)", what, id, t->n_vocab);
    *dst = id < 0 ? -1 : id;
    return MIPR_OK;
}

static uint32_t pair_hash(int32_t a, int32_t b)
{
    uint32_t h = (uint32_t)a * 0x9E3779B1u ^ ((uint32_t)b + 0x7F4A7C15u) * 0x85EBCA77u;
    return h ^ h >> 15;
}

/* Rank of the merge rule joining a and b, or NONE. */
static uint32_t merge_rank(const mipr_tokenizer *t, int32_t a, int32_t b)
{
    for (uint32_t i = pair_hash(a, b) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        uint32_t r = t->merge_slots[i];
        if (r == 0)
            return NONE;
        const int32_t *m = &t->merges[3 * (size_t)(r - 1)];
        if (m[0] == a && m[1] == b)
            return r - 1;
    }
}

mipr_status mipr_tokenizer_set_bpe(mipr_tokenizer *t, enum mipr_pre_type pre, int ignore_merges,
                                   mipr_error *err)
{
    if (!t || t->finished)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: byte-level mode set after finish");
    if ((unsigned)pre >= MIPR_PRE_COUNT)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: unknown pre-tokenizer type %d",
                              (int)pre);
    t->bpe = 1;
    t->pre = (uint8_t)pre;
    t->ignore_merges = ignore_merges != 0;
    return MIPR_OK;
}

mipr_status mipr_tokenizer_set_merges(mipr_tokenizer *t, const int32_t *pairs, uint32_t n,
                                      mipr_error *err)
{
    if (!t || t->finished)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: merges set after finish");
    if (n >= (1u << 24) || (n && !pairs))
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: %u merges (limit %u)", n,
                              (1u << 24) - 1);
    for (uint32_t r = 0; r < n; r++)
        for (int k = 0; k < 2; k++)
            if (pairs[2 * r + k] < 0 || (uint32_t)pairs[2 * r + k] >= t->n_vocab)
                return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: merge %u names token %d, "
                                      "outside the vocabulary (%u tokens)", r,
                                      pairs[2 * r + k], t->n_vocab);
    int32_t *m = n ? malloc(3 * (size_t)n * sizeof *m) : NULL;
    if (n && !m)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory for %u merges", n);
    for (uint32_t r = 0; r < n; r++) {
        m[3 * r] = pairs[2 * r];
        m[3 * r + 1] = pairs[2 * r + 1];
        m[3 * r + 2] = -1;
    }
    free(t->merges);
    t->merges = m;
    t->n_merges = n;
    return MIPR_OK;
}

void mipr_tokenizer_set_flags(mipr_tokenizer *t, int add_bos, int add_eos)
{
    if (t) {
        t->add_bos = add_bos != 0;
        t->add_eos = add_eos != 0;
    }
}

/* Each rule's result, and the (left, right) -> rank hash. A pair listed twice keeps its
 * first (lowest) rank, as Hugging Face's loader does. */
static mipr_status build_merges(mipr_tokenizer *t, mipr_error *err)
{
    free(t->merge_slots);
    t->merge_slots = NULL;
    t->merge_mask = 0;
    if (t->n_merges == 0)
        return MIPR_OK;
    uint32_t cap = 16;
    while ((uint64_t)cap * 3 < 4 * (uint64_t)t->n_merges)
        cap *= 2;
    t->merge_slots = calloc(cap, sizeof *t->merge_slots);
    if (!t->merge_slots)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory for the merge "
                              "table");
    t->merge_mask = cap - 1;
    for (uint32_t r = 0; r < t->n_merges; r++) {
        int32_t *m = &t->merges[3 * (size_t)r];
        const tok_entry *a = &t->tok[m[0]], *b = &t->tok[m[1]];
        m[2] = lookup2(t, t->arena + a->off, a->len, t->arena + b->off, b->len);
        if (m[2] < 0)
            return mipr_error_set(err, MIPR_ERR_FORMAT, "tokenizer: merge %u (tokens %d + %d) "
                                  "makes no token of the vocabulary", r, m[0], m[1]);
        if (merge_rank(t, m[0], m[1]) != NONE)
            continue;
        uint32_t i = pair_hash(m[0], m[1]) & t->merge_mask;
        while (t->merge_slots[i])
            i = (i + 1) & t->merge_mask;
        t->merge_slots[i] = r + 1;
    }
    return MIPR_OK;
}

static int special_longer(const void *a, const void *b, const mipr_tokenizer *t)
{
    uint16_t la = t->tok[*(const int32_t *)a].len, lb = t->tok[*(const int32_t *)b].len;
    return la != lb ? (la > lb ? -1 : 1) : *(const int32_t *)a - *(const int32_t *)b;
}

static int is_special_type(uint8_t type)
{
    return type == MIPR_TOK_CONTROL || type == MIPR_TOK_USER || type == MIPR_TOK_UNKNOWN;
}

/* Control, unknown and user-defined tokens, longest first (insertion sort: a few hundred at
 * most in real vocabularies, and construction is not the hot path). */
static mipr_status build_specials(mipr_tokenizer *t, mipr_error *err)
{
    free(t->specials);
    t->specials = NULL;
    t->n_specials = 0;
    memset(t->special_first, 0, sizeof t->special_first);
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        n += t->tok[i].len > 0 && is_special_type(t->tok[i].type);
    if (n == 0)
        return MIPR_OK;
    t->specials = malloc(n * sizeof *t->specials);
    if (!t->specials)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "tokenizer: out of memory");
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        const tok_entry *e = &t->tok[i];
        if (e->len == 0 || !is_special_type(e->type))
            continue;
        uint32_t k = t->n_specials++;
        int32_t id = (int32_t)i;
        while (k > 0 && special_longer(&id, &t->specials[k - 1], t) < 0) {
            t->specials[k] = t->specials[k - 1];
            k--;
        }
        t->specials[k] = id;
        uint8_t b = (uint8_t)t->arena[e->off];
        t->special_first[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    return MIPR_OK;
}

/* Byte-level vocabularies spell every byte as a one-byte piece; nothing there is "<0xXX>". */
static void build_bpe_bytes(mipr_tokenizer *t)
{
    for (uint32_t i = 0; i < t->n_vocab; i++)
        t->tok[i].flags &= (uint8_t)~TOK_SPELLS_BYTE;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_tok[b] = lookup(t, &c, 1);
    }
}

mipr_status mipr_tokenizer_finish(mipr_tokenizer *t, int32_t bos, int32_t eos, int32_t unk,
                                  int add_space_prefix, mipr_error *err)
{
    if (!t)
        return mipr_error_set(err, MIPR_ERR_ARG, "tokenizer: NULL");
    t->finished = 0; /* until the tables below are complete */
    mipr_status st;
    if ((st = check_special(t, "BOS", bos, &t->bos, err)) != MIPR_OK ||
        (st = check_special(t, "EOS", eos, &t->eos, err)) != MIPR_OK ||
        (st = check_special(t, "UNK", unk, &t->unk, err)) != MIPR_OK)
        return st;
    t->add_space_prefix = add_space_prefix != 0;
    if (t->bpe)
        for (uint32_t i = 0; i < t->n_vocab; i++)
            t->tok[i].flags &= (uint8_t)~TOK_SPELLS_BYTE;
    build_byte_table(t);
    if ((st = build_hash(t, err)) != MIPR_OK || (st = build_merges(t, err)) != MIPR_OK ||
        (st = build_specials(t, err)) != MIPR_OK)
        return st;
    if (t->bpe)
        build_bpe_bytes(t);
    t->space_id = lookup(t, " ", 1);
    t->finished = 1;
    return MIPR_OK;
}

/* ---- accessors --------------------------------------------------------------------------- */

uint32_t mipr_tokenizer_n_vocab(const mipr_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t mipr_tokenizer_bos(const mipr_tokenizer *t) { return t ? t->bos : -1; }
int32_t mipr_tokenizer_eos(const mipr_tokenizer *t) { return t ? t->eos : -1; }
int32_t mipr_tokenizer_unk(const mipr_tokenizer *t) { return t ? t->unk : -1; }
int mipr_tokenizer_add_space_prefix(const mipr_tokenizer *t) { return t ? t->add_space_prefix : 0; }
int mipr_tokenizer_is_bpe(const mipr_tokenizer *t) { return t ? t->bpe : 0; }
int mipr_tokenizer_fuse_unk(const mipr_tokenizer *t) { return t ? t->fuse_unk : 0; }

void mipr_tokenizer_set_fuse_unk(mipr_tokenizer *t, int fuse)
{
    if (t)
        t->fuse_unk = fuse != 0;
}
enum mipr_pre_type mipr_tokenizer_pre(const mipr_tokenizer *t)
{
    return t ? (enum mipr_pre_type)t->pre : MIPR_PRE_NONE;
}
int mipr_tokenizer_ignore_merges(const mipr_tokenizer *t) { return t ? t->ignore_merges : 0; }
int mipr_tokenizer_add_bos(const mipr_tokenizer *t) { return t ? t->add_bos : 0; }
int mipr_tokenizer_add_eos(const mipr_tokenizer *t) { return t ? t->add_eos : 0; }
uint32_t mipr_tokenizer_n_merges(const mipr_tokenizer *t) { return t ? t->n_merges : 0; }

size_t mipr_tokenizer_memory(const mipr_tokenizer *t)
{
    if (!t)
        return 0;
    size_t slots = t->slots ? (size_t)t->mask + 1 : 0;
    size_t mslots = t->merge_slots ? (size_t)t->merge_mask + 1 : 0;
    return sizeof *t + (size_t)t->n_vocab * sizeof *t->tok + t->arena_cap +
           slots * (sizeof *t->slots + 1) + 3 * (size_t)t->n_merges * sizeof *t->merges +
           mslots * sizeof *t->merge_slots + t->n_specials * sizeof *t->specials;
}

int32_t mipr_tokenizer_lookup(const mipr_tokenizer *t, const char *s, size_t len)
{
    return t && t->finished && (s || len == 0) ? lookup(t, s, len) : -1;
}

int mipr_tokenizer_merge(const mipr_tokenizer *t, uint32_t rank, int32_t *left, int32_t *right)
{
    if (!t || rank >= t->n_merges)
        return 0;
    *left = t->merges[3 * (size_t)rank];
    *right = t->merges[3 * (size_t)rank + 1];
    return 1;
}

const char *mipr_tokenizer_piece(const mipr_tokenizer *t, uint32_t id, size_t *len)
{
    if (!t || id >= t->n_vocab) {
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = t->tok[id].len;
    return t->arena + t->tok[id].off;
}

float mipr_tokenizer_score(const mipr_tokenizer *t, uint32_t id)
{
    return t && id < t->n_vocab ? t->tok[id].score : 0.0f;
}

enum mipr_token_type mipr_tokenizer_type(const mipr_tokenizer *t, uint32_t id)
{
    return t && id < t->n_vocab ? (enum mipr_token_type)t->tok[id].type : MIPR_TOK_UNUSED;
}

/* ---- encode: initial symbols --------------------------------------------------------------- */

static int has_byte_tokens(const mipr_tokenizer *t, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (t->byte_tok[(uint8_t)s[i]] < 0)
            return 0;
    return 1;
}

/* Ids for one code point (or run.c's chunk of an invalid sequence); returns how many. */
static size_t emit_chunk(const mipr_tokenizer *t, const char *s, size_t len, int32_t *out)
{
    int32_t id = lookup(t, s, len);
    if (id >= 0) {
        out[0] = id;
        return 1;
    }
    if (has_byte_tokens(t, s, len)) {
        for (size_t i = 0; i < len; i++)
            out[i] = t->byte_tok[(uint8_t)s[i]];
        return len;
    }
    if (t->unk < 0)
        return 0;
    out[0] = t->unk;
    return 1;
}

/* run.c's split: a chunk is one byte plus the continuation bytes after it, at most 4 bytes.
 * Each chunk yields at most as many ids as it has bytes. */
static size_t split_symbols(const mipr_tokenizer *t, const char *s, size_t len, int32_t *out)
{
    size_t n = 0, i = 0;
    while (i < len) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((uint8_t)s[j] & 0xC0) == 0x80)
            j++;
        n += emit_chunk(t, s + i, j - i, out + n);
        i = j;
    }
    return n;
}

/* ---- encode: merges ------------------------------------------------------------------------ */

/* Id of the merge of a and b, or -1 when they do not merge (or its score is too low). Its
 * priority goes to *score: the result's score, or minus the rule's rank. */
static int32_t pair_merge(const mipr_tokenizer *t, int32_t a, int32_t b, float *score)
{
    const tok_entry *ea = &t->tok[a], *eb = &t->tok[b];
    if (!(ea->flags & eb->flags & TOK_MERGEABLE))
        return -1;
    if (t->n_merges) {
        uint32_t r = merge_rank(t, a, b);
        if (r == NONE)
            return -1;
        *score = -(float)r; /* exact: ranks are below 2^24 */
        return t->merges[3 * (size_t)r + 2];
    }
    int32_t id = lookup2(t, t->arena + ea->off, ea->len, t->arena + eb->off, eb->len);
    if (id < 0 || !(t->tok[id].score > MERGE_MIN_SCORE))
        return -1;
    *score = t->tok[id].score;
    return id;
}

/* True when no merge can ever join a symbol ending like a with one starting like b: a
 * merged piece is the concatenation of its parts, so it would have to contain the two
 * bytes that meet here, and no mergeable piece does (or a side never merges). Text splits
 * at such cuts into segments that merge independently, and since merges within a segment
 * keep run.c's relative order, merging each segment alone gives run.c's result. Typical
 * text has a cut every few bytes, which keeps the heap tiny and in cache. */
static int is_cut(const mipr_tokenizer *t, int32_t a, int32_t b)
{
    const tok_entry *ea = &t->tok[a], *eb = &t->tok[b];
    if (!(ea->flags & eb->flags & TOK_MERGEABLE))
        return 1;
    unsigned x = (uint8_t)t->arena[ea->off + ea->len - 1], y = (uint8_t)t->arena[eb->off];
    unsigned bit = x << 8 | y;
    return !(t->pair_bits[bit >> 3] >> (bit & 7) & 1);
}

/* run.c's algorithm, in place: the fallback when the fast path cannot get memory. Quadratic,
 * but it continues exactly from any state the fast path reached. */
static size_t merge_quadratic(const mipr_tokenizer *t, int32_t *ids, size_t n)
{
    for (;;) {
        float best = MERGE_MIN_SCORE, score = 0;
        int32_t best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t id = pair_merge(t, ids[i], ids[i + 1], &score);
            if (id >= 0 && score > best) {
                best = score;
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0)
            return n;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (n - best_i - 2) * sizeof *ids);
        n--;
    }
}

/* The fast path: symbols in a doubly linked list over their positions in the segment,
 * candidate pairs in a binary heap ordered like run.c's scan (score desc, then leftmost).
 * A pair's entry is valid while stamp[left] is unchanged: any change to the left symbol,
 * its right neighbour, or that neighbour's id bumps it. Survivors keep their position, so
 * "leftmost" is "smallest position". Arrays are reused from segment to segment. */
typedef struct bpe_cand {
    float score;
    uint32_t pos;
    int32_t id;
    uint32_t stamp;
} bpe_cand;

typedef struct bpe {
    const mipr_tokenizer *t;
    int32_t *ids;
    uint32_t *prev, *next, *stamp; /* one block of 3 * n_sym */
    size_t n_sym;
    bpe_cand *heap;
    size_t n_heap, cap;
} bpe;

static int cand_before(const bpe_cand *a, const bpe_cand *b)
{
    return a->score > b->score || (a->score == b->score && a->pos < b->pos);
}

static void sift_down(bpe *s, size_t i)
{
    bpe_cand *h = s->heap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        if (l < s->n_heap && cand_before(&h[l], &h[best]))
            best = l;
        if (l + 1 < s->n_heap && cand_before(&h[l + 1], &h[best]))
            best = l + 1;
        if (best == i)
            return;
        bpe_cand tmp = h[i];
        h[i] = h[best];
        h[best] = tmp;
        i = best;
    }
}

static void sift_up(bpe *s, size_t i)
{
    bpe_cand *h = s->heap;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&h[i], &h[p]))
            return;
        bpe_cand tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

/* Fills c for the pair starting at pos; 0 when it does not merge. */
static int make_cand(const bpe *s, uint32_t pos, bpe_cand *c)
{
    uint32_t r = s->next[pos];
    if (r == NONE)
        return 0;
    int32_t id = pair_merge(s->t, s->ids[pos], s->ids[r], &c->score);
    if (id < 0)
        return 0;
    c->pos = pos;
    c->id = id;
    c->stamp = s->stamp[pos];
    return 1;
}

static int heap_reserve(bpe *s, size_t need)
{
    if (need <= s->cap)
        return 1;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof *s->heap)
            return 0;
        cap *= 2;
    }
    bpe_cand *h = realloc(s->heap, cap * sizeof *h);
    if (!h)
        return 0;
    s->heap = h;
    s->cap = cap;
    return 1;
}

/* Returns 0 when the heap cannot grow. */
static int push_cand(bpe *s, uint32_t pos)
{
    bpe_cand c;
    if (!make_cand(s, pos, &c))
        return 1;
    if (!heap_reserve(s, s->n_heap + 1))
        return 0;
    s->heap[s->n_heap] = c;
    sift_up(s, s->n_heap++);
    return 1;
}

/* Merges the pair at c.pos; returns 0 when a new candidate could not be stored. */
static int apply_merge(bpe *s, const bpe_cand *c)
{
    uint32_t l = c->pos, r = s->next[l], n = s->next[r], p = s->prev[l];
    s->ids[l] = c->id;
    s->next[l] = n;
    if (n != NONE)
        s->prev[n] = l;
    s->stamp[r]++;
    s->stamp[l]++;
    if (p != NONE)
        s->stamp[p]++;
    return (p == NONE || push_cand(s, p)) && push_cand(s, l);
}

static int sym_reserve(bpe *s, size_t n)
{
    if (n <= s->n_sym)
        return 1;
    size_t cap = s->n_sym ? s->n_sym : 64;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    if (cap > SIZE_MAX / (3 * sizeof *s->prev))
        return 0;
    uint32_t *p = realloc(s->prev, 3 * cap * sizeof *p);
    if (!p)
        return 0;
    s->prev = p;
    s->next = p + cap;
    s->stamp = p + 2 * cap;
    s->n_sym = cap;
    return 1;
}

/* Links the n symbols of a segment and queues their pairs; 0 when memory is short. */
static int bpe_start(bpe *s, int32_t *ids, uint32_t n)
{
    if (!sym_reserve(s, n) || !heap_reserve(s, n))
        return 0;
    s->ids = ids;
    s->n_heap = 0;
    for (uint32_t i = 0; i < n; i++) {
        s->prev[i] = i == 0 ? NONE : i - 1;
        s->next[i] = i + 1 == n ? NONE : i + 1;
        s->stamp[i] = 0;
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        s->n_heap += (size_t)make_cand(s, i, &s->heap[s->n_heap]);
    for (size_t i = s->n_heap / 2; i-- > 0;)
        sift_down(s, i);
    return 1;
}

/* Writes the surviving symbols back to the front of ids; returns their count. */
static size_t bpe_compact(const bpe *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i != NONE; i = s->next[i])
        s->ids[n++] = s->ids[i];
    return n;
}

/* Merges one segment in place; returns its new length. */
static size_t merge_segment(bpe *s, int32_t *ids, size_t n)
{
    if (n < 2)
        return n;
    if (n >= NONE || !bpe_start(s, ids, (uint32_t)n))
        return merge_quadratic(s->t, ids, n);
    int ok = 1;
    while (ok && s->n_heap > 0) {
        bpe_cand c = s->heap[0];
        s->heap[0] = s->heap[--s->n_heap];
        sift_down(s, 0);
        if (s->stamp[c.pos] == c.stamp)
            ok = apply_merge(s, &c);
    }
    n = bpe_compact(s);
    return ok ? n : merge_quadratic(s->t, ids, n);
}

static size_t merge_symbols(const mipr_tokenizer *t, int32_t *ids, size_t n)
{
    bpe s;
    memset(&s, 0, sizeof s);
    s.t = t;
    size_t w = 0;
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && !is_cut(t, ids[b - 1], ids[b]);)
            b++;
        size_t m = merge_segment(&s, ids + a, b - a);
        memmove(ids + w, ids + a, m * sizeof *ids);
        w += m;
    }
    free(s.prev);
    free(s.heap);
    return w;
}

static size_t encode_spm(const mipr_tokenizer *t, const char *text, size_t len, int32_t *out)
{
    size_t n = 0;
    if (t->add_space_prefix && t->space_id >= 0)
        out[n++] = t->space_id;
    n += split_symbols(t, text, len, out + n);
    if (t->fuse_unk && t->unk >= 0) { /* UNK never merges, so fusing first is the same */
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (!(out[i] == t->unk && w > 0 && out[w - 1] == t->unk))
                out[w++] = out[i];
        n = w;
    }
    return merge_symbols(t, out, n);
}

/* ---- encode: byte-level BPE ----------------------------------------------------------------- */

/* One pre-token: the whole piece when ignore_merges finds it, else its bytes merged. */
static size_t encode_word(const mipr_tokenizer *t, const char *s, size_t len, int32_t *out)
{
    if (t->ignore_merges) {
        int32_t id = lookup(t, s, len);
        if (id >= 0) {
            out[0] = id;
            return 1;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_tok[(uint8_t)s[i]];
        if (id < 0)
            id = t->unk;
        if (id >= 0)
            out[n++] = id;
    }
    return merge_symbols(t, out, n);
}

/* Text between special tokens: pre-tokens, each merged alone. */
static size_t encode_span(const mipr_tokenizer *t, const char *s, size_t len, int32_t *out)
{
    if (len == 0)
        return 0;
    uint32_t *ends = malloc(len * sizeof *ends);
    size_t n_pre = ends ? mipr_pre_split((enum mipr_pre_type)t->pre, s, len, ends) : SIZE_MAX;
    if (n_pre == SIZE_MAX) {
        free(ends);
        return SIZE_MAX;
    }
    size_t n = 0, a = 0;
    for (size_t i = 0; i < n_pre; a = ends[i++])
        n += encode_word(t, s + a, ends[i] - a, out + n);
    free(ends);
    return n;
}

/* The special token written at s (longest first), or -1. */
static int32_t special_at(const mipr_tokenizer *t, const char *s, size_t len, unsigned flags)
{
    uint8_t b = (uint8_t)s[0];
    if (!(t->special_first[b >> 3] >> (b & 7) & 1))
        return -1;
    for (uint32_t k = 0; k < t->n_specials; k++) {
        const tok_entry *e = &t->tok[t->specials[k]];
        /* SentencePiece gives each fragment a prefix space: one-byte specials could then
         * make more ids than the text has bytes */
        if (e->len <= len && (t->bpe || e->len >= 2) && (uint8_t)t->arena[e->off] == b &&
            (e->type == MIPR_TOK_USER || (flags & MIPR_ENC_SPECIAL)) &&
            memcmp(t->arena + e->off, s, e->len) == 0)
            return t->specials[k];
    }
    return -1;
}

/* Text without special tokens: pre-tokens merged alone (byte-level), or SentencePiece's
 * symbols with the dummy prefix (every fragment gets it, as llama.cpp does). */
static size_t encode_fragment(const mipr_tokenizer *t, const char *s, size_t len, int32_t *out)
{
    if (len == 0)
        return 0;
    return t->bpe ? encode_span(t, s, len, out) : encode_spm(t, s, len, out);
}

/* Special tokens written in the text are cut out first; the fragments between them are
 * encoded alone. */
static size_t encode_parts(const mipr_tokenizer *t, const char *text, size_t len, unsigned flags,
                           int32_t *out)
{
    size_t n = 0, a = 0;
    for (size_t i = 0; i < len;) {
        int32_t id = t->n_specials ? special_at(t, text + i, len - i, flags) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        size_t m = encode_fragment(t, text + a, i - a, out + n);
        if (m == SIZE_MAX)
            return SIZE_MAX;
        n += m;
        out[n++] = id;
        i += t->tok[id].len;
        a = i;
    }
    size_t m = encode_fragment(t, text + a, len - a, out + n);
    return m == SIZE_MAX ? SIZE_MAX : n + m;
}

size_t mipr_tokenizer_encode_ex(const mipr_tokenizer *t, const char *text, size_t len,
                                unsigned flags, int32_t *out)
{
    if (!t || !out)
        return 0;
    if (!text)
        len = 0;
    size_t n = 0;
    if ((flags & MIPR_ENC_BOS) && t->bos >= 0)
        out[n++] = t->bos;
    if (t->finished && len > 0) {
        size_t m = encode_parts(t, text, len, flags, out + n);
        if (m == SIZE_MAX)
            return SIZE_MAX;
        n += m;
    }
    if ((flags & MIPR_ENC_EOS) && t->eos >= 0)
        out[n++] = t->eos;
    return n;
}

size_t mipr_tokenizer_encode(const mipr_tokenizer *t, const char *text, size_t len, int add_bos,
                             int32_t *out)
{
    size_t n = mipr_tokenizer_encode_ex(t, text, len, add_bos ? MIPR_ENC_BOS : 0, out);
    return n == SIZE_MAX ? 0 : n;
}

/* ---- decode ---------------------------------------------------------------------------------- */

const char *mipr_tokenizer_decode(const mipr_tokenizer *t, int32_t prev, int32_t id, size_t *len)
{
    size_t unused;
    if (!len)
        len = &unused;
    *len = 0;
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
        return "";
    const tok_entry *e = &t->tok[id];
    if (e->type == MIPR_TOK_CONTROL)
        return "";
    if (t->bpe) {
        *len = e->len;
        return t->arena + e->off;
    }
    if (is_byte_token(e)) {
        *len = 1;
        return &t->byte_str[2 * byte_value(t, e)];
    }
    const char *p = t->arena + e->off;
    size_t n = e->len;
    /* SentencePiece's decoder drops the dummy-prefix space of the first piece (run.c PR #89) */
    if (t->bos >= 0 && prev == t->bos && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    *len = n;
    return p;
}
