/* Pruning mechanics on stories260K: every criterion and allocation, widths and alignment,
 * removal equal to silencing the neurons, compensation, export as llama/deci and back,
 * determinism, argument checks, and a duplicated neuron found by the MI procedure. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static mipr_model *model;
static mipr_tokenizer *tok;
static mipr_calib *calib;

static mipr_calib *calibrate(const mipr_model *m, size_t bytes, uint32_t samples)
{
    mipr_error err = {0};
    size_t len;
    char *text = mipr_test_read_file(
        mipr_test_data("text/tinystories/tinystories_train_head.txt"), &len);
    mipr_calib_opts o = {.window = 128, .n_samples = samples, .seed = 5, .heldout = 256};
    mipr_calib *c;
    CHECK_OK(mipr_calibrate(&c, m, tok, text, len < bytes ? len : bytes, &o, &err), &err);
    free(text);
    return c;
}

static mipr_prune_opts defaults(enum mipr_criterion crit, double ratio)
{
    mipr_prune_opts o = {.criterion = crit, .ratio = ratio, .align = 1, .first_layer = 1,
                         .last_layer = 0, .seed = 1, .mi_threshold = 0.3,
                         .width = {MIPR_WIDTH_TUNED, 0}};
    return o;
}

static float *logits(const mipr_model *m, const int32_t *ids, uint32_t n)
{
    mipr_error err = {0};
    mipr_engine *e;
    CHECK_OK(mipr_engine_new(&e, m, 128, 32, &err), &err);
    float *out = malloc((size_t)n * m->hp.vocab_size * sizeof *out);
    CHECK_OK(mipr_engine_forward(e, ids, n, 0, out, 1, &err), &err);
    mipr_engine_free(e);
    return out;
}

static void test_every_criterion(void)
{
    mipr_error err = {0};
    for (int crit = 0; crit < MIPR_CRIT_COUNT; crit++)
        for (int adaptive = 0; adaptive <= 1; adaptive++) {
            mipr_prune_opts o = defaults((enum mipr_criterion)crit, 0.3);
            o.adaptive = adaptive, o.align = 8;
            mipr_prune_plan p;
            mipr_model *pm;
            CHECK_OK(mipr_prune_plan_make(model, calib, &o, &p, &err), &err);
            CHECK_OK(mipr_prune_apply(model, calib, &p, &o, &pm, &err), &err);
            uint32_t kept = 0;
            for (uint32_t l = 0; l < 5; l++) {
                uint32_t count = 0;
                for (uint32_t j = 0; j < 172; j++)
                    count += p.keep[l][j];
                CHECK(count == p.width[l] && pm->layers[l].d_ff == count);
                CHECK(count % 8 == 0 && count >= 8);
                kept += count;
            }
            CHECK(kept > 0.6 * 860 && kept < 0.8 * 860); /* about 70 % kept */
            if (!adaptive)
                CHECK(p.width[0] == 120); /* 172 - 52 = 120, a multiple of 8 */
            mipr_prune_plan_free(&p);
            mipr_model_free(pm);
        }
}

/* Without compensation, the pruned model computes what the original computes with the
 * removed neurons' ffn_down columns set to zero. */
