/* Shared by the tokenizer's files (not part of the public header). */
#ifndef MIPR_TOKENIZER_INTERNAL_H
#define MIPR_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mipr_runtime.h"

/* runtime/unicode_tables.c (generated): runs of (first code point << 2 | class). */
extern const uint32_t mipr_unicode_runs[];
extern const uint32_t mipr_unicode_n_runs;

/* Splits s[0..len) into pre-tokens by pre's rules. Writes the byte offset where each one
 * ends to ends (room for len entries) and returns how many, or SIZE_MAX when out of memory.
 * Bytes that are not UTF-8 stay one-byte "other" characters. */
size_t mipr_pre_split(enum mipr_pre_type pre, const char *s, size_t len, uint32_t *ends);

#endif
