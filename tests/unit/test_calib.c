/* Calibration on stories260K: statistics and samples against a direct recomputation from
 * every activation, determinism (seed, threads), the .mcal round trip, and damaged files
 * (every kind of corruption must give a clean error naming the file, never a crash). */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define TEXT_BYTES 20000
#define N_SAMPLES 64

typedef struct fixture {
    mipr_model *m;
    mipr_tokenizer *tok;
    char *text;
    size_t len;
} fixture;

static void fixture_load(fixture *f)
{
    mipr_error err = {0};
    CHECK_OK(mipr_load(&f->m, &f->tok, mipr_test_data("stories260K/stories260K.bin"),
                       mipr_test_data("stories260K/tok512.bin"), &err),
             &err);
    f->text = mipr_test_read_file(mipr_test_data("text/tinystories/tinystories_train_head.txt"),
                                  &f->len);
    if (f->len > TEXT_BYTES)
        f->len = TEXT_BYTES;
}

static mipr_calib *calibrate(const fixture *f, uint32_t window, uint64_t max_tokens,
                             uint64_t seed, mipr_pool *pool)
{
    mipr_error err = {0};
    mipr_calib_opts o = {.max_tokens = max_tokens, .window = window, .n_samples = N_SAMPLES,
                         .seed = seed, .model_name = "stories260K", .text_name = "head",
                         .pool = pool};
    mipr_calib *c = NULL;
    CHECK_OK(mipr_calibrate(&c, f->m, f->tok, f->text, f->len, &o, &err), &err);
    return c;
}

/* ---- the reference: every activation of every text token, kept ------------------------- */

typedef struct reference {
    uint32_t n_layers;
    size_t n_tokens;
    float **act; /* per layer: n_tokens x d_ff, row g = stream token g */
    size_t base; /* first stream token of the current window */
} reference;

static void keep_all(void *ctx, uint32_t layer, uint32_t pos, uint32_t n, uint32_t d_ff,
                     const float *act)
{
    reference *r = ctx;
    for (uint32_t t = 0; t < n; t++)
        if (pos + t > 0) /* position 0 is BOS: not a calibration token */
            memcpy(r->act[layer] + (r->base + pos + t - 1) * d_ff, act + (size_t)t * d_ff,
                   d_ff * sizeof(float));
}

/* Cuts the text as the calibration must (BOS + window-1 stream tokens) but runs the engine
 * in batches of 37 tokens, so that the blocks merged differ from calibration's. */
static void reference_run(const fixture *f, uint32_t window, size_t max_tokens, reference *r)
{
    mipr_error err = {0};
    int32_t *ids = malloc((f->len + 2) * sizeof *ids), *win = malloc(window * sizeof *win);
    size_t n = mipr_tokenizer_encode(f->tok, f->text, f->len, 0, ids), per = window - 1;
    if (max_tokens && n > max_tokens)
        n = max_tokens;
    r->n_layers = f->m->hp.n_layers;
    r->n_tokens = n;
    r->act = calloc(r->n_layers, sizeof *r->act);
    for (uint32_t l = 0; l < r->n_layers; l++)
        r->act[l] = malloc(n * f->m->layers[l].d_ff * sizeof(float));
    mipr_engine *e;
    CHECK_OK(mipr_engine_new(&e, f->m, window, 37, &err), &err);
    mipr_engine_set_observer(e, keep_all, r);
    for (r->base = 0; r->base < n; r->base += per) {
        size_t take = n - r->base < per ? n - r->base : per;
        win[0] = mipr_tokenizer_bos(f->tok);
        memcpy(win + 1, ids + r->base, take * sizeof *ids);
        CHECK_OK(mipr_engine_forward(e, win, (uint32_t)take + 1, 0, NULL, 0, &err), &err);
    }
    mipr_engine_free(e);
    free(ids);
    free(win);
}

