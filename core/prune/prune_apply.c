/* Building the pruned model: sliced FFN tensors, with optional compensation folded into
 * ffn_down (least squares from a redundant partner) and into an ffn_down bias (means). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prune_internal.h"

typedef struct {
    const mipr_layer *src;
    const mipr_calib *c;
    const mipr_calib_layer *C;
    const uint8_t *keep;
    const uint32_t *partner;
    const float *samples; /* this layer's, for least squares */
    uint32_t d, k, dim;
    uint32_t *slot;   /* original index -> kept column, or UINT32_MAX */
    double *alpha, *beta; /* LS reconstruction of removed j from its partner */
    int use_bias;
    int merged; /* some removed neuron is folded into its partner */
} slicer;

static mipr_status slice_rows(mipr_model *out, mipr_tensor *dst, const mipr_tensor *src,
                              const uint8_t *keep, uint32_t k, mipr_error *err)
{
    size_t rb = mipr_dtype_row_bytes(src->type, src->cols);
    char *p = mipr_model_alloc(out, rb * k);
    if (!p)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a pruned tensor");
    *dst = (mipr_tensor){.type = src->type, .rows = k, .cols = src->cols, .data = p};
    for (uint32_t r = 0; r < src->rows; r++)
        if (keep[r])
            memcpy(p, (const char *)src->data + rb * r, rb), p += rb;
    return MIPR_OK;
}

/* z_j ~ alpha z_p + beta over the calibration samples. */
static void least_squares(const slicer *s, uint32_t j, uint32_t p, double *alpha, double *beta)
{
    uint32_t n = s->c->n_samples;
    const float *zj = s->samples + (size_t)j * n, *zp = s->samples + (size_t)p * n;
    double mj = 0, mp = 0, cov = 0, var = 0;
    for (uint32_t i = 0; i < n; i++)
        mj += zj[i] / n, mp += zp[i] / n;
    for (uint32_t i = 0; i < n; i++)
        cov += (zj[i] - mj) * (zp[i] - mp), var += (zp[i] - mp) * (zp[i] - mp);
    *alpha = var > 0 ? cov / var : 0.0;
    *beta = mj - *alpha * mp;
}

/* One row of ffn_down: kept columns, plus what the removed ones contributed. */
static void down_row(const slicer *s, const float *full, float *kept, double *bias)
{
    for (uint32_t j = 0; j < s->d; j++) {
        if (s->slot[j] != UINT32_MAX) {
            kept[s->slot[j]] += full[j];
            continue;
        }
        uint32_t p = s->partner ? s->partner[j] : UINT32_MAX;
        if (p != UINT32_MAX && s->alpha && s->slot[p] != UINT32_MAX) {
            kept[s->slot[p]] += (float)(s->alpha[j] * full[j]);
            *bias += s->beta[j] * full[j]; /* the merge is exact only with its intercept */
        } else if (s->use_bias) {
            *bias += s->C->mean[j] * full[j];
        }
    }
}

static void store_row(enum mipr_dtype t, void *dst, const float *x, uint32_t n)
{
    if (t == MIPR_DT_F32)
        memcpy(dst, x, n * sizeof *x);
    else if (t == MIPR_DT_Q8_0)
        mipr_quantize_q8_0(dst, x, n);
    else if (t == MIPR_DT_Q4_0)
        mipr_quantize_q4_0(dst, x, n);
    for (uint32_t i = 0; (t == MIPR_DT_F16 || t == MIPR_DT_BF16) && i < n; i++)
        ((uint16_t *)dst)[i] = t == MIPR_DT_F16 ? mipr_f32_to_f16(x[i]) : mipr_f32_to_bf16(x[i]);
}

