/* Runtime-internal model hooks. */
#ifndef MIPR_MODEL_INTERNAL_H
#define MIPR_MODEL_INTERNAL_H

#include "mipr_runtime.h"

/* fn(ctx) runs when the model is freed (after tensors are gone, before the storage is). */
mipr_status mipr_model_add_cleanup(mipr_model *m, void (*fn)(void *ctx), void *ctx,
                                   mipr_error *err);

/* The hyper-parameter checks of mipr_model_validate alone, so a reader can refuse an absurd
 * header before it sizes anything (the tokenizer, the tensors) from it. */
mipr_status mipr_hparams_check(const mipr_hparams *hp, const char *what, mipr_error *err);

#endif
