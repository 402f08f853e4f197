/* llama2.c checkpoints (version 0): header checks, the exact-size rule, validation, then
 * the engine over a model that was accepted. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define NAME "fuzz.bin"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the model reads floats in place: hand it a float-aligned copy whatever the caller's */
    float *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    mipr_model *m = NULL;
    mipr_error err = {0};
    mipr_status st = mipr_llama2c_read_model(&m, copy, size, NAME, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st == MIPR_OK)
        fuzz_run_model(m);
    mipr_model_free(m);
    free(copy);
    return 0;
}
