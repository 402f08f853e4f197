/* Internal to mipr_core: a text as one token stream cut into BOS windows. Perplexity's
 * stream mode and calibration share this so that both see exactly the same windows. */
#ifndef MIPR_WINDOWS_H
#define MIPR_WINDOWS_H

#include "mipr.h"

typedef struct mipr_windows {
    int32_t *ids;     /* the text's tokens, no BOS */
    size_t n;         /* tokens in use (after any limit) */
    uint32_t per;     /* text tokens per window: window - 1 */
    size_t count;     /* windows: ceil(n / per) */
    int32_t bos;
} mipr_windows;

/* Tokenizes text without BOS; window (BOS included) must be at least 2. */
mipr_status mipr_windows_init(mipr_windows *w, const mipr_tokenizer *tok, const char *text,
                              size_t len, uint32_t window, mipr_error *err);
/* Keeps only the first max_tokens tokens (0: all). */
void mipr_windows_limit(mipr_windows *w, size_t max_tokens);
/* Fills out (window entries) with BOS then window i's text tokens; returns the count,
 * BOS included. Window i's first text token is stream token i * per. */
uint32_t mipr_windows_get(const mipr_windows *w, size_t i, int32_t *out);
void mipr_windows_free(mipr_windows *w);

#endif
