/* What every fuzz target checks after its reader: errors that say what is wrong, and
 * models and tokenizers that work once a reader accepted them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz finding: %s: %s\n", what, detail ? detail : "");
    abort();
}

void fuzz_expect_error(mipr_status st, const mipr_error *err, const char *name)
{
    if (st == MIPR_OK)
        return;
    if (err->status != st)
        fuzz_fail("status differs from the recorded error", err->msg);
    if (!strstr(err->msg, name))
        fuzz_fail("error message does not name the file", err->msg);
}

void fuzz_run_model(const mipr_model *m)
{
    mipr_engine *e = NULL;
    mipr_error err = {0};
    mipr_status st = mipr_engine_new(&e, m, 4, 2, &err);
    if (st == MIPR_OK) {
        uint32_t v = m->hp.vocab_size;
        int32_t toks[2] = {(int32_t)(1 % v), (int32_t)(v - 1)};
        float *logits = malloc((size_t)v * sizeof *logits);
        if (!logits)
            fuzz_fail("out of memory for logits", NULL);
        st = mipr_engine_forward(e, toks, 2, 0, logits, 0, &err);
        if (st == MIPR_OK && mipr_argmax(logits, v) >= (int32_t)v)
            fuzz_fail("argmax out of range", NULL);
        free(logits);
    }
    /* a validated model must get an engine and run: only memory may run out */
    if (st != MIPR_OK && st != MIPR_ERR_NOMEM)
        fuzz_fail("a validated model does not run", err.msg);
    mipr_engine_free(e);
}

void fuzz_use_tokenizer(const mipr_tokenizer *t)
{
    static const char text[] = "Once upon a time, a little girl named Lily \xc3\xa9t\xc3\xa9 "
                               "\xe2\x80\x94 found a \xf0\x9f\x90\xb1.\n\xff\x80 ok";
    int32_t ids[sizeof text + 2];
    uint32_t n_vocab = mipr_tokenizer_n_vocab(t);
    size_t n = mipr_tokenizer_encode(t, text, sizeof text - 1, 1, ids);
    if (n > sizeof text + 1)
        fuzz_fail("encode wrote more ids than the text has bytes + 2", NULL);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= n_vocab)
            fuzz_fail("encode returned an id outside the vocabulary", NULL);
        size_t len;
        mipr_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &len);
    }
    /* byte-level tokenizers: special tokens matched, BOS and EOS added */
    int32_t ex[sizeof text + 3];
    size_t n_ex = mipr_tokenizer_encode_ex(t, text, sizeof text - 1,
                                           MIPR_ENC_BOS | MIPR_ENC_EOS | MIPR_ENC_SPECIAL, ex);
    if (n_ex != SIZE_MAX && n_ex > sizeof text + 2)
        fuzz_fail("encode_ex wrote more ids than the text has bytes + 3", NULL);
    for (size_t i = 0; n_ex != SIZE_MAX && i < n_ex; i++)
        if (ex[i] < 0 || (uint32_t)ex[i] >= n_vocab)
            fuzz_fail("encode_ex returned an id outside the vocabulary", NULL);
    uint32_t shown = n_vocab < 4096 ? n_vocab : 4096;
    for (uint32_t id = 0; id < shown; id++) {
        size_t len = 0;
        const char *p = mipr_tokenizer_decode(t, mipr_tokenizer_bos(t), (int32_t)id, &len);
        if (len && !p)
            fuzz_fail("decode returned NULL", NULL);
        volatile char sink = len ? p[len - 1] : 0; /* ASan checks the whole piece is there */
        (void)sink;
        mipr_tokenizer_piece(t, id, &len);
    }
}
