/* Float rows to any weight type, as the writers store them. */
#include <string.h>

#include "rows.h"

size_t mipr_row_encode(uint8_t *out, const float *x, enum mipr_dtype t, size_t n)
{
    uint16_t *h = (uint16_t *)out;
    switch (t) {
    case MIPR_DT_F16:
        for (size_t i = 0; i < n; i++)
            h[i] = mipr_f32_to_f16(x[i]);
        break;
    case MIPR_DT_BF16:
        for (size_t i = 0; i < n; i++)
            h[i] = mipr_f32_to_bf16(x[i]);
        break;
    case MIPR_DT_Q8_0:
        mipr_quantize_q8_0((mipr_block_q8_0 *)out, x, n);
        break;
    case MIPR_DT_Q4_0:
        mipr_quantize_q4_0((mipr_block_q4_0 *)out, x, n);
        break;
    default:
        memcpy(out, x, n * sizeof(float));
    }
    return mipr_dtype_row_bytes(t, n);
}
