/* The .mpk reader (runtime/mpk.c). Mutated bytes almost never keep their CRC-32s, which
 * would stop every input at the first checksum; so when the first byte is odd the target
 * first repairs the header, directory and section checksums (and skips the chunk pass) to
 * reach the parsers behind them. Inputs that open run through the engine, low-RAM too.
 * Decoding at open runs on a two-thread pool, so damage meets the parallel path too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mpk_format.h"

#define NAME "memory buffer"

static void repair(uint8_t *p, size_t n)
{
    mipr_crc32_table crc;
    mipr_crc32_init(&crc);
    if (n < MPK_HEADER_BYTES)
        return;
    uint64_t dir = mpk_get_u64(p + 24), count = mpk_get_u32(p + 32);
    if (dir <= n && count <= (n - dir) / MPK_DIR_ENTRY_BYTES) {
        for (uint64_t i = 0; i < count; i++) {
            uint8_t *e = p + dir + i * MPK_DIR_ENTRY_BYTES;
            uint64_t off = mpk_get_u64(e + 16), len = mpk_get_u64(e + 24);
            if (off <= n && len <= n - off)
                mpk_put_u32(e + 40, mipr_crc32(&crc, 0, p + off, (size_t)len));
        }
        mpk_put_u32(p + 36, mipr_crc32(&crc, 0, p + dir, (size_t)(count * MPK_DIR_ENTRY_BYTES)));
    }
    mpk_put_u32(p + 60, mipr_crc32(&crc, 0, p, 60));
}

/* A low-RAM model opened without the CRC pass decodes its chunks only when the engine uses
 * them: damage then surfaces as a format error from the forward pass, which must say so
 * (zstd's frame checksum catches what the CRC would have). */
static void run_streamed(const mipr_model *m)
{
    mipr_engine *e = NULL;
    mipr_error err = {0};
    uint32_t v = m->hp.vocab_size;
    int32_t toks[2] = {(int32_t)(1 % v), (int32_t)(v - 1)};
    float *logits = malloc((size_t)v * sizeof *logits);
    mipr_status st = logits ? mipr_engine_new(&e, m, 4, 2, &err) : MIPR_ERR_NOMEM;
    if (st == MIPR_OK)
        st = mipr_engine_forward(e, toks, 2, 0, logits, 0, &err);
    if (st != MIPR_OK && st != MIPR_ERR_NOMEM &&
        (st != MIPR_ERR_FORMAT || !strstr(err.msg, NAME)))
        fuzz_fail("a streamed model fails without a format error", err.msg);
    free(logits);
    mipr_engine_free(e);
}

/* One pool for the whole run: starting threads for every input would dominate. */
static mipr_pool *shared_pool(void)
{
    static mipr_pool *pool;
    mipr_error err = {0};
    if (!pool && mipr_pool_new(&pool, 2, &err) != MIPR_OK)
        pool = NULL;
    return pool;
}

/* verify's promise, on every file it passes: changing any single byte is detected. A few
 * positions per input (spread over the file, chosen by the input), META and every other
 * section included as the fuzzer grows valid files. */
static void check_flips(uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    for (uint32_t k = 0; k < 8 && n; k++) {
        size_t at = (size_t)((h + k * 2654435761u) % n);
        uint8_t mask = (uint8_t)(1u << ((h >> k) & 7));
        p[at] ^= mask;
        mipr_mpk_info info;
        mipr_error err = {0};
        mipr_status st = mipr_mpk_inspect(p, n, NAME, &info, &err);
        p[at] ^= mask;
        if (st == MIPR_OK) {
            mipr_mpk_info_free(&info);
            char what[64];
            snprintf(what, sizeof what, "byte %zu of %zu, xor 0x%02x", at, n, mask);
            fuzz_fail("verify accepts a changed byte", what);
        }
        fuzz_expect_error(st, &err, NAME);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fix = size > 0 && (data[size - 1] & 1);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    if (fix)
        repair(copy, size);
    for (int low = 0; low < 2; low++) {
        mipr_model *m = NULL;
        mipr_tokenizer *t = NULL;
        mipr_error err = {0};
        mipr_mpk_options o = {.low_ram = low, .skip_verify = fix,
                              .pool = low ? NULL : shared_pool()};
        mipr_status st = mipr_mpk_open_memory(&m, &t, copy, size, &o, &err);
        fuzz_expect_error(st, &err, NAME);
        if (st == MIPR_OK) {
            if (low && fix)
                run_streamed(m);
            else
                fuzz_run_model(m);
            fuzz_use_tokenizer(t);
        }
        mipr_tokenizer_free(t);
        mipr_model_free(m);
    }
    mipr_mpk_info info;
    mipr_error err = {0};
    mipr_status st = mipr_mpk_inspect(copy, size, NAME, &info, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st == MIPR_OK) {
        mipr_mpk_info_free(&info);
        check_flips(copy, size);
    }
    free(copy);
    return 0;
}
