/* random.h - fast per-thread pseudo-random numbers (not for secrets).
 *
 * Used for trace and span ids and for probabilistic fault injection. Each
 * thread seeds its own xoshiro256** state from getrandom(2) on first use.
 */
#ifndef OMS_RANDOM_H
#define OMS_RANDOM_H

#include <stdint.h>

/* Returns 64 uniformly distributed bits. */
uint64_t random_u64(void);

/* Returns a double uniformly distributed in [0, 1). */
double random_unit(void);

#endif
