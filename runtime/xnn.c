/* XNNPACK's f32 fully-connected operator as an optional prefill backend.
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

#include "pool_internal.h"
#include "xnn.h"

#ifdef MIPR_HAVE_XNNPACK
#include <math.h>
#include <threads.h>
#include <xnnpack.h>
#endif

int mipr_xnn_auto_wins(const char *isa)
{
    return isa && !strcmp(isa, "generic");
}

int mipr_backend_available(mipr_backend b)
{
#ifdef MIPR_HAVE_XNNPACK
    return b <= MIPR_BACKEND_AUTO;
#else
    return b == MIPR_BACKEND_OURS || b == MIPR_BACKEND_AUTO;
#endif
}

static const char *const backend_names[] = {"ours", "xnnpack", "auto"};

const char *mipr_backend_name(mipr_backend b)
{
    return b <= MIPR_BACKEND_AUTO ? backend_names[b] : "?";
}

mipr_status mipr_backend_parse(const char *name, mipr_backend *out, mipr_error *err)
{
    for (unsigned i = 0; name && i <= MIPR_BACKEND_AUTO; i++)
        if (!strcmp(name, backend_names[i])) {
            *out = (mipr_backend)i;
            return MIPR_OK;
        }
    return mipr_error_set(err, MIPR_ERR_ARG, "unknown backend '%s' (expected ours, xnnpack or auto)",
                          name ? name : "(null)");
}

#ifndef MIPR_HAVE_XNNPACK

struct mipr_xnn {
    int unused;
};

mipr_status mipr_xnn_new(mipr_xnn **out, const mipr_model *m, mipr_error *err)
{
    (void)m;
    *out = NULL;
    return mipr_error_set(err, MIPR_ERR_UNSUPPORTED,
                          "this build has no XNNPACK backend (install libxnnpack-dev and "
                          "configure with -DMIPR_WITH_XNNPACK=ON)");
}

void mipr_xnn_free(mipr_xnn *x)
{
    (void)x;
}

size_t mipr_xnn_weight_bytes(const mipr_xnn *x)
{
    (void)x;
    return 0;
}

int mipr_xnn_matmul(mipr_xnn *x, float *y, const mipr_tensor *w, const float *in, size_t n,
                    mipr_pool *pool)
{
    (void)x, (void)y, (void)w, (void)in, (void)n, (void)pool;
    return 0;
}

mipr_status mipr_xnn_take_error(mipr_xnn *x, mipr_error *err)
{
    (void)x, (void)err;
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
    size_t n_ops, weight_bytes;
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
    x->weight_bytes += (size_t)w->rows * w->cols * sizeof(float);
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

mipr_status mipr_xnn_new(mipr_xnn **out, const mipr_model *m, mipr_error *err)
{
    *out = NULL;
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
        mipr_xnn_free(x);
        return st;
    }
    *out = x;
    return MIPR_OK;
}

void mipr_xnn_free(mipr_xnn *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_ops; i++)
        if (x->ops[i])
            xnn_delete_operator(x->ops[i]);
    free(x->ops);
    free(x);
}

size_t mipr_xnn_weight_bytes(const mipr_xnn *x)
{
    return x ? x->weight_bytes : 0;
}

int mipr_xnn_matmul(mipr_xnn *x, float *y, const mipr_tensor *w, const float *in, size_t n,
                    mipr_pool *pool)
{
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

mipr_status mipr_xnn_take_error(mipr_xnn *x, mipr_error *err)
{
    mipr_status st = x->run_err.status;
    if (st != MIPR_OK) {
        mipr_error_set(err, st, "%s", x->run_err.msg);
        x->run_err.status = MIPR_OK;
    }
    return st;
}

#endif
