/* Argument parsing, number checks and error printing shared by the mipr subcommands. */
#ifndef MIPR_TOOLS_CLI_H
#define MIPR_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "mipr.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct cli_opt {
    const char *name;  /* long name without "--" */
    char short_name;   /* 0: none */
    int has_arg;
} cli_opt;

typedef struct cli_parser {
    int argc, i;
    char **argv;
    const char *cmd;   /* "mipr generate": prefix of messages */
    const char *usage; /* printed after usage errors and by --help */
    const cli_opt *opts;
} cli_parser;

enum { CLI_END = -1, CLI_POSITIONAL = -2, CLI_ERROR = -3, CLI_HELP = -4 };

/* Next option: its index in opts (arg set when it takes one), CLI_POSITIONAL (arg set),
 * CLI_END, CLI_HELP (--help/-h: usage printed to stdout) or CLI_ERROR (message printed). */
int cli_next(cli_parser *p, const char **arg);
/* The option loop of a command with one positional argument: stores it in *positional and
 * hands every option to fn (which prints a usage error and returns 0 when the value is bad).
 * Returns -1 when all went well, else the exit code (EXIT_OK after --help). */
int cli_parse(cli_parser *p, const char **positional,
              int (*fn)(cli_parser *p, int opt, const char *value, void *ctx), void *ctx);
/* Prints "CMD: message" and the usage hint to stderr; returns EXIT_USAGE. */
int cli_usage_error(const cli_parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Parses an integer in [min, max] / a finite float in [min, max]; prints a usage error. */
int cli_u32(const cli_parser *p, const char *opt, const char *s, uint32_t min, uint32_t max,
            uint32_t *out);
int cli_u64(const cli_parser *p, const char *opt, const char *s, uint64_t *out);
int cli_float(const cli_parser *p, const char *opt, const char *s, float min, float max,
              float *out);
/* Prints "mipr: message" for a failed library call; returns EXIT_FAIL. */
int cli_fail(const mipr_error *err);
/* Reads a whole text file (NUL-terminated); returns NULL with err set. */
/* Prefixes err's message with "path: " unless it already names it: for failures that core
 * reports about a buffer (a text, logits) whose file only the tool knows. */
void cli_blame(mipr_error *err, const char *path);
char *cli_read_text(const char *path, size_t *len, mipr_error *err);
/* Writes s as a JSON string literal (quotes and escapes included). */
void cli_json_str(FILE *f, const char *s);
/* Seconds on a monotonic clock. */
double cli_now(void);
/* A long step's progress on stderr, drawn only when stderr is a terminal and the command
 * was not asked to be quiet: "\rLABEL done/total UNIT (pct), rate/s, ETA m:ss", redrawn
 * at most ten times a second, and a final line with the time taken. */
typedef struct cli_bar {
    const char *label, *unit;
    double t0, drawn;
    int on;
} cli_bar;

void cli_bar_init(cli_bar *b, const char *label, const char *unit, int quiet);
/* The progress callback of the library's options: ctx is a cli_bar. */
void cli_progress(void *bar, uint64_t done, uint64_t total);

/* Output files (tools/output.c). Installs the SIGINT/SIGTERM/SIGHUP handler that removes
 * the temporaries of open outputs, and ignores SIGXFSZ so a full quota is an error. */
void cli_signals_init(void);
/* mipr_outfile_open/commit/abort with the temporary registered for that handler. */
mipr_status cli_out_open(mipr_outfile *o, const char *path, mipr_error *err);
/* cli_out_open refusing an output that is one of the n inputs (mipr_outfile_open_from). */
mipr_status cli_out_open_from(mipr_outfile *o, const char *path, const char *const *inputs,
                              size_t n, mipr_error *err);
mipr_status cli_out_commit(mipr_outfile *o, mipr_error *err);
/* Commits the n outputs in order with the signals held off across all the renames, so an
 * interrupt never leaves some new outputs beside old ones; on a failure the outputs not yet
 * committed are removed. */
mipr_status cli_out_commit_all(mipr_outfile *const *o, size_t n, mipr_error *err);
void cli_out_abort(mipr_outfile *o);
/* mipr_pool_new with workers that never take those signals (they go to the main thread). */
mipr_status cli_pool_new(mipr_pool **out, uint32_t threads, mipr_error *err);

int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_unpack(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#endif
