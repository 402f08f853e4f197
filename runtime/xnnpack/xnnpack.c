/* XNNPACK's f32 fully-connected operator as an optional prefill provider (libmipr_xnnpack:
 * the runtime never links XNNPACK itself, so a device binary such as mipr-run goes without).
 *
 * Why AUTO almost never picks it (measured 2025 on the CI kind of machine, AMD EPYC with
 * AVX2+FMA, no AVX-512, one thread, Debian's 2022-02 XNNPACK; f32 weights of the real shapes
 * SmolLM2 576/1536, Qwen2.5-0.5B 896/4864, TinyLlama 2048/5632, every matrix kind):
 *   our AVX2 gemm   batch 64..512: 53..91 GFLOP/s;  XNNPACK: 24..38 GFLOP/s
 *     -> XNNPACK/ours = 0.31..0.50 at batch >= 16, 0.49..0.79 at batch 4: never faster.
 *   our generic (scalar) gemm, MIPR_ISA=generic: 1.0..2.4 GFLOP/s at every batch;
 *     XNNPACK 9..15 GFLOP/s at batch 2, 23..37 at batch 512 -> 4x..18x faster.
 * So the rule: XNNPACK when our kernel table is the scalar one ("generic": a CPU without
 * AVX2/NEON, or MIPR_ISA=generic), for every batched prefill (n >= 2); never over our SIMD
 * tables. NEON was not measured (qemu timings say nothing about a real core), so over NEON
 * AUTO keeps our kernels until someone measures on a device. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mipr_xnnpack.h"
#include "pool_internal.h"

#ifdef MIPR_HAVE_XNNPACK
#include <math.h>
#include <threads.h>
#include <xnnpack.h>
#endif

typedef struct mipr_xnn mipr_xnn;

static int auto_wins(const char *isa)
{
    return isa && !strcmp(isa, "generic");
}

int mipr_xnnpack_available(void)
{
#ifdef MIPR_HAVE_XNNPACK
    return 1;
#else
    return 0;
#endif
}

#ifndef MIPR_HAVE_XNNPACK

static mipr_status xnn_new(void **state, const mipr_model *m, mipr_error *err)
{
    (void)m;
    *state = NULL;
    return mipr_error_set(err, MIPR_ERR_UNSUPPORTED,
                          "this build has no XNNPACK backend (install libxnnpack-dev and "
                          "configure with -DMIPR_WITH_XNNPACK=ON)");
}

/* Never called: creation always fails. */
static void xnn_free(void *state)
{
    (void)state;
}

static int xnn_matmul(void *state, float *y, const mipr_tensor *w, const float *in, size_t n,
                      mipr_pool *pool)
{
    (void)state, (void)y, (void)w, (void)in, (void)n, (void)pool;
    return 0;
}

static mipr_status xnn_take_error(void *state, mipr_error *err)
{
    (void)state, (void)err;
    return MIPR_OK;
}

#else

/* The matrices of a layer that get an operator, in slot order. */
static const size_t layer_fields[] = {
    offsetof(mipr_layer, wq),       offsetof(mipr_layer, wk),     offsetof(mipr_layer, wv),
    offsetof(mipr_layer, wo),       offsetof(mipr_layer, ffn_gate), offsetof(mipr_layer, ffn_up),
    offsetof(mipr_layer, ffn_down),
};
#define N_FIELDS (sizeof layer_fields / sizeof *layer_fields)

struct mipr_xnn {
    const mipr_model *m;
    xnn_operator_t *ops; /* n_layers x N_FIELDS, then output; NULL: not F32, ours runs it */
    size_t n_ops;
    mipr_error run_err;  /* first failed run, reported after the forward chunk */
};

static const char *xnn_status_name(enum xnn_status s)
{
    switch (s) {
    case xnn_status_success: return "success";
    case xnn_status_uninitialized: return "uninitialized";
    case xnn_status_invalid_parameter: return "invalid parameter";
    case xnn_status_invalid_state: return "invalid state";
    case xnn_status_unsupported_parameter: return "unsupported parameter";
    case xnn_status_unsupported_hardware: return "unsupported hardware";
    case xnn_status_out_of_memory: return "out of memory";
    }
    return "unknown status";
}

static mipr_status xnn_to_status(enum xnn_status s)
{
    return s == xnn_status_out_of_memory ? MIPR_ERR_NOMEM
           : s == xnn_status_unsupported_hardware ? MIPR_ERR_UNSUPPORTED
                                                   : MIPR_ERR_ARG;
}

/* xnn_initialize is not documented as thread-safe in this snapshot: once per process. It is
 * never undone (operators of other engines may live until exit). */
static once_flag init_once = ONCE_FLAG_INIT;
static enum xnn_status init_status;

static void init_xnnpack(void)
{
    init_status = xnn_initialize(NULL);
}

