/* libFuzzer targets of mipr's readers (docs/RELIABILITY.md). Each target defines
 * LLVMFuzzerTestOneInput; a fuzzing build links libFuzzer's main, every other build links
 * replay.c, which runs the corpus and the regression inputs once as a plain test. */
#ifndef MIPR_FUZZ_H
#define MIPR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "mipr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refused input must come with its status in err and a message naming the file: anything
 * else is a finding (abort, so that libFuzzer saves the input). */
void fuzz_expect_error(mipr_status st, const mipr_error *err, const char *name);
/* Runs two tokens through an engine of a few positions: a model that validated must run. */
void fuzz_run_model(const mipr_model *m);
/* Encodes a fixed text and decodes every id (at most a few thousand) of a finished
 * tokenizer, checking the ids it returns. */
void fuzz_use_tokenizer(const mipr_tokenizer *t);
/* Stops with a message (abort: libFuzzer keeps the input). */
void fuzz_fail(const char *what, const char *detail);

#endif
