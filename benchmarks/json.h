/* A small JSON reader for the benchmark reports: parses a whole document into a tree
 * (RFC 8259 syntax, strictly: no trailing commas, no comments), so the suite can check
 * that every JSON file it wrote parses, and read figures back for docs/RESULTS.md. */
#ifndef MIPR_BENCH_JSON_H
#define MIPR_BENCH_JSON_H

#include <stddef.h>

enum bench_json_type { BJ_NULL, BJ_BOOL, BJ_NUMBER, BJ_STRING, BJ_ARRAY, BJ_OBJECT };

typedef struct bench_json {
    enum bench_json_type type;
    double number;             /* numbers; bools are 0 or 1 */
    char *string;              /* strings (escapes decoded); the key of an object member */
    char *key;
    struct bench_json *items;  /* arrays and objects: n items */
    size_t n;
} bench_json;

/* NULL on a syntax error, with its byte offset and what was expected in msg. */
bench_json *bench_json_parse(const char *text, size_t len, char *msg, size_t cap);
void bench_json_free(bench_json *j);
/* Member of an object by key, or element i of an array ("3"); a path "a.b.0.c" walks
 * several. NULL when missing. */
const bench_json *bench_json_get(const bench_json *j, const char *path);
/* The number (or bool, as 0 or 1) at path, or def when missing or neither. */
double bench_json_num(const bench_json *j, const char *path, double def);
/* The string at path, or def. */
const char *bench_json_str(const bench_json *j, const char *path, const char *def);

#endif
