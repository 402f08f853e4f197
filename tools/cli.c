#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int match_long(const cli_parser *p, const char *a, const char **inline_arg)
{
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    for (int k = 0; p->opts[k].name; k++)
        if (strlen(p->opts[k].name) == n && strncmp(p->opts[k].name, a, n) == 0) {
            *inline_arg = eq ? eq + 1 : NULL;
            return k;
        }
    return -1;
}

static int match_short(const cli_parser *p, char c)
{
    for (int k = 0; p->opts[k].name; k++)
        if (p->opts[k].short_name == c)
            return k;
    return -1;
}

int cli_next(cli_parser *p, const char **arg)
{
    *arg = NULL;
    if (p->i >= p->argc)
        return CLI_END;
    const char *a = p->argv[p->i++];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        fputs(p->usage, stdout);
        return CLI_HELP;
    }
    if (a[0] != '-' || a[1] == '\0') {
        *arg = a;
        return CLI_POSITIONAL;
    }
    const char *inl = NULL;
    int k = a[1] == '-' ? match_long(p, a + 2, &inl) : (a[2] ? -1 : match_short(p, a[1]));
    if (k < 0)
        return cli_usage_error(p, "unknown option '%s'", a), CLI_ERROR;
    if (!p->opts[k].has_arg) {
        if (inl)
            return cli_usage_error(p, "option '--%s' takes no value", p->opts[k].name), CLI_ERROR;
        return k;
    }
    if (!inl && p->i >= p->argc)
        return cli_usage_error(p, "option '%s' needs a value", a), CLI_ERROR;
    *arg = inl ? inl : p->argv[p->i++];
    return k;
}

int cli_parse(cli_parser *p, const char **positional,
              int (*fn)(cli_parser *p, int opt, const char *value, void *ctx), void *ctx)
{
    const char *v;
    int k;
    while ((k = cli_next(p, &v)) != CLI_END) {
        if (k == CLI_HELP)
            return EXIT_OK;
        if (k == CLI_ERROR)
            return EXIT_USAGE;
        if (k == CLI_POSITIONAL && *positional)
            return cli_usage_error(p, "unexpected argument '%s'", v);
        if (k == CLI_POSITIONAL)
            *positional = v;
        else if (!fn(p, k, v, ctx))
            return EXIT_USAGE;
    }
    return -1;
}

int cli_usage_error(const cli_parser *p, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", p->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", p->cmd);
    return EXIT_USAGE;
}

int cli_u64(const cli_parser *p, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        cli_usage_error(p, "%s expects a non-negative integer, got '%s'", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_u32(const cli_parser *p, const char *opt, const char *s, uint32_t min, uint32_t max,
            uint32_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < (long long)min || v > (long long)max) {
        cli_usage_error(p, "%s expects an integer in %u..%u, got '%s'", opt, min, max, s);
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

int cli_float(const cli_parser *p, const char *opt, const char *s, float min, float max,
              float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
        cli_usage_error(p, "%s expects a number in [%g, %g], got '%s'", opt, (double)min,
                        (double)max, s);
        return 0;
    }
    *out = (float)v;
    return 1;
}

int cli_fail(const mipr_error *err)
{
    fprintf(stderr, "mipr: %s\n", err->msg[0] ? err->msg : mipr_status_name(err->status));
    return EXIT_FAIL;
}

void cli_blame(mipr_error *err, const char *path)
{
    if (!path || (strncmp(err->msg, path, strlen(path)) == 0 && err->msg[strlen(path)] == ':'))
        return;
    char what[sizeof err->msg];
    snprintf(what, sizeof what, "%s", err->msg);
    mipr_error_set(err, err->status, "%s: %s", path, what);
}

char *cli_read_text(const char *path, size_t *len, mipr_error *err)
{
    mipr_mapped_file f;
    if (mipr_file_map(&f, path, err))
        return NULL;
    char *buf = malloc(f.size + 1);
    if (!buf) {
        mipr_file_unmap(&f);
        mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory for %zu bytes", path, f.size);
        return NULL;
    }
    if (f.size)
        memcpy(buf, f.data, f.size);
    buf[f.size] = '\0';
    *len = f.size;
    mipr_file_unmap(&f);
    return buf;
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_bar_init(cli_bar *b, const char *label, const char *unit, int quiet)
{
    *b = (cli_bar){.label = label, .unit = unit, .t0 = cli_now(), .drawn = -1.0,
                   .on = !quiet && isatty(STDERR_FILENO)};
}

/* m:ss, or h:mm:ss past an hour. */
static void print_duration(double secs)
{
    unsigned long s = secs > 0.0 && secs < 1e8 ? (unsigned long)(secs + 0.5) : 0;
    if (s >= 3600)
        fprintf(stderr, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        fprintf(stderr, "%lu:%02lu", s / 60, s % 60);
}

void cli_progress(void *bar, uint64_t done, uint64_t total)
{
    cli_bar *b = bar;
    double now = cli_now(), secs = now - b->t0;
    if (!b->on || (done < total && now - b->drawn < 0.1))
        return;
    b->drawn = now;
    double rate = secs > 0.0 ? (double)done / secs : 0.0;
    fprintf(stderr, "\r%s %llu/%llu %s", b->label, (unsigned long long)done,
            (unsigned long long)total, b->unit);
    if (done >= total) {
        fprintf(stderr, " in %.1f s (%.1f/s)\033[K\n", secs, rate);
    } else {
        fprintf(stderr, " (%.0f%%), %.1f/s, ETA ", total ? 100.0 * (double)done / (double)total
                                                         : 0.0, rate);
        if (rate > 0.0)
            print_duration((double)(total - done) / rate);
        else
            fputs("-", stderr);
        fputs("\033[K", stderr);
    }
    fflush(stderr);
}
