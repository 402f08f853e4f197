/* A text as one token stream cut into non-overlapping windows, each starting with BOS. */
#include <stdlib.h>
#include <string.h>

#include "windows.h"

mipr_status mipr_windows_init(mipr_windows *w, const mipr_tokenizer *tok, const char *text,
                              size_t len, uint32_t window, mipr_error *err)
{
    memset(w, 0, sizeof *w);
    if (window < 2)
        return mipr_error_set(err, MIPR_ERR_ARG, "window %u is shorter than 2 tokens", window);
    w->bos = mipr_tokenizer_bos(tok);
    if (w->bos < 0)
        return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "the tokenizer has no BOS token");
    /* the encoder may add a dummy-prefix space: len + 2 ids at most */
    if (len > (SIZE_MAX / sizeof *w->ids) - 2 ||
        !(w->ids = malloc((len + 2) * sizeof *w->ids)))
        return mipr_error_set(err, MIPR_ERR_NOMEM, "out of memory for %zu tokens", len + 2);
    w->per = window - 1;
    w->n = mipr_tokenizer_encode(tok, text, len, 0, w->ids);
    mipr_windows_limit(w, 0);
    return MIPR_OK;
}

void mipr_windows_limit(mipr_windows *w, size_t max_tokens)
{
    if (max_tokens && w->n > max_tokens)
        w->n = max_tokens;
    w->count = (w->n + w->per - 1) / w->per;
}

uint32_t mipr_windows_get(const mipr_windows *w, size_t i, int32_t *out)
{
    size_t first = i * w->per;
    size_t take = w->n - first < w->per ? w->n - first : w->per;
    out[0] = w->bos;
    memcpy(out + 1, w->ids + first, take * sizeof *w->ids);
    return (uint32_t)take + 1;
}

void mipr_windows_free(mipr_windows *w)
{
    free(w->ids);
    memset(w, 0, sizeof *w);
}
