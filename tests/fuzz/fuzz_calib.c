/* The .mcal calibration record. CRC-32s guard every byte, so random mutations would almost
 * never get past them: each input is read twice, as it is (the checksum checks) and with
 * every checksum made right again (what lies behind them: ranges, section layout, zstd
 * frames, content checks). The zstd content checksum stays: it guards zstd's output, which
 * the reader validates again anyway. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "testutil.h"

#define NAME "fuzz.mcal"
#define FIXED 48u
#define SEC 32u

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* zlib's CRC-32, bitwise: fuzzing inputs are small. */
static uint32_t crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

/* Length of the header as its fields place it, or 0 when they run past the end. */
static size_t header_size(const uint8_t *d, size_t n)
{
    if (n < FIXED)
        return 0;
    uint64_t off = FIXED + 4 * (uint64_t)get_u32(d + 12);
    for (int name = 0; name < 2; name++) {
        if (off + 4 > n)
            return 0;
        off += 4 + (uint64_t)get_u32(d + off);
    }
    return off + 4 <= n ? (size_t)off + 4 : 0;
}

static void fix_checksums(uint8_t *d, size_t n)
{
    size_t off = header_size(d, n);
    if (!off)
        return;
    put_u32(d + off - 4, crc32(0, d, off - 4));
    while (n - off >= SEC) {
        uint64_t stored = get_u64(d + off + 16);
        if (stored > n - off - SEC)
            return;
        put_u32(d + off + 28, crc32(crc32(0, d + off, 28), d + off + SEC, (size_t)stored));
        off += SEC + (size_t)stored;
    }
}

/* The model the seed records were made with (stories260K), loaded once. */
static const mipr_model *model(void)
{
    static mipr_model *m;
    static int tried;
    mipr_error err = {0};
    if (!tried++ && mipr_load(&m, NULL, mipr_test_data("stories260K/stories260K.bin"), NULL,
                              &err) != MIPR_OK)
        fuzz_fail("cannot load stories260K", err.msg);
    return m;
}

/* A record that the reader and the model check accept must prune and evaluate: a clean
 * result with finite perplexity and KL, never a crash, an out-of-bounds id or a NaN. */
static void use(const mipr_calib *c)
{
    const mipr_model *m = model();
    mipr_error err = {0};
    mipr_status st = mipr_calib_check_model(c, m, NAME, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st != MIPR_OK || c->n_heldout < 2)
        return;
    uint32_t n = c->n_heldout < 48 ? c->n_heldout : 48;
    mipr_heldout h = {c->heldout, n, c->window < 16 ? c->window : 16, 1};
    mipr_prune_opts o = {.criterion = c->n_samples >= 2 && c->window % 2 ? MIPR_CRIT_MI
                                                                         : MIPR_CRIT_ACTIVATION,
                         .ratio = 0.5, .bias = 1, .seed = c->seed};
    mipr_eval_result r;
    st = mipr_prune_trial(m, c, &o, &h, &r, &err);
    if (st == MIPR_OK && !(isfinite(r.perplexity) && isfinite(r.mean_kl)))
        fuzz_fail("a validated record gives a non-finite result", NULL);
    /* finite but absurd statistics (1e300) may still overflow the model: refused */
    if (st != MIPR_OK && st != MIPR_ERR_NOMEM && !strstr(err.msg, "not finite"))
        fuzz_fail("a validated record does not prune", err.msg);
}

static void read_once(const uint8_t *data, size_t size)
{
    mipr_calib *c = NULL;
    mipr_error err = {0};
    mipr_status st = mipr_calib_read(&c, data, size, NAME, &err);
    fuzz_expect_error(st, &err, NAME);
    if (st == MIPR_OK) {
        const float *s;
        float *owned;
        for (uint32_t l = 0; l < c->n_layers; l++) {
            if (mipr_calib_samples(c, l, &s, &owned, &err) != MIPR_OK)
                fuzz_fail("samples of a record that loaded", err.msg);
            free(owned);
        }
        use(c);
    }
    mipr_calib_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_once(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    fix_checksums(copy, size);
    if (size && memcmp(copy, data, size) != 0)
        read_once(copy, size);
    free(copy);
    return 0;
}
