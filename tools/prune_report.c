/* mipr prune's report: a text summary on stderr and, on request, the same as JSON. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "prune_report.h"

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int uniform_widths(const mipr_model *m)
{
    for (uint32_t l = 1; l < m->hp.n_layers; l++)
        if (m->layers[l].d_ff != m->layers[0].d_ff)
            return 0;
    return 1;
}

/* Per layer: what the MI threshold means and what was merged; a layer with nothing
 * significant says so. */
static void mi_text(const prune_args *a, const prune_state *s)
{
    const mipr_prune_plan *p = &s->plan;
    if (p->mi_null_level > 0.0)
        fprintf(stderr, "mi          threshold per layer from a permutation null (per-pair "
                "level %.4f); merged when R^2 >= %.2f\n", p->mi_null_level,
                a->o.mi_min_r2 > 0 ? a->o.mi_min_r2 : 0.4);
    else
        fprintf(stderr, "mi          fixed threshold %.3f; merged when R^2 >= %.2f\n",
                a->o.mi_threshold, a->o.mi_min_r2 > 0 ? a->o.mi_min_r2 : 0.4);
    for (uint32_t l = 0; l < p->n_layers; l++) {
        if (p->mi_threshold[l] == 0.0 && p->redundant[l] == 0 && p->mi_significant[l] == 0) {
            fprintf(stderr, "  layer %u   not pruned\n", l);
            continue;
        }
        fprintf(stderr, "  layer %u   threshold %.4f (Gaussian |rho| %.3f): %llu pairs above "
                "it%s; %u neurons merged\n", l, p->mi_threshold[l], p->mi_rho[l],
                (unsigned long long)p->mi_significant[l],
                p->mi_significant[l] ? "" : ", nothing significant", p->redundant[l]);
    }
}

/* The architecture mipr_gguf_write gives the pruned model (core/io/gguf_write.c). */
static const char *gguf_arch(const mipr_model *m)
{
    if (!uniform_widths(m))
        return "deci";
    return m->hp.family == MIPR_FAMILY_QWEN2 && !m->rope_freqs.data && !mipr_model_has_ffn_bias(m)
               ? "qwen2"
               : "llama";
}

void prune_report_text(const prune_args *a, const prune_state *s)
{
    const mipr_model *m = s->m, *p = s->pruned;
    fprintf(stderr, "\n== mipr prune report ==\n");
    fprintf(stderr, "criterion   %s, %s widths%s (seed %llu)\n", s->dec.label,
            a->o.adaptive ? "adaptive" : "uniform", a->o.bias ? ", bias compensation" : "",
            (unsigned long long)a->o.seed);
    if (s->dec.used_policy)
        fprintf(stderr, "policy      %s\n", s->dec.policy.reason);
    if (a->o.criterion == MIPR_CRIT_MI)
        mi_text(a, s);
    fprintf(stderr, "layers      ");
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        fprintf(stderr, "%s%u->%u", l ? " " : "", m->layers[l].d_ff, p->layers[l].d_ff);
    fprintf(stderr, "\nparameters  %llu -> %llu (%.1f%% fewer)\n",
            (unsigned long long)mipr_model_n_params(m), (unsigned long long)mipr_model_n_params(p),
            100.0 * (1.0 - (double)mipr_model_n_params(p) / (double)mipr_model_n_params(m)));
    if (s->dec.selection_kl >= 0.0)
        fprintf(stderr, "selection   %zu held-out tokens: KL %.6f nats/token (chosen on them)\n",
                s->dec.selection.n, s->dec.selection_kl);
    fprintf(stderr, "reporting   %llu other held-out tokens, window %u: perplexity %.4f -> "
            "%.4f, KL %.6f nats/token\n", (unsigned long long)s->after.tokens, s->h.window,
            s->before.perplexity, s->after.perplexity, s->after.mean_kl);
    if (s->text_ids)
        fprintf(stderr, "eval text   %s, %llu tokens: perplexity %.4f -> %.4f, KL %.6f\n",
                a->eval_text, (unsigned long long)s->text_after.tokens,
                s->text_before.perplexity, s->text_after.perplexity, s->text_after.mean_kl);
    fprintf(stderr, "output      %s (%s, %s weights)\n", a->output,
            gguf_arch(p), mipr_dtype_name(a->type));
    fprintf(stderr, "time        load %.2f s, decide %.2f s, prune %.2f s, evaluate %.2f s, "
            "write %.2f s; peak memory %.1f MiB\n", s->t_load, s->t_decide, s->t_prune,
            s->t_eval, s->t_write, peak_rss_mib());
}

