/* Builds without a file system (MIPR_WITH_FILES=OFF, firmware): models come from memory. */
#include <string.h>

#include "mipr_runtime.h"

mipr_status mipr_file_map(mipr_mapped_file *out, const char *path, mipr_error *err)
{
    memset(out, 0, sizeof *out);
    return mipr_error_set(err, MIPR_ERR_UNSUPPORTED,
                          "%s: this build has no file access (MIPR_WITH_FILES=OFF); load the "
                          "model from memory", path);
}

void mipr_file_unmap(mipr_mapped_file *f)
{
    if (f)
        memset(f, 0, sizeof *f);
}

void mipr_file_release(const mipr_mapped_file *f, const void *p, size_t n)
{
    (void)f, (void)p, (void)n;
}
