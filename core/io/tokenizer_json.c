/* Hugging Face tokenizer.json (+ tokenizer_config.json beside it) -> mipr_tokenizer.
 *
 * Two flavours of model.type "BPE" are read, and anything else is refused by name:
 *  - byte-level (a ByteLevel pre-tokenizer: GPT-2, Llama 3, Qwen2, SmolLM2): pieces are
 *    spelled through GPT-2's byte map (undone here), the pre-tokenizer is recognised as one
 *    of the runtime's split rules (enum mipr_pre_type), merges are ranks;
 *  - SentencePiece style (Llama 2, Mistral, TinyLlama, TinyStories): `▁` for spaces, a
 *    Prepend-`▁` normalizer (or a Metaspace pre-tokenizer) for the dummy prefix, byte
 *    fallback `<0xXX>`, merges are ranks (Hugging Face's semantics, not scores).
 * Added tokens are control tokens when "special", else user-defined. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bytelevel.h"
#include "mipr.h"

/* The split expressions of the tokenizer.json files we map to our rules, verbatim. */
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

#define SPACE_MARK "\xE2\x96\x81" /* U+2581, SentencePiece's space */

typedef struct tj {
    const char *name; /* the file, for messages */
    mipr_error *err;
    const cJSON *root, *model, *config;
    int bytelevel, byte_fallback, space_prefix;
    enum mipr_pre_type pre;
    uint32_t n_vocab;
    uint32_t n_listed; /* ids the file gives pieces: below n_vocab when padded */
    uint32_t pad_to;   /* the model's embedding rows when it has more than the file lists */
    /* piece as spelled in the file -> id (open addressing, -1 empty) */
    const char **key;
    int32_t *val;
    uint32_t mask;
    char *buf; /* one converted piece */
} tj;

static mipr_status fail(const tj *J, mipr_status st, const char *fmt, const char *a,
                        const char *b)
{
    return mipr_error_set(J->err, st, fmt, J->name, a ? a : "", b ? b : "");
}

