/* Firmware self-check, printed over semihosting; the exit status says pass (0) or fail (1).
 *
 * 1. The kernel table on inputs whose results are exact small integers (or known closed
 *    forms), against values computed here with plain integer arithmetic: the generic table,
 *    and every SIMD table this firmware has, which must also agree with generic on every
 *    kernel over pseudo-random inputs of many shapes (compare.c).
 * 2. The runtime, freestanding: a small model with pseudo-random weights built in memory,
 *    the engine and a greedy sampler. After start-up (model, engine, sampler) nothing may
 *    allocate: the board counts every malloc (the link wraps the allocators). Batched
 *    prefill and one-token decode must give the same logits bit for bit.
 * It also reports the arena's high-water mark and the instructions per decoded token. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "compare.h"
#include "mipr_runtime.h"

static int failures;

static void check(int ok, const char *table, const char *what)
{
    if (!ok) {
        printf("FAIL %s: %s\n", table, what);
        failures++;
    }
}

/* ---- kernels ---------------------------------------------------------------------------- */

enum { ROWS = 3, COLS = 64, NB = COLS / MIPR_QK8_0 };

/* Weights in -7..7 and activations in {-127, 0, 127}: every product and sum is an integer
 * a float holds exactly, and Q8_0 quantizes x with scale 1 (max |x| = 127 in every block). */
static int w_int(int r, int c)
{
    return (r * 7 + c * 3) % 15 - 7;
}

static int x_int(int c)
{
    return 127 * ((c * 5) % 3 - 1);
}

struct operands {
    float w[ROWS * COLS], x[2 * COLS];
    uint16_t w16[ROWS * COLS], wb16[ROWS * COLS];
    mipr_block_q8_0 wq[ROWS * NB];
    mipr_block_q4_0 w4[ROWS * NB];
    float want[ROWS];
};

static void make_operands(struct operands *o)
{
    for (int r = 0; r < ROWS; r++) {
        long sum = 0;
        for (int c = 0; c < COLS; c++) {
            int i = r * COLS + c;
            o->w[i] = (float)w_int(r, c);
            o->w16[i] = mipr_f32_to_f16(o->w[i]);
            o->wb16[i] = mipr_f32_to_bf16(o->w[i]);
            o->wq[r * NB + c / MIPR_QK8_0].qs[c % MIPR_QK8_0] = (int8_t)w_int(r, c);
            /* Q4_0 stores q = w + 8: element j < 16 in the low nibble of qs[j], j >= 16 in
             * the high nibble of qs[j - 16] */
            int j = c % MIPR_QK4_0;
            uint8_t *q4 = &o->w4[r * NB + c / MIPR_QK4_0].qs[j % 16];
            *q4 = (uint8_t)(j < 16 ? (*q4 & 0xF0) | (w_int(r, c) + 8)
                                   : (*q4 & 0x0F) | ((w_int(r, c) + 8) << 4));
            sum += (long)w_int(r, c) * x_int(c);
        }
        for (int b = 0; b < NB; b++)
            o->wq[r * NB + b].d = o->w4[r * NB + b].d = mipr_f32_to_f16(1.0f);
        o->want[r] = (float)sum;
    }
    for (int c = 0; c < COLS; c++) {
        o->x[c] = (float)x_int(c);
        o->x[COLS + c] = o->x[c]; /* the same row again for gemm */
    }
}

static void check_matmuls(const struct mipr_kernels *k, const struct operands *o)
{
    const void *w[MIPR_DT_COUNT] = {o->w, o->w16, o->wb16, o->wq, o->w4};
    for (int t = 0; t < MIPR_DT_COUNT; t++) {
        float y[2 * ROWS], row[COLS];
        k->gemv[t](y, w[t], o->x, ROWS, COLS);
        int ok = 1;
        for (int r = 0; r < ROWS; r++)
            ok &= y[r] == o->want[r];
        check(ok, k->isa, mipr_dtype_name((enum mipr_dtype)t));
        k->gemm[t](y, w[t], o->x, 2, ROWS, COLS);
        ok = 1;
        for (int r = 0; r < ROWS; r++)
            ok &= y[r] == o->want[r] && y[ROWS + r] == o->want[r];
        check(ok, k->isa, "gemm");
        k->row_to_f32[t](row, w[t], 1, COLS);
        ok = 1;
        for (int c = 0; c < COLS; c++)
            ok &= row[c] == (float)w_int(1, c);
        check(ok, k->isa, "row_to_f32");
    }
}