static mipr_status slice_down(mipr_model *out, mipr_layer *L, const slicer *s, mipr_error *err)
{
    enum mipr_dtype t = s->src->ffn_down.type;
    if (s->k % mipr_dtype_block_size(t))
        t = MIPR_DT_F16; /* the pruned model goes to GGUF, whose blocks cannot split a row */
    size_t rb = mipr_dtype_row_bytes(t, s->k);
    char *p = mipr_model_alloc(out, rb * s->dim);
    int want_bias = s->use_bias || s->merged || s->src->ffn_down_b.data;
    float *bias = want_bias ? mipr_model_alloc(out, s->dim * 4) : NULL;
    float *full = malloc(s->d * sizeof *full), *kept = malloc(s->k * sizeof *kept);
    mipr_status st = MIPR_OK;
    if (!p || !full || !kept || (want_bias && !bias))
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a pruned ffn_down");
    for (uint32_t r = 0; st == MIPR_OK && r < s->dim; r++) {
        double b = s->src->ffn_down_b.data ? ((const float *)s->src->ffn_down_b.data)[r] : 0.0;
        mipr_kernels()->row_to_f32[s->src->ffn_down.type](full, s->src->ffn_down.data, r, s->d);
        memset(kept, 0, s->k * sizeof *kept);
        down_row(s, full, kept, &b);
        store_row(t, p + rb * r, kept, s->k);
        if (bias)
            bias[r] = (float)b;
    }
    if (st == MIPR_OK) {
        L->ffn_down = (mipr_tensor){.type = t, .rows = s->dim, .cols = s->k, .data = p};
        L->ffn_down_b = (mipr_tensor){.type = MIPR_DT_F32, .rows = 1, .cols = s->dim,
                                      .data = bias};
        if (!bias)
            L->ffn_down_b = (mipr_tensor){0};
    }
    free(full), free(kept);
    return st;
}

static mipr_status fit_partners(slicer *s, uint32_t l, mipr_error *err)
{
    float *owned;
    mipr_status st = mipr_calib_samples(s->c, l, &s->samples, &owned, err);
    if (st)
        return st;
    s->alpha = malloc(s->d * sizeof *s->alpha), s->beta = malloc(s->d * sizeof *s->beta);
    if (!s->alpha || !s->beta)
        st = mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t j = 0; st == MIPR_OK && j < s->d; j++)
        if (s->partner[j] != UINT32_MAX && !s->keep[j] && s->keep[s->partner[j]]) {
            least_squares(s, j, s->partner[j], &s->alpha[j], &s->beta[j]);
            s->merged = 1;
        }
    free(owned);
    s->samples = NULL;
    return st;
}

static mipr_status prune_layer(mipr_model *out, uint32_t l, const mipr_model *m,
                               const mipr_calib *c, const mipr_prune_plan *p,
                               const mipr_prune_opts *o, mipr_error *err)
{
    mipr_layer *L = &out->layers[l];
    slicer s = {&m->layers[l], c, &c->layers[l], p->keep[l], p->partner[l], NULL,
                m->layers[l].d_ff, p->width[l], m->hp.dim, NULL, NULL, NULL, o->bias, 0};
    *L = m->layers[l];
    if (s.k == s.d)
        return MIPR_OK; /* untouched: borrowed as it is */
    s.slot = malloc(s.d * sizeof *s.slot);
    if (!s.slot)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory");
    for (uint32_t j = 0, k = 0; j < s.d; j++)
        s.slot[j] = s.keep[j] ? k++ : UINT32_MAX;
    mipr_status st = MIPR_OK;
    int has_partner = 0;
    for (uint32_t j = 0; s.partner && j < s.d; j++)
        has_partner |= s.partner[j] != UINT32_MAX && !s.keep[j];
    if (has_partner)
        st = fit_partners(&s, l, err);
    L->d_ff = s.k;
    if (st == MIPR_OK && (st = slice_rows(out, &L->ffn_gate, &s.src->ffn_gate, s.keep, s.k, err)) ==
                             MIPR_OK &&
        (st = slice_rows(out, &L->ffn_up, &s.src->ffn_up, s.keep, s.k, err)) == MIPR_OK)
        st = slice_down(out, L, &s, err);
    free(s.slot), free(s.alpha), free(s.beta);
    return st;
}

mipr_status mipr_prune_apply(const mipr_model *m, const mipr_calib *c, const mipr_prune_plan *p,
                             const mipr_prune_opts *o, mipr_model **out, mipr_error *err)
{
    mipr_model *r;
    mipr_status st = mipr_model_new(&r, m->hp.n_layers, err);
    if (st)
        return st;
    r->hp = m->hp;
    r->tok_embd = m->tok_embd, r->output_norm = m->output_norm, r->output = m->output;
    r->tied_output = m->tied_output;
    r->rope_freqs = m->rope_freqs; /* Llama 3 RoPE scaling (layers carry q/k/v biases) */
    memcpy(r->name, m->name, sizeof r->name);
    for (uint32_t l = 0; st == MIPR_OK && l < m->hp.n_layers; l++)
        st = prune_layer(r, l, m, c, p, o, err);
    if (st == MIPR_OK)
        st = mipr_model_validate(r, "pruned model", err);
    if (st) {
        mipr_model_free(r);
        return st;
    }
    *out = r;
    return MIPR_OK;
}
