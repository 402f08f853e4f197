/* Properties the alpha-entropy MI estimator must have (../shared/REFERENCE.md section 2),
 * on synthetic data where the truth is known. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) * 0x1.0p-53;
}

static double gauss(void)
{
    return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* y = rho x + sqrt(1 - rho^2) e */
static void gaussian_pair(float *x, float *y, size_t n, double rho)
{
    for (size_t i = 0; i < n; i++) {
        double a = gauss(), b = gauss();
        x[i] = (float)a;
        y[i] = (float)(rho * a + sqrt(1.0 - rho * rho) * b);
    }
}

static const mipr_width silverman = {MIPR_WIDTH_SILVERMAN, 0};

static double mi2(const float *x, const float *y, size_t n)
{
    return mipr_mi2_pair(x, y, n, mipr_kernel_width(x, n, &silverman),
                         mipr_kernel_width(y, n, &silverman));
}

static void test_closed_form_equals_eigen(void)
{
    enum { N = 64 };
    float x[N], y[N];
    mipr_error err = {0};
    for (double rho = 0.0; rho < 1.0; rho += 0.45) {
        gaussian_pair(x, y, N, rho);
        double sx = mipr_kernel_width(x, N, &silverman), sy = mipr_kernel_width(y, N, &silverman);
        double eig, closed = mipr_mi2_pair(x, y, N, sx, sy);
        CHECK_OK(mipr_mi_eig(x, y, N, sx, sy, 2.0, &eig, &err), &err);
        printf("rho %.2f: closed form %.9f, eigenvalues %.9f\n", rho, closed, eig);
        CHECK(fabs(closed - eig) <= 1e-5 * fmax(fabs(eig), 1e-3));
        double h;
        CHECK_OK(mipr_mi_eig(x, y, N, sx, sy, 1.01, &eig, &err), &err);
        CHECK_OK(mipr_entropy_eig(x, N, sx, 1.01, &h, &err), &err);
        CHECK(isfinite(eig) && h > 0.0 && h <= log2((double)N) + 1e-9);
    }
    CHECK(mipr_mi_eig(x, y, N, 1, 1, 1.0, &(double){0}, &err) == MIPR_ERR_ARG);
}

static void test_self_is_maximum_and_symmetric(void)
{
    enum { N = 200 };
    float x[N], y[N];
    for (double rho = 0.0; rho <= 0.99; rho += 0.33) {
        gaussian_pair(x, y, N, rho);
        double self = mi2(x, x, N), xy = mi2(x, y, N), yx = mi2(y, x, N);
        CHECK(self >= xy - 1e-12);
        CHECK(fabs(xy - yx) <= 1e-12 * fmax(1.0, fabs(xy)));
    }
}

static void test_independent_shrinks(void)
{
    static float x[2048], y[2048];
    double prev = INFINITY;
    for (size_t n = 128; n <= 2048; n *= 4) {
        double mean = 0.0;
        for (int t = 0; t < 4; t++) {
            gaussian_pair(x, y, n, 0.0);
            mean += mi2(x, y, n) / 4;
        }
        printf("independent, n = %4zu: mean MI %.5f\n", n, mean);
        /* the estimator's bias at small n is ~0.2 bits (against ~1 bit at rho 0.9) */
        CHECK(mean >= -1e-9 && mean < (n >= 2048 ? 0.05 : 0.25));
        CHECK(mean < prev);
        prev = mean;
    }
}

static void test_monotone_in_rho(void)
{
    enum { N = 512 };
    static float base[N], noise[N], y[N];
    for (size_t i = 0; i < N; i++)
        base[i] = (float)gauss(), noise[i] = (float)gauss();
    double prev = -1.0;
    for (double rho = 0.0; rho <= 0.99; rho += 0.1) {
        for (size_t i = 0; i < N; i++)
            y[i] = (float)(rho * base[i] + sqrt(1 - rho * rho) * noise[i]);
        double v = mi2(base, y, N);
        CHECK(v > prev);
        prev = v;
    }
    for (size_t i = 0; i < N; i++) /* |rho| matters, not its sign */
        y[i] = -(float)(0.9 * base[i] + sqrt(1 - 0.81) * noise[i]);
    double neg = mi2(base, y, N);
    for (size_t i = 0; i < N; i++)
        y[i] = -y[i];
    CHECK(fabs(neg - mi2(base, y, N)) < 1e-9);
}

