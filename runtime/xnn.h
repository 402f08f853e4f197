/* Internal to runtime/: XNNPACK's f32 fully-connected operator as the matmul of batched
 * prefill (mipr_engine_set_backend). Compiled in every build; without MIPR_HAVE_XNNPACK
 * creation fails with MIPR_ERR_UNSUPPORTED and nothing else is ever called. */
#ifndef MIPR_XNN_H
#define MIPR_XNN_H

#include "mipr_runtime.h"

typedef struct mipr_xnn mipr_xnn;

/* The AUTO rule: whether XNNPACK beats our gemm with our kernel table `isa` (measured; see
 * the numbers in xnn.c). */
int mipr_xnn_auto_wins(const char *isa);
/* One operator per F32 matrix of m used in prefill: wq, wk, wv, wo, ffn_gate, ffn_up,
 * ffn_down of every layer, and output. XNNPACK copies (packs) the weights now. */
mipr_status mipr_xnn_new(mipr_xnn **out, const mipr_model *m, mipr_error *err);
void mipr_xnn_free(mipr_xnn *x);
/* Bytes of weights XNNPACK copied. */
size_t mipr_xnn_weight_bytes(const mipr_xnn *x);
/* y (n x w->rows) = in (n x w->cols) times w transposed, on the pool's threads, when w (a
 * tensor of the model, by address) has an operator: returns 1; returns 0 when it has none
 * (the caller runs its own kernel). A failed run is kept for mipr_xnn_take_error. */
int mipr_xnn_matmul(mipr_xnn *x, float *y, const mipr_tensor *w, const float *in, size_t n,
                    mipr_pool *pool);
/* The first run failure since the last call, copied to err; MIPR_OK when none. */
mipr_status mipr_xnn_take_error(mipr_xnn *x, mipr_error *err);

#endif