static void reference_free(reference *r)
{
    for (uint32_t l = 0; l < r->n_layers; l++)
        free(r->act[l]);
    free(r->act);
}

static int close_to(double got, double want, double scale)
{
    return fabs(got - want) <= 1e-9 * scale;
}

/* (a) statistics recomputed directly, in double, from all activations. */
static void check_stats(const mipr_calib_layer *L, const float *act, size_t n)
{
    int bad = 0;
    for (uint32_t j = 0; j < L->d_ff && bad < 5; j++) {
        double sum = 0, sum_abs = 0, sum_sq = 0, m2 = 0;
        float lo = act[j], hi = act[j];
        for (size_t t = 0; t < n; t++) {
            double x = act[t * L->d_ff + j];
            sum += x;
            sum_abs += fabs(x);
            sum_sq += x * x;
            lo = act[t * L->d_ff + j] < lo ? act[t * L->d_ff + j] : lo;
            hi = act[t * L->d_ff + j] > hi ? act[t * L->d_ff + j] : hi;
        }
        double mean = sum / (double)n;
        for (size_t t = 0; t < n; t++)
            m2 += (act[t * L->d_ff + j] - mean) * (act[t * L->d_ff + j] - mean);
        /* a mean near 0 is judged against the size of the values it averages */
        int ok = close_to(L->mean[j], mean, fabs(mean) + sum_abs / (double)n) &&
                 close_to(L->m2[j] / (double)L->count, m2 / (double)n, m2 / (double)n) &&
                 close_to(L->sum_abs[j], sum_abs, sum_abs) &&
                 close_to(L->sum_sq[j], sum_sq, sum_sq) && L->min[j] == lo && L->max[j] == hi;
        if (!ok && bad++ < 5)
            fprintf(stderr, "neuron %u: mean %.17g/%.17g var %.17g/%.17g min %g/%g max %g/%g\n",
                    j, L->mean[j], mean, L->m2[j] / (double)L->count, m2 / (double)n,
                    (double)L->min[j], (double)lo, (double)L->max[j], (double)hi);
    }
    CHECK(bad == 0);
}

/* (b) the samples are the activations of the tokens at sample_pos, bit for bit. */
static void check_samples(const mipr_calib *c, uint32_t l, const float *act)
{
    const mipr_calib_layer *L = &c->layers[l];
    size_t bad = 0;
    for (uint32_t k = 0; k < c->n_samples; k++)
        for (uint32_t j = 0; j < L->d_ff; j++)
            bad += memcmp(&L->samples[(size_t)j * c->n_samples + k],
                          &act[c->sample_pos[k] * L->d_ff + j], sizeof(float)) != 0;
    CHECK(bad == 0);
}

static void check_against_reference(const fixture *f, const mipr_calib *c, uint32_t window,
                                    size_t max_tokens)
{
    reference r;
    reference_run(f, window, max_tokens, &r);
    CHECK(c->tokens == r.n_tokens);
    CHECK(c->window == window && c->dim == f->m->hp.dim && c->n_layers == r.n_layers);
    for (uint32_t k = 0; k < c->n_samples; k++)
        CHECK(c->sample_pos[k] < c->tokens && (k == 0 || c->sample_pos[k] > c->sample_pos[k - 1]));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        CHECK(c->layers[l].count == r.n_tokens);
        CHECK(c->layers[l].d_ff == f->m->layers[l].d_ff);
        check_stats(&c->layers[l], r.act[l], r.n_tokens);
        check_samples(c, l, r.act[l]);
    }
    reference_free(&r);
}

/* ---- record comparison ------------------------------------------------------------------ */

static int same_bytes(const void *a, const void *b, size_t n)
{
    return n == 0 || (a && b && memcmp(a, b, n) == 0);
}

