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
    fprintf(stderr, "criterion   %s, %s widths%s%s (seed %llu)\n",
            mipr_criterion_name(a->o.criterion), a->o.adaptive ? "adaptive" : "uniform",
            a->o.bias ? ", bias compensation" : "", a->o.least_squares ? ", LS compensation" : "",
            (unsigned long long)s->chosen_seed);
    if (s->used_policy)
        fprintf(stderr, "policy      %s\n", s->policy.reason);
    if (a->o.criterion == MIPR_CRIT_MI) {
        fprintf(stderr, "redundant   ");
        for (uint32_t l = 0; l < m->hp.n_layers; l++)
            fprintf(stderr, "%s%u", l ? " " : "", s->plan.redundant[l]);
        fprintf(stderr, " neurons found by the MI procedure (T_r %.2f); the rest by wanda-sp "
                "importance\n", a->o.mi_threshold > 0 ? a->o.mi_threshold : 0.5);
    }
    fprintf(stderr, "layers      ");
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        fprintf(stderr, "%s%u->%u", l ? " " : "", m->layers[l].d_ff, p->layers[l].d_ff);
    fprintf(stderr, "\nparameters  %llu -> %llu (%.1f%% fewer)\n",
            (unsigned long long)mipr_model_n_params(m), (unsigned long long)mipr_model_n_params(p),
            100.0 * (1.0 - (double)mipr_model_n_params(p) / (double)mipr_model_n_params(m)));
    fprintf(stderr, "held-out    %llu tokens, window %u: perplexity %.4f -> %.4f, KL %.6f "
            "nats/token\n", (unsigned long long)s->after.tokens, s->h.window,
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
    if (!s->used_policy) {
        fprintf(f, "null,\n");
        return;
    }
    fprintf(f, "{\"reason\": ");
    cli_json_str(f, s->policy.reason);
    fprintf(f, ", \"candidates\": [");
    for (uint32_t i = 0; i < s->policy.n_candidates; i++) {
        const mipr_policy_candidate *c = &s->policy.candidates[i];
        fprintf(f, "%s{\"criterion\": \"%s\", \"allocation\": \"%s\", \"kl\": %.8f, "
                   "\"perplexity\": %.6f}", i ? ", " : "", mipr_criterion_name(c->criterion),
                c->adaptive ? "adaptive" : "uniform", c->kl, c->perplexity);
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
               "\"criterion\": \"%s\", \"allocation\": \"%s\", \"bias\": %s, "
               "\"least_squares\": %s, \"seed\": %llu,\n",
            gguf_arch(s->pruned), mipr_dtype_name(a->type), a->o.ratio,
            mipr_criterion_name(a->o.criterion), a->o.adaptive ? "adaptive" : "uniform",
            a->o.bias ? "true" : "false", a->o.least_squares ? "true" : "false",
            (unsigned long long)s->chosen_seed);
    json_policy(f, s);
    fprintf(f, "  \"seeds\": [");
    for (uint32_t i = 0; i < s->n_seeds && s->n_seeds > 1; i++)
        fprintf(f, "%s{\"seed\": %llu, \"kl\": %.8f}", i ? ", " : "",
                (unsigned long long)s->seed[i], s->seed_kl[i]);
    fprintf(f, "],\n  \"layers\": [");
    for (uint32_t l = 0; l < s->m->hp.n_layers; l++)
        fprintf(f, "%s{\"layer\": %u, \"before\": %u, \"after\": %u, \"redundant\": %u}",
                l ? ", " : "", l, s->m->layers[l].d_ff, s->pruned->layers[l].d_ff,
                s->plan.redundant[l]);
    fprintf(f, "],\n  \"parameters_before\": %llu, \"parameters_after\": %llu,\n",
            (unsigned long long)mipr_model_n_params(s->m),
            (unsigned long long)mipr_model_n_params(s->pruned));
    json_eval(f, "heldout", &s->before, &s->after);
    if (s->text_ids)
        json_eval(f, "eval_text", &s->text_before, &s->text_after);
    fprintf(f, "  \"window\": %u,\n  \"seconds\": {\"load\": %.4f, \"decide\": %.4f, "
               "\"prune\": %.4f, \"evaluate\": %.4f, \"write\": %.4f},\n"
               "  \"peak_rss_mib\": %.2f\n}\n", s->h.window, s->t_load, s->t_decide,
            s->t_prune, s->t_eval, s->t_write, peak_rss_mib());
}

mipr_status prune_report_json(const prune_args *a, const prune_state *s, mipr_outfile *o,
                              mipr_error *err)
{
    json_body(o->fp, a, s);
    return cli_out_commit(o, err); /* commit checks the stream's error flag */
}
