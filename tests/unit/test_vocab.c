/* Real vocabularies against published tokenizations: llama.cpp's .inp/.out pairs in
 * shared/data/vocab/llama.cpp (ids made by each model's Hugging Face tokenizer), read as
 * tests/test-tokenizer-0.cpp reads them (cases split by "\n__ggml_vocab_test__\n", no BOS,
 * control tokens not parsed, a repeated input keeps its last ids). The vocabulary is the
 * GGUF beside them or, for llama-bpe and qwen2, the tokenizer.json in vocab/hf. Every case
 * must match exactly, and decoding the ids must give the input back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct vocab_case {
    const char *name;  /* ggml-vocab-NAME.gguf.inp/.out */
    const char *vocab; /* relative to MIPR_TEST_DATA */
} vocab_case;

static const vocab_case CASES[] = {
    {"gpt-2", "vocab/llama.cpp/ggml-vocab-gpt-2.gguf"},
    {"starcoder", "vocab/llama.cpp/ggml-vocab-starcoder.gguf"},
    {"falcon", "vocab/llama.cpp/ggml-vocab-falcon.gguf"},
    {"deepseek-llm", "vocab/llama.cpp/ggml-vocab-deepseek-llm.gguf"},
    {"deepseek-coder", "vocab/llama.cpp/ggml-vocab-deepseek-coder.gguf"},
    {"mpt", "vocab/llama.cpp/ggml-vocab-mpt.gguf"},
    {"refact", "vocab/llama.cpp/ggml-vocab-refact.gguf"},
    {"llama-spm", "vocab/llama.cpp/ggml-vocab-llama-spm.gguf"},
    {"phi-3", "vocab/llama.cpp/ggml-vocab-phi-3.gguf"},
    {"llama-bpe", "vocab/hf/llama3/tokenizer.json"},
    {"qwen2", "vocab/hf/qwen2.5/tokenizer.json"},
};

#define SEP "\n__ggml_vocab_test__\n"
#define MAX_CASES 256

static mipr_status open_vocab(mipr_tokenizer **t, const char *path, mipr_error *err)
{
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".json") == 0)
        return mipr_tokenizer_json_load(t, path, err);
    mipr_gguf *g;
    mipr_status st = mipr_gguf_open(&g, path, err);
    if (st == MIPR_OK) {
        st = mipr_gguf_load_tokenizer(t, g, err);
        mipr_gguf_close(g);
    }
    return st;
}

/* Splits the .inp text in place; returns the number of cases. */
static size_t split_inputs(char *s, size_t len, char **in, size_t *in_len)
{
    size_t n = 0, pos = 0;
    while (pos < len && n < MAX_CASES) {
        char *next = strstr(s + pos, SEP);
        size_t end = next ? (size_t)(next - s) : len;
        in[n] = s + pos;
        in_len[n++] = end - pos;
        if (!next)
            break;
        pos = end + strlen(SEP);
    }
    return n;
}

/* The ids of line k of the .out file. */
static size_t line_ids(const char *out, size_t k, int32_t *ids, size_t cap)
{
    const char *p = out;
    for (size_t i = 0; i < k && p; i++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    size_t n = 0;
    while (p && *p && *p != '\n' && n < cap) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

/* Concatenated pieces; SentencePiece's dummy prefix comes off the front as llama.cpp's
 * detokenizer takes it off. */
static int round_trips(const mipr_tokenizer *t, const int32_t *ids, size_t n, const char *s,
                       size_t len)
{
    char *buf = malloc(16 * n + 16);
    size_t w = 0;
    for (size_t i = 0; buf && i < n; i++) {
        size_t l;
        const char *p = mipr_tokenizer_decode(t, -1, ids[i], &l);
        memcpy(buf + w, p, l);
        w += l;
    }
    size_t skip = !mipr_tokenizer_is_bpe(t) && mipr_tokenizer_add_space_prefix(t) && w > 0 &&
                  buf[0] == ' ';
    int ok = buf && w - skip == len && memcmp(buf + skip, s, len) == 0;
    free(buf);
    return ok;
}

/* Cases with the same input: the last one's ids count (llama.cpp keeps them in a map). */
static int superseded(char **in, const size_t *in_len, size_t i, size_t n)
{
    for (size_t j = i + 1; j < n; j++)
        if (in_len[j] == in_len[i] && memcmp(in[j], in[i], in_len[i]) == 0)
            return 1;
    return 0;
}

static void run_case(const vocab_case *c)
{
    char rel[256];
    size_t ilen, olen;
    snprintf(rel, sizeof rel, "vocab/llama.cpp/ggml-vocab-%s.gguf.inp", c->name);
    char *inp = mipr_test_read_file(mipr_test_data(rel), &ilen);
    snprintf(rel, sizeof rel, "vocab/llama.cpp/ggml-vocab-%s.gguf.out", c->name);
    char *out = mipr_test_read_file(mipr_test_data(rel), &olen);
    mipr_tokenizer *t = NULL;
    mipr_error err = {0};
    CHECK(inp && out);
    CHECK_OK(open_vocab(&t, mipr_test_data(c->vocab), &err), &err);
    if (!inp || !out || !t) {
        free(inp);
        free(out);
        return;
    }
    static char *in[MAX_CASES];
    static size_t in_len[MAX_CASES];
    size_t n = split_inputs(inp, ilen, in, in_len), pass = 0, trips = 0, distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (superseded(in, in_len, i, n))
            continue;
        distinct++;
        int32_t want[4096], *got = malloc((in_len[i] + 3) * sizeof *got);
        size_t nw = line_ids(out, i, want, 4096);
        size_t ng = mipr_tokenizer_encode_ex(t, in[i], in_len[i], 0, got);
        int same = ng == nw && memcmp(got, want, nw * sizeof *got) == 0;
        if (!same) {
            fprintf(stderr, "%s case %zu '%.*s': got", c->name, i, (int)in_len[i], in[i]);
            for (size_t k = 0; k < ng && k < 40; k++)
                fprintf(stderr, " %d", got[k]);
            fprintf(stderr, "\n  want");
            for (size_t k = 0; k < nw && k < 40; k++)
                fprintf(stderr, " %d", want[k]);
            fprintf(stderr, "\n");
        }
        pass += (size_t)same;
        int rt = round_trips(t, got, ng, in[i], in_len[i]);
        if (!rt)
            fprintf(stderr, "%s case %zu: decode(encode(s)) != s\n", c->name, i);
        trips += (size_t)rt;
        free(got);
    }
    printf("%-15s %zu cases (%zu distinct inputs): %zu match, %zu round trips\n", c->name, n,
           distinct, pass, trips);
    size_t lines = 0;
    for (size_t k = 0; k < olen; k++)
        lines += out[k] == '\n';
    CHECK(n == lines && n >= 40); /* every case read: one .out line each (46 upstream) */
    CHECK(pass == distinct);
    CHECK(trips == distinct);
    mipr_tokenizer_free(t);
    free(inp);
    free(out);
}

int main(void)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        run_case(&CASES[i]);
    return mipr_test_finish("vocab");
}
