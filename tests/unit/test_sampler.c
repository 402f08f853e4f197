/* Sampler: argmax ties, greedy, determinism, run.c's random stream, top-p, frequencies. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define N_DRAWS 20000

static mipr_sampler make(uint32_t n, float temp, float top_p, uint64_t seed)
{
    mipr_sampler s;
    mipr_error err;
    CHECK_OK(mipr_sampler_init(&s, n, temp, top_p, seed, &err), &err);
    return s;
}

/* Draws with fresh copies of logits (sampling overwrites them); counts per token. */
static void draw(mipr_sampler *s, const float *logits, uint32_t n, int draws, int *count)
{
    float *x = malloc(n * sizeof *x);
    memset(count, 0, n * sizeof *count);
    for (int i = 0; i < draws; i++) {
        memcpy(x, logits, n * sizeof *x);
        int32_t tok = mipr_sampler_sample(s, x);
        CHECK(tok >= 0 && (uint32_t)tok < n);
        if (tok >= 0 && (uint32_t)tok < n)
            count[tok]++;
    }
    free(x);
}

static void test_argmax(void)
{
    const float a[] = {1, 3, 3, 2};
    CHECK(mipr_argmax(a, 4) == 1);
    const float b[] = {7, 7, 7};
    CHECK(mipr_argmax(b, 3) == 0);
    CHECK(mipr_argmax(b, 1) == 0);
    CHECK(mipr_argmax(b, 0) == -1);
    const float c[] = {NAN, 1, 2, NAN};
    CHECK(mipr_argmax(c, 4) == 2);
    const float d[] = {-INFINITY, -1e30f, -INFINITY};
    CHECK(mipr_argmax(d, 3) == 1);
}

static void test_greedy(void)
{
    uint64_t rng = 99;
    float x[64], y[64];
    mipr_sampler s = make(64, 0.0f, 0.9f, 5);
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 64; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)(rng >> 40) / (float)(1 << 24) * 10.0f - 5.0f;
        }
        x[round % 64] = x[(round + 7) % 64]; /* a tie now and then */
        memcpy(y, x, sizeof x);
        CHECK(mipr_sampler_sample(&s, y) == mipr_argmax(x, 64));
    }
    mipr_sampler_free(&s);
}

static void test_determinism(void)
{
    float logits[16];
    for (int i = 0; i < 16; i++)
        logits[i] = (float)(i % 5) * 0.3f;
    int32_t a[300], b[300], c[300];
    const uint64_t seeds[3] = {42, 42, 43};
    int32_t *out[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        mipr_sampler s = make(16, 0.8f, 0.9f, seeds[k]);
        for (int i = 0; i < 300; i++) {
            float x[16];
            memcpy(x, logits, sizeof x);
            out[k][i] = mipr_sampler_sample(&s, x);
        }
        mipr_sampler_free(&s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* seed 0 must not be the degenerate all-zero xorshift state */
    float flat[8] = {0};
    int count[8];
    mipr_sampler s = make(8, 1.0f, 0.0f, 0);
    draw(&s, flat, 8, 800, count);
    for (int i = 0; i < 8; i++)
        CHECK(count[i] > 50);
    mipr_sampler_free(&s);
}

/* With 256 equal logits, plain sampling returns floor(coin * 256): the top 8 bits of
 * run.c's random_f32, so the stream can be checked against xorshift64* itself. */
static void test_run_c_stream(void)
{
    float flat[256] = {0}, x[256];
    uint64_t state = 1234567;
    mipr_sampler s = make(256, 1.0f, 1.0f, state);
    for (int i = 0; i < 1000; i++) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        uint32_t u = (uint32_t)((state * 0x2545F4914F6CDD1Dull) >> 32);
        memcpy(x, flat, sizeof x);
        CHECK(mipr_sampler_sample(&s, x) == (int32_t)(u >> 24));
    }
    mipr_sampler_free(&s);
}

static void test_top_p(void)
{
    float dominant[32];
    for (int i = 0; i < 32; i++)
        dominant[i] = 0.0f;
    dominant[17] = 10.0f; /* p ~ 0.9986 */
    int count[32];
    mipr_sampler s = make(32, 1.0f, 0.5f, 7);
    draw(&s, dominant, 32, 2000, count);
    CHECK(count[17] == 2000);
    mipr_sampler_free(&s);

    /* p = 0.5, 0.3, 0.2 and top-p 0.7: the nucleus is {0, 1}, drawn 5:3 */
    const float three[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    s = make(3, 1.0f, 0.7f, 11);
    draw(&s, three, 3, N_DRAWS, count);
    CHECK(count[2] == 0);
    CHECK(fabs(count[0] / (double)N_DRAWS - 0.625) < 0.02);
    mipr_sampler_free(&s);

    /* tiny vocabularies where run.c's pre-filter drops everything: the top token */
    const float two[2] = {0.0f, 0.0f};
    s = make(2, 1.0f, 0.1f, 3);
    draw(&s, two, 2, 100, count);
    CHECK(count[0] == 100);
    mipr_sampler_free(&s);
    const float one[1] = {2.0f};
    s = make(1, 1.0f, 0.3f, 3);
    draw(&s, one, 1, 10, count);
    CHECK(count[0] == 10);
    mipr_sampler_free(&s);
}

static void test_frequencies(void)
{
    const double p[3] = {0.2, 0.5, 0.3};
    float logits[3];
    for (int i = 0; i < 3; i++)
        logits[i] = (float)log(p[i]) + 4.0f; /* softmax ignores the shift */
    int count[3];
    mipr_sampler s = make(3, 1.0f, 0.0f, 2024);
    draw(&s, logits, 3, N_DRAWS, count);
    for (int i = 0; i < 3; i++) {
        double f = count[i] / (double)N_DRAWS;
        CHECK(fabs(f - p[i]) < 0.02);
        printf("token %d: p %.2f, drawn %.4f\n", i, p[i], f);
    }
    mipr_sampler_free(&s);

    /* temperature 2 flattens: p ∝ sqrt(p) */
    s = make(3, 2.0f, 1.0f, 2025);
    draw(&s, logits, 3, N_DRAWS, count);
    double z = sqrt(0.2) + sqrt(0.5) + sqrt(0.3);
    for (int i = 0; i < 3; i++)
        CHECK(fabs(count[i] / (double)N_DRAWS - sqrt(p[i]) / z) < 0.02);
    mipr_sampler_free(&s);
}

static void test_init_errors(void)
{
    mipr_sampler s;
    mipr_error err;
    CHECK(mipr_sampler_init(&s, 0, 1.0f, 0.9f, 1, &err) == MIPR_ERR_ARG);
    CHECK(mipr_sampler_init(&s, 10, -1.0f, 0.9f, 1, &err) == MIPR_ERR_ARG);
    CHECK(mipr_sampler_init(&s, 10, NAN, 0.9f, 1, &err) == MIPR_ERR_ARG);
    CHECK(mipr_sampler_init(&s, 10, INFINITY, 0.9f, 1, &err) == MIPR_ERR_ARG);
    CHECK(mipr_sampler_init(&s, 10, 1.0f, NAN, 1, &err) == MIPR_ERR_ARG);
    mipr_sampler_free(&s); /* safe after a failed init */
    mipr_sampler_free(NULL);
}

int main(void)
{
    test_argmax();
    test_greedy();
    test_determinism();
    test_run_c_stream();
    test_top_p();
    test_frequencies();
    test_init_errors();
    return mipr_test_finish("sampler");
}