static void test_removal_is_silencing(void)
{
    mipr_error err = {0};
    mipr_prune_opts o = defaults(MIPR_CRIT_WANDA_SP, 0.4);
    o.adaptive = 1;
    mipr_prune_plan p;
    mipr_model *pm;
    CHECK_OK(mipr_prune_plan_make(model, calib, &o, &p, &err), &err);
    CHECK_OK(mipr_prune_apply(model, calib, &p, &o, &pm, &err), &err);
    mipr_model *silenced;
    CHECK_OK(mipr_load(&silenced, NULL, mipr_test_data("stories260K/stories260K.bin"), NULL, &err),
             &err);
    for (uint32_t l = 0; l < 5; l++) {
        float *down = mipr_model_alloc(silenced, 64 * 172 * sizeof(float));
        memcpy(down, silenced->layers[l].ffn_down.data, 64 * 172 * sizeof(float));
        for (uint32_t r = 0; r < 64; r++)
            for (uint32_t j = 0; j < 172; j++)
                down[r * 172 + j] *= p.keep[l][j];
        silenced->layers[l].ffn_down.data = down;
    }
    int32_t ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = i ? 3 + (i * 37) % 500 : 1;
    float *a = logits(pm, ids, 64), *b = logits(silenced, ids, 64);
    double worst = 0;
    for (size_t i = 0; i < (size_t)64 * 512; i++) { /* no fmax: gcc 12 aarch64 ICEs on it */
        double e = fabs(a[i] - b[i]);
        worst = e > worst ? e : worst;
    }
    printf("pruned vs silenced: max |logit difference| %.2e\n", worst);
    CHECK(worst < 1e-4);
    free(a), free(b);
    mipr_model_free(silenced);
    mipr_prune_plan_free(&p);
    mipr_model_free(pm);
}

static void write_pruned(const mipr_prune_opts *o, const char *path, mipr_model **pm)
{
    mipr_error err = {0};
    mipr_prune_plan p;
    CHECK_OK(mipr_prune_plan_make(model, calib, o, &p, &err), &err);
    CHECK_OK(mipr_prune_apply(model, calib, &p, o, pm, &err), &err);
    mipr_gguf_write_opts wo = {.type = MIPR_DT_F32, .on_fallback = NULL, .ctx = NULL};
    CHECK_OK(mipr_gguf_write(path, *pm, tok, &wo, &err), &err);
    mipr_prune_plan_free(&p);
}

/* Per-layer widths and a bias survive GGUF (deci) and give the same numbers back. */
static void test_export(void)
{
    mipr_error err = {0};
    const char *a = mipr_test_tmp("prune-a.gguf"), *b = mipr_test_tmp("prune-b.gguf");
    mipr_prune_opts o = defaults(MIPR_CRIT_MI, 0.3);
    o.adaptive = 1, o.bias = 1, o.least_squares = 1;
    mipr_model *pm, *pm2, *back;
    write_pruned(&o, a, &pm);
    write_pruned(&o, b, &pm2);
    size_t la, lb;
    char *fa = mipr_test_read_file(a, &la), *fb = mipr_test_read_file(b, &lb);
    CHECK(la == lb && memcmp(fa, fb, la) == 0); /* same inputs and seed, same bytes */
    int deci = 0;
    for (size_t i = 0; i + 4 <= la && !deci; i++)
        deci = memcmp(fa + i, "deci", 4) == 0;
    CHECK(deci && pm->layers[0].ffn_down_b.data);
    free(fa), free(fb);
    CHECK_OK(mipr_load(&back, NULL, a, NULL, &err), &err);
    int widths_differ = 0;
    for (uint32_t l = 0; l < 5; l++) {
        CHECK(back->layers[l].d_ff == pm->layers[l].d_ff && back->layers[l].ffn_down_b.data);
        widths_differ |= pm->layers[l].d_ff != pm->layers[0].d_ff;
    }
    CHECK(widths_differ);
    mipr_eval_result r1, r2;
    CHECK_OK(mipr_eval_tokens(pm, model, calib->heldout, calib->n_heldout, 128, 1, NULL, &r1,
                              &err), &err);
    CHECK_OK(mipr_eval_tokens(back, model, calib->heldout, calib->n_heldout, 128, 1, NULL, &r2,
                              &err), &err);
    CHECK(r1.perplexity == r2.perplexity && r1.mean_kl == r2.mean_kl && r1.mean_kl > 0);
    printf("mi adaptive + compensation at 0.3: held-out perplexity %.3f, KL %.4f\n",
           r1.perplexity, r1.mean_kl);
    mipr_model_free(back), mipr_model_free(pm), mipr_model_free(pm2);
    remove(a), remove(b);
}

