/* Tokenizer encode and decode on arbitrary bytes, with real tokenizers: llama2.c's 512-token
 * and 32K SentencePiece ones, and the byte-level GPT-2 (GGUF) and Llama 3 (tokenizer.json)
 * ones. The first byte selects the tokenizer (bit 0, and bit 2 for the byte-level pair),
 * BOS (bit 1) and, for byte-level ones, matching control tokens in the text (bit 3); the
 * rest is the text. Checks: ids inside the vocabulary, at most len + 2 of them, and
 * decoding them gives back the text exactly (all four have a token for every byte; control
 * tokens decode to nothing, so that check is off when they are matched). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "testutil.h"

/* Loaded once per process: a fuzzing run calls this function millions of times. */
static mipr_status open_bpe(mipr_tokenizer **t, int which, mipr_error *err)
{
    if (which == 3)
        return mipr_tokenizer_json_load(t, mipr_test_data("vocab/hf/llama3/tokenizer.json"), err);
    mipr_gguf *g;
    mipr_status st = mipr_gguf_open(&g, mipr_test_data("vocab/llama.cpp/ggml-vocab-gpt-2.gguf"),
                                    err);
    if (st == MIPR_OK) {
        st = mipr_gguf_load_tokenizer(t, g, err);
        mipr_gguf_close(g);
    }
    return st;
}

static mipr_tokenizer *tokenizer(int which)
{
    static mipr_tokenizer *tok[4];
    static const struct { const char *path; uint32_t n; } files[2] = {
        {"stories260K/tok512.bin", 512}, {"llama2c-tokenizer/tokenizer.bin", 32000}};
    if (!tok[which]) {
        mipr_error err = {0};
        mipr_status st = which >= 2 ? open_bpe(&tok[which], which, &err)
                                    : mipr_llama2c_load_tokenizer(&tok[which],
                                                                  mipr_test_data(files[which].path),
                                                                  files[which].n, &err);
        if (st != MIPR_OK) {
            fprintf(stderr, "fuzz_tokenize: %s\n", err.msg);
            exit(1);
        }
    }
    return tok[which];
}

static void check_round_trip(const mipr_tokenizer *t, const char *text, size_t len,
                             const int32_t *ids, size_t n, int bos)
{
    char *back = malloc(len + 1);
    size_t m = 0;
    if (!back)
        return;
    for (size_t i = bos ? 1 : 0; i < n; i++) {
        size_t k;
        /* without BOS the dummy-prefix space stays: decode after BOS either way */
        const char *p = mipr_tokenizer_decode(t, i ? ids[i - 1] : mipr_tokenizer_bos(t), ids[i],
                                              &k);
        if (mipr_tokenizer_is_bpe(t) && i == 0 && mipr_tokenizer_type(t, (uint32_t)ids[i]) ==
                                                      MIPR_TOK_CONTROL)
            continue;
        if (m + k > len)
            fuzz_fail("decoding gives more bytes than the text had", NULL);
        memcpy(back + m, p, k);
        m += k;
    }
    if (m != len || (len && memcmp(back, text, len) != 0))
        fuzz_fail("decode(encode(text)) differs from the text", NULL);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const mipr_tokenizer *t = tokenizer((data[0] & 1) | (data[0] >> 1 & 2));
    int bos = (data[0] >> 1) & 1, special = t && mipr_tokenizer_is_bpe(t) && (data[0] & 8);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    if (!ids)
        return 0;
    size_t n = mipr_tokenizer_encode_ex(t, text, len, (bos ? MIPR_ENC_BOS : 0) |
                                        (special ? MIPR_ENC_SPECIAL : 0), ids);
    if (n == SIZE_MAX) {
        free(ids);
        return 0; /* out of memory: allowed */
    }
    if (n > len + 2)
        fuzz_fail("encode wrote more than len + 2 ids", NULL);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= mipr_tokenizer_n_vocab(t))
            fuzz_fail("encode returned an id outside the vocabulary", NULL);
    if (bos && (n == 0 || ids[0] != mipr_tokenizer_bos(t)))
        fuzz_fail("BOS missing", NULL);
    if (!special)
        check_round_trip(t, text, len, ids, n, bos);
    /* decode of arbitrary ids, the text's bytes read as ids and as previous ids */
    for (size_t i = 0; i + 4 <= len && i < 64; i += 4) {
        int32_t id;
        memcpy(&id, text + i, 4);
        size_t k;
        const char *p = mipr_tokenizer_decode(t, id ^ 1, id, &k);
        if (k)
            (void)*(volatile const char *)(p + k - 1);
        p = mipr_tokenizer_decode(t, id, (int32_t)((uint32_t)id % mipr_tokenizer_n_vocab(t)), &k);
        if (k)
            (void)*(volatile const char *)(p + k - 1);
    }
    free(ids);
    return 0;
}
