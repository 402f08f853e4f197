/* Internal to runtime/ and its XNNPACK provider (runtime/xnnpack/, a library of its own):
 * the pthreadpool behind a mipr_pool, so that a library that takes a pthreadpool_t
 * (XNNPACK) runs on the engine's threads instead of starting its own. */
#ifndef MIPR_POOL_INTERNAL_H
#define MIPR_POOL_INTERNAL_H

#include "mipr_runtime.h"

struct pthreadpool; /* pthreadpool_t is a pointer to it */

/* NULL for a NULL pool, a one-thread pool, or a build without pthreadpool. Exported from a
 * shared runtime: the provider library calls it. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif
struct pthreadpool *mipr_pool_pthreadpool(const mipr_pool *p);
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
