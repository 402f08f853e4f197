/* tokenizer.json reader on arbitrary bytes (no tokenizer_config.json): it must refuse with a
 * message naming the file, or give a tokenizer that encodes and decodes within bounds. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mipr_tokenizer *t = NULL;
    mipr_error err = {0};
    mipr_status st = mipr_tokenizer_json_read(&t, (const char *)data, size, NULL, 0,
                                              "fuzz.json", &err);
    if (st != MIPR_OK) {
        fuzz_expect_error(st, &err, "fuzz.json");
        if (t)
            fuzz_fail("a refused tokenizer.json still returned a tokenizer", NULL);
        return 0;
    }
    fuzz_use_tokenizer(t);
    mipr_tokenizer_free(t);
    return 0;
}
