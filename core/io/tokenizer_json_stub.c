/* Placeholder until the tokenizer.json reader (branch bpe, core/io/tokenizer_json.c) is
 * merged: HF folders load without their tokenizer only. Delete on that merge. */
#include "mipr.h"

mipr_status mipr_tokenizer_json_load(mipr_tokenizer **out, const char *path, mipr_error *err)
{
    *out = NULL;
    return mipr_error_set(err, MIPR_ERR_UNSUPPORTED, "%s: reading tokenizer.json is not in "
                          "this build yet", path);
}
