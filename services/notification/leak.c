/* leak.c - the fault notification.memory_leak, for the lab's memory
 * exercises.
 *
 * While it is set, worker 0 takes another N MiB each second (N: the
 * fault's value; `true` is 1) and writes to it, so the resident set grows
 * steadily, as a real leak's would (capped at 1 GiB). Once it is cleared,
 * everything taken is given back to the system at once.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "notification.h"

#define LEAK_CHUNK      (1u << 20)
#define LEAK_MAX_CHUNKS 1024
#define LEAK_EVERY_MS   1000

typedef struct chunk {
    struct chunk *next;
} chunk_t;

static chunk_t *leaked;
static size_t leaked_chunks;

static void free_all(void)
{
    while (leaked != NULL) {
        chunk_t *next = leaked->next;
        free(leaked);
        leaked = next;
    }
    leaked_chunks = 0;
    malloc_trim(0);
}

static void give_back(context_t *run)
{
    if (leaked == NULL)
        return;
    context_info(run, "memory leak fault cleared: memory given back", LOG_INT("mib", (int64_t)leaked_chunks));
    free_all();
}

static void leak_run(context_t *run, void *data)
{
    (void)data;
    double mib = context_fault(run, "memory_leak");
    if (mib <= 0) {
        give_back(run);
        return;
    }
    for (size_t i = 0; i < (size_t)(mib < 1 ? 1 : mib) && leaked_chunks < LEAK_MAX_CHUNKS; i++) {
        chunk_t *chunk = malloc(LEAK_CHUNK);
        if (chunk == NULL)
            return;
        memset(chunk, 0xa5, LEAK_CHUNK); /* touched: resident, not just reserved */
        chunk->next = leaked;
        leaked = chunk;
        leaked_chunks++;
    }
}

void leak_start(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "memory_leak", LEAK_EVERY_MS, LEAK_EVERY_MS, leak_run, NULL);
}

void leak_stop(chore_t *chore)
{
    chore_stop(chore);
    free_all();
}
