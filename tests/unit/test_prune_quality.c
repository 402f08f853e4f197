/* The pruning acceptance on real models: stories260K and babyllama-tok105, calibrated on
 * TinyStories training text, evaluated on tinystories_val.txt. Scoring the whole file
 * ~100 times would take hours, so the evaluation windows are spread evenly over the whole
 * file (EVAL_WINDOWS windows of 255 tokens each, from start to end). Every criterion prunes
 * at ratios 0.1..0.5 (default mi settings: null threshold, every pair, merging) and the
 * result runs; at every ratio `mi` is never worse than `wanda-sp` by more than 1 %
 * perplexity (it is wanda-sp plus merges that must pay for themselves) and better than
 * `random` (3 seeds averaged). Release-only (label "quality"). */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define EVAL_WINDOWS 24
#define WINDOW 256

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
    int32_t *all = malloc((len + 2) * sizeof *all);
    size_t n_all = mipr_tokenizer_encode(s->tok, text, len, 0, all), per = WINDOW - 1;
    s->ids = malloc(EVAL_WINDOWS * per * sizeof *s->ids);
    for (size_t w = 0; w < EVAL_WINDOWS; w++) /* window w starts at w/(W-1) of the file */
        memcpy(s->ids + w * per, all + (n_all - per) * w / (EVAL_WINDOWS - 1), per * sizeof *all);
    s->n = EVAL_WINDOWS * per;
    free(all);
    free(text);
}

static double perplexity(const subject *s, enum mipr_criterion crit, double ratio, uint64_t seed)
{
    mipr_error err = {0};
    mipr_prune_opts o = {.criterion = crit, .ratio = ratio, .align = 1, .first_layer = 1,
                         .bias = 1, /* mipr prune's default */
                         .seed = seed, .width = {MIPR_WIDTH_TUNED, 0}};
    mipr_prune_plan p;
    mipr_model *pm;
    mipr_eval_result r;
    CHECK_OK(mipr_prune_plan_make(s->m, s->c, &o, &p, &err), &err);
    CHECK_OK(mipr_prune_apply(s->m, s->c, &p, &o, &pm, &err), &err);
    CHECK_OK(mipr_eval_tokens(pm, NULL, s->ids, s->n, WINDOW, mipr_tokenizer_bos(s->tok), NULL,
                              &r, &err), &err);
    CHECK(isfinite(r.perplexity) && r.tokens == s->n);
    mipr_prune_plan_free(&p);
    mipr_model_free(pm);
    return r.perplexity;
}

static void run(const char *name, const char *model, const char *tokp)
{
    subject s;
    setup(&s, model, tokp);
    printf("%s (%zu evaluation tokens in %d windows across tinystories_val.txt): perplexity by "
           "criterion and ratio\n", name, s.n, EVAL_WINDOWS);
    printf("ratio ");
    for (int c = 0; c < MIPR_CRIT_COUNT; c++)
        printf(" %10s", mipr_criterion_name((enum mipr_criterion)c));
    printf("\n");
    for (int step = 1; step <= 5; step++) {
        double ratio = 0.1 * step, ppl[MIPR_CRIT_COUNT];
        for (int c = 0; c < MIPR_CRIT_COUNT; c++) {
            int seeds = c == MIPR_CRIT_RANDOM ? 3 : 1; /* mi: the seed orders only ties */
            ppl[c] = 0.0;
            for (int k = 0; k < seeds; k++)
                ppl[c] += perplexity(&s, (enum mipr_criterion)c, ratio, 11 + k) / seeds;
        }
        printf("%5.1f ", ratio);
        for (int c = 0; c < MIPR_CRIT_COUNT; c++)
            printf(" %10.3f", ppl[c]);
        printf("\n");
        CHECK(ppl[MIPR_CRIT_MI] < ppl[MIPR_CRIT_RANDOM]);
        CHECK(ppl[MIPR_CRIT_MI] <= 1.01 * ppl[MIPR_CRIT_WANDA_SP]);
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
