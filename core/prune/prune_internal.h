/* Shared by the pruning files; not public. */
#ifndef MIPR_PRUNE_INTERNAL_H
#define MIPR_PRUNE_INTERNAL_H

#include "mipr.h"

/* Scores of one layer's neurons for a criterion other than mi's redundancy step (mi uses
 * the wanda-sp score as its importance). s has d_ff entries. */
mipr_status mipr_prune_scores(enum mipr_criterion crit, const mipr_layer *L,
                              const mipr_calib_layer *C, uint64_t seed, double *s,
                              mipr_error *err);
mipr_status mipr_col_norms_sq(const mipr_tensor *t, double *out, mipr_error *err);

#endif