/* Prefixes the runtime's message with the file (copied first: err is both ends). */
static mipr_status wrap(const tj *J, mipr_status st, const char *what)
{
    char msg[sizeof J->err->msg];
    snprintf(msg, sizeof msg, "%s", J->err ? J->err->msg : "");
    return mipr_error_set(J->err, st, "%s: %s%s", J->name, what, msg);
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* true / false / absent (-1) */
static int get_bool(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* ---- the piece -> id table ------------------------------------------------------------------ */

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static mipr_status map_init(tj *J, uint32_t n)
{
    uint32_t cap = 16;
    while ((uint64_t)cap < 2 * (uint64_t)n)
        cap *= 2;
    J->key = calloc(cap, sizeof *J->key);
    J->val = malloc(cap * sizeof *J->val);
    if (!J->key || !J->val)
        return fail(J, MIPR_ERR_NOMEM, "%s: out of memory%s%s", NULL, NULL);
    memset(J->val, 0xff, cap * sizeof *J->val);
    J->mask = cap - 1;
    return MIPR_OK;
}

/* The first spelling of a piece keeps its id. */
static void map_put(tj *J, const char *k, int32_t id)
{
    uint32_t i = str_hash(k) & J->mask;
    for (; J->key[i]; i = (i + 1) & J->mask)
        if (strcmp(J->key[i], k) == 0)
            return;
    J->key[i] = k;
    J->val[i] = id;
}

static int32_t map_get(const tj *J, const char *k, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t j = 0; j < len; j++)
        h = (h ^ (uint8_t)k[j]) * 16777619u;
    for (uint32_t i = h & J->mask; J->key[i]; i = (i + 1) & J->mask)
        if (J->key[i][0] == k[0] && strncmp(J->key[i], k, len) == 0 && J->key[i][len] == 0)
            return J->val[i];
    return -1;
}

/* ---- flavour and pre-tokenizer -------------------------------------------------------------- */

static int is_type(const cJSON *o, const char *type)
{
    const char *t = get_str(o, "type");
    return t && strcmp(t, type) == 0;
}

static mipr_status unknown_pre(const tj *J, const cJSON *pre)
{
    char *s = cJSON_PrintUnformatted(pre);
    char shown[200];
    snprintf(shown, sizeof shown, "%s", s ? s : "?");
    free(s);
    return fail(J, MIPR_ERR_UNSUPPORTED, "%s: pre_tokenizer %s is not one mipr knows (it reads "
                "GPT-2's ByteLevel, the Llama 3 and Qwen2 Split regexes, and SmolLM2's "
                "Digits + ByteLevel)%s", shown, NULL);
}

/* A ByteLevel pre-tokenizer that adds a space is not one of the rules. */
static int plain_bytelevel(const cJSON *o, int use_regex)
{
    int re = get_bool(o, "use_regex");
    return is_type(o, "ByteLevel") && get_bool(o, "add_prefix_space") != 1 &&
           (re < 0 ? 1 : re) == use_regex;
}

static mipr_status byte_pre(tj *J, const cJSON *pre)
{
    if (plain_bytelevel(pre, 1)) {
        J->pre = MIPR_PRE_GPT2;
        return MIPR_OK;
    }
    const cJSON *seq = get(pre, "pretokenizers");
    if (!is_type(pre, "Sequence") || cJSON_GetArraySize(seq) != 2)
        return unknown_pre(J, pre);
    const cJSON *a = cJSON_GetArrayItem(seq, 0), *b = cJSON_GetArrayItem(seq, 1);
    if (is_type(a, "Digits") && get_bool(a, "individual_digits") == 1 && plain_bytelevel(b, 1)) {
        J->pre = MIPR_PRE_SMOLLM;
        return MIPR_OK;
    }
    const char *re = get_str(get(a, "pattern"), "Regex"), *beh = get_str(a, "behavior");
    if (is_type(a, "Split") && re && beh && strcmp(beh, "Isolated") == 0 &&
        get_bool(a, "invert") != 1 && plain_bytelevel(b, 0)) {
        if (strcmp(re, RE_LLAMA3) == 0)
            J->pre = MIPR_PRE_LLAMA3;
        else if (strcmp(re, RE_QWEN2) == 0)
            J->pre = MIPR_PRE_QWEN2;
        else if (strcmp(re, RE_GPT2) == 0)
            J->pre = MIPR_PRE_GPT2;
        else
            return unknown_pre(J, pre);
        return MIPR_OK;
    }
    return unknown_pre(J, pre);
}

static int has_bytelevel(const cJSON *pre)
{
    if (is_type(pre, "ByteLevel"))
        return 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, get(pre, "pretokenizers")) if (is_type(e, "ByteLevel")) return 1;
    return 0;
}

/* SentencePiece style: the normalizer may only prepend `▁` and turn spaces into `▁`
 * (Llama 2's layout), or a Metaspace pre-tokenizer does both without splitting. */
static mipr_status spm_normalizer(tj *J, const cJSON *norm, int *replaces)
{
    if (cJSON_IsNull(norm) || !norm)
        return MIPR_OK;
    if (is_type(norm, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, get(norm, "normalizers"))
        {
            mipr_status st = spm_normalizer(J, e, replaces);
            if (st != MIPR_OK)
                return st;
        }
        return MIPR_OK;
    }
    const char *pre = get_str(norm, "prepend"), *with = get_str(norm, "content");
    const char *pat = get_str(get(norm, "pattern"), "String");
    if (is_type(norm, "Prepend") && pre && strcmp(pre, SPACE_MARK) == 0) {
        J->space_prefix = 1;
        return MIPR_OK;
    }
    if (is_type(norm, "Replace") && pat && with && strcmp(pat, " ") == 0 &&
        strcmp(with, SPACE_MARK) == 0) {
        *replaces = 1;
        return MIPR_OK;
    }
    const char *type = get_str(norm, "type");
    return fail(J, MIPR_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported for a "
                "SentencePiece-style BPE (mipr reads Prepend \"\xE2\x96\x81\" and Replace "
                "\" \" -> \"\xE2\x96\x81\")%s", type ? type : "?", NULL);
}

static mipr_status spm_pre(tj *J, const cJSON *pre, int *replaces)
{
    if (!pre || cJSON_IsNull(pre))
        return MIPR_OK;
    const char *rep = get_str(pre, "replacement"), *scheme = get_str(pre, "prepend_scheme");
    if (is_type(pre, "Metaspace") && rep && strcmp(rep, SPACE_MARK) == 0 &&
        get_bool(pre, "split") == 0) {
        *replaces = 1;
        J->space_prefix = get_bool(pre, "add_prefix_space") == 1 ||
                          (scheme && strcmp(scheme, "never") != 0);
        return MIPR_OK;
    }
    return unknown_pre(J, pre);
}

