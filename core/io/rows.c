/* Float rows to any weight type, as the writers store them. */
#include <math.h>
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

/* Largest |x| that t holds: f16 and bf16 themselves, or the f16 scale d of a block
 * (Q8_0: d = max|x| / 127, Q4_0: d = max / -8). */
static double limit_of(enum mipr_dtype t)
{
    switch (t) {
    case MIPR_DT_F16: return 65504.0;
    case MIPR_DT_BF16: return 0x1.fep127;
    case MIPR_DT_Q8_0: return 65504.0 * 127.0;
    case MIPR_DT_Q4_0: return 65504.0 * 8.0;
    default: return INFINITY;
    }
}

mipr_status mipr_row_check(const float *x, size_t n, enum mipr_dtype t, const char *file,
                           const char *tensor, uint32_t row, mipr_error *err)
{
    double lim = limit_of(t);
    for (size_t c = 0; c < n; c++) {
        if (isfinite(x[c]) && fabs((double)x[c]) <= lim)
            continue;
        if (!isfinite(x[c]))
            return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s row %u column %zu: the "
                                  "weight is %s: refusing to convert a broken model to %s",
                                  file, tensor, row, c, isnan(x[c]) ? "NaN" : "infinite",
                                  mipr_dtype_name(t));
        return mipr_error_set(err, MIPR_ERR_FORMAT, "%s: tensor %s row %u column %zu: the "
                              "weight %g is too large for %s (at most %g)", file, tensor, row,
                              c, (double)x[c], mipr_dtype_name(t), lim);
    }
    return MIPR_OK;
}
