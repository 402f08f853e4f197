/* Chooses the kernel table once. The chosen table (with the message of a bad MIPR_ISA) is the
 * only global mutable state of mipr, and it is written once, under call_once.
 *
 * Compile-time switches, set by arch/CMakeLists.txt: MIPR_HAVE_AVX2 / MIPR_HAVE_NEON /
 * MIPR_HAVE_HELIUM (that table is compiled in), MIPR_HAVE_CPUINFO (runtime detection),
 * MIPR_ONCE_C11 / MIPR_ONCE_PTHREAD (how the one-time initialisation is made thread-safe). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mipr_arch.h"

#if defined(MIPR_HAVE_AVX2)
#include "x86/kernels_avx2.h"
#endif
#if defined(MIPR_HAVE_NEON)
#include "arm/kernels_neon.h"
#endif
#if defined(MIPR_HAVE_HELIUM)
#include "arm/kernels_helium.h"
#endif
#if defined(MIPR_HAVE_CPUINFO)
#include <cpuinfo.h>
#endif
#if defined(MIPR_ONCE_C11)
#include <threads.h>
#elif defined(MIPR_ONCE_PTHREAD)
#include <pthread.h>
#endif

enum support { NO, YES, UNKNOWN };

/* Whether the CPU runs the table named isa (only asked for tables that are compiled in).
 * Without cpuinfo only what the whole program was compiled for is known. */
static enum support cpu_supports(const char *isa)
{
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
    /* M-profile: no cpuinfo, and the build targets one core */
    if (!strcmp(isa, "helium"))
        return YES;
#endif
#if defined(MIPR_HAVE_CPUINFO)
    if (cpuinfo_initialize()) {
        if (!strcmp(isa, "avx2"))
            return cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3() && cpuinfo_has_x86_f16c()
                       ? YES : NO;
        if (!strcmp(isa, "neon"))
            return cpuinfo_has_arm_neon_fma() && cpuinfo_has_arm_neon_fp16() ? YES : NO;
        return NO;
    }
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    if (!strcmp(isa, "avx2"))
        return YES;
#endif
#if defined(__aarch64__) || (defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA))
    if (!strcmp(isa, "neon"))
        return YES;
#endif
    return UNKNOWN;
}

/* The SIMD table named isa if this build has it, else NULL. */
static const struct mipr_kernels *compiled_table(const char *isa)
{
#if defined(MIPR_HAVE_AVX2)
    if (!strcmp(isa, "avx2"))
        return &mipr_kernels_avx2_table;
#endif
#if defined(MIPR_HAVE_NEON)
    if (!strcmp(isa, "neon"))
        return &mipr_kernels_neon_table;
#endif
#if defined(MIPR_HAVE_HELIUM)
    if (!strcmp(isa, "helium"))
        return &mipr_kernels_helium_table;
#endif
    return NULL;
}

static const struct mipr_kernels *automatic(void)
{
    static const char *const order[] = {"avx2", "neon", "helium"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (compiled_table(order[i]) && cpu_supports(order[i]) == YES)
            return compiled_table(order[i]);
    return mipr_kernels_generic();
}

static int fail(char *err, size_t errlen, const char *isa, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "MIPR_ISA=%s: %s", isa, why);
    return -1;
}

/* Why a known SIMD table is missing from this build. */
static const char *not_built(const char *isa)
{
    if (!strcmp(isa, "avx2"))
        return "not in this build (x86-64 only)";
    if (!strcmp(isa, "neon"))
        return "not in this build (aarch64 and armv7 only)";
    return "not in this build (Armv8.1-M with MVE only)";
}

int mipr_kernels_select(const char *isa, const struct mipr_kernels **out, char *err,
                        size_t errlen)
{
    *out = automatic();
    if (err && errlen)
        err[0] = '\0';
    if (!isa || !*isa)
        return 0;
    if (!strcmp(isa, "generic")) {
        *out = mipr_kernels_generic();
        return 0;
    }
    bool known = !strcmp(isa, "avx2") || !strcmp(isa, "neon") || !strcmp(isa, "helium");
    if (!known)
        return fail(err, errlen, isa, "unknown (expected generic, avx2, neon or helium)");
    if (!compiled_table(isa))
        return fail(err, errlen, isa, not_built(isa));
    if (cpu_supports(isa) == NO)
        return fail(err, errlen, isa,
                    !strcmp(isa, "avx2") ? "this CPU has no AVX2+FMA+F16C"
                                         : "this CPU has no NEON with FMA and FP16 conversion");
    *out = compiled_table(isa); /* YES, or UNKNOWN without cpuinfo: the user's word */
    return 0;
}

/* ---- the table in use, chosen once ---- */

static struct {
    const struct mipr_kernels *table;
    int status;
    char err[128];
} g_choice;

static void choose(void)
{
    g_choice.status = mipr_kernels_select(getenv("MIPR_ISA"), &g_choice.table, g_choice.err,
                                          sizeof g_choice.err);
}

#if defined(MIPR_ONCE_C11)
static once_flag g_once = ONCE_FLAG_INIT;
static void choose_once(void)
{
    call_once(&g_once, choose);
}
#elif defined(MIPR_ONCE_PTHREAD)
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void choose_once(void)
{
    pthread_once(&g_once, choose);
}
#else
/* No threads on this platform (firmware): a plain flag is enough. */
static void choose_once(void)
{
    if (!g_choice.table)
        choose();
}
#endif

int mipr_kernels_init(char *err, size_t errlen)
{
    choose_once();
    if (err && errlen)
        snprintf(err, errlen, "%s", g_choice.err);
    return g_choice.status;
}

const struct mipr_kernels *mipr_kernels(void)
{
    choose_once();
    return g_choice.table;
}

const struct mipr_kernels *mipr_kernels_for(const char *isa)
{
    if (!isa)
        return NULL;
    if (!strcmp(isa, "generic"))
        return mipr_kernels_generic();
    const struct mipr_kernels *t = compiled_table(isa);
    if (!t)
        return NULL;
    enum support s = cpu_supports(isa);
    /* unknown support (no cpuinfo): only when MIPR_ISA chose it */
    return s == YES || (s == UNKNOWN && mipr_kernels() == t) ? t : NULL;
}

uint32_t mipr_cpu_cores(void)
{
#if defined(MIPR_HAVE_CPUINFO)
    if (cpuinfo_initialize())
        return cpuinfo_get_cores_count();
#endif
    return 0;
}
