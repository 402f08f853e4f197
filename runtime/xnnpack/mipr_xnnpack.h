/* mipr_xnnpack: XNNPACK's f32 fully-connected operator as a prefill provider for the
 * engine (mipr_engine_set_backend). A library of its own so that the runtime, and a device
 * binary built on it alone, never links XNNPACK. */
#ifndef MIPR_XNNPACK_H
#define MIPR_XNNPACK_H

#include "mipr_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* As in the other public headers: a shared build exports exactly these declarations. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* The provider to pass to mipr_engine_set_backend for MIPR_BACKEND_XNNPACK and AUTO. In a
 * build without XNNPACK it exists but its creation fails with MIPR_ERR_UNSUPPORTED. */
const mipr_prefill_provider *mipr_xnnpack_provider(void);
/* Whether this build has XNNPACK behind the provider. */
int mipr_xnnpack_available(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