/* A record opened without its samples (read one layer at a time) prunes exactly like the
 * fully loaded one, and a file changed under it is noticed. */
static void test_streamed_samples(void)
{
    mipr_error err = {0};
    const char *path = mipr_test_tmp("stream.mcal");
    CHECK_OK(mipr_calib_save(calib, path, 0, &err), &err);
    mipr_calib *open;
    CHECK_OK(mipr_calib_open(&open, path, &err), &err);
    CHECK(open->layers[0].samples == NULL && open->n_heldout == calib->n_heldout);
    const float *s;
    float *owned;
    CHECK_OK(mipr_calib_samples(open, 3, &s, &owned, &err), &err);
    CHECK(owned && memcmp(s, calib->layers[3].samples, 172 * calib->n_samples * 4) == 0);
    free(owned);
    mipr_prune_opts o = defaults(MIPR_CRIT_MI, 0.3);
    o.least_squares = 1, o.bias = 1;
    mipr_prune_plan p1, p2;
    mipr_model *m1, *m2;
    CHECK_OK(mipr_prune_plan_make(model, calib, &o, &p1, &err), &err);
    CHECK_OK(mipr_prune_plan_make(model, open, &o, &p2, &err), &err);
    CHECK_OK(mipr_prune_apply(model, calib, &p1, &o, &m1, &err), &err);
    CHECK_OK(mipr_prune_apply(model, open, &p2, &o, &m2, &err), &err);
    for (uint32_t l = 0; l < 5; l++)
        CHECK(memcmp(p1.keep[l], p2.keep[l], 172) == 0 &&
              memcmp(m1->layers[l].ffn_down.data, m2->layers[l].ffn_down.data,
                     (size_t)64 * m1->layers[l].d_ff * 4) == 0);
    FILE *f = fopen(path, "ab"); /* the file grows: reading samples now fails cleanly */
    fputc(0, f);
    fclose(f);
    CHECK(mipr_calib_samples(open, 1, &s, &owned, &err) == MIPR_ERR_IO && !owned);
    mipr_prune_plan_free(&p1), mipr_prune_plan_free(&p2);
    mipr_model_free(m1), mipr_model_free(m2);
    mipr_calib_free(open);
    remove(path);
}

static void test_bad_arguments(void)
{
    mipr_error err = {0};
    mipr_prune_plan p;
    mipr_prune_opts o = defaults(MIPR_CRIT_FLAP, 0.0);
    CHECK(mipr_prune_plan_make(model, calib, &o, &p, &err) == MIPR_ERR_ARG);
    o.ratio = 1.0;
    CHECK(mipr_prune_plan_make(model, calib, &o, &p, &err) == MIPR_ERR_ARG);
    o.ratio = 0.2, o.first_layer = 2, o.last_layer = 9;
    CHECK(mipr_prune_plan_make(model, calib, &o, &p, &err) == MIPR_ERR_ARG);
    CHECK(strstr(err.msg, "beyond") != NULL);
    o.first_layer = 1, o.last_layer = 0, o.align = 7;
    CHECK(mipr_prune_plan_make(model, calib, &o, &p, &err) == MIPR_ERR_ARG);
    /* guardrails: a layer range and a layer kept whole */
    uint8_t keep[5] = {0, 0, 1, 0, 0};
    o = defaults(MIPR_CRIT_ACTIVATION, 0.5);
    o.first_layer = 1, o.last_layer = 3, o.keep_whole = keep, o.min_width = 100;
    CHECK_OK(mipr_prune_plan_make(model, calib, &o, &p, &err), &err);
    CHECK(p.width[0] == 172 && p.width[2] == 172 && p.width[4] == 172);
    CHECK(p.width[1] == 100 && p.width[3] == 100); /* 86 raised to the minimum */
    mipr_prune_plan_free(&p);
}

