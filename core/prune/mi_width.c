/* Kernel-width rules for the Gaussian kernels of the matrix-based Renyi entropy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mipr.h"

/* Multiplier of the robust rule chosen by measurement (docs/MI.md, "tuned width"). */
#define TUNED_DEFAULT 2.0

static const char *const names[MIPR_WIDTH_COUNT] = {"silverman", "robust", "knn",
                                                    "percentile", "fixed", "tuned"};

const char *mipr_width_name(enum mipr_width_rule r)
{
    return (unsigned)r < MIPR_WIDTH_COUNT ? names[r] : "?";
}

int mipr_width_parse(const char *s, mipr_width *out)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    for (int r = 0; r < MIPR_WIDTH_COUNT; r++) {
        if (strlen(names[r]) != n || strncmp(names[r], s, n) != 0)
            continue;
        out->rule = (enum mipr_width_rule)r;
        out->param = 0.0;
        if (!colon)
            return r != MIPR_WIDTH_FIXED; /* fixed needs its value */
        char *end;
        out->param = strtod(colon + 1, &end);
        return *end == '\0' && isfinite(out->param) && out->param > 0.0;
    }
    return 0;
}

static double std_of(const float *x, size_t n)
{
    double mean = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += ((double)x[i] - mean) * ((double)x[i] - mean);
    return n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float *sorted_copy(const float *x, size_t n)
{
    float *s = malloc(n * sizeof *s);
    if (s) {
        memcpy(s, x, n * sizeof *s);
        qsort(s, n, sizeof *s, cmp_float);
    }
    return s;
}

static double median_sorted(const float *s, size_t n)
{
    return n % 2 ? s[n / 2] : 0.5 * ((double)s[n / 2 - 1] + (double)s[n / 2]);
}

/* 1.4826 MAD estimates the standard deviation of a normal and ignores heavy tails. */
static double mad_scale(const float *x, size_t n)
{
    float *s = sorted_copy(x, n);
    if (!s)
        return std_of(x, n);
    double med = median_sorted(s, n);
    for (size_t i = 0; i < n; i++)
        s[i] = (float)fabs((double)x[i] - med);
    qsort(s, n, sizeof *s, cmp_float);
    double mad = 1.4826 * median_sorted(s, n);
    free(s);
    return mad > 0.0 ? mad : std_of(x, n);
}

/* Mean over points of the mean distance to their k nearest neighbours (1-D: a merge
 * outwards from each point in sorted order). */
static double knn_width(const float *x, size_t n, size_t k)
{
    float *s = sorted_copy(x, n);
    if (!s)
        return std_of(x, n);
    k = k < n - 1 ? k : n - 1;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        size_t l = i, r = i + 1;
        double sum = 0.0;
        for (size_t t = 0; t < k; t++) {
            double dl = l > 0 ? (double)s[i] - (double)s[l - 1] : INFINITY;
            double dr = r < n ? (double)s[r] - (double)s[i] : INFINITY;
            if (dl <= dr)
                sum += dl, l--;
            else
                sum += dr, r++;
        }
        total += sum / (double)k;
    }
    free(s);
    return total / (double)n;
}

/* Hoare selection of the k-th smallest value (average O(n)). */
static float select_kth(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j], a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

/* Pairwise distances are capped at ~2M by striding over pairs (deterministic). */
static double percentile_width(const float *x, size_t n, double p)
{
    size_t pairs = n * (n - 1) / 2, stride = pairs / 2000000 + 1, m = 0;
    float *d = malloc((pairs / stride + 1) * sizeof *d);
    if (!d)
        return std_of(x, n);
    size_t idx = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++, idx++)
            if (idx % stride == 0)
                d[m++] = fabsf(x[i] - x[j]);
    size_t k = (size_t)(p / 100.0 * (double)(m - 1) + 0.5);
    double w = select_kth(d, m, k < m ? k : m - 1);
    free(d);
    return w;
}

double mipr_kernel_width(const float *x, size_t n, const mipr_width *w)
{
    double silver = 1.06 * pow((double)n, -0.2), sigma;
    if (n < 2)
        return 1.0;
    switch (w->rule) {
    case MIPR_WIDTH_SILVERMAN: sigma = silver * std_of(x, n); break;
    case MIPR_WIDTH_ROBUST: sigma = silver * mad_scale(x, n); break;
    case MIPR_WIDTH_KNN: sigma = knn_width(x, n, w->param > 0 ? (size_t)w->param : 5); break;
    case MIPR_WIDTH_PERCENTILE:
        sigma = percentile_width(x, n, w->param > 0 ? fmin(w->param, 100.0) : 10.0);
        break;
    case MIPR_WIDTH_FIXED: sigma = w->param; break;
    default: sigma = (w->param > 0 ? w->param : TUNED_DEFAULT) * silver * mad_scale(x, n); break;
    }
    if (!(sigma > 0.0 && isfinite(sigma))) /* e.g. a percentile of mostly-equal samples */
        sigma = silver * std_of(x, n);
    return sigma > 0.0 && isfinite(sigma) ? sigma : 1.0;
}
