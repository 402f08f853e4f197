/* Runtime dispatch picks the SIMD table the machine can run: NEON on every ARM build (aarch64,
 * and armv7 whose build baseline is NEON with FMA), AVX2 on an x86-64 CPU with AVX2+FMA+F16C.
 * The expectation is derived independently of cpuinfo (the build target on ARM, the kernel's
 * /proc/cpuinfo flags on x86), so a broken detection cannot agree with itself. MIPR_ISA, when
 * the test runs with it (ctest unit.dispatch.*), must win over the automatic choice. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#if defined(__x86_64__)
/* Whether the space-separated list of CPU flags holds word. */
static int has_flag(const char *flags, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = flags; (p = strstr(p, word)); p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
            return 1;
    return 0;
}

/* /proc/cpuinfo reports a size of 0: read it line by line up to the first "flags" line. */
static const char *expected_automatic(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    static char line[8192];
    int avx2 = 0;
    if (!f) {
        fprintf(stderr, "cannot open /proc/cpuinfo to know whether the CPU has AVX2\n");
        exit(1);
    }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            avx2 = has_flag(line, "avx2") && has_flag(line, "fma") && has_flag(line, "f16c");
            break;
        }
    fclose(f);
    return avx2 ? "avx2" : "generic";
}
#elif defined(__aarch64__) || defined(__arm__)
static const char *expected_automatic(void)
{
    return "neon";
}
#else
static const char *expected_automatic(void)
{
    return "generic";
}
#endif

int main(void)
{
    const char *env = getenv("MIPR_ISA");
    const char *want = env && *env ? env : expected_automatic();
    char err[160];
    CHECK(mipr_kernels_init(err, sizeof err) == 0);
    if (err[0])
        fprintf(stderr, "mipr_kernels_init: %s\n", err);
    const char *got = mipr_kernels()->isa;
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "dispatch chose %s, expected %s (MIPR_ISA=%s)\n", got, want,
                env ? env : "");
        CHECK(0);
    }
    /* the automatic choice, whatever MIPR_ISA says */
    const struct mipr_kernels *t = NULL;
    CHECK(mipr_kernels_select(NULL, &t, err, sizeof err) == 0);
    CHECK(t && strcmp(t->isa, expected_automatic()) == 0);
    printf("dispatch: %s (automatic %s, MIPR_ISA=%s)\n", got, t ? t->isa : "?", env ? env : "");
    return mipr_test_finish("dispatch");
}