static mipr_status read_flavour(tj *J)
{
    const cJSON *pre = get(J->root, "pre_tokenizer");
    J->byte_fallback = get_bool(J->model, "byte_fallback") == 1;
    if (has_bytelevel(pre)) {
        J->bytelevel = 1;
        const cJSON *norm = get(J->root, "normalizer");
        if (norm && !cJSON_IsNull(norm) && !is_type(norm, "NFC")) {
            const char *type = get_str(norm, "type");
            return fail(J, MIPR_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported for "
                        "a byte-level BPE%s", type ? type : "?", NULL);
        }
        return byte_pre(J, pre);
    }
    int replaces = 0;
    mipr_status st = spm_normalizer(J, get(J->root, "normalizer"), &replaces);
    if (st == MIPR_OK)
        st = spm_pre(J, pre, &replaces);
    if (st == MIPR_OK && !replaces && !J->byte_fallback)
        return fail(J, MIPR_ERR_UNSUPPORTED, "%s: model.type \"BPE\" with neither a ByteLevel "
                    "pre_tokenizer nor SentencePiece's \"\xE2\x96\x81\" spaces: not a flavour mipr "
                    "reads%s%s", NULL, NULL);
    return st;
}

/* ---- pieces ---------------------------------------------------------------------------------- */

static int byte_piece(const char *s)
{
    return strlen(s) == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>';
}

/* The piece as the runtime holds it: raw bytes, spaces as spaces. */
static size_t convert(const tj *J, const char *s, int raw)
{
    size_t len = strlen(s), n = 0;
    if (raw) {
        memcpy(J->buf, s, len);
        return len;
    }
    if (J->bytelevel)
        return mipr_bytelevel_decode(J->buf, s, len);
    for (size_t i = 0; i < len;) {
        if (strncmp(s + i, SPACE_MARK, 3) == 0) {
            J->buf[n++] = ' ';
            i += 3;
        } else {
            J->buf[n++] = s[i++];
        }
    }
    return n;
}

static mipr_status token_id(const tj *J, const cJSON *v, const char *what, const char *piece,
                            int32_t *id)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MIPR_MAX_VOCAB ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return fail(J, MIPR_ERR_FORMAT, "%s: %s \"%.80s\" has no valid id", what, piece);
    *id = (int32_t)v->valuedouble;
    return MIPR_OK;
}

/* Vocabulary size: one past the largest id of model.vocab and added_tokens. */
static mipr_status count_vocab(tj *J)
{
    const cJSON *vocab = get(J->model, "vocab"), *e;
    if (!cJSON_IsObject(vocab) || !vocab->child)
        return fail(J, MIPR_ERR_FORMAT, "%s: model.vocab must be a non-empty object%s%s", NULL,
                    NULL);
    int32_t id = -1, max = -1;
    mipr_status st;
    cJSON_ArrayForEach(e, vocab)
    {
        if ((st = token_id(J, e, "model.vocab entry", e->string, &id)) != MIPR_OK)
            return st;
        max = id > max ? id : max;
    }
    cJSON_ArrayForEach(e, get(J->root, "added_tokens"))
    {
        const char *c = get_str(e, "content");
        if (!c)
            return fail(J, MIPR_ERR_FORMAT, "%s: added_tokens entry without a \"content\" "
                        "string%s%s", NULL, NULL);
        if ((st = token_id(J, get(e, "id"), "added token", c, &id)) != MIPR_OK)
            return st;
        max = id > max ? id : max;
    }
    J->n_listed = (uint32_t)max + 1;
    J->n_vocab = J->pad_to > J->n_listed ? J->pad_to : J->n_listed;
    return map_init(J, J->n_vocab);
}

static mipr_status set_piece(tj *J, mipr_tokenizer *t, int32_t id, const char *s, int raw,
                             enum mipr_token_type type)
{
    size_t len = convert(J, s, raw);
    mipr_status st = mipr_tokenizer_set(t, (uint32_t)id, J->buf, len, 0.0f, type, J->err);
    if (st != MIPR_OK)
        return wrap(J, st, "");
    map_put(J, s, id);
    return MIPR_OK;
}

