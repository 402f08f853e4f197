/* Row conversion shared by the writers (GGUF, .mpk). Internal header. */
#ifndef MIPR_ROWS_H
#define MIPR_ROWS_H

#include "mipr.h"

/* Encodes n floats as one row of type t at out; returns the row's bytes. */
size_t mipr_row_encode(uint8_t *out, const float *x, enum mipr_dtype t, size_t n);

#endif
