/* Row conversion shared by the writers (GGUF, .mpk). Internal header. */
#ifndef MIPR_ROWS_H
#define MIPR_ROWS_H

#include "mipr.h"

/* Encodes n floats as one row of type t at out; returns the row's bytes. */
size_t mipr_row_encode(uint8_t *out, const float *x, enum mipr_dtype t, size_t n);
/* Before a row is converted to t: NaN and infinities are refused, and so are values t (or
 * its f16 block scale) cannot hold, naming the output file, the tensor, row and column. */
mipr_status mipr_row_check(const float *x, size_t n, enum mipr_dtype t, const char *file,
                           const char *tensor, uint32_t row, mipr_error *err);

#endif
