/* The .mpk layout (docs/FORMAT.md is the specification): constants and little-endian helpers
 * shared by the reader (runtime/mpk*.c) and the writer (core/io/mpk_write.c). Internal header. */
#ifndef MIPR_MPK_FORMAT_H
#define MIPR_MPK_FORMAT_H

#include <stdint.h>
#include <string.h>

#define MPK_MAGIC "MIPRMPK\n" /* 8 bytes; the newline catches text-mode transfers */
#define MPK_VERSION_MAJOR 1u
#define MPK_VERSION_MINOR 1u /* 1.1: HPAR tail (family, RoPE), slots 3 and 26..28 */

/* TOKN's own version (its head's last u32; 0 in files written before it existed). Version 1
 * appends flags, the pre-tokenizer and the merges after the tokens. */
#define MPK_TOKN_VERSION 1u
enum {
    MPK_TOKN_BYTE_LEVEL = 1,
    MPK_TOKN_IGNORE_MERGES = 2,
    MPK_TOKN_ADD_BOS = 4,
    MPK_TOKN_ADD_EOS = 8,
    MPK_TOKN_FUSE_UNK = 16,
};
#define MPK_HEADER_BYTES 64u
#define MPK_DIR_ENTRY_BYTES 48u
#define MPK_ALIGN 64u          /* every section and chunk starts on this boundary */
#define MPK_MAX_SECTIONS 4096u
#define MPK_MAX_TENSORS (16u + 16u * 1024u)
#define MPK_MAX_CHUNK_RAW (16u << 20) /* a chunk's decoded bytes */
/* Decoded bytes may exceed stored bytes by at most this factor (plus MPK_RATIO_SLACK): it
 * bounds what a small hostile file can make the reader allocate. Real weights compress less
 * than 2x; runs of zeros (an unused bias) compress more, hence the slack. */
#define MPK_MAX_RATIO 64u
#define MPK_RATIO_SLACK (64u << 10)

/* section flags */
#define MPK_SEC_REQUIRED 1u /* a reader that does not know the tag must refuse the file */

enum mpk_codec { MPK_CODEC_RAW = 0, MPK_CODEC_ZSTD = 1 };
enum mpk_filter { MPK_FILTER_NONE = 0, MPK_FILTER_PLANES = 1 };

/* Tensor slots: where a tensor goes in the model. Layer tensors carry their layer index. */
enum mpk_slot {
    MPK_SLOT_TOK_EMBD = 0,
    MPK_SLOT_OUTPUT_NORM = 1,
    MPK_SLOT_OUTPUT = 2,
    MPK_SLOT_ROPE_FREQS = 3, /* 1.1 */
    MPK_SLOT_ATTN_NORM = 16,
    MPK_SLOT_WQ,
    MPK_SLOT_WK,
    MPK_SLOT_WV,
    MPK_SLOT_WO,
    MPK_SLOT_FFN_NORM,
    MPK_SLOT_FFN_GATE,
    MPK_SLOT_FFN_UP,
    MPK_SLOT_FFN_DOWN,
    MPK_SLOT_FFN_DOWN_B,
    MPK_SLOT_BQ, /* 1.1: q/k/v biases */
    MPK_SLOT_BK,
    MPK_SLOT_BV,
    MPK_SLOT_END
};
#define MPK_NO_LAYER 0xFFFFFFFFu

/* Fixed part of the HPAR section; per-layer FFN widths follow (u32 each). */
#define MPK_HPAR_FIXED_BYTES 112u
#define MPK_HPAR_TIED 1u
/* 1.1 appends, after the per-layer widths: u32 family, u32 rope type, f32 linear RoPE scale.
 * A 1.0 file (no tail) is llama, interleaved, unscaled. */
#define MPK_HPAR_TAIL_BYTES 12u
/* Fixed part of a TENS entry; n_chunks chunk records of MPK_CHUNK_BYTES follow. */
#define MPK_TENSOR_FIXED_BYTES 40u
#define MPK_CHUNK_BYTES 24u

static inline uint32_t mpk_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t mpk_get_u64(const uint8_t *p)
{
    return (uint64_t)mpk_get_u32(p) | (uint64_t)mpk_get_u32(p + 4) << 32;
}

static inline float mpk_get_f32(const uint8_t *p)
{
    uint32_t u = mpk_get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void mpk_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void mpk_put_u64(uint8_t *p, uint64_t v)
{
    mpk_put_u32(p, (uint32_t)v);
    mpk_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline void mpk_put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    mpk_put_u32(p, u);
}

/* The two functions below are used by core's writer too, across the library boundary: a
 * shared runtime exports them. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif
/* "blk.3.ffn_up.weight" style names (GGUF's) for messages and tables. */
const char *mipr_mpk_slot_name(uint32_t slot);

/* Byte planes: element bytes regrouped so that byte k of every element is contiguous.
 * Float exponents then form runs that zstd compresses well. */
void mipr_mpk_planes_split(uint8_t *dst, const uint8_t *src, size_t n_elems, size_t elem);
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
void mipr_mpk_planes_join(uint8_t *dst, const uint8_t *src, size_t n_elems, size_t elem);

#endif