static void json_eval(FILE *f, const char *name, const mipr_eval_result *before,
                      const mipr_eval_result *after)
{
    fprintf(f, "  \"%s\": {\"tokens\": %llu, \"perplexity_before\": %.6f, "
               "\"perplexity_after\": %.6f, \"kl_after\": %.8f},\n", name,
            (unsigned long long)after->tokens, before->perplexity, after->perplexity,
            after->mean_kl);
}

static void json_policy(FILE *f, const prune_state *s)
{
    fprintf(f, "  \"policy\": ");
    if (!s->dec.used_policy) {
        fprintf(f, "null,\n");
        return;
    }
    fprintf(f, "{\"reason\": ");
    cli_json_str(f, s->dec.policy.reason);
    fprintf(f, ", \"candidates\": [");
    for (uint32_t i = 0; i < s->dec.policy.n_candidates; i++) {
        const mipr_policy_candidate *c = &s->dec.policy.candidates[i];
        fprintf(f, "%s{\"criterion\": \"%s\", \"allocation\": \"%s\", \"kl\": %.8f, "
                   "\"perplexity\": %.6f, \"redundant\": %u}", i ? ", " : "",
                mipr_criterion_name(c->criterion), c->adaptive ? "adaptive" : "uniform", c->kl,
                c->perplexity, c->redundant);
    }
    fprintf(f, "]},\n");
}

static void json_body(FILE *f, const prune_args *a, const prune_state *s)
{
    fprintf(f, "{\n  \"model\": ");
    cli_json_str(f, a->model);
    fprintf(f, ",\n  \"calib\": ");
    cli_json_str(f, a->calib);
    fprintf(f, ",\n  \"output\": ");
    cli_json_str(f, a->output);
    fprintf(f, ",\n  \"architecture\": \"%s\", \"type\": \"%s\",\n  \"ratio\": %g, "
               "\"criterion\": \"%s\", \"label\": \"%s\", \"allocation\": \"%s\", "
               "\"bias\": %s, \"least_squares\": %s, \"seed\": %llu,\n",
            gguf_arch(s->pruned), mipr_dtype_name(a->type), a->o.ratio,
            mipr_criterion_name(a->o.criterion), s->dec.label,
            a->o.adaptive ? "adaptive" : "uniform", a->o.bias ? "true" : "false",
            a->o.least_squares ? "true" : "false", (unsigned long long)a->o.seed);
    json_policy(f, s);
    fprintf(f, "  \"seeds\": [");
    for (uint32_t i = 0; i < s->dec.n_seeds; i++)
        fprintf(f, "%s{\"seed\": %llu, \"selection_kl\": %.8f}", i ? ", " : "",
                (unsigned long long)s->dec.seed[i], s->dec.seed_kl[i]);
    fprintf(f, "],\n  \"layers\": [");
    for (uint32_t l = 0; l < s->m->hp.n_layers; l++)
        fprintf(f, "%s{\"layer\": %u, \"before\": %u, \"after\": %u, \"redundant\": %u, "
                   "\"mi_threshold\": %.6f, \"mi_rho_equivalent\": %.4f, "
                   "\"mi_significant_pairs\": %llu}", l ? ", " : "", l, s->m->layers[l].d_ff,
                s->pruned->layers[l].d_ff, s->plan.redundant[l], s->plan.mi_threshold[l],
                s->plan.mi_rho[l], (unsigned long long)s->plan.mi_significant[l]);
    fprintf(f, "],\n  \"parameters_before\": %llu, \"parameters_after\": %llu,\n",
            (unsigned long long)mipr_model_n_params(s->m),
            (unsigned long long)mipr_model_n_params(s->pruned));
    fprintf(f, "  \"selection\": {\"tokens\": %zu, \"kl\": %.8f},\n", s->dec.selection.n,
            s->dec.selection_kl);
    json_eval(f, "heldout", &s->before, &s->after); /* the reporting half */
    if (s->text_ids)
        json_eval(f, "eval_text", &s->text_before, &s->text_after);
    fprintf(f, "  \"window\": %u,\n  \"seconds\": {\"load\": %.4f, \"decide\": %.4f, "
               "\"prune\": %.4f, \"evaluate\": %.4f, \"write\": %.4f},\n"
               "  \"peak_rss_mib\": %.2f\n}\n", s->h.window, s->t_load, s->t_decide,
            s->t_prune, s->t_eval, s->t_write, peak_rss_mib());
}

void prune_report_json(const prune_args *a, const prune_state *s, mipr_outfile *o)
{
    json_body(o->fp, a, s); /* the commit checks the stream's error flag */
}
