#include <stdarg.h>
#include <stdio.h>

#include "mipr_runtime.h"

mipr_status mipr_error_set(mipr_error *e, mipr_status status, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->status = status;
    }
    return status;
}

const char *mipr_status_name(mipr_status s)
{
    switch (s) {
    case MIPR_OK: return "ok";
    case MIPR_ERR_IO: return "I/O error";
    case MIPR_ERR_FORMAT: return "format error";
    case MIPR_ERR_NOMEM: return "out of memory";
    case MIPR_ERR_ARG: return "invalid argument";
    case MIPR_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}
