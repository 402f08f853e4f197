/* The exact reference path for any alpha: eigenvalues of the normalised Gram matrices.
 * O(n^3); tests and small n only. Cyclic Jacobi keeps it short and accurate for the
 * symmetric positive semi-definite matrices the Gaussian kernel gives. */
#include <math.h>
#include <stdlib.h>

#include "mipr.h"

/* One Jacobi rotation zeroing a[p][q]. */
static void rotate(double *a, size_t n, size_t p, size_t q)
{
    double apq = a[p * n + q];
    double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
    double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
    double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
    for (size_t k = 0; k < n; k++) {
        double akp = a[k * n + p], akq = a[k * n + q];
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
    }
    for (size_t k = 0; k < n; k++) {
        double apk = a[p * n + k], aqk = a[q * n + k];
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
    }
}

static double off_norm(const double *a, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            s += i != j ? a[i * n + j] * a[i * n + j] : 0.0;
    return s;
}

/* Eigenvalues of the symmetric n x n matrix a (destroyed) on its diagonal. */
static void jacobi(double *a, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n * n; i++)
        total += a[i] * a[i];
    for (int sweep = 0; sweep < 100 && off_norm(a, n) > 1e-30 * total; sweep++)
        for (size_t p = 0; p < n; p++)
            for (size_t q = p + 1; q < n; q++)
                if (fabs(a[p * n + q]) > 1e-300)
                    rotate(a, n, p, q);
}

/* S_alpha of a unit-trace matrix a (destroyed): log2(sum lambda^alpha) / (1 - alpha). */
static double entropy_of(double *a, size_t n, double alpha)
{
    jacobi(a, n);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double l = a[i * n + i];
        s += l > 0.0 ? pow(l, alpha) : 0.0; /* rounding can leave tiny negatives */
    }
    return log2(s) / (1.0 - alpha);
}

/* K_ij / n for samples x with width sigma, optionally times y's kernel (then / trace). */
static void gram(double *a, const float *x, const float *y, size_t n, double sx, double sy)
{
    double tr = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double dx = (double)x[i] - x[j], v = exp(-dx * dx / (2.0 * sx * sx));
            if (y) {
                double dy = (double)y[i] - y[j];
                v *= exp(-dy * dy / (2.0 * sy * sy));
            }
            a[i * n + j] = v;
            tr += i == j ? v : 0.0;
        }
    for (size_t i = 0; i < n * n; i++)
        a[i] /= tr;
}

static mipr_status check_args(size_t n, double alpha, mipr_error *err)
{
    if (n < 2 || n > 4096)
        return mipr_error_set(err, MIPR_ERR_ARG, "eigen path: %zu samples outside 2..4096", n);
    if (!(alpha > 0.0) || fabs(alpha - 1.0) < 1e-9)
        return mipr_error_set(err, MIPR_ERR_ARG, "alpha %g: must be > 0 and != 1", alpha);
    return MIPR_OK;
}

mipr_status mipr_entropy_eig(const float *x, size_t n, double sx, double alpha, double *h,
                             mipr_error *err)
{
    mipr_status st = check_args(n, alpha, err);
    if (st)
        return st;
    double *a = malloc(n * n * sizeof *a);
    if (!a)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a %zux%zu matrix", n, n);
    gram(a, x, NULL, n, sx, 0.0);
    *h = entropy_of(a, n, alpha);
    free(a);
    return MIPR_OK;
}

mipr_status mipr_mi_eig(const float *x, const float *y, size_t n, double sx, double sy,
                        double alpha, double *mi, mipr_error *err)
{
    double hx, hy;
    mipr_status st = mipr_entropy_eig(x, n, sx, alpha, &hx, err);
    if (st || (st = mipr_entropy_eig(y, n, sy, alpha, &hy, err)))
        return st;
    double *a = malloc(n * n * sizeof *a);
    if (!a)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a %zux%zu matrix", n, n);
    gram(a, x, y, n, sx, sy);
    *mi = hx + hy - entropy_of(a, n, alpha);
    free(a);
    return MIPR_OK;
}