static void test_invariances(void)
{
    enum { N = 300 };
    float x[N], y[N], xs[N];
    gaussian_pair(x, y, N, 0.7);
    double ref = mi2(x, y, N);
    for (size_t i = 0; i < N; i++)
        xs[i] = x[i] + 1000.0f;
    CHECK(fabs(mi2(xs, y, N) - ref) < 1e-3 * ref); /* float shift loses a few bits */
    const mipr_width rules[] = {{MIPR_WIDTH_SILVERMAN, 0}, {MIPR_WIDTH_ROBUST, 0},
                                {MIPR_WIDTH_KNN, 0}, {MIPR_WIDTH_PERCENTILE, 0},
                                {MIPR_WIDTH_TUNED, 0}};
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        double sx = mipr_kernel_width(x, N, &rules[r]), sy = mipr_kernel_width(y, N, &rules[r]);
        double a = mipr_mi2_pair(x, y, N, sx, sy);
        for (size_t i = 0; i < N; i++)
            xs[i] = x[i] * 37.5f;
        double s2 = mipr_kernel_width(xs, N, &rules[r]);
        double b = mipr_mi2_pair(xs, y, N, s2, sy);
        printf("width %-10s: sigma %.4f, MI %.5f, scaled x37.5 %.5f\n",
               mipr_width_name(rules[r].rule), sx, a, b);
        CHECK(fabs(s2 / sx - 37.5) < 1e-3 * 37.5);
        CHECK(fabs(a - b) < 1e-4 * a);
    }
    mipr_width w;
    CHECK(mipr_width_parse("knn:7", &w) && w.rule == MIPR_WIDTH_KNN && w.param == 7);
    CHECK(!mipr_width_parse("fixed", &w) && mipr_width_parse("fixed:0.5", &w));
    CHECK(!mipr_width_parse("bogus", &w) && !mipr_width_parse("knn:-1", &w));
    float c[16] = {0};
    CHECK(mipr_kernel_width(c, 16, &silverman) == 1.0);
}

/* The tiled all-pairs path equals the pair formula, and the sub-sampled path reports its
 * error against it. */
static void test_all_pairs(void)
{
    enum { D = 70, N = 100 };
    static float s[D * N];
    for (size_t a = 0; a < D; a++)
        for (size_t i = 0; i < N; i++)
            s[a * N + i] = a % 7 == 1 ? s[(a - 1) * N + i] * 2.0f + 0.01f * (float)gauss()
                                      : (float)gauss();
    mipr_error err = {0};
    mipr_mi_opts o = {silverman, 0, 1, NULL};
    mipr_mi_matrix m;
    CHECK_OK(mipr_mi_all_pairs(s, D, N, &o, &m, &err), &err);
    double worst = 0.0;
    for (size_t a = 0; a < D; a++)
        for (size_t b = 0; b < D; b++) {
            double want = mi2(s + a * N, s + b * N, N);
            worst = fmax(worst, fabs(m.mi[a * D + b] - want) / fmax(fabs(want), 1e-2));
            CHECK(m.mi[a * D + b] == m.mi[b * D + a]);
        }
    printf("all pairs vs pair formula: worst relative error %.2e\n", worst);
    CHECK(worst < 1e-4);
    CHECK(mipr_mi_normalized(&m, 1, 0) > 0.9 && mipr_mi_normalized(&m, 3, 4) < 0.3);
    CHECK(fabs(mipr_mi_normalized(&m, 5, 5) - 1.0) < 1e-6);
    mipr_pool *pool;
    CHECK_OK(mipr_pool_new(&pool, 2, &err), &err);
    mipr_mi_matrix m2;
    o.pool = pool;
    CHECK_OK(mipr_mi_all_pairs(s, D, N, &o, &m2, &err), &err);
    CHECK(memcmp(m.mi, m2.mi, sizeof(float) * D * D) == 0);
    mipr_mi_matrix_free(&m), mipr_mi_matrix_free(&m2);
    mipr_pool_free(pool);
}

/* The approximate path (a random quarter of the off-diagonal sample tiles) against the
 * exact one, on enough samples for tiles to be many. */
static void test_subsampled_error(void)
{
    enum { D = 24, N = 640 };
    static float s[D * N];
    for (size_t a = 0; a < D; a++) {
        double rho = (double)(a % 6) / 6.0;
        for (size_t i = 0; i < N; i++)
            s[a * N + i] = a < 6 ? (float)gauss()
                                 : (float)(rho * s[(a % 6) * N + i] + sqrt(1 - rho * rho) * gauss());
    }
    mipr_error err = {0};
    mipr_mi_opts o = {silverman, 0, 1, NULL};
    mipr_mi_matrix exact, approx;
    CHECK_OK(mipr_mi_all_pairs(s, D, N, &o, &exact, &err), &err);
    o.sample_pairs = (uint64_t)N * N / 8; /* a quarter of the i < j half */
    CHECK_OK(mipr_mi_all_pairs(s, D, N, &o, &approx, &err), &err);
    double worst = 0.0, mean = 0.0;
    for (size_t q = 0; q < (size_t)D * D; q++) {
        double e = fabs(approx.mi[q] - exact.mi[q]);
        worst = fmax(worst, e), mean += e / (D * D);
    }
    printf("sub-sampled (1/4 of the tiles): mean abs error %.4f bits, max %.4f\n", mean, worst);
    CHECK(worst < 0.1);
    mipr_mi_matrix_free(&exact), mipr_mi_matrix_free(&approx);
}