static void check_vectors(const struct mipr_kernels *k, const struct operands *o)
{
    check(k->dot(o->w, o->x, COLS) == o->want[0], k->isa, "dot");
    float y[COLS];
    for (int c = 0; c < COLS; c++)
        y[c] = 1.0f;
    k->axpy(y, 2.0f, o->w, COLS);
    int ok = 1;
    for (int c = 0; c < COLS; c++)
        ok &= y[c] == 1.0f + 2.0f * (float)w_int(0, c);
    check(ok, k->isa, "axpy");

    float x3[16], w2[16], out[16];
    for (int i = 0; i < 16; i++)
        x3[i] = 3.0f, w2[i] = 2.0f;
    k->rmsnorm(out, x3, w2, 16, 1e-5f); /* 2 * 3 / sqrt(9 + 1e-5) */
    ok = 1;
    for (int i = 0; i < 16; i++)
        ok &= fabsf(out[i] - 2.0f) < 1e-5f;
    check(ok, k->isa, "rmsnorm");

    float p[2] = {0.0f, logf(3.0f)};
    k->softmax(p, 2);
    check(fabsf(p[0] - 0.25f) < 1e-6f && fabsf(p[1] - 0.75f) < 1e-6f, k->isa, "softmax");

    float g[2] = {0.0f, 1.0f}, u[2] = {5.0f, 2.0f}, h[2];
    k->swiglu(h, g, u, 2); /* silu(1) * 2 = 2 / (1 + e^-1) */
    check(h[0] == 0.0f && fabsf(h[1] - 1.4621172f) < 1e-6f, k->isa, "swiglu");

    float v[4] = {1.0f, 2.0f, 3.0f, 4.0f}, cs[2] = {0.0f, 1.0f}; /* a quarter turn */
    k->rope(v, 2, 2, 2, cs);
    check(v[0] == -2.0f && v[1] == 1.0f && v[2] == -4.0f && v[3] == 3.0f, k->isa, "rope");

    /* two positions of a head of 3, rows 4 floats apart */
    float q[3] = {1.0f, 2.0f, 3.0f}, kv[8] = {1, 1, 1, 9, 2, 0, -1, 9}, sc[2], mix[3];
    k->attn_scores(sc, q, kv, 4, 2, 3, 2.0f);
    check(sc[0] == 3.0f && sc[1] == -0.5f, k->isa, "attn_scores");
    float a[2] = {1.0f, 2.0f};
    k->attn_mix(mix, a, kv, 4, 2, 3);
    check(mix[0] == 5.0f && mix[1] == 1.0f && mix[2] == -1.0f, k->isa, "attn_mix");
}

static void check_conversions(void)
{
    check(mipr_f32_to_f16(1.5f) == 0x3E00 && mipr_f16_to_f32(0x3E00) == 1.5f, "generic", "f16");
    check(mipr_f32_to_bf16(1.5f) == 0x3FC0 && mipr_bf16_to_f32(0x3FC0) == 1.5f, "generic",
          "bf16");
}

_Static_assert(MIPR_DT_COUNT == 5, "selfcheck: give the new weight type its operands");

static struct operands ops;

static void check_kernels(void)
{
    static const char *const isas[] = {"generic", "avx2", "neon", "helium"};
    make_operands(&ops);
    check_conversions();
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const struct mipr_kernels *k = mipr_kernels_for(isas[i]);
        if (!k)
            continue;
        int before = failures;
        check_matmuls(k, &ops);
        check_vectors(k, &ops);
        unsigned long compared = 0;
#if defined(MIPR_FW_COMPARE)
        if (k != mipr_kernels_generic())
            failures += fw_compare_tables(k, &compared);
#endif
        printf("kernels %-8s %s", k->isa, failures == before ? "ok" : "FAILED");
        if (compared)
            printf(" (%lu comparisons with generic)", compared);
        printf("\n");
    }
    printf("kernel table in use: %s\n", mipr_kernels()->isa);
}

/* ---- runtime ---------------------------------------------------------------------------- */

enum { DIM = 32, LAYERS = 2, HEADS = 4, KV_HEADS = 2, FF = 48, VOCAB = 64, CTX = 32,
       PROMPT = 8, DECODE = 16 };

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static mipr_status tensor(mipr_model *m, mipr_tensor *t, uint32_t rows, uint32_t cols,
                          float scale, uint32_t *seed, mipr_error *err)
{
    float *d = mipr_model_alloc(m, (size_t)rows * cols * sizeof *d);
    if (!d)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "selfcheck: no memory for a %ux%u tensor",
                              rows, cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        d[i] = scale ? scale * ((float)(lcg(seed) & 0xFFFF) / 32768.0f - 1.0f) : 1.0f;
    *t = (mipr_tensor){.type = MIPR_DT_F32, .rows = rows, .cols = cols, .data = d};
    return MIPR_OK;
}