/* Issue acceptance: a neuron duplicated into the model (its down column halved in both
 * copies, so the function is unchanged) has MI with its twin equal to its self-MI, and the
 * random-pair procedure finds the pair. */
static void test_duplicate_found(void)
{
    mipr_error err = {0};
    mipr_model *m;
    CHECK_OK(mipr_load(&m, NULL, mipr_test_data("stories260K/stories260K.bin"), NULL, &err), &err);
    const uint32_t l = 2, k = 40, d = 173;
    mipr_layer *L = &m->layers[l];
    float *gate = mipr_model_alloc(m, d * 64 * 4), *up = mipr_model_alloc(m, d * 64 * 4);
    float *down = mipr_model_alloc(m, 64 * d * 4);
    memcpy(gate, L->ffn_gate.data, 172 * 64 * 4), memcpy(up, L->ffn_up.data, 172 * 64 * 4);
    memcpy(gate + 172 * 64, gate + k * 64, 64 * 4), memcpy(up + 172 * 64, up + k * 64, 64 * 4);
    for (uint32_t r = 0; r < 64; r++) {
        memcpy(down + r * d, (const float *)L->ffn_down.data + r * 172, 172 * 4);
        down[r * d + k] *= 0.5f;
        down[r * d + 172] = down[r * d + k];
    }
    L->d_ff = d;
    L->ffn_gate = (mipr_tensor){.type = MIPR_DT_F32, .rows = d, .cols = 64, .data = gate};
    L->ffn_up = (mipr_tensor){.type = MIPR_DT_F32, .rows = d, .cols = 64, .data = up};
    L->ffn_down = (mipr_tensor){.type = MIPR_DT_F32, .rows = 64, .cols = d, .data = down};
    CHECK_OK(mipr_model_validate(m, "duplicated", &err), &err);
    mipr_calib *c = calibrate(m, 40000, 256);
    const mipr_calib_layer *C = &c->layers[l];
    mipr_mi_opts mo = {{MIPR_WIDTH_TUNED, 0}, 0, 1, NULL};
    mipr_mi_matrix mat;
    CHECK_OK(mipr_mi_all_pairs(C->samples, d, c->n_samples, &mo, &mat, &err), &err);
    printf("duplicate: MI(k, twin) %.6f, self-MI %.6f, normalised %.6f\n", mat.mi[k * d + 172],
           mat.mi[k * d + k], mipr_mi_normalized(&mat, k, 172));
    CHECK(mat.mi[k * d + 172] == mat.mi[k * d + k]);
    mipr_mi_matrix_free(&mat);
    mipr_redundancy_opts ro = {.threshold = 0.99, .target = 1, .max_draws = 200000, .seed = 1,
                               .mi = mo};
    mipr_redundancy r;
    CHECK_OK(mipr_find_redundant(C->samples, d, c->n_samples, &ro, &r, &err), &err);
    CHECK(r.marked == 1 && (r.is_marked[k] || r.is_marked[172]));
    CHECK(r.is_marked[172] ? r.partner[172] == k : r.partner[k] == 172);
    printf("duplicate found after %llu draws\n", (unsigned long long)r.draws);
    mipr_redundancy_free(&r);
    mipr_calib_free(c);
    mipr_model_free(m);
}

int main(void)
{
    mipr_error err = {0};
    CHECK_OK(mipr_load(&model, &tok, mipr_test_data("stories260K/stories260K.bin"),
                       mipr_test_data("stories260K/tok512.bin"), &err), &err);
    calib = calibrate(model, 30000, 128);
    test_every_criterion();
    test_removal_is_silencing();
    test_export();
    test_bad_arguments();
    test_streamed_samples();
    test_duplicate_found();
    mipr_calib_free(calib);
    mipr_tokenizer_free(tok);
    mipr_model_free(model);
    return mipr_test_finish("prune");
}
