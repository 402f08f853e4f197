/* Internal to mipr_core: shared by calib.c (the record) and calib_io.c (its file). */
#ifndef MIPR_CALIB_INTERNAL_H
#define MIPR_CALIB_INTERNAL_H

#include "mipr.h"

/* mipr_calib_new, optionally without sample arrays (they stay in the file). */
mipr_status mipr_calib_new_shapes(mipr_calib **out, uint32_t n_layers, const uint32_t *d_ff,
                                  uint32_t n_samples, int with_samples, mipr_error *err);
void mipr_calib_file_free(struct mipr_calib_file_ *f);

#endif