static mipr_status make_model(mipr_model **out, mipr_error *err)
{
    mipr_status st = mipr_model_new(out, LAYERS, err);
    if (st)
        return st;
    mipr_model *m = *out;
    m->hp = (mipr_hparams){.dim = DIM, .n_layers = LAYERS, .n_heads = HEADS,
                           .n_kv_heads = KV_HEADS, .head_size = DIM / HEADS,
                           .n_rot = DIM / HEADS, .vocab_size = VOCAB, .seq_len = CTX,
                           .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    uint32_t seed = 7, kv = KV_HEADS * (DIM / HEADS);
    st = tensor(m, &m->tok_embd, VOCAB, DIM, 0.5f, &seed, err);
    if (!st)
        st = tensor(m, &m->output_norm, 1, DIM, 0.0f, &seed, err);
    m->output = m->tok_embd;
    m->tied_output = 1;
    for (uint32_t l = 0; l < LAYERS && !st; l++) {
        mipr_layer *L = &m->layers[l];
        L->d_ff = FF;
        if ((st = tensor(m, &L->attn_norm, 1, DIM, 0.0f, &seed, err)) ||
            (st = tensor(m, &L->wq, DIM, DIM, 0.2f, &seed, err)) ||
            (st = tensor(m, &L->wk, kv, DIM, 0.2f, &seed, err)) ||
            (st = tensor(m, &L->wv, kv, DIM, 0.2f, &seed, err)) ||
            (st = tensor(m, &L->wo, DIM, DIM, 0.2f, &seed, err)) ||
            (st = tensor(m, &L->ffn_norm, 1, DIM, 0.0f, &seed, err)) ||
            (st = tensor(m, &L->ffn_gate, FF, DIM, 0.2f, &seed, err)) ||
            (st = tensor(m, &L->ffn_up, FF, DIM, 0.2f, &seed, err)) ||
            (st = tensor(m, &L->ffn_down, DIM, FF, 0.2f, &seed, err)))
            break;
    }
    return st ? st : mipr_model_validate(m, "selfcheck model", err);
}

static float prefill_logits[PROMPT * VOCAB], step_logits[VOCAB];

/* Prefill and decode agree bit for bit; then greedy decoding, counting instructions. */
static mipr_status run_engine(mipr_engine *e, mipr_error *err)
{
    int32_t tokens[PROMPT + DECODE];
    for (int i = 0; i < PROMPT; i++)
        tokens[i] = (int32_t)(i * 11 % VOCAB);
    mipr_status st = mipr_engine_forward(e, tokens, PROMPT, 0, prefill_logits, 1, err);
    for (uint32_t pos = 0; !st && pos < PROMPT; pos++) {
        st = mipr_engine_forward(e, &tokens[pos], 1, pos, step_logits, 0, err);
        if (!st)
            check(!memcmp(step_logits, prefill_logits + pos * VOCAB, sizeof step_logits),
                  "runtime", "prefill and decode logits differ");
    }
    uint64_t t0 = board_instructions();
    for (uint32_t pos = PROMPT; !st && pos < PROMPT + DECODE - 1; pos++) {
        tokens[pos] = mipr_argmax(step_logits, VOCAB);
        st = mipr_engine_forward(e, &tokens[pos], 1, pos, step_logits, 0, err);
    }
    uint64_t per_token = (board_instructions() - t0) / (DECODE - 1);
    int finite = 1;
    for (int i = 0; i < VOCAB; i++)
        finite &= isfinite(step_logits[i]);
    check(finite, "runtime", "logits are not finite");
    if (!st)
        printf("engine: %d-token prefill == decode; %llu instructions per decoded token "
               "(dim %d, %d layers)\n", PROMPT, (unsigned long long)per_token, DIM, LAYERS);
    return st;
}

static void check_runtime(void)
{
    mipr_error err = {0};
    mipr_model *m = NULL;
    mipr_engine *e = NULL;
    mipr_sampler s = {0};
    mipr_status st = make_model(&m, &err);
    if (!st)
        st = mipr_engine_new(&e, m, CTX, PROMPT, &err);
    if (!st)
        st = mipr_sampler_init(&s, VOCAB, 0.0f, 0.0f, 1, &err);
    unsigned long allocs = board_allocations();
    if (!st)
        st = run_engine(e, &err);
    if (!st)
        (void)mipr_sampler_sample(&s, step_logits);
    unsigned long after = board_allocations() - allocs;
    if (st)
        printf("FAIL runtime: %s: %s\n", mipr_status_name(st), err.msg);
    check(!st, "runtime", "engine");
    printf("allocations: %lu at start-up (%llu bytes), %lu after\n", allocs,
           board_allocated_bytes(), after);
    check(after == 0, "runtime", "allocation after start-up");
    mipr_sampler_free(&s);
    mipr_engine_free(e);
    mipr_model_free(m);
}

int main(void)
{
    char err[128];
    if (mipr_kernels_init(err, sizeof err))
        printf("note: %s\n", err);
    check_kernels();
    check_runtime();
    printf("arena: %lu of %lu bytes used\n", (unsigned long)board_arena_used(),
           (unsigned long)board_arena_size());
    printf("selfcheck: %s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