/* The operator slot of tensor w (by address inside the model), or NULL. */
static xnn_operator_t *slot_of(mipr_xnn *x, const mipr_tensor *w)
{
    const mipr_model *m = x->m;
    if (w == &m->output)
        return &x->ops[x->n_ops - 1];
    uintptr_t a = (uintptr_t)w, base = (uintptr_t)m->layers;
    if (a < base || a - base >= (uintptr_t)m->hp.n_layers * sizeof(mipr_layer))
        return NULL;
    size_t l = (a - base) / sizeof(mipr_layer), off = (a - base) % sizeof(mipr_layer);
    for (size_t k = 0; k < N_FIELDS; k++)
        if (off == layer_fields[k])
            return &x->ops[l * N_FIELDS + k];
    return NULL;
}

/* Output rows = w->rows channels, weights [out][in] as we store them: no flag needed.
 * XNN_FLAG_YIELD_WORKERS for the reason mipr_pool_run yields (shared cores). */
static mipr_status create_op(mipr_xnn *x, xnn_operator_t *op, const mipr_tensor *w,
                             const char *what, uint32_t layer, mipr_error *err)
{
    if (w->type != MIPR_DT_F32 || !w->data)
        return MIPR_OK;
    enum xnn_status s = xnn_create_fully_connected_nc_f32(
        w->cols, w->rows, w->cols, w->rows, w->data, NULL, -INFINITY, INFINITY,
        XNN_FLAG_YIELD_WORKERS, op);
    if (s != xnn_status_success)
        return mipr_error_set(err, xnn_to_status(s),
                              "XNNPACK cannot create the %ux%u fully-connected operator of %s "
                              "(layer %u): %s", w->rows, w->cols, what, layer,
                              xnn_status_name(s));
    return MIPR_OK;
}

static mipr_status create_all(mipr_xnn *x, mipr_error *err)
{
    static const char *const names[] = {"wq", "wk", "wv", "wo", "ffn_gate", "ffn_up",
                                        "ffn_down"};
    const mipr_model *m = x->m;
    for (uint32_t l = 0; l < m->hp.n_layers; l++)
        for (size_t k = 0; k < N_FIELDS; k++) {
            const mipr_tensor *w =
                (const mipr_tensor *)((const char *)&m->layers[l] + layer_fields[k]);
            mipr_status st = create_op(x, &x->ops[l * N_FIELDS + k], w, names[k], l, err);
            if (st)
                return st;
        }
    return create_op(x, &x->ops[x->n_ops - 1], &m->output, "output", 0, err);
}

static void xnn_free(void *state);

static mipr_status xnn_new(void **state, const mipr_model *m, mipr_error *err)
{
    *state = NULL;
    call_once(&init_once, init_xnnpack);
    if (init_status != xnn_status_success)
        return mipr_error_set(err, xnn_to_status(init_status),
                              "XNNPACK failed to initialize: %s", xnn_status_name(init_status));
    mipr_xnn *x = calloc(1, sizeof *x);
    size_t n_ops = (size_t)m->hp.n_layers * N_FIELDS + 1;
    if (!x || !(x->ops = calloc(n_ops, sizeof *x->ops))) {
        free(x);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %zu XNNPACK operators",
                              n_ops);
    }
    x->m = m;
    x->n_ops = n_ops;
    mipr_status st = create_all(x, err);
    if (st) {
        xnn_free(x);
        return st;
    }
    *state = x;
    return MIPR_OK;
}

static void xnn_free(void *state)
{
    mipr_xnn *x = state;
    if (!x)
        return;
    for (size_t i = 0; i < x->n_ops; i++)
        if (x->ops[i])
            xnn_delete_operator(x->ops[i]);
    free(x->ops);
    free(x);
}

static int xnn_matmul(void *state, float *y, const mipr_tensor *w, const float *in, size_t n,
                      mipr_pool *pool)
{
    mipr_xnn *x = state;
    xnn_operator_t *op = slot_of(x, w);
    if (!op || !*op)
        return 0;
    pthreadpool_t tp = mipr_pool_pthreadpool(pool);
    enum xnn_status s = xnn_setup_fully_connected_nc_f32(*op, n, in, y, tp);
    if (s == xnn_status_success)
        s = xnn_run_operator(*op, tp);
    if (s != xnn_status_success && x->run_err.status == MIPR_OK)
        mipr_error_set(&x->run_err, xnn_to_status(s),
                       "XNNPACK failed to run the %ux%u fully-connected operator on %zu tokens: "
                       "%s", w->rows, w->cols, n, xnn_status_name(s));
    return 1;
}

static mipr_status xnn_take_error(void *state, mipr_error *err)
{
    mipr_xnn *x = state;
    mipr_status st = x->run_err.status;
    if (st != MIPR_OK) {
        mipr_error_set(err, st, "%s", x->run_err.msg);
        x->run_err.status = MIPR_OK;
    }
    return st;
}

#endif

static const mipr_prefill_provider provider = {
    .name = "xnnpack",
    .beats_ours = auto_wins,
    .create = xnn_new,
    .destroy = xnn_free,
    .matmul = xnn_matmul,
    .take_error = xnn_take_error,
};

const mipr_prefill_provider *mipr_xnnpack_provider(void)
{
    return &provider;
}