static mipr_status fill_vocab(tj *J, mipr_tokenizer *t, const char *unk)
{
    const cJSON *e;
    mipr_status st;
    int32_t id = -1;
    cJSON_ArrayForEach(e, get(J->model, "vocab"))
    {
        enum mipr_token_type type = MIPR_TOK_NORMAL;
        if (!J->bytelevel && J->byte_fallback && byte_piece(e->string))
            type = MIPR_TOK_BYTE;
        if (unk && strcmp(e->string, unk) == 0)
            type = MIPR_TOK_UNKNOWN;
        if ((st = token_id(J, e, "model.vocab entry", e->string, &id)) != MIPR_OK ||
            (st = set_piece(J, t, id, e->string, 0, type)) != MIPR_OK)
            return st;
    }
    /* Added tokens are written as plain text, not in the vocabulary's spelling. */
    cJSON_ArrayForEach(e, get(J->root, "added_tokens"))
    {
        const char *c = get_str(e, "content");
        enum mipr_token_type type = get_bool(e, "special") == 1 ? MIPR_TOK_CONTROL : MIPR_TOK_USER;
        if (unk && strcmp(c, unk) == 0)
            type = MIPR_TOK_UNKNOWN;
        if ((st = token_id(J, get(e, "id"), "added token", c, &id)) != MIPR_OK ||
            (st = set_piece(J, t, id, c, 1, type)) != MIPR_OK)
            return st;
    }
    /* Rows of the embedding no token uses (Qwen2.5: 151,665 tokens, 151,936 rows): unused
     * placeholders, as llama.cpp's converter names them, so ids match the model. */
    for (uint32_t i = J->n_listed; i < J->n_vocab; i++) {
        char pad[24];
        int n = snprintf(pad, sizeof pad, "[PAD%u]", i);
        if ((st = mipr_tokenizer_set(t, i, pad, (size_t)n, 0.0f, MIPR_TOK_UNUSED, J->err)))
            return wrap(J, st, "");
    }
    return MIPR_OK;
}

/* model.merges: "left right" strings, or [left, right] pairs (newer files). */
static mipr_status read_merges(tj *J, mipr_tokenizer *t)
{
    const cJSON *merges = get(J->model, "merges"), *e;
    if (!merges || cJSON_IsNull(merges))
        return MIPR_OK;
    if (!cJSON_IsArray(merges))
        return fail(J, MIPR_ERR_FORMAT, "%s: model.merges must be an array%s%s", NULL, NULL);
    uint32_t n = (uint32_t)cJSON_GetArraySize(merges), r = 0;
    int32_t *pairs = malloc(2 * (size_t)(n ? n : 1) * sizeof *pairs);
    if (!pairs)
        return fail(J, MIPR_ERR_NOMEM, "%s: out of memory for the merges%s%s", NULL, NULL);
    mipr_status st = MIPR_OK;
    cJSON_ArrayForEach(e, merges)
    {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(e) && (b = strchr(e->valuestring, ' ')) != NULL) {
            a = e->valuestring;
            la = (size_t)(b - a);
            lb = strlen(++b);
        } else if (cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring;
            b = cJSON_GetArrayItem(e, 1)->valuestring;
            la = strlen(a);
            lb = strlen(b);
        }
        char where[48] = "";
        if (!a || (pairs[2 * r] = map_get(J, a, la)) < 0 ||
            (pairs[2 * r + 1] = map_get(J, b, lb)) < 0)
            snprintf(where, sizeof where, "model.merges[%" PRIu32 "]", r);
        if (!a) {
            st = fail(J, MIPR_ERR_FORMAT, "%s: %s is not \"left right\" or [left, right]%s",
                      where, NULL);
            break;
        }
        if (pairs[2 * r] < 0 || pairs[2 * r + 1] < 0) {
            st = fail(J, MIPR_ERR_FORMAT, "%s: %s names a piece that is not in model.vocab "
                      "(\"%.80s\")", where, pairs[2 * r] < 0 ? a : b);
            break;
        }
        r++;
    }
    if (st == MIPR_OK && (st = mipr_tokenizer_set_merges(t, pairs, r, J->err)) != MIPR_OK)
        st = wrap(J, st, "model.merges: ");
    free(pairs);
    return st;
}

/* ---- special tokens and flags -------------------------------------------------------------- */

