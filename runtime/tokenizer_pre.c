/* Pre-tokenizer split rules of byte-level BPE tokenizers, as code (no regex engine on the
 * device). Each rule below is one regular expression of the model's tokenizer.json, given
 * in its comment; the matchers return the length of that expression's match at position
 * i (0: no match), with the alternatives tried in the expression's order. A stage splits
 * every piece of the previous stage the way a regex split keeps everything: matches and the
 * unmatched stretches between them are all pieces. Lookahead and `$` see the piece's end. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

enum { C_O = 0, C_L = 1, C_N = 2, C_P = 3, C_CLASS = 3, C_SPACE = 4 };

/* Unicode White_Space (what \s means to the tokenizers' regex engines). */
static int is_white(uint32_t c)
{
    if (c <= 0x20)
        return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    if (c < 0x85)
        return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static unsigned table_class(uint32_t c)
{
    uint32_t lo = 0, hi = mipr_unicode_n_runs; /* last run starting at or before c */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mipr_unicode_runs[mid] >> 2 <= c)
            lo = mid;
        else
            hi = mid;
    }
    return mipr_unicode_runs[lo] & 3u;
}

static unsigned char_class(uint32_t c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return C_L;
    if (c >= '0' && c <= '9')
        return C_N;
    if (c > 0x10FFFF)
        return C_O; /* a byte that is not UTF-8 */
    return table_class(c) | (is_white(c) ? C_SPACE : 0);
}

/* One character per code point: its value, its class and where its bytes start. */
typedef struct text {
    const uint32_t *c;
    const uint8_t *k;
} text;

static int is_l(const text *t, size_t i) { return (t->k[i] & C_CLASS) == C_L; }
static int is_n(const text *t, size_t i) { return (t->k[i] & C_CLASS) == C_N; }
static int is_p(const text *t, size_t i) { return (t->k[i] & C_CLASS) == C_P; }
static int is_s(const text *t, size_t i) { return (t->k[i] & C_SPACE) != 0; }
/* [^\s\p{L}\p{N}] */
static int is_other(const text *t, size_t i) { return !is_s(t, i) && !is_l(t, i) && !is_n(t, i); }
static int is_nl(const text *t, size_t i) { return t->c[i] == '\r' || t->c[i] == '\n'; }

typedef int (*class_fn)(const text *t, size_t i);

static size_t run(const text *t, size_t i, size_t n, class_fn f)
{
    while (i < n && f(t, i))
        i++;
    return i;
}

