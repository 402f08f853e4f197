/* Element-type conversions. Bit manipulation through memcpy keeps them strict-aliasing safe. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "mipr_arch.h"

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

const char *mipr_version(void)
{
    return MIPR_VERSION_STRING;
}

const char *mipr_dtype_name(enum mipr_dtype t)
{
    switch (t) {
    case MIPR_DT_F32: return "f32";
    case MIPR_DT_F16: return "f16";
    case MIPR_DT_BF16: return "bf16";
    case MIPR_DT_Q8_0: return "q8_0";
    case MIPR_DT_Q4_0: return "q4_0";
    default: return "?";
    }
}

size_t mipr_dtype_row_bytes(enum mipr_dtype t, size_t n)
{
    switch (t) {
    case MIPR_DT_F32: return n * 4;
    case MIPR_DT_F16:
    case MIPR_DT_BF16: return n * 2;
    case MIPR_DT_Q8_0: return (n + MIPR_QK8_0 - 1) / MIPR_QK8_0 * sizeof(mipr_block_q8_0);
    case MIPR_DT_Q4_0: return (n + MIPR_QK4_0 - 1) / MIPR_QK4_0 * sizeof(mipr_block_q4_0);
    default: return 0;
    }
}

size_t mipr_dtype_block_size(enum mipr_dtype t)
{
    switch (t) {
    case MIPR_DT_F32:
    case MIPR_DT_F16:
    case MIPR_DT_BF16: return 1;
    case MIPR_DT_Q8_0: return MIPR_QK8_0;
    case MIPR_DT_Q4_0: return MIPR_QK4_0;
    default: return 0;
    }
}

float mipr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* subnormal: value = man * 2^-24, exact in float */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t mipr_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf or NaN; NaN stays NaN */
        return sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0);
    if (a >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return sign | 0x7c00;
    if (a < 0x38800000u) {
        /* result is subnormal or zero: scale so the integer part is the mantissa; the FPU's
         * round-to-nearest-even does the rounding */
        float v = bits_f32(a) * 16777216.0f; /* 2^24 */
        return sign | (uint16_t)lrintf(v);
    }
    uint32_t mant_odd = (a >> 13) & 1;
    a += 0xfffu + mant_odd; /* round to nearest even on the 13 dropped bits */
    return sign | (uint16_t)((a - 0x38000000u) >> 13);
}

float mipr_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t mipr_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet the NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* Calls block(out + b, 32 values) for the ceil(n / 32) blocks of x, the last one from a
 * zero-padded copy when n % 32 != 0 (Q8_0 and Q4_0 blocks both hold 32). */
static void for_blocks(void *out, size_t block_bytes, const float *x, size_t n,
                       void (*block)(void *, const float *))
{
    size_t full = n / MIPR_QK8_0;
    for (size_t b = 0; b < full; b++)
        block((char *)out + b * block_bytes, x + b * MIPR_QK8_0);
    if (n % MIPR_QK8_0) {
        float pad[MIPR_QK8_0] = {0};
        memcpy(pad, x + full * MIPR_QK8_0, n % MIPR_QK8_0 * sizeof *pad);
        block((char *)out + full * block_bytes, pad);
    }
}

/* The non-finite rule of mipr_arch.h: a block holding NaN or an infinity gets d = NaN and
 * q = 0. Returns 1 when x's block is such a block. */
static int nonfinite_block(const float *x)
{
    int bad = 0;
    for (int i = 0; i < MIPR_QK8_0; i++)
        bad |= !isfinite(x[i]);
    return bad;
}

static void q8_0_block(void *out, const float *x)
{
    mipr_block_q8_0 *o = out;
    float amax = 0.0f;
    for (int i = 0; i < MIPR_QK8_0; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f;
    /* below FLT_MIN, 1 / d could overflow and x * inf is no integer: such a block is 0 */
    d = d >= FLT_MIN ? d : 0.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    int bad = nonfinite_block(x);
    o->d = mipr_f32_to_f16(bad ? NAN : d);
    for (int i = 0; i < MIPR_QK8_0; i++) /* finite x: |x * id| <= 127 */
        o->qs[i] = bad ? 0 : (int8_t)roundf(x[i] * id);
}

/* x / d + 8.5 truncated, at most 15 (ggml's cast and MIN; for finite x it is >= 0.5). NaN
 * gives 0 instead of the cast's undefined behaviour. */
static uint8_t q4_nibble(float v)
{
    return v > 0.0f ? (uint8_t)(v < 15.0f ? (int)v : 15) : 0;
}

static void q4_0_block(void *out, const float *x)
{
    mipr_block_q4_0 *o = out;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < MIPR_QK4_0; i++)
        if (amax < fabsf(x[i])) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    int bad = nonfinite_block(x);
    o->d = mipr_f32_to_f16(bad ? NAN : d);
    for (int j = 0; j < MIPR_QK4_0 / 2; j++) /* nibble 8 is q = 0 */
        o->qs[j] = bad ? 0x88 : (uint8_t)(q4_nibble(x[j] * id + 8.5f) |
                                          q4_nibble(x[j + MIPR_QK4_0 / 2] * id + 8.5f) << 4);
}

void mipr_quantize_q8_0(mipr_block_q8_0 *out, const float *x, size_t n)
{
    for_blocks(out, sizeof *out, x, n, q8_0_block);
}

void mipr_quantize_q4_0(mipr_block_q4_0 *out, const float *x, size_t n)
{
    for_blocks(out, sizeof *out, x, n, q4_0_block);
}