static int records_equal(const mipr_calib *a, const mipr_calib *b)
{
    if (a->n_layers != b->n_layers || a->dim != b->dim || a->window != b->window ||
        a->n_samples != b->n_samples || a->tokens != b->tokens || a->seed != b->seed ||
        strcmp(a->model, b->model) || strcmp(a->text, b->text) ||
        !same_bytes(a->sample_pos, b->sample_pos, a->n_samples * sizeof *a->sample_pos))
        return 0;
    for (uint32_t l = 0; l < a->n_layers; l++) {
        const mipr_calib_layer *x = &a->layers[l], *y = &b->layers[l];
        size_t d = x->d_ff;
        if (x->d_ff != y->d_ff || x->count != y->count || !same_bytes(x->mean, y->mean, d * 8) ||
            !same_bytes(x->m2, y->m2, d * 8) || !same_bytes(x->sum_abs, y->sum_abs, d * 8) ||
            !same_bytes(x->sum_sq, y->sum_sq, d * 8) || !same_bytes(x->min, y->min, d * 4) ||
            !same_bytes(x->max, y->max, d * 4) ||
            !same_bytes(x->samples, y->samples, d * a->n_samples * 4))
            return 0;
    }
    return 1;
}

/* ---- file helpers ----------------------------------------------------------------------- */