/* tokenizer_config.json writes a token as a string or as {"content": ...}. */
static const char *config_token(const cJSON *config, const char *key)
{
    const cJSON *v = get(config, key);
    if (cJSON_IsString(v))
        return v->valuestring;
    return get_str(v, "content");
}

/* The post-processor's template: its first and last special tokens, when there are. */
static void template_ends(const cJSON *root, const char **first, const char **last)
{
    const cJSON *post = get(root, "post_processor"), *single = get(post, "single");
    *first = *last = NULL;
    if (!is_type(post, "TemplateProcessing") || cJSON_GetArraySize(single) < 1)
        return;
    const cJSON *a = cJSON_GetArrayItem(single, 0);
    const cJSON *z = cJSON_GetArrayItem(single, cJSON_GetArraySize(single) - 1);
    *first = get_str(get(a, "SpecialToken"), "id");
    *last = get_str(get(z, "SpecialToken"), "id");
}

static mipr_status special(const tj *J, const char *what, const char *piece, int32_t *id)
{
    *id = -1;
    if (!piece)
        return MIPR_OK;
    *id = map_get(J, piece, strlen(piece));
    if (*id < 0)
        return fail(J, MIPR_ERR_FORMAT, "%s: %s \"%.80s\" is not a token of tokenizer.json", what,
                    piece);
    return MIPR_OK;
}

/* BOS/EOS and whether to add them: tokenizer_config.json's add_bos_token / add_eos_token and
 * bos_token / eos_token win; else the post-processor's template; else, for Llama 3's split
 * rule, BOS is added as llama.cpp and Meta's own files do. */
static mipr_status finish(tj *J, mipr_tokenizer *t, int32_t unk)
{
    const char *first, *last;
    template_ends(J->root, &first, &last);
    const char *bos = config_token(J->config, "bos_token"), *eos = config_token(J->config,
                                                                                 "eos_token");
    if (!J->bytelevel && !bos && !get(J->config, "bos_token") && map_get(J, "<s>", 3) >= 0)
        bos = "<s>";
    if (!J->bytelevel && !eos && !get(J->config, "eos_token") && map_get(J, "</s>", 4) >= 0)
        eos = "</s>";
    int32_t bos_id, eos_id;
    mipr_status st = special(J, "bos_token", bos ? bos : first, &bos_id);
    if (st == MIPR_OK)
        st = special(J, "eos_token", eos, &eos_id);
    if (st != MIPR_OK)
        return st;
    int add_bos = get_bool(J->config, "add_bos_token"), add_eos = get_bool(J->config,
                                                                           "add_eos_token");
    if (add_bos < 0)
        add_bos = first != NULL || (J->bytelevel && J->pre == MIPR_PRE_LLAMA3 && bos_id >= 0);
    if (add_eos < 0)
        add_eos = last != NULL && first != last && eos && strcmp(last, eos) == 0;
    st = mipr_tokenizer_finish(t, bos_id, eos_id, unk, !J->bytelevel && J->space_prefix, J->err);
    if (st != MIPR_OK)
        return wrap(J, st, "");
    mipr_tokenizer_set_flags(t, add_bos, add_eos);
    mipr_tokenizer_set_fuse_unk(t, !J->bytelevel && get_bool(J->model, "fuse_unk") == 1);
    return MIPR_OK;
}

