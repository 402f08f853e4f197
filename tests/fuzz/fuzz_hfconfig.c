/* config.json: any bytes through the parser; an accepted config must describe sizes mipr's
 * model limits allow, and the Llama 3 divisors must be finite and positive. */
#include <math.h>

#include "fuzz.h"
#include "hf.h"

#define NAME "fuzz.config.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mipr_hf_config c;
    mipr_error err = {0};
    mipr_status st = mipr_hf_config_parse(&c, (const char *)data, size, NAME, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st != MIPR_OK)
        return 0;
    const mipr_hparams *hp = &c.hp;
    if (!hp->dim || hp->dim > MIPR_MAX_DIM || !hp->n_layers || hp->n_layers > MIPR_MAX_LAYERS ||
        !hp->n_kv_heads || hp->n_heads % hp->n_kv_heads || hp->dim % hp->n_heads ||
        hp->head_size % 2 || !c.d_ff || c.d_ff > MIPR_MAX_FF || !hp->vocab_size ||
        hp->vocab_size > MIPR_MAX_VOCAB || !(hp->norm_eps > 0) || !(hp->rope_theta > 0))
        fuzz_fail("an accepted config.json has impossible sizes", "");
    for (uint32_t i = 0; i < c.n_rope_freqs; i++)
        if (!(c.rope_freqs[i] > 0.0f) || !isfinite(c.rope_freqs[i]))
            fuzz_fail("a Llama 3 RoPE divisor is not a positive number", "");
    mipr_hf_config_free(&c);
    return 0;
}