static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static uint32_t crc32_of(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* Header size as docs/CALIB_FORMAT.md lays it out: 48 fixed bytes, d_ff[n_layers], two
 * length-prefixed names, the CRC. */
static size_t header_size(const uint8_t *f)
{
    size_t off = 48 + 4 * (size_t)rd32(f + 12);
    off += 4 + rd32(f + off);
    off += 4 + rd32(f + off);
    return off + 4;
}

/* Expects loading `bytes` to fail cleanly: an error status, no record, the file named. */
static int load_fails(const char *path, const uint8_t *bytes, size_t n)
{
    write_bytes(path, bytes, n);
    mipr_error err = {0};
    mipr_calib *c = (mipr_calib *)1;
    mipr_status st = mipr_calib_load(&c, path, &err);
    int ok = st != MIPR_OK && c == NULL && strstr(err.msg, path) != NULL &&
             (st == MIPR_ERR_FORMAT || st == MIPR_ERR_UNSUPPORTED);
    if (st == MIPR_OK)
        mipr_calib_free(c);
    return ok;
}

static int flip_fails(const char *path, const uint8_t *file, size_t n, size_t pos,
                      uint8_t mask, uint8_t *scratch)
{
    memcpy(scratch, file, n);
    scratch[pos] ^= mask;
    int ok = load_fails(path, scratch, n);
    if (!ok)
        fprintf(stderr, "flipping byte %zu with 0x%02x went unnoticed\n", pos, mask);
    return ok;
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_round_trip(const mipr_calib *c, const char *path)
{
    mipr_error err = {0};
    mipr_calib *back = NULL;
    CHECK_OK(mipr_calib_save(c, path, 0, &err), &err);
    CHECK_OK(mipr_calib_load(&back, path, &err), &err);
    CHECK(records_equal(c, back));
    mipr_calib_free(back);
    const char *p19 = mipr_test_tmp("level19.mcal");
    CHECK_OK(mipr_calib_save(c, p19, 19, &err), &err);
    CHECK_OK(mipr_calib_load(&back, p19, &err), &err);
    CHECK(records_equal(c, back));
    mipr_calib_free(back);
    remove(p19);
    CHECK(mipr_calib_save(c, path, 99, &err) == MIPR_ERR_ARG);
    CHECK(mipr_calib_save(c, mipr_test_tmp("no/such/dir/x.mcal"), 0, &err) == MIPR_ERR_IO);
}

/* Every byte of the header, of each section header and of each frame's start, plus an even
 * spread over the whole file; each flipped alone, with one bit and with all bits. */
static void test_flips(const uint8_t *file, size_t n)
{
    const char *bad = mipr_test_tmp("flipped.mcal");
    uint8_t *scratch = malloc(n);
    size_t tried = 0, failed_cleanly = 0;
    size_t hs = header_size(file);
    for (size_t pos = 0; pos < hs; pos++, tried++)
        failed_cleanly += flip_fails(bad, file, n, pos, (uint8_t)(1u << (pos % 8)), scratch);
    for (size_t off = hs; off + 32 <= n; off += 32 + (size_t)rd64(file + off + 16))
        for (size_t pos = off; pos < off + 48 && pos < n; pos++, tried++)
            failed_cleanly += flip_fails(bad, file, n, pos, pos % 2 ? 0xFF : 0x10, scratch);
    for (size_t i = 0; i < 256; i++, tried++) {
        size_t pos = i * (n - 1) / 255;
        failed_cleanly += flip_fails(bad, file, n, pos, (uint8_t)(1u << (i % 8)), scratch);
    }
    fprintf(stderr, "flipped %zu bytes of %zu; all must fail\n", tried, n);
    CHECK(tried >= 200 && failed_cleanly == tried);
    for (size_t k = 0; k < 64; k++)
        CHECK(load_fails(bad, file, k * n / 64));
    remove(bad);
    free(scratch);
}

/* A section with an unknown tag (and bytes that are not even zstd) is skipped wherever it
 * sits, as long as its checksum holds. */
static size_t make_unknown(uint8_t *out, int good_crc)
{
    static const char body[] = "a future section this reader does not know";
    size_t n = sizeof body - 1;
    wr32(out, 0x4F4F4F46u); /* "FOOO" */
    wr32(out + 4, 7);
    wr64(out + 8, 12345);
    wr64(out + 16, n);
    memcpy(out + 32, body, n);
    uint32_t crc = crc32_of(crc32_of(0, out, 28), out + 32, n);
    wr32(out + 28, good_crc ? crc : crc ^ 1);
    return 32 + n;
}

static void test_unknown_sections(const mipr_calib *c, const uint8_t *file, size_t n)
{
    const char *path = mipr_test_tmp("unknown.mcal");
    size_t hs = header_size(file), first_end = hs + 32 + (size_t)rd64(file + hs + 16);
    size_t where[3] = {hs, first_end, n};
    uint8_t extra[128];
    uint8_t *buf = malloc(n + sizeof extra);
    for (int good = 1; good >= 0; good--)
        for (int i = 0; i < 3; i++) {
            size_t e = make_unknown(extra, good), at = where[i];
            memcpy(buf, file, at);
            memcpy(buf + at, extra, e);
            memcpy(buf + at + e, file + at, n - at);
            if (!good) {
                CHECK(load_fails(path, buf, n + e));
                continue;
            }
            write_bytes(path, buf, n + e);
            mipr_error err = {0};
            mipr_calib *back = NULL;
            CHECK_OK(mipr_calib_load(&back, path, &err), &err);
            CHECK(records_equal(c, back));
            mipr_calib_free(back);
        }
    remove(path);
    free(buf);
}

/* A header claiming shapes far larger than the file (checksum recomputed, so only the size
 * checks stand in the way) must be refused before any large allocation. */
static void test_hostile_header(const uint8_t *file, size_t n)
{
    const char *path = mipr_test_tmp("hostile.mcal");
    uint8_t *buf = malloc(n);
    size_t hs = header_size(file);
    static const struct { size_t off; uint32_t v; } edits[] = {
        {24, 0xFFFFFFFFu}, {24, 1u << 20}, {48, 1u << 20}, {12, 1024}, {12, 0}, {20, 1}};
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        memcpy(buf, file, n);
        wr32(buf + edits[i].off, edits[i].v);
        if (edits[i].off == 24)
            wr64(buf + 32, (uint64_t)1 << 40); /* as many tokens as samples need */
        if (edits[i].off != 12)
            wr32(buf + hs - 4, crc32_of(0, buf, hs - 4));
        CHECK(load_fails(path, buf, n));
    }
    remove(path);
    free(buf);
}

static void test_file(const mipr_calib *c)
{
    const char *path = mipr_test_tmp("calib.mcal");
    test_round_trip(c, path);
    size_t n = 0;
    uint8_t *file = (uint8_t *)mipr_test_read_file(path, &n);
    CHECK(n > 64 && memcmp(file, "MIPRCAL\0", 8) == 0 && rd32(file + 8) == 1);
    test_flips(file, n);
    test_unknown_sections(c, file, n);
    test_hostile_header(file, n);
    free(file);
    remove(path);
}

/* (f) */
static void test_too_short(const fixture *f)
{
    mipr_error err = {0};
    mipr_calib *c = NULL;
    mipr_calib_opts o = {.window = 64, .n_samples = N_SAMPLES};
    const char *s = "Once upon a time";
    CHECK(mipr_calibrate(&c, f->m, f->tok, s, strlen(s), &o, &err) == MIPR_ERR_ARG);
    CHECK(c == NULL && strstr(err.msg, "too short") && strstr(err.msg, "64 samples"));
    o.max_tokens = 10;
    CHECK(mipr_calibrate(&c, f->m, f->tok, f->text, f->len, &o, &err) == MIPR_ERR_ARG);
    CHECK(strstr(err.msg, "10 tokens") != NULL);
    o.max_tokens = 0;
    CHECK(mipr_calibrate(&c, f->m, f->tok, "", 0, &o, &err) == MIPR_ERR_ARG);
    o.window = 1;
    CHECK(mipr_calibrate(&c, f->m, f->tok, f->text, f->len, &o, &err) == MIPR_ERR_ARG);
}

/* (c) and (g) on the first 1500 tokens: seeds, and a pool of 2 threads. */
static void test_determinism(const fixture *f)
{
    mipr_error err = {0};
    mipr_pool *pool = NULL;
    CHECK_OK(mipr_pool_new(&pool, 2, &err), &err);
    mipr_calib *a = calibrate(f, 256, 1500, 7, NULL), *b = calibrate(f, 256, 1500, 7, NULL);
    mipr_calib *other = calibrate(f, 256, 1500, 8, NULL);
    mipr_calib *threaded = calibrate(f, 256, 1500, 7, pool);
    CHECK(a->tokens == 1500);
    CHECK(records_equal(a, b));
    CHECK(records_equal(a, threaded));
    CHECK(memcmp(a->sample_pos, other->sample_pos, N_SAMPLES * sizeof *a->sample_pos) != 0);
    mipr_calib_free(a);
    mipr_calib_free(b);
    mipr_calib_free(other);
    mipr_calib_free(threaded);
    mipr_pool_free(pool);
}

/* Statistics only: a record without samples saves and loads too. */
static void test_no_samples(const fixture *f)
{
    mipr_error err = {0};
    mipr_calib_opts o = {.max_tokens = 200, .window = 64};
    mipr_calib *c = NULL, *back = NULL;
    CHECK_OK(mipr_calibrate(&c, f->m, f->tok, f->text, f->len, &o, &err), &err);
    CHECK(c->n_samples == 0 && c->sample_pos == NULL && c->layers[0].samples == NULL);
    CHECK(c->tokens == 200 && c->layers[4].count == 200 && strcmp(c->model, f->m->name) == 0);
    const char *path = mipr_test_tmp("nosamples.mcal");
    CHECK_OK(mipr_calib_save(c, path, 1, &err), &err);
    CHECK_OK(mipr_calib_load(&back, path, &err), &err);
    CHECK(records_equal(c, back));
    remove(path);
    mipr_calib_free(back);
    mipr_calib_free(c);
}

/* A record built by hand: shapes checked, special finite floats kept bit for bit, and the
 * writer refusing what the reader would refuse (NaN and infinities included). */
static void test_handmade(void)
{
    mipr_error err = {0};
    uint32_t d_ff[2] = {3, 5}, zero = 0;
    mipr_calib *c = NULL, *back = NULL;
    CHECK(mipr_calib_new(&c, 0, d_ff, 2, &err) == MIPR_ERR_ARG && c == NULL);
    CHECK(mipr_calib_new(&c, 1, &zero, 2, &err) == MIPR_ERR_ARG && c == NULL);
    CHECK_OK(mipr_calib_new(&c, 2, d_ff, 2, &err), &err);
    CHECK(c->layers[1].d_ff == 5 && c->layers[1].mean[4] == 0 && c->layers[1].samples[9] == 0);
    const char *path = mipr_test_tmp("handmade.mcal");
    CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG); /* width and window unset */
    c->dim = 8;
    c->window = 16;
    c->tokens = 10;
    c->sample_pos[0] = 2;
    c->sample_pos[1] = 9;
    static const float odd[] = {-0.0f, 1e-45f, -3e38f, 3e38f, 0x1p-149f, 3.5f};
    for (uint32_t l = 0; l < 2; l++) {
        c->layers[l].count = 10;
        for (uint32_t j = 0; j < 2 * d_ff[l]; j++)
            c->layers[l].samples[j] = odd[j % 6];
        c->layers[l].min[0] = -0.0f;
        c->layers[l].m2[1] = -0.0;
    }
    CHECK_OK(mipr_calib_save(c, path, 0, &err), &err);
    CHECK_OK(mipr_calib_load(&back, path, &err), &err);
    CHECK(records_equal(c, back));
    mipr_calib_free(back);
    static const float bad[] = {INFINITY, -INFINITY, NAN};
    for (int k = 0; k < 3; k++) {
        c->layers[1].samples[7] = bad[k];
        CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG && strstr(err.msg, path) &&
              strstr(err.msg, "SAMP (layer 1): sample 1 of neuron 3"));
        c->layers[1].samples[7] = 1.0f;
        c->layers[0].min[2] = bad[k];
        CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG &&
              strstr(err.msg, "STAT (layer 0): min of neuron 2"));
        c->layers[0].min[2] = 0.0f;
        c->layers[1].sum_sq[4] = bad[k];
        CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG &&
              strstr(err.msg, "sum_sq of neuron 4"));
        c->layers[1].sum_sq[4] = 0.0;
    }
    c->sample_pos[1] = 2;
    CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG);
    c->sample_pos[1] = 10;
    CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG);
    c->sample_pos[1] = 9;
    c->layers[1].count = 11;
    CHECK(mipr_calib_save(c, path, 0, &err) == MIPR_ERR_ARG && strstr(err.msg, path));
    remove(path);
    mipr_calib_free(c);
}

