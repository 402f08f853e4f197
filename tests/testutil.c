#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mipr_test_failures = 0;

const char *mipr_test_data(const char *rel)
{
    static char slots[8][4096];
    static int next = 0;
    const char *dir = getenv("MIPR_TEST_DATA");
    if (!dir || !*dir)
        dir = "../shared/data";
    char *p = slots[next++ & 7];
    snprintf(p, sizeof slots[0], "%s/%s", dir, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        fprintf(stderr,
                "test data missing: %s\n"
                "Set MIPR_TEST_DATA to the folder holding the mipr test assets (stories260K, "
                "tokenizers, text, oracles); README.md, section \"Test data\", lists the public "
                "sources of every file.\n",
                p);
        exit(1);
    }
    return p;
}

const char *mipr_test_tmp(const char *name)
{
    static char slots[8][4096];
    static int next = 0;
    const char *dir = getenv("MIPR_TEST_TMP");
    if (!dir || !*dir)
        dir = "/tmp";
    char *p = slots[next++ & 7];
    snprintf(p, sizeof slots[0], "%s/%ld-%s", dir, (long)getpid(), name);
    return p;
}

char *mipr_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Start of the value of "key" after the object whose "id" is id. */
static const char *oracle_value(const char *json, const char *id, const char *key)
{
    char pat[256];
    snprintf(pat, sizeof pat, "\"id\": \"%s\"", id);
    const char *p = strstr(json, pat);
    if (!p) {
        fprintf(stderr, "oracle %s not found\n", id);
        exit(1);
    }
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(p, pat);
    if (!p) {
        fprintf(stderr, "oracle %s has no %s\n", id, key);
        exit(1);
    }
    p += strlen(pat);
    while (*p == ' ' || *p == '\n')
        p++;
    return p;
}

static void put_utf8(char **o, uint32_t c)
{
    char *q = *o;
    if (c < 0x80) {
        *q++ = (char)c;
    } else if (c < 0x800) {
        *q++ = (char)(0xC0 | (c >> 6));
        *q++ = (char)(0x80 | (c & 63));
    } else {
        *q++ = (char)(0xE0 | (c >> 12));
        *q++ = (char)(0x80 | ((c >> 6) & 63));
        *q++ = (char)(0x80 | (c & 63));
    }
    *o = q;
}

char *mipr_test_json_string(const char *p, const char **end)
{
    if (*p != '"') {
        fprintf(stderr, "oracle value is not a string\n");
        exit(1);
    }
    p++;
    char *out = malloc(strlen(p) + 1), *o = out;
    while (*p && *p != '"') {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'n': *o++ = '\n'; p++; break;
        case 't': *o++ = '\t'; p++; break;
        case 'r': *o++ = '\r'; p++; break;
        case 'u': {
            unsigned c = 0;
            sscanf(p + 1, "%4x", &c);
            put_utf8(&o, c);
            p += 5;
            break;
        }
        default: *o++ = *p++; break;
        }
    }
    *o = 0;
    if (end)
        *end = *p ? p + 1 : p;
    return out;
}

char *mipr_test_oracle_string(const char *json, const char *id, const char *key)
{
    return mipr_test_json_string(oracle_value(json, id, key), NULL);
}

size_t mipr_test_json_ints(const char *p, int32_t *out, size_t cap, const char **end)
{
    if (*p != '[') {
        fprintf(stderr, "oracle value is not an array\n");
        exit(1);
    }
    size_t n = 0;
    p++;
    while (*p && *p != ']') {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) {
            p++;
            continue;
        }
        if (n < cap)
            out[n] = (int32_t)v;
        n++;
        p = e;
    }
    if (end)
        *end = *p ? p + 1 : p;
    return n;
}

size_t mipr_test_oracle_ints(const char *json, const char *id, const char *key, int32_t *out,
                             size_t cap)
{
    return mipr_test_json_ints(oracle_value(json, id, key), out, cap, NULL);
}

int mipr_test_finish(const char *name)
{
    if (mipr_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, mipr_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* Same filter as the CLI (llama2.c's safe_printf). */
static int collect(void *ctx, int32_t prev, int32_t token)
{
    mipr_test_text *c = ctx;
    size_t len;
    const char *s = mipr_tokenizer_decode(c->tok, prev, token, &len);
    if (c->n_ids < 1024)
        c->ids[c->n_ids++] = token;
    if (len == 1 && !(isprint((unsigned char)s[0]) || isspace((unsigned char)s[0])))
        return 0;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, s, len);
        c->len += len;
        c->text[c->len] = 0;
    }
    return 0;
}

void mipr_test_greedy(const mipr_model *m, const mipr_tokenizer *tok, const char *prompt,
                   uint32_t steps, mipr_test_text *out)
{
    mipr_error err = {0};
    mipr_engine *e;
    mipr_sampler s;
    CHECK_OK(mipr_engine_new(&e, m, 0, 0, &err), &err);
    CHECK_OK(mipr_sampler_init(&s, m->hp.vocab_size, 0.0f, 0.9f, 1, &err), &err);
    int32_t ids[512];
    uint32_t n = (uint32_t)mipr_tokenizer_encode(tok, prompt, strlen(prompt), 1, ids);
    memset(out, 0, sizeof *out);
    out->tok = tok;
    CHECK_OK(mipr_generate(e, &s, tok, ids, n, steps, collect, out, NULL, NULL, &err), &err);
    mipr_sampler_free(&s);
    mipr_engine_free(e);
}