static uint32_t lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d, case-insensitively when fold is set. */
static size_t contraction(const text *t, size_t i, size_t n, int fold)
{
    if (t->c[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t a = fold ? lower(t->c[i + 1]) : t->c[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 >= n)
        return 0;
    uint32_t b = fold ? lower(t->c[i + 2]) : t->c[i + 2];
    return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
}

/* \s+(?!\S)|\s+ at a white space: the run, less its last character when a non-space follows
 * (that one goes with the next word). */
static size_t space_run(const text *t, size_t i, size_t n)
{
    size_t k = run(t, i, n, is_s);
    return k == n || k - i < 2 ? k - i : k - i - 1;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (llama.cpp's copies drop the final \s+; its single characters are gaps there, the same
 * pieces). */
static size_t m_gpt2(const text *t, size_t i, size_t n)
{
    size_t m = contraction(t, i, n, 0);
    if (m)
        return m;
    size_t j = i + (t->c[i] == ' ' && i + 1 < n);
    if (is_l(t, j))
        return run(t, j, n, is_l) - i;
    if (is_n(t, j))
        return run(t, j, n, is_n) - i;
    if (is_other(t, j))
        return run(t, j, n, is_other) - i;
    return space_run(t, i, n);
}

/* Llama 3 (digits = 3) and Qwen2 (digits = 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t m_llama3_digits(const text *t, size_t i, size_t n, size_t digits)
{
    size_t m = contraction(t, i, n, 1);
    if (m)
        return m;
    if (is_l(t, i))
        return run(t, i, n, is_l) - i;
    if (!is_nl(t, i) && !is_n(t, i) && i + 1 < n && is_l(t, i + 1))
        return run(t, i + 1, n, is_l) - i;
    if (is_n(t, i)) {
        size_t k = i;
        while (k < n && k - i < digits && is_n(t, k))
            k++;
        return k - i;
    }
    size_t j = i + (t->c[i] == ' ' && i + 1 < n);
    if (is_other(t, j))
        return run(t, run(t, j, n, is_other), n, is_nl) - i;
    size_t k = run(t, i, n, is_s), last = k;
    while (last > i && !is_nl(t, last - 1))
        last--;
    if (last > i)
        return last - i; /* \s*[\r\n]+ ends after the run's last line break */
    return space_run(t, i, n);
}

static size_t m_llama3(const text *t, size_t i, size_t n) { return m_llama3_digits(t, i, n, 3); }
static size_t m_qwen2(const text *t, size_t i, size_t n) { return m_llama3_digits(t, i, n, 1); }

/* \p{N} */
static size_t m_digit(const text *t, size_t i, size_t n)
{
    (void)n;
    return is_n(t, i) ? 1 : 0;
}

/* \p{N}+ */
static size_t m_digits(const text *t, size_t i, size_t n) { return run(t, i, n, is_n) - i; }

/* [\r\n] */
static size_t m_newline(const text *t, size_t i, size_t n)
{
    (void)n;
    return is_nl(t, i) ? 1 : 0;
}

static int falcon_punct(const text *t, size_t i)
{
    uint32_t c = t->c[i];
    return is_p(t, i) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' ||
           c == '~' || c == '|' || c == '`';
}

/* Falcon: [\p{P}\$\+<=>\^~\|`]+ */
static size_t m_falcon_punct(const text *t, size_t i, size_t n)
{
    return run(t, i, n, falcon_punct) - i;
}

/* Falcon: [0-9][0-9][0-9] */
static size_t m_ascii3(const text *t, size_t i, size_t n)
{
    for (size_t k = 0; k < 3; k++)
        if (i + k >= n || t->c[i + k] < '0' || t->c[i + k] > '9')
            return 0;
    return 3;
}

typedef struct cp_range {
    uint32_t lo, hi;
} cp_range;

static int in_ranges(const cp_range *r, size_t n, uint32_t c)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return 1;
    return 0;
}

/* DeepSeek LLM's letters, transcribed from its regex's character class. */
static const cp_range ds_letters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
    {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x376},
    {0x377, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A},
    {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F},
    {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2183}, {0x2184, 0x2184}, {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF2}, {0x2CF3, 0x2CF3}, {0xA640, 0xA66D},
    {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2},
    {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

/* DeepSeek LLM's punctuation: [!-/:-~！-／：-～‘-‟　-。] */
static const cp_range ds_punct[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F},
    {0x3000, 0x3002},
};

/* DeepSeek's CJK: [一-龥ࠀ-一가-퟿] */
static const cp_range ds_cjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int ds_letter(const text *t, size_t i)
{
    uint32_t c = t->c[i];
    if (c < 0x80)
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return in_ranges(ds_letters, N_OF(ds_letters), c);
}

static int ds_punct_c(const text *t, size_t i)
{
    return in_ranges(ds_punct, N_OF(ds_punct), t->c[i]);
}
static int ds_cjk_c(const text *t, size_t i) { return in_ranges(ds_cjk, N_OF(ds_cjk), t->c[i]); }

/* \s?X+ */
static size_t space_then(const text *t, size_t i, size_t n, class_fn f)
{
    if (is_s(t, i) && i + 1 < n && f(t, i + 1))
        return run(t, i + 1, n, f) - i;
    return run(t, i, n, f) - i;
}

static size_t m_ds_letters(const text *t, size_t i, size_t n)
{
    return space_then(t, i, n, ds_letter);
}

static size_t m_ds_punct(const text *t, size_t i, size_t n)
{
    return space_then(t, i, n, ds_punct_c);
}

static size_t m_cjk(const text *t, size_t i, size_t n) { return run(t, i, n, ds_cjk_c) - i; }
static size_t m_s_letters(const text *t, size_t i, size_t n) { return space_then(t, i, n, is_l); }
static size_t m_s_punct(const text *t, size_t i, size_t n) { return space_then(t, i, n, is_p); }

/* \s+$ : only the piece's trailing white space (checked from the end, so no rescans). */
static size_t m_trailing_space(const text *t, size_t i, size_t n)
{
    return is_s(t, i) && run(t, i, n, is_s) == n ? n - i : 0;
}

typedef size_t (*match_fn)(const text *t, size_t i, size_t n);

#define MAX_STAGES 6
typedef struct pre_rules {
    const char *name;
    match_fn stage[MAX_STAGES];
} pre_rules;

static const pre_rules RULES[MIPR_PRE_COUNT] = {
    [MIPR_PRE_NONE] = {"default", {0}},
    [MIPR_PRE_GPT2] = {"gpt-2", {m_gpt2}},
    [MIPR_PRE_LLAMA3] = {"llama-bpe", {m_llama3}},
    [MIPR_PRE_QWEN2] = {"qwen2", {m_qwen2}},
    [MIPR_PRE_SMOLLM] = {"smollm", {m_digit, m_gpt2}},
    [MIPR_PRE_FALCON] = {"falcon", {m_falcon_punct, m_gpt2, m_ascii3}},
    [MIPR_PRE_DEEPSEEK_LLM] = {"deepseek-llm", {m_newline, m_ds_letters, m_ds_punct,
                                                m_trailing_space, m_cjk, m_digits}},
    [MIPR_PRE_DEEPSEEK_CODER] = {"deepseek-coder", {m_newline, m_s_letters, m_s_punct, m_cjk,
                                                    m_digit}},
    [MIPR_PRE_STARCODER] = {"starcoder", {m_digit, m_gpt2}},
};

/* Other GGUF names llama.cpp gives the same rules. */
static const struct {
    const char *name;
    enum mipr_pre_type pre;
} ALIASES[] = {
    {"llama3", MIPR_PRE_LLAMA3}, {"llama-v3", MIPR_PRE_LLAMA3}, {"falcon3", MIPR_PRE_LLAMA3},
    {"dbrx", MIPR_PRE_LLAMA3},   {"smaug-bpe", MIPR_PRE_LLAMA3},
    {"deepseek-r1-qwen", MIPR_PRE_QWEN2}, {"stablelm2", MIPR_PRE_QWEN2},
    {"refact", MIPR_PRE_STARCODER}, {"command-r", MIPR_PRE_STARCODER},
    {"codeshell", MIPR_PRE_STARCODER}, {"exaone", MIPR_PRE_STARCODER},
    {"minerva-7b", MIPR_PRE_STARCODER},
    {"mpt", MIPR_PRE_GPT2}, {"olmo", MIPR_PRE_GPT2}, {"jais", MIPR_PRE_GPT2},
    {"phi-2", MIPR_PRE_GPT2}, {"roberta-bpe", MIPR_PRE_GPT2},
};

const char *mipr_pre_name(enum mipr_pre_type pre)
{
    return (unsigned)pre < MIPR_PRE_COUNT ? RULES[pre].name : NULL;
}

static int name_is(const char *a, const char *s, size_t len)
{
    return strlen(a) == len && memcmp(a, s, len) == 0;
}

int mipr_pre_from_name(const char *name, size_t len)
{
    if (!name)
        return -1;
    for (int i = 0; i < MIPR_PRE_COUNT; i++)
        if (name_is(RULES[i].name, name, len))
            return i;
    for (size_t i = 0; i < N_OF(ALIASES); i++)
        if (name_is(ALIASES[i].name, name, len))
            return (int)ALIASES[i].pre;
    return -1;
}

/* ---- splitting ---------------------------------------------------------------------------- */

/* Decodes UTF-8; a byte that does not start a valid sequence is one character of its own. */
static size_t decode(const char *s, size_t len, uint32_t *cp, uint32_t *off)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const uint8_t *p = (const uint8_t *)s + i;
        uint8_t b = p[0];
        size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        uint32_t c = k == 1 ? b : k == 2 ? b & 0x1Fu : k == 3 ? b & 0x0Fu : b & 0x07u;
        for (size_t j = 1; j < k; j++) {
            if (i + j >= len || (p[j] & 0xC0) != 0x80) {
                k = 0;
                break;
            }
            c = c << 6 | (p[j] & 0x3Fu);
        }
        if (k == 0 || (k == 2 && c < 0x80) || (k == 3 && c < 0x800) || (k == 4 && c < 0x10000) ||
            c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            k = 1;
            c = 0x110000u + b;
        }
        cp[n] = c;
        off[n++] = (uint32_t)i;
        i += k;
    }
    off[n] = (uint32_t)len;
    return n;
}

