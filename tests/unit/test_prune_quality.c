/* The pruning acceptance on real models: stories260K and babyllama-tok105, calibrated on
 * TinyStories training text, evaluated on the start of tinystories_val.txt (the benchmark
 * suite scores the whole file). Every criterion prunes at ratios 0.1..0.5 and the result
 * runs; at every ratio `mi` has lower perplexity than `random`, each averaged over 3 seeds.
 * Release-only (label "quality"): it runs ~100 evaluations. */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define EVAL_BYTES 12000

typedef struct {
    mipr_model *m;
    mipr_tokenizer *tok;
    mipr_calib *c;
    int32_t *ids;
    size_t n;
} subject;

static void setup(subject *s, const char *model, const char *tokp)
{
    mipr_error err = {0};
    size_t len;
    CHECK_OK(mipr_load(&s->m, &s->tok, mipr_test_data(model), mipr_test_data(tokp), &err), &err);
    char *text = mipr_test_read_file(
        mipr_test_data("text/tinystories/tinystories_train_head.txt"), &len);
    mipr_calib_opts o = {.window = 256, .n_samples = 256, .max_tokens = 40000, .heldout = 512};
    CHECK_OK(mipr_calibrate(&s->c, s->m, s->tok, text, len, &o, &err), &err);
    free(text);
    text = mipr_test_read_file(mipr_test_data("text/tinystories/tinystories_val.txt"), &len);
    s->ids = malloc((EVAL_BYTES + 2) * sizeof *s->ids);
    s->n = mipr_tokenizer_encode(s->tok, text, EVAL_BYTES, 0, s->ids);
    free(text);
}

static double perplexity(const subject *s, enum mipr_criterion crit, double ratio, uint64_t seed)
{
    mipr_error err = {0};
    mipr_prune_opts o = {.criterion = crit, .ratio = ratio, .align = 1, .first_layer = 1,
                         .seed = seed, .width = {MIPR_WIDTH_TUNED, 0}};
    mipr_prune_plan p;
    mipr_model *pm;
    mipr_eval_result r;
    CHECK_OK(mipr_prune_plan_make(s->m, s->c, &o, &p, &err), &err);
    CHECK_OK(mipr_prune_apply(s->m, s->c, &p, &o, &pm, &err), &err);
    CHECK_OK(mipr_eval_tokens(pm, NULL, s->ids, s->n, 256, mipr_tokenizer_bos(s->tok), NULL, &r,
                              &err), &err);
    CHECK(isfinite(r.perplexity) && r.tokens == s->n);
    mipr_prune_plan_free(&p);
    mipr_model_free(pm);
    return r.perplexity;
}

static void run(const char *name, const char *model, const char *tokp)
{
    subject s;
    setup(&s, model, tokp);
    printf("%s (%zu evaluation tokens): perplexity by criterion and ratio\n", name, s.n);
    printf("ratio ");
    for (int c = 0; c < MIPR_CRIT_COUNT; c++)
        printf(" %10s", mipr_criterion_name((enum mipr_criterion)c));
    printf("\n");
    for (int step = 1; step <= 5; step++) {
        double ratio = 0.1 * step, ppl[MIPR_CRIT_COUNT];
        for (int c = 0; c < MIPR_CRIT_COUNT; c++) {
            int seeds = c == MIPR_CRIT_MI || c == MIPR_CRIT_RANDOM ? 3 : 1;
            ppl[c] = 0.0;
            for (int k = 0; k < seeds; k++)
                ppl[c] += perplexity(&s, (enum mipr_criterion)c, ratio, 11 + k) / seeds;
        }
        printf("%5.1f ", ratio);
        for (int c = 0; c < MIPR_CRIT_COUNT; c++)
            printf(" %10.3f", ppl[c]);
        printf("\n");
        CHECK(ppl[MIPR_CRIT_MI] < ppl[MIPR_CRIT_RANDOM]);
    }
    free(s.ids);
    mipr_calib_free(s.c);
    mipr_tokenizer_free(s.tok);
    mipr_model_free(s.m);
}

int main(void)
{
    run("stories260K", "stories260K/stories260K.bin", "stories260K/tok512.bin");
    run("babyllama-tok105", "babyllama-tok105/model5000.bin", "babyllama-tok105/tok105.bin");
    return mipr_test_finish("prune_quality");
}
