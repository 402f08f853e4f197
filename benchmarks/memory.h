/* Resident memory of this process, for benchmarks: current, and the peak since the last
 * reset (Linux /proc; on other systems, or when /proc is not there, 0 and the process's
 * lifetime peak from getrusage). */
#ifndef MIPR_BENCH_MEMORY_H
#define MIPR_BENCH_MEMORY_H

/* Starts a new peak window; returns 0 when the kernel allowed it (else the peak is the
 * process's lifetime peak). */
int mipr_bench_peak_reset(void);
double mipr_bench_rss_mib(void);
double mipr_bench_peak_mib(void);

#endif
