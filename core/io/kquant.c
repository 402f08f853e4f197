/* ggml's K-quants (Q2_K..Q6_K), and the 32-element Q4_1 / Q5_0 / Q5_1 that Q4_K_M files use
 * where rows are not a multiple of 256 (Qwen2.5-0.5B's 896), to float: for reading the
 * Q4_K_M / Q5_K_M / Q6_K files people download. Written from ggml's published block layouts (super-blocks of 256 elements, 16 or
 * 8 sub-blocks with 4- or 6-bit scales). Each element is computed with the same float
 * operations in the same order as ggml's reference dequantizer, so the floats are the same
 * bits (tests/unit/test_kquant.c checks against an independent statement of the layouts).
 * mipr keeps these tensors as F32: the engine has no K-quant kernels. */
#include <string.h>

#include "gguf_internal.h"

#define QK 256

static float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return mipr_f16_to_f32(h);
}

int mipr_kquant_traits(uint32_t ggml_type, uint32_t *block, uint32_t *bytes)
{
    *block = QK;
    switch (ggml_type) {
    case MIPR_GGML_Q4_1: *block = 32; *bytes = 2 + 2 + 16; return 1;     /* d, m, qs */
    case MIPR_GGML_Q5_0: *block = 32; *bytes = 2 + 4 + 16; return 1;     /* d, qh, qs */
    case MIPR_GGML_Q5_1: *block = 32; *bytes = 2 + 2 + 4 + 16; return 1; /* d, m, qh, qs */
    case MIPR_GGML_Q2_K: *bytes = 16 + 64 + 2 + 2; return 1;      /* scales, qs, d, dmin */
    case MIPR_GGML_Q3_K: *bytes = 32 + 64 + 12 + 2; return 1;     /* hmask, qs, scales, d */
    case MIPR_GGML_Q4_K: *bytes = 2 + 2 + 12 + 128; return 1;     /* d, dmin, scales, qs */
    case MIPR_GGML_Q5_K: *bytes = 2 + 2 + 12 + 32 + 128; return 1; /* d, dmin, scales, qh, qs */
    case MIPR_GGML_Q6_K: *bytes = 128 + 64 + 16 + 2; return 1;    /* ql, qh, scales, d */
    default: return 0;
    }
}

/* The 32-element types: element j < 16 in the low nibble of qs[j], j >= 16 in the high
 * nibble of qs[j - 16]; Q5's fifth bit j in the 32-bit qh. x = d q + m, or d (q - 16). */
static void q4_1(float *y, const uint8_t *b)
{
    float d = f16_at(b), m = f16_at(b + 2);
    for (int j = 0; j < 32; j++) {
        int q = j < 16 ? b[4 + j] & 15 : b[4 + j - 16] >> 4;
        y[j] = (float)q * d + m;
    }
}

static void q5(float *y, const uint8_t *b, int with_min)
{
    float d = f16_at(b), m = with_min ? f16_at(b + 2) : 0.0f;
    const uint8_t *qh = b + (with_min ? 4 : 2), *qs = qh + 4;
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 |
                 (uint32_t)qh[3] << 24;
    for (int j = 0; j < 32; j++) {
        int q = (j < 16 ? qs[j] & 15 : qs[j - 16] >> 4) | (int)((h >> j) & 1) << 4;
        y[j] = with_min ? (float)q * d + m : (float)(q - 16) * d;
    }
}

/* Q2_K: 16 sub-blocks of 16; scale byte = 4-bit scale | 4-bit min << 4; 2-bit values. */
static void q2_k(float *y, const uint8_t *b)
{
    const uint8_t *scales = b, *qs = b + 16;
    float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int e = 0; e < QK; e++) {
        int half = e / 128, k = e % 128, shift = 2 * (k / 32), l = k % 32;
        uint8_t sc = scales[e / 16];
        float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
        int q = (qs[32 * half + l] >> shift) & 3;
        y[e] = dl * (float)q - ml;
    }
}