/* Copies of the kinds a merge must remove: exact, x0.5, x-1.5, and + noise at 1 % of the
 * variance; kind = copy index % 4. */
static void plant(float *s, size_t d, size_t n, size_t first)
{
    for (size_t a = 0; a < d; a++)
        for (size_t i = 0; i < n; i++) {
            const float src = a >= first ? s[(a - first) * n + i] : 0.0f;
            static const float scale[4] = {1.0f, 0.5f, -1.5f, 1.0f};
            s[a * n + i] = a < first ? (float)gauss()
                                     : src * scale[(a - first) % 4] +
                                           ((a - first) % 4 == 3 ? 0.1f * (float)gauss() : 0.0f);
        }
}

/* Default settings (null threshold, every pair visited, R^2 gate), every seed, with and
 * without clusters: all 16 copies are found, each merged into its source. */
static void test_redundancy(void)
{
    enum { D = 96, N = 128 };
    static float s[D * N];
    double imp[D];
    plant(s, D, N, 80);
    for (size_t a = 0; a < D; a++)
        imp[a] = a >= 80 ? 0.5 : 1.0; /* the copies matter less */
    mipr_error err = {0};
    for (uint32_t k = 0; k <= 4; k += 4)
        for (uint64_t seed = 0; seed < 10; seed++) {
            mipr_redundancy_opts o = {.target = 16, .clusters = k, .seed = seed,
                                      .importance = imp, .mi = {silverman, 0, 1, NULL}};
            mipr_redundancy r;
            CHECK_OK(mipr_find_redundant(s, D, N, &o, &r, &err), &err);
            if (seed == 0)
                printf("redundancy (clusters %u): %u marked, %llu pairs visited, threshold "
                       "%.4f (p %.4f, Gaussian |rho| %.3f), %llu significant pairs\n", k,
                       r.marked, (unsigned long long)r.draws, r.threshold, r.null_level,
                       r.rho_equiv, (unsigned long long)r.significant);
            CHECK(r.marked == 16 && r.null_level > 0.0 && r.threshold < 0.5);
            for (size_t a = 0; a < D; a++) {
                CHECK(r.is_marked[a] == (a >= 80) && (a < 80 || r.partner[a] == a - 80));
                if (a >= 80 && (a - 80) % 4 != 3) /* an exact merge */
                    CHECK(r.r2[a] > 0.9999f &&
                          fabsf(r.alpha[a] - (float[]){1.0f, 0.5f, -1.5f}[(a - 80) % 4]) < 1e-4f);
            }
            mipr_redundancy_free(&r);
        }
}

/* Beyond the all-pairs bound: the hashed candidate search's recall of planted copies. */
static void test_redundancy_hashed(void)
{
    enum { D = 4600, N = 64, COPIES = 64 };
    static float s[D * N];
    plant(s, D, N, D - COPIES);
    mipr_error err = {0};
    mipr_redundancy_opts o = {.mi = {silverman, 0, 1, NULL}};
    mipr_redundancy r;
    CHECK_OK(mipr_find_redundant(s, D, N, &o, &r, &err), &err);
    uint32_t found[4] = {0};
    for (size_t a = D - COPIES; a < D; a++) {
        uint32_t src = (uint32_t)(a - (D - COPIES));
        found[src % 4] += (r.is_marked[a] && r.partner[a] == src) ||
                          (r.is_marked[src] && r.partner[src] == a);
    }
    printf("hashed search, %u neurons: found %u/%u exact, %u/%u x0.5, %u/%u x-1.5, %u/%u noisy "
           "copies; %u marked; threshold %.4f\n", D, found[0], COPIES / 4, found[1], COPIES / 4,
           found[2], COPIES / 4, found[3], COPIES / 4, r.marked, r.threshold);
    CHECK(found[0] == COPIES / 4 && found[1] == COPIES / 4 && found[2] == COPIES / 4);
    CHECK(found[3] >= COPIES / 4 - 1 && r.marked <= COPIES);
    mipr_redundancy_free(&r);
}

/* The Gaussian equivalent of a threshold: normalised MI 0.5 is |rho| ~ 0.86 at n = 512. */
static void test_rho_equivalent(void)
{
    double lo = mipr_mi_rho_equivalent(0.2, 512, &silverman);
    double mid = mipr_mi_rho_equivalent(0.5, 512, &silverman);
    printf("Gaussian |rho| for normalised MI 0.2: %.3f, 0.5: %.3f\n", lo, mid);
    CHECK(lo < mid && mid > 0.8 && mid < 0.95);
    CHECK(mipr_mi_rho_equivalent(-0.1, 512, &silverman) == 0.0);
}

int main(void)
{
    test_closed_form_equals_eigen();
    test_self_is_maximum_and_symmetric();
    test_independent_shrinks();
    test_monotone_in_rho();
    test_invariances();
    test_all_pairs();
    test_subsampled_error();
    test_redundancy();
    test_redundancy_hashed();
    test_rho_equivalent();
    return mipr_test_finish("mi");
}
