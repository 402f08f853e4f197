/* The cached reference (mipr_eval_ref_new / mipr_eval_tokens_ref), which the criteria
 * benchmark uses to score hundreds of pruned models against one dense model, gives what
 * mipr_eval_tokens with the reference model gives: the same perplexity bit for bit (the
 * pruned model runs the same way) and KL within float rounding of the cached log-probs.
 * Small on purpose: the cross suites run it under qemu. */
#include <math.h>
#include <string.h>

#include "testutil.h"

int main(void)
{
    mipr_error err = {0};
    mipr_model *m, *pm;
    mipr_tokenizer *tok;
    mipr_calib *c;
    size_t len;
    CHECK_OK(mipr_load(&m, &tok, mipr_test_data("stories260K/stories260K.bin"),
                       mipr_test_data("stories260K/tok512.bin"), &err), &err);
    char *text = mipr_test_read_file(
        mipr_test_data("text/tinystories/tinystories_train_head.txt"), &len);
    mipr_calib_opts co = {.window = 128, .n_samples = 32, .max_tokens = 400};
    CHECK_OK(mipr_calibrate(&c, m, tok, text, len, &co, &err), &err);
    free(text);
    text = mipr_test_read_file(mipr_test_data("text/tinystories/validation_100.txt"), &len);
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    size_t n = mipr_tokenizer_encode(tok, text, len < 1500 ? len : 1500, 0, ids);
    free(text);

    mipr_prune_opts o = {.criterion = MIPR_CRIT_FLAP, .ratio = 0.3, .align = 1, .bias = 1};
    mipr_prune_plan p;
    CHECK_OK(mipr_prune_plan_make(m, c, &o, &p, &err), &err);
    CHECK_OK(mipr_prune_apply(m, c, &p, &o, &pm, &err), &err);
    mipr_prune_plan_free(&p);

    for (uint32_t window = 32; window <= 256; window *= 8) {
        mipr_eval_result dense, cached_dense, direct, cached;
        mipr_eval_ref *ref;
        CHECK_OK(mipr_eval_tokens(m, NULL, ids, n, window, 1, NULL, &dense, &err), &err);
        CHECK_OK(mipr_eval_ref_new(&ref, m, ids, n, window, 1, NULL, &cached_dense, &err), &err);
        CHECK_OK(mipr_eval_tokens(pm, m, ids, n, window, 1, NULL, &direct, &err), &err);
        CHECK_OK(mipr_eval_tokens_ref(pm, ref, NULL, &cached, &err), &err);
        CHECK(cached_dense.tokens == n && cached_dense.nll_sum == dense.nll_sum);
        CHECK(cached.tokens == n && cached.nll_sum == direct.nll_sum);
        CHECK(direct.mean_kl > 0.01);
        CHECK(fabs(cached.mean_kl - direct.mean_kl) <= 1e-5 * direct.mean_kl);
        printf("window %u, %zu tokens: perplexity %.4f (dense %.4f), KL %.8f direct, %.8f "
               "cached\n", window, n, cached.perplexity, dense.perplexity, direct.mean_kl,
               cached.mean_kl);
        /* against itself: no divergence */
        CHECK_OK(mipr_eval_tokens_ref(m, ref, NULL, &cached, &err), &err);
        CHECK(cached.mean_kl < 1e-6);
        mipr_eval_ref_free(ref);
    }
    mipr_model *other;
    mipr_eval_ref *ref;
    mipr_eval_result r;
    CHECK_OK(mipr_load(&other, NULL, mipr_test_data("babyllama-tok105/model5000.bin"),
                       mipr_test_data("babyllama-tok105/tok105.bin"), &err), &err);
    CHECK_OK(mipr_eval_ref_new(&ref, m, ids, 100, 64, 1, NULL, &r, &err), &err);
    CHECK(mipr_eval_tokens_ref(other, ref, NULL, &r, &err) == MIPR_ERR_ARG);
    CHECK(strstr(err.msg, "vocabulary") != NULL);
    mipr_eval_ref_free(ref);
    CHECK(mipr_eval_ref_new(&ref, m, ids, 0, 64, 1, NULL, &r, &err) == MIPR_ERR_ARG && !ref);
    mipr_eval_ref_free(NULL);
    mipr_model_free(other);
    mipr_model_free(pm);
    mipr_model_free(m);
    mipr_tokenizer_free(tok);
    mipr_calib_free(c);
    free(ids);
    return mipr_test_finish("eval_ref");
}
