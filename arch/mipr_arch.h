/* mipr_arch: numeric kernels and the table that selects them.
 *
 * Knows nothing of models. Every SIMD kernel has a scalar twin in arch/generic/ that
 * defines its result; SIMD versions may differ only by floating-point reassociation. */
#ifndef MIPR_ARCH_H
#define MIPR_ARCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared in this header is the library's API: a shared build exports exactly
 * these symbols and hides every other (-fvisibility=hidden). One pragma per header rather
 * than a macro on each declaration, so a new declaration cannot miss it; compilers that do
 * not know it ignore it (C11 6.10.6). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* Element types of weight tensors. Values are ours; GGUF's ggml type ids are mapped in core.
 * The quantized types hold a row of n elements in ceil(n / 32) blocks: when n % 32 != 0 the
 * last block is partial, its elements past n quantized as zeros (the quantizers pad), and
 * every kernel reads it as if the row were zero-padded. (GGUF cannot store partial blocks:
 * core keeps ggml's rule ne0 % 32 == 0 for its files.) */
enum mipr_dtype {
    MIPR_DT_F32 = 0,
    MIPR_DT_F16 = 1,
    MIPR_DT_BF16 = 2,
    MIPR_DT_Q8_0 = 3, /* blocks of 32: fp16 scale d, 32 int8; x = d * q */
    MIPR_DT_Q4_0 = 4, /* blocks of 32: fp16 scale d, 32 nibbles; x = d * (q - 8) */
    MIPR_DT_COUNT
};

#define MIPR_QK8_0 32
#define MIPR_QK4_0 32

/* Same layout as ggml's block_q8_0 (34 bytes) so GGUF data can be used in place. */
typedef struct {
    uint16_t d;
    int8_t qs[MIPR_QK8_0];
} mipr_block_q8_0;

/* Same layout as ggml's block_q4_0 (18 bytes): element j < 16 is the low nibble of qs[j],
 * element j >= 16 the high nibble of qs[j - 16]. */
typedef struct {
    uint16_t d;
    uint8_t qs[MIPR_QK4_0 / 2];
} mipr_block_q4_0;

/* The release, as MAJOR.MINOR.PATCH (CMake's project version; the shared libraries' SONAME
 * carries MAJOR). mipr_version() is the string of the library actually loaded. */
#define MIPR_VERSION_MAJOR 0
#define MIPR_VERSION_MINOR 1
#define MIPR_VERSION_PATCH 0
#define MIPR_VERSION_STRING "0.1.0"
const char *mipr_version(void);

const char *mipr_dtype_name(enum mipr_dtype t);
/* Bytes of one row of n elements: ceil(n / 32) blocks for the quantized types. 0 when n is 0
 * or t is not a type. */
size_t mipr_dtype_row_bytes(enum mipr_dtype t, size_t n);
/* Elements per block: 32 for Q8_0 and Q4_0, 1 for the float types (0 for no type). */
size_t mipr_dtype_block_size(enum mipr_dtype t);

float mipr_f16_to_f32(uint16_t h);
uint16_t mipr_f32_to_f16(float f);   /* round to nearest even */
float mipr_bf16_to_f32(uint16_t h);
uint16_t mipr_f32_to_bf16(float f);  /* round to nearest even, NaN kept quiet */
/* Quantize a row of n floats (any n > 0) into ceil(n / 32) blocks as ggml's reference does,
 * a partial last block as if zero-padded. Q8_0: d = max|x| / 127, q = round(x / d).
 * Q4_0: m = the value of largest magnitude (the first of ties), d = m / -8,
 * q = min(15, (int)(x / d + 8.5)); d is stored as fp16 but q uses the float d. */
/* Non-finite and tiny values, the same in every table (tested): a block holding NaN or an
 * infinity quantizes to d = NaN and every q = 0 (Q4_0: nibble 8), so products with it are
 * NaN, as F32 arithmetic would be non-finite too; a Q8_0 block whose d = max|x| / 127 is
 * below FLT_MIN (1 / d could overflow) quantizes to zeros. The activation quantizer of the
 * Q8_0/Q4_0 matmuls follows the same rules. Writers refuse such weights before they get
 * here (core/io/rows.c), so these rules are what inference on a broken file meets. */
void mipr_quantize_q8_0(mipr_block_q8_0 *out, const float *x, size_t n);
void mipr_quantize_q4_0(mipr_block_q4_0 *out, const float *x, size_t n);

/* One pointer per operation. Matrices are row-major with rows of `cols` elements of the
 * weight type; "W x" means y[r] = sum_c W[r][c] * x[c]. */
struct mipr_kernels {
    const char *isa;
    /* y[r] = W[r] . x, r < rows; any cols > 0 for every type.
     * Q8_0 and Q4_0 are integer products, as in llama.cpp: x is quantized per block of 32 like
     * a Q8_0 weight row (d_x = max|x| / 127 kept as a float, q_x = round(x / d_x); the last
     * block of a partial row zero-padded), then
     *     y[r] = sum over blocks b, in order, of (d_w[b] * d_x[b]) * (float)(q_w[b] . q_x[b])
     * where Q4_0's q_w are the nibbles minus 8. The integer dot products are exact, so every
     * table gives the generic twin's bits. */
    void (*gemv[MIPR_DT_COUNT])(float *y, const void *w, const float *x, size_t rows, size_t cols);
    /* Y[t][r] = W[r] . X[t] for t < n; X is n x cols, Y is n x rows. Each element is
     * computed exactly as gemv computes it, so batched prefill and decode agree bit for bit. */
    void (*gemm[MIPR_DT_COUNT])(float *y, const void *w, const float *x, size_t n, size_t rows,
                                size_t cols);
    /* out[c] = W[row][c] as float */
    void (*row_to_f32[MIPR_DT_COUNT])(float *out, const void *w, size_t row, size_t cols);
    float (*dot)(const float *a, const float *b, size_t n);
    void (*axpy)(float *y, float a, const float *x, size_t n);      /* y += a x */
    void (*rmsnorm)(float *out, const float *x, const float *w, size_t n, float eps);
    void (*softmax)(float *x, size_t n);                          /* in place */
    /* Rotates pairs (2i, 2i+1), i < n_rot/2, in each of n_heads heads of head_size floats;
     * cs holds cos, sin for each pair index. */
    void (*rope)(float *v, size_t n_heads, size_t head_size, size_t n_rot, const float *cs);
    void (*swiglu)(float *h, const float *gate, const float *up, size_t n); /* silu(g) * u */
    /* out[u * nj + v] = exp(-(xi[u] - xj[v])^2 * inv): one block of a neuron's squared
     * Gaussian kernel matrix, the inner loop of the alpha = 2 MI estimator (inv = 1/sigma^2).
     * Tolerance against the generic twin: 2e-6 relative per element. */
    void (*gauss_block)(float *out, const float *xi, size_t ni, const float *xj, size_t nj,
                        float inv);
    /* Attention of one head over n cached positions (rows `stride` floats apart):
     * scores: out[t] = (q . k_t) / div;  mix: out[i] = sum_t a[t] v_t[i] (out overwritten).
     * One call per head instead of one per position: heads are often 8-64 floats. */
    void (*attn_scores)(float *out, const float *q, const float *k, size_t stride, size_t n,
                        size_t hs, float div);
    void (*attn_mix)(float *out, const float *a, const float *v, size_t stride, size_t n,
                     size_t hs);
    /* Per-column statistics of an n x d block of floats (rows ld floats apart), for
     * calibration: sum, sum of squares, sum of |x| (in double, rows added in order, squares
     * as (double)x * (double)x), min and max (x < min / x > max, so NaN is skipped). Written,
     * not accumulated; n = 0 gives sums 0, min +inf, max -inf. Every table gives the
     * generic twin's bits: each column is summed in row order in double. */
    void (*colstats)(const float *x, size_t n, size_t d, size_t ld, double *sum, double *sumsq,
                     double *sumabs, float *mn, float *mx);
};

/* The table in use. The first call (of this or mipr_kernels_init, thread-safe) chooses it once:
 * MIPR_ISA=generic|avx2|neon|helium when set, else the best table the CPU runs (cpuinfo; on
 * bare metal, helium when the firmware is built for MVE with floating point). A bad
 * MIPR_ISA (unknown, not in this build, or not supported by this CPU) falls back to the
 * automatic choice; only mipr_kernels_init reports it, so programs call that first. */
const struct mipr_kernels *mipr_kernels(void);
/* Chooses the table now if not yet done. Returns 0, or -1 with a message in err such as
 * "MIPR_ISA=avx2: this CPU has no AVX2+FMA+F16C" or "MIPR_ISA=foo: unknown (expected
 * generic, avx2, neon or helium)"; the table is usable either way. */
int mipr_kernels_init(char *err, size_t errlen);
/* The table named isa ("generic", "avx2", "neon", "helium"), or NULL when this build lacks it
 * or this CPU cannot run it. Built without cpuinfo, a SIMD table's support is unknown: it is
 * then returned only when MIPR_ISA chose it (helium excepted: a firmware built for MVE runs
 * it). For tests and benchmarks. */
const struct mipr_kernels *mipr_kernels_for(const char *isa);
/* The pure choice behind mipr_kernels, for a given MIPR_ISA value (NULL or "" = automatic):
 * sets *out (to the automatic choice on error) and returns 0 or -1 with a message in err. */
int mipr_kernels_select(const char *isa, const struct mipr_kernels **out, char *err,
                        size_t errlen);
/* Physical cores (cpuinfo), the default thread count: SMT siblings share the FMA units and
 * the matmuls gain nothing from them. 0 when the build has no cpuinfo or it fails. */
uint32_t mipr_cpu_cores(void);
/* The scalar reference table, always available. */
const struct mipr_kernels *mipr_kernels_generic(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
