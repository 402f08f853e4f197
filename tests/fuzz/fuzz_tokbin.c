/* llama2.c tokenizer.bin. The file does not say how many tokens it holds (the model does),
 * so each input is read with the vocabulary sizes of the real tokenizers and with 1. */
#include "fuzz.h"

#define NAME "fuzz-tokenizer.bin"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sizes[] = {1, 105, 512, 32000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        mipr_tokenizer *t = NULL;
        mipr_error err = {0};
        mipr_status st = mipr_llama2c_read_tokenizer(&t, data, size, NAME, sizes[i], &err);
        fuzz_expect_error(st, &err, NAME);
        if (st == MIPR_OK)
            fuzz_use_tokenizer(t);
        mipr_tokenizer_free(t);
    }
    return 0;
}
