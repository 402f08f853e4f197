/* Worker threads for the engine, over pthreadpool when the build has it. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>

#include "mipr_runtime.h"
#include "pool_internal.h"

#ifdef MIPR_HAVE_PTHREADPOOL
#include <pthreadpool.h>
#endif

struct mipr_pool {
    uint32_t threads;
#ifdef MIPR_HAVE_PTHREADPOOL
    pthreadpool_t tp;
#endif
};

/* MIPR_THREADS when set to a positive number; else one thread per physical core (cpuinfo),
 * never more than the processors this process may run on. */
static uint32_t default_threads(void)
{
    const char *env = getenv("MIPR_THREADS");
    long n = env ? strtol(env, NULL, 10) : 0;
    if (n > 0 && n <= 1024)
        return (uint32_t)n;
    uint32_t cores = mipr_cpu_cores(), online = mipr_cpu_count();
    return cores && cores < online ? cores : online;
}

uint32_t mipr_cpu_count(void)
{
#ifdef MIPR_NO_THREADS
    return 1; /* bare metal: one core, and no sysconf */
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
#endif
}

mipr_status mipr_pool_new(mipr_pool **out, uint32_t threads, mipr_error *err)
{
    *out = NULL;
    if (threads == 0)
        threads = default_threads();
    if (threads > 1024)
        return mipr_error_set(err, MIPR_ERR_ARG, "%u threads is more than 1024", threads);
    mipr_pool *p = calloc(1, sizeof *p);
    if (!p)
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for a thread pool");
#ifdef MIPR_HAVE_PTHREADPOOL
    if (threads > 1 && !(p->tp = pthreadpool_create(threads))) {
        free(p);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "cannot start %u threads", threads);
    }
#else
    threads = 1;
#endif
    p->threads = threads;
    *out = p;
    return MIPR_OK;
}

void mipr_pool_free(mipr_pool *p)
{
    if (!p)
        return;
#ifdef MIPR_HAVE_PTHREADPOOL
    if (p->tp)
        pthreadpool_destroy(p->tp);
#endif
    free(p);
}

uint32_t mipr_pool_threads(const mipr_pool *p)
{
    return p ? p->threads : 1;
}

struct pthreadpool *mipr_pool_pthreadpool(const mipr_pool *p)
{
#ifdef MIPR_HAVE_PTHREADPOOL
    return p ? p->tp : NULL;
#else
    (void)p;
    return NULL;
#endif
}

void mipr_pool_run(mipr_pool *p, void (*fn)(void *ctx, size_t i), void *ctx, size_t n)
{
#ifdef MIPR_HAVE_PTHREADPOOL
    if (p && p->tp && n > 1) {
        /* Workers that spin after a job starve the caller when cores are shared (two
         * processes of two threads on two cores ran 1.8x slower); yielding costs nothing
         * measurable when the machine is idle. */
        pthreadpool_parallelize_1d(p->tp, fn, ctx, n, PTHREADPOOL_FLAG_YIELD_WORKERS);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        fn(ctx, i);
}
