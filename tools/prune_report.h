/* mipr prune's arguments, run and report (tools/cmd_prune.c parses, prune_run.c runs). */
#ifndef MIPR_TOOLS_PRUNE_REPORT_H
#define MIPR_TOOLS_PRUNE_REPORT_H

#include "cli.h"

typedef struct prune_args {
    const char *model, *tokenizer, *calib, *output, *eval_text, *report, *keep_list;
    mipr_prune_opts o;
    int auto_criterion;
    int allocation; /* 0: the policy's (auto) or uniform, 1 uniform, 2 adaptive */
    uint32_t seeds, window, threads;
    enum mipr_dtype type; /* MIPR_DT_COUNT until prune_run picks the input's */
    int type_was_default;
    int format_hf; /* --format hf: output is a Hugging Face folder */
    int bias_set;  /* --bias given */
} prune_args;

typedef struct prune_state {
    mipr_model *m, *pruned;
    mipr_tokenizer *tok;
    mipr_calib *c;
    mipr_pool *pool;
    uint8_t *keep_whole;
    mipr_heldout h;
    int32_t *text_ids;
    size_t n_text;
    mipr_prune_decision dec; /* criterion, seed, policy; the selection/reporting halves */
    mipr_prune_plan plan;
    mipr_eval_result before, after, text_before, text_after;
    double t_load, t_decide, t_prune, t_eval, t_write;
} prune_state;

int prune_run(prune_args *a);
void prune_report_text(const prune_args *a, const prune_state *s);
/* Writes the JSON report into o (opened by the caller, committed with the model). */
void prune_report_json(const prune_args *a, const prune_state *s, mipr_outfile *o);

#endif
