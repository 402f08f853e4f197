/* Internal to mipr_core: the one pseudo-random generator every seeded choice uses (sample
 * tokens, neuron pairs, tiles, random scores), so a seed means the same thing everywhere. */
#ifndef MIPR_RNG_H
#define MIPR_RNG_H

#include <stdint.h>

/* splitmix64: a full-period 64-bit generator with well-mixed output; state may be any value. */
static inline uint64_t mipr_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
