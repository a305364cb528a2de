/* random.c - xoshiro256** seeded per thread from the kernel. */
#include "random.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>

static __thread uint64_t state[4];
static __thread bool seeded;

static uint64_t rotate_left(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void seed(void)
{
    if (getrandom(state, sizeof(state), 0) != (ssize_t)sizeof(state)) {
        /* getrandom cannot fail on Linux >= 3.17 short of a bad buffer; keep a
         * usable state anyway. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        state[0] = (uint64_t)now.tv_nsec | 1;
        state[1] = (uint64_t)now.tv_sec ^ 0x9e3779b97f4a7c15ULL;
        state[2] = (uint64_t)(uintptr_t)&seeded;
        state[3] = 0x2545f4914f6cdd1dULL;
    }
    seeded = true;
}

uint64_t random_u64(void)
{
    if (!seeded)
        seed();
    uint64_t result = rotate_left(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotate_left(state[3], 45);
    return result;
}

double random_unit(void)
{
    return (double)(random_u64() >> 11) * 0x1.0p-53;
}
