/* Recursive descent over the RFC 8259 grammar; depth is bounded so a hostile file cannot
 * exhaust the stack. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, at;
    char *msg;
    size_t cap;
    int failed;
} parser;

static int fail(parser *p, const char *what)
{
    if (!p->failed)
        snprintf(p->msg, p->cap, "byte %zu: expected %s", p->at, what);
    p->failed = 1;
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->at < p->len && strchr(" \t\r\n", p->s[p->at]) && p->s[p->at])
        p->at++;
}

static int peek(parser *p)
{
    skip_ws(p);
    return p->at < p->len ? (unsigned char)p->s[p->at] : -1;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->at < n || memcmp(p->s + p->at, word, n))
        return fail(p, word);
    p->at += n;
    return 0;
}

static int digits(parser *p)
{
    size_t start = p->at;
    while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9')
        p->at++;
    return p->at > start ? 0 : fail(p, "a digit");
}

static int number(parser *p, bench_json *j)
{
    size_t start = p->at;
    if (p->s[p->at] == '-')
        p->at++;
    if (p->at < p->len && p->s[p->at] == '0')
        p->at++;
    else if (digits(p))
        return -1;
    if (p->at < p->len && p->s[p->at] == '.' && (p->at++, digits(p)))
        return -1;
    if (p->at < p->len && (p->s[p->at] == 'e' || p->s[p->at] == 'E')) {
        p->at++;
        if (p->at < p->len && (p->s[p->at] == '+' || p->s[p->at] == '-'))
            p->at++;
        if (digits(p))
            return -1;
    }
    char buf[64];
    size_t n = p->at - start < sizeof buf - 1 ? p->at - start : sizeof buf - 1;
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    j->type = BJ_NUMBER;
    j->number = strtod(buf, NULL);
    return 0;
}

static int hex4(parser *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++, p->at++) {
        int c = p->at < p->len ? p->s[p->at] : 0;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return fail(p, "4 hex digits after \\u");
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* UTF-8 of code point v (surrogates are kept as they come: the reports never hold them). */
static size_t utf8(char *out, unsigned v)
{
    if (v < 0x80)
        return out[0] = (char)v, 1;
    if (v < 0x800)
        return out[0] = (char)(0xC0 | v >> 6), out[1] = (char)(0x80 | (v & 0x3F)), 2;
    out[0] = (char)(0xE0 | v >> 12), out[1] = (char)(0x80 | (v >> 6 & 0x3F));
    out[2] = (char)(0x80 | (v & 0x3F));
    return 3;
}

static int escape(parser *p, char *out, size_t *k)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    char c = p->at < p->len ? p->s[p->at++] : 0;
    const char *f = c ? strchr(from, c) : NULL;
    unsigned v;
    if (f) {
        out[(*k)++] = to[f - from];
        return 0;
    }
    if (c != 'u' || hex4(p, &v))
        return fail(p, "an escape");
    *k += utf8(out + *k, v);
    return 0;
}

static int string(parser *p, char **out)
{
    if (p->s[p->at] != '"')
        return fail(p, "a string");
    p->at++;
    char *buf = malloc(p->len - p->at + 1);
    size_t k = 0;
    if (!buf)
        return fail(p, "memory");
    while (p->at < p->len && p->s[p->at] != '"') {
        unsigned char c = (unsigned char)p->s[p->at++];
        if (c < 0x20)
            return free(buf), fail(p, "no control character in a string");
        if (c == '\\' && escape(p, buf, &k))
            return free(buf), -1;
        if (c != '\\')
            buf[k++] = (char)c;
    }
    if (p->at >= p->len)
        return free(buf), fail(p, "the closing quote");
    p->at++;
    buf[k] = '\0';
    *out = buf;
    return 0;
}

static int value(parser *p, bench_json *j, int depth);

static int push(parser *p, bench_json *j, size_t *cap)
{
    if (j->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 4;
        bench_json *it = realloc(j->items, nc * sizeof *it);
        if (!it)
            return fail(p, "memory");
        j->items = it, *cap = nc;
    }
    memset(&j->items[j->n++], 0, sizeof *j->items);
    return 0;
}

static int container(parser *p, bench_json *j, int depth)
{
    int object = p->s[p->at] == '{';
    char close = object ? '}' : ']';
    size_t cap = 0;
    j->type = object ? BJ_OBJECT : BJ_ARRAY;
    p->at++;
    if (peek(p) == close)
        return p->at++, 0;
    for (;;) {
        if (push(p, j, &cap))
            return -1;
        bench_json *it = &j->items[j->n - 1];
        if (object && (peek(p) != '"' ? fail(p, "a member name") : string(p, &it->key) ||
                       (peek(p) == ':' ? (p->at++, 0) : fail(p, "':'"))))
            return -1;
        if (value(p, it, depth + 1))
            return -1;
        int c = peek(p);
        p->at += c == ',' || c == close;
        if (c == close)
            return 0;
        if (c != ',')
            return fail(p, object ? "',' or '}'" : "',' or ']'");
    }
}

static int value(parser *p, bench_json *j, int depth)
{
    int c = peek(p);
    if (depth > MAX_DEPTH)
        return fail(p, "less nesting");
    if (c == '{' || c == '[')
        return container(p, j, depth);
    if (c == '"')
        return j->type = BJ_STRING, string(p, &j->string);
    if (c == 't' || c == 'f')
        return j->type = BJ_BOOL, j->number = c == 't', literal(p, c == 't' ? "true" : "false");
    if (c == 'n')
        return j->type = BJ_NULL, literal(p, "null");
    if (c == '-' || (c >= '0' && c <= '9'))
        return number(p, j);
    return fail(p, "a value");
}

static void clear(bench_json *j)
{
    for (size_t i = 0; i < j->n; i++)
        clear(&j->items[i]);
    free(j->items), free(j->string), free(j->key);
}

void bench_json_free(bench_json *j)
{
    if (j)
        clear(j), free(j);
}

bench_json *bench_json_parse(const char *text, size_t len, char *msg, size_t cap)
{
    parser p = {text, len, 0, msg, cap, 0};
    bench_json *j = calloc(1, sizeof *j);
    if (!j)
        return snprintf(msg, cap, "out of memory"), NULL;
    if (value(&p, j, 0))
        fail(&p, "a value");
    else if (peek(&p) != -1)
        fail(&p, "the end of the document");
    if (p.failed) {
        bench_json_free(j);
        return NULL;
    }
    return j;
}

const bench_json *bench_json_get(const bench_json *j, const char *path)
{
    while (j && *path) {
        size_t n = strcspn(path, ".");
        const bench_json *next = NULL;
        for (size_t i = 0; i < j->n && !next; i++) {
            const bench_json *it = &j->items[i];
            if (j->type == BJ_OBJECT && strlen(it->key) == n && !strncmp(it->key, path, n))
                next = it;
            if (j->type == BJ_ARRAY && (size_t)atoi(path) == i && path[0] >= '0' &&
                path[0] <= '9')
                next = it;
        }
        j = next;
        path += n + (path[n] == '.');
    }
    return j;
}

double bench_json_num(const bench_json *j, const char *path, double def)
{
    const bench_json *v = bench_json_get(j, path);
    return v && (v->type == BJ_NUMBER || v->type == BJ_BOOL) ? v->number : def;
}

const char *bench_json_str(const bench_json *j, const char *path, const char *def)
{
    const bench_json *v = bench_json_get(j, path);
    return v && v->type == BJ_STRING ? v->string : def;
}