/* Splits each piece of in (ends, in characters) by one rule into out; returns the count. */
static size_t apply_stage(const text *t, match_fn f, const uint32_t *in, size_t n_in,
                          uint32_t *out)
{
    size_t n_out = 0, a = 0;
    for (size_t p = 0; p < n_in; p++) {
        size_t b = in[p], gap = a;
        for (size_t i = a; i < b;) {
            size_t m = f(t, i, b);
            if (m == 0) {
                i++;
                continue;
            }
            if (i > gap)
                out[n_out++] = (uint32_t)i;
            i += m;
            out[n_out++] = (uint32_t)i;
            gap = i;
        }
        if (gap < b)
            out[n_out++] = (uint32_t)b;
        a = b;
    }
    return n_out;
}

size_t mipr_pre_split(enum mipr_pre_type pre, const char *s, size_t len, uint32_t *ends)
{
    if (len == 0)
        return 0;
    if ((unsigned)pre >= MIPR_PRE_COUNT || !RULES[pre].stage[0] || len >= UINT32_MAX) {
        ends[0] = (uint32_t)len;
        return 1;
    }
    uint32_t *cp = malloc(len * sizeof *cp), *off = malloc((len + 1) * sizeof *off);
    uint32_t *tmp = malloc(len * sizeof *tmp);
    uint8_t *k = malloc(len);
    size_t n = SIZE_MAX;
    if (cp && off && tmp && k) {
        size_t n_cp = decode(s, len, cp, off);
        for (size_t i = 0; i < n_cp; i++)
            k[i] = (uint8_t)char_class(cp[i]);
        text t = {cp, k};
        /* Stages alternate between tmp and ends; start so that the last one lands in ends. */
        size_t n_st = 0;
        while (n_st < MAX_STAGES && RULES[pre].stage[n_st])
            n_st++;
        uint32_t *buf[2] = {n_st % 2 ? tmp : ends, n_st % 2 ? ends : tmp};
        buf[0][0] = (uint32_t)n_cp;
        n = 1;
        for (size_t st = 0; st < n_st; st++)
            n = apply_stage(&t, RULES[pre].stage[st], buf[st % 2], n, buf[(st + 1) % 2]);
        for (size_t i = 0; i < n; i++)
            ends[i] = off[ends[i]];
    }
    free(cp);
    free(off);
    free(tmp);
    free(k);
    return n;
}
