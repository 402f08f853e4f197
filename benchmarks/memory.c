/* Writing "5" to /proc/self/clear_refs resets the kernel's high-water mark of resident
 * memory (VmHWM, Linux >= 4.0), so one process can measure the peak of each step it runs
 * instead of only its lifetime peak. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "memory.h"

static double status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1.0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            v = strtod(line + n + 1, NULL);
    if (f)
        fclose(f);
    return v;
}

int mipr_bench_peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

double mipr_bench_rss_mib(void)
{
    double k = status_kib("VmRSS");
    return k < 0 ? 0.0 : k / 1024.0;
}

double mipr_bench_peak_mib(void)
{
    double k = status_kib("VmHWM");
    if (k < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        k = (double)ru.ru_maxrss;
    }
    return k / 1024.0;
}
