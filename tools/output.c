/* Output files of the commands, and what happens to them when the user interrupts.
 *
 * Every file is written through core's atomic mipr_outfile (a temporary beside the target,
 * renamed over it once complete and synced). An uncaught SIGINT or SIGTERM would still leave
 * the temporary behind, so the temporaries of open outputs are registered here and the
 * handler removes them (unlink is async-signal-safe) before the signal ends the process as
 * it would have anyway. The registry is the one piece of process-wide mutable state in mipr:
 * a signal handler can reach nothing else, and core stays free of it.
 *
 * Races are closed by masks, not by atomics: a slot changes only while this thread blocks
 * the signals, and pool workers are created with them blocked (cli_pool_new), so the
 * handler always runs on the main thread and never sees a slot mid-change. Commit runs
 * with the signals held off too: an interrupt then takes effect right after the rename, and
 * the target is the old file or the complete new one, never neither. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stddef.h>
#include <unistd.h>

#include "cli.h"

#define MAX_OUTPUTS 4 /* prune holds two (model and report) */

static const char *volatile pending[MAX_OUTPUTS];

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};

static void on_signal(int sig)
{
    for (size_t i = 0; i < MAX_OUTPUTS; i++)
        if (pending[i])
            unlink(pending[i]);
    /* SA_RESETHAND restored the default action; the signal is blocked while this handler
     * runs, so it is delivered, and ends the process, as soon as the handler returns. */
    raise(sig);
}

void cli_signals_init(void)
{
    struct sigaction sa;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof caught / sizeof *caught; i++)
        sigaddset(&sa.sa_mask, caught[i]);
    sa.sa_flags = SA_RESETHAND;
    sa.sa_handler = on_signal;
    for (size_t i = 0; i < sizeof caught / sizeof *caught; i++) {
        struct sigaction old;
        /* a signal ignored by whoever started us (nohup, sh's &) stays ignored */
        if (sigaction(caught[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(caught[i], &sa, NULL);
    }
    /* Past RLIMIT_FSIZE a write should fail with EFBIG and be reported, not kill us with
     * the temporary left behind. */
    signal(SIGXFSZ, SIG_IGN);
}

static void block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof caught / sizeof *caught; i++)
        sigaddset(&set, caught[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void unblock(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void forget(const mipr_outfile *o)
{
    for (size_t i = 0; i < MAX_OUTPUTS; i++)
        if (o->tmp_path && pending[i] == o->tmp_path)
            pending[i] = NULL;
}

mipr_status cli_out_open(mipr_outfile *o, const char *path, mipr_error *err)
{
    return cli_out_open_from(o, path, NULL, 0, err);
}

mipr_status cli_out_open_from(mipr_outfile *o, const char *path, const char *const *inputs,
                              size_t n, mipr_error *err)
{
    sigset_t old;
    block(&old);
    mipr_status st = mipr_outfile_open_from(o, path, inputs, n, err);
    size_t i = 0;
    while (st == MIPR_OK && i < MAX_OUTPUTS && pending[i])
        i++;
    if (st == MIPR_OK && i == MAX_OUTPUTS) {
        mipr_outfile_abort(o);
        st = mipr_error_set(err, MIPR_ERR_ARG, "%s: too many open outputs", path);
    }
    if (st == MIPR_OK)
        pending[i] = o->tmp_path;
    unblock(&old);
    return st;
}

mipr_status cli_out_commit(mipr_outfile *o, mipr_error *err)
{
    sigset_t old;
    block(&old);
    forget(o);
    mipr_status st = mipr_outfile_commit(o, err);
    unblock(&old);
    return st;
}

mipr_status cli_out_commit_all(mipr_outfile *const *o, size_t n, mipr_error *err)
{
    sigset_t old;
    block(&old);
    mipr_status st = MIPR_OK;
    for (size_t i = 0; i < n; i++) {
        forget(o[i]);
        if (st == MIPR_OK)
            st = mipr_outfile_commit(o[i], err);
        else
            mipr_outfile_abort(o[i]);
    }
    unblock(&old);
    return st;
}

void cli_out_abort(mipr_outfile *o)
{
    sigset_t old;
    block(&old);
    forget(o);
    mipr_outfile_abort(o);
    unblock(&old);
}

mipr_status cli_pool_new(mipr_pool **out, uint32_t threads, mipr_error *err)
{
    sigset_t old;
    block(&old); /* inherited by the workers for their whole life */
    mipr_status st = mipr_pool_new(out, threads, err);
    unblock(&old);
    return st;
}
