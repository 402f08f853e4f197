/* safetensors: the header parser over any bytes, then, when it accepts them, the model
 * builder with a fixed small llama config (the corpus's mini.safetensors matches it: names,
 * shapes against config.json, q/k permutation), then the engine over a model that built. */
#include <string.h>

#include "fuzz.h"
#include "hf.h"
#include "safetensors.h"

#define NAME "fuzz.safetensors"

static const char config[] =
    "{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":16,"
    "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"vocab_size\":32,\"max_position_embeddings\":16,\"tie_word_embeddings\":true}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mipr_st_set s = {0};
    mipr_error err = {0};
    mipr_status st = mipr_st_add(&s, data, size, NAME, &err);
    fuzz_expect_error(st, &err, NAME);
    for (size_t i = 0; st == MIPR_OK && i < s.n; i++) {
        if (mipr_st_find(&s, s.t[i].name) != &s.t[i])
            fuzz_fail("a tensor that was read is not found", s.t[i].name);
        if (s.t[i].nbytes) /* the extent lies inside the input */
            (void)*((volatile const uint8_t *)s.t[i].data + s.t[i].nbytes - 1);
    }
    mipr_hf_config c;
    if (st == MIPR_OK &&
        mipr_hf_config_parse(&c, config, sizeof config - 1, "config.json", &err) == MIPR_OK) {
        mipr_model *m = NULL;
        st = mipr_hf_build(&m, &c, &s, "fuzz", NAME, &err);
        fuzz_expect_error(st, &err, "fuzz"); /* the weights (NAME) or the model ("fuzz") */
        if (st == MIPR_OK)
            fuzz_run_model(m);
        mipr_model_free(m);
        mipr_hf_config_free(&c);
    }
    mipr_st_free(&s);
    return 0;
}
