/* Streamed tensors (low-RAM .mpk models), as the engine sees them: rows arrive one chunk at a
 * time, decoded into the model's scratch. Internal header. */
#ifndef MIPR_STREAM_H
#define MIPR_STREAM_H

#include "mipr_runtime.h"

uint32_t mipr_stream_n_chunks(const struct mipr_stream_ *s);
uint32_t mipr_stream_rows_per_chunk(const struct mipr_stream_ *s);
/* Decodes chunk c; returns its first row, its row count and its bytes (valid until the next
 * call on any tensor of the model), or NULL after recording the error (mipr_stream_error). */
const void *mipr_stream_chunk(const struct mipr_stream_ *s, uint32_t c, uint32_t *first_row,
                              uint32_t *n_rows);
/* The first decoding error since the last call (MIPR_OK if none); clears it. */
mipr_status mipr_stream_take_error(const struct mipr_stream_ *s, mipr_error *err);

#endif
