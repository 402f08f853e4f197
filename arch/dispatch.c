/* Chooses the kernel table once. The table pointer is the only global mutable state of mipr,
 * and it is written once. */
#include <stdlib.h>

#include "mipr_arch.h"

static const struct mipr_kernels *g_table;

const struct mipr_kernels *mipr_kernels(void)
{
    if (!g_table)
        g_table = mipr_kernels_generic();
    return g_table;
}