/* Positions spread over the whole text, not bunched at its start. */
static void check_spread(const mipr_calib *c)
{
    double mean = 0;
    for (uint32_t k = 0; k < c->n_samples; k++)
        mean += (double)c->sample_pos[k] / c->n_samples;
    CHECK(c->sample_pos[0] < c->tokens / 8 && c->sample_pos[c->n_samples - 1] > c->tokens * 7 / 8);
    CHECK(fabs(mean - (double)c->tokens / 2) < (double)c->tokens / 8);
}

int main(void)
{
    fixture f;
    fixture_load(&f);
    mipr_calib *c = calibrate(&f, 256, 0, 1, NULL);
    fprintf(stderr, "calibrated %llu tokens\n", (unsigned long long)c->tokens);
    check_against_reference(&f, c, 256, 0);
    check_spread(c);
    test_file(c);
    mipr_calib_free(c);
    /* windows of one text token each, and a token limit */
    c = calibrate(&f, 2, 300, 3, NULL);
    check_against_reference(&f, c, 2, 300);
    mipr_calib_free(c);
    test_determinism(&f);
    test_too_short(&f);
    test_no_samples(&f);
    test_handmade();
    free(f.text);
    mipr_tokenizer_free(f.tok);
    mipr_model_free(f.m);
    return mipr_test_finish("calib");
}