static mipr_status build(tj *J, mipr_tokenizer **out)
{
    const char *type = get_str(J->model, "type");
    if (!J->model)
        return fail(J, MIPR_ERR_FORMAT, "%s: no \"model\" object (not a tokenizer.json?)%s%s",
                    NULL, NULL);
    if (!type || strcmp(type, "BPE") != 0)
        return fail(J, MIPR_ERR_UNSUPPORTED, "%s: model.type \"%s\" is not supported (mipr "
                    "reads \"BPE\")%s", type ? type : "(missing)", NULL);
    static const char *const unsupported[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = get_str(J->model, unsupported[i]);
        if (v && *v)
            return fail(J, MIPR_ERR_UNSUPPORTED, "%s: model.%s \"%.20s\" is not supported",
                        unsupported[i], v);
    }
    const char *unk_name = get_str(J->model, "unk_token");
    mipr_status st = read_flavour(J);
    if (st == MIPR_OK)
        st = count_vocab(J);
    if (st != MIPR_OK)
        return st;
    mipr_tokenizer *t = NULL;
    if ((st = mipr_tokenizer_new(&t, J->n_vocab, J->err)) != MIPR_OK)
        return wrap(J, st, "");
    if (J->bytelevel)
        st = mipr_tokenizer_set_bpe(t, J->pre, get_bool(J->model, "ignore_merges") == 1, J->err);
    int32_t unk = -1;
    if (st == MIPR_OK)
        st = fill_vocab(J, t, unk_name);
    if (st == MIPR_OK)
        st = special(J, "model.unk_token", unk_name, &unk);
    if (st == MIPR_OK)
        st = read_merges(J, t);
    if (st == MIPR_OK)
        st = finish(J, t, unk);
    if (st != MIPR_OK) {
        mipr_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MIPR_OK;
}

static mipr_status json_read(mipr_tokenizer **out, const char *json, size_t len,
                             const char *config, size_t config_len, const char *name,
                             uint32_t pad_to, mipr_error *err)
{
    *out = NULL;
    tj J;
    memset(&J, 0, sizeof J);
    J.pad_to = pad_to;
    J.name = name ? name : "tokenizer.json";
    J.err = err;
    cJSON *root = cJSON_ParseWithLength(json, len), *cfg = NULL;
    if (!root)
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: not valid JSON (near byte %llu)",
                              J.name, (unsigned long long)(cJSON_GetErrorPtr() && json ?
                                  (size_t)(cJSON_GetErrorPtr() - json) : 0));
    if (config && !(cfg = cJSON_ParseWithLength(config, config_len))) {
        cJSON_Delete(root);
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tokenizer_config.json beside it is "
                              "not valid JSON", J.name);
    }
    J.root = root;
    J.model = get(root, "model");
    J.config = cfg;
    /* A converted piece is never longer than its spelling; the longest is bounded by len. */
    J.buf = malloc(len + 1);
    mipr_status st = J.buf ? build(&J, out) : mipr_error_set(err, MIPR_ERR_NOMEM,
                                                             "%s: out of memory", J.name);
    free(J.buf);
    free(J.key);
    free(J.val);
    cJSON_Delete(cfg);
    cJSON_Delete(root);
    return st;
}

mipr_status mipr_tokenizer_json_read(mipr_tokenizer **out, const char *json, size_t len,
                                     const char *config, size_t config_len, const char *name,
                                     mipr_error *err)
{
    return json_read(out, json, len, config, config_len, name, 0, err);
}

/* Whole file, NUL-terminated; NULL with *missing set when it does not exist. */
static char *slurp(const char *path, size_t *len, int *missing, mipr_error *err)
{
    *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = 1;
        mipr_error_set(err, MIPR_ERR_IO, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
        fclose(f);
        return buf;
    }
    free(buf);
    fclose(f);
    mipr_error_set(err, MIPR_ERR_IO, "%s: read failed", path);
    return NULL;
}

mipr_status mipr_tokenizer_json_load(mipr_tokenizer **out, const char *path, mipr_error *err)
{
    return mipr_tokenizer_json_load_padded(out, path, 0, err);
}

mipr_status mipr_tokenizer_json_load_padded(mipr_tokenizer **out, const char *path,
                                            uint32_t vocab_size, mipr_error *err)
{
    *out = NULL;
    size_t len = 0, clen = 0;
    int missing;
    char *json = slurp(path, &len, &missing, err);
    if (!json)
        return MIPR_ERR_IO;
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path + 1) : 0;
    char *cpath = malloc(dir + sizeof "tokenizer_config.json");
    char *config = NULL;
    if (cpath) {
        memcpy(cpath, path, dir);
        strcpy(cpath + dir, "tokenizer_config.json");
        config = slurp(cpath, &clen, &missing, err);
    }
    if (!cpath || (!config && !missing)) {
        free(cpath);
        free(json);
        return cpath ? MIPR_ERR_IO : mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory",
                                                    path);
    }
    mipr_status st = json_read(out, json, len, config, clen, path, vocab_size, err);
    if (st != MIPR_OK && config && err && strstr(err->msg, "tokenizer_config.json beside"))
        st = mipr_error_set(err, st, "%s: not valid JSON", cpath);
    free(cpath);
    free(config);
    free(json);
    return st;
}