/* The 12 bytes of 6-bit scale (and min) pairs of Q4_K/Q5_K: sub-block j < 4 in the low 6
 * bits of bytes j / j+4; j >= 4 split into a low nibble of byte j+4 and the top 2 bits of
 * bytes j-4 / j. */
static void scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q3_K's 16 6-bit signed scales: low nibbles in bytes 0..7 (j < 8 low, j >= 8 high nibble of
 * byte j-8), the top 2 bits in bytes 8..11 (pair index j % 4, shift 2 * (j / 4)). */
static int q3_scale(const uint8_t *s, int j)
{
    int low = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
    int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

static void q3_k(float *y, const uint8_t *b)
{
    const uint8_t *hmask = b, *qs = b + 32, *scales = b + 96;
    float d = f16_at(b + 108);
    for (int e = 0; e < QK; e++) {
        int half = e / 128, k = e % 128, j = k / 32, l = k % 32;
        int bit = 4 * half + j; /* which hmask bit plane */
        int q = (qs[32 * half + l] >> (2 * j)) & 3;
        int hi = (hmask[l] >> bit) & 1;
        float dl = d * (float)q3_scale(scales, e / 16);
        y[e] = dl * (float)(q - (hi ? 0 : 4));
    }
}

static void q4_k(float *y, const uint8_t *b)
{
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *scales = b + 4, *qs = b + 16;
    for (int e = 0; e < QK; e++) {
        int sub = e / 32, l = e % 32, sc, m;
        scale_min(scales, sub, &sc, &m);
        uint8_t byte = qs[32 * (sub / 2) + l];
        int q = sub % 2 ? byte >> 4 : byte & 15;
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        y[e] = d1 * (float)q - m1;
    }
}

static void q5_k(float *y, const uint8_t *b)
{
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + 48;
    for (int e = 0; e < QK; e++) {
        int sub = e / 32, l = e % 32, sc, m;
        scale_min(scales, sub, &sc, &m);
        uint8_t byte = qs[32 * (sub / 2) + l];
        int q = (sub % 2 ? byte >> 4 : byte & 15) + (((qh[l] >> sub) & 1) << 4);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        y[e] = d1 * (float)q - m1;
    }
}

/* Q6_K: 4 low bits in ql, 2 high bits in qh, 16 int8 scales, q - 32. */
static void q6_k(float *y, const uint8_t *b)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int e = 0; e < QK; e++) {
        int half = e / 128, k = e % 128, quarter = k / 32, l = k % 32;
        uint8_t lo = ql[64 * half + 32 * (quarter % 2) + l];
        int low = quarter < 2 ? lo & 15 : lo >> 4;
        int high = (qh[32 * half + l] >> (2 * quarter)) & 3;
        int q = (low | high << 4) - 32;
        y[e] = d * (float)scales[e / 16] * (float)q;
    }
}

void mipr_kquant_to_f32(float *dst, const void *src, uint32_t ggml_type, size_t n)
{
    uint32_t block = 0, bytes = 0;
    if (!mipr_kquant_traits(ggml_type, &block, &bytes))
        return;
    const uint8_t *b = src;
    for (size_t i = 0; i < n / block; i++, b += bytes, dst += block) {
        switch (ggml_type) {
        case MIPR_GGML_Q4_1: q4_1(dst, b); break;
        case MIPR_GGML_Q5_0: q5(dst, b, 0); break;
        case MIPR_GGML_Q5_1: q5(dst, b, 1); break;
        case MIPR_GGML_Q2_K: q2_k(dst, b); break;
        case MIPR_GGML_Q3_K: q3_k(dst, b); break;
        case MIPR_GGML_Q4_K: q4_k(dst, b); break;
        case MIPR_GGML_Q5_K: q5_k(dst, b); break;
        default: q6_k(dst, b); break;
        }
    }
}
