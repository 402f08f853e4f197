/* Small test support: checks that report file and line, and the test-data locator. */
#ifndef MIPR_TESTUTIL_H
#define MIPR_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "mipr.h"

extern int mipr_test_failures;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
            mipr_test_failures++;                                                           \
        }                                                                                   \
    } while (0)

#define CHECK_OK(expr, errp)                                                                \
    do {                                                                                    \
        mipr_status st_ = (expr);                                                           \
        if (st_ != MIPR_OK) {                                                               \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,            \
                    (errp)->msg);                                                           \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

/* Path of a file under MIPR_TEST_DATA; exits with a message saying where to get the data
 * when it is missing (tests never skip silently). The result is valid until the next call
 * with the same slot (0..7). */
const char *mipr_test_data(const char *rel);
/* A scratch path under MIPR_TEST_TMP (or /tmp) unique to this process. */
const char *mipr_test_tmp(const char *name);
/* Whole file into a malloc'd NUL-terminated buffer; exits on failure. */
char *mipr_test_read_file(const char *path, size_t *len);
/* Minimal JSON lookups for oracles.json: the string value of "key" in the object whose
 * "id" equals id (escapes decoded), or its integer array. Exit on failure. */
char *mipr_test_oracle_string(const char *json, const char *id, const char *key);
size_t mipr_test_oracle_ints(const char *json, const char *id, const char *key, int32_t *out,
                             size_t cap);
/* JSON scanning from p (at a '"' or '['); *end is set past the value. */
char *mipr_test_json_string(const char *p, const char **end);
size_t mipr_test_json_ints(const char *p, int32_t *out, size_t cap, const char **end);
int mipr_test_finish(const char *name);

/* Greedy generation (llama2.c's loop) collecting the text as the CLI prints it and the ids. */
typedef struct mipr_test_text {
    const mipr_tokenizer *tok;
    char text[8192];
    size_t len;
    int32_t ids[1024];
    size_t n_ids;
} mipr_test_text;
void mipr_test_greedy(const mipr_model *m, const mipr_tokenizer *tok, const char *prompt,
                      uint32_t steps, mipr_test_text *out);

#endif
