/* cache.h - cache-aside documents in Redis.
 *
 * A read asks Redis first; on a miss, on any Redis problem, or when the
 * caller bypasses the cache (a fault flag), the next step gets NULL and the
 * caller loads from PostgreSQL, then stores the document with cache_put.
 * Redis trouble never fails a read: the cache only makes it cheaper.
 */
#ifndef OMS_CACHE_H
#define OMS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "context.h"

/* The next step after a lookup: the cached document, or NULL on a miss. */
typedef void (*cache_found_fn)(void *data, const char *value, size_t len);

/* Counts a lookup: result is hit, miss, error or bypass. */
typedef void (*cache_count_fn)(const char *result);

/* Looks up `key` for `c` (skipped when `bypass` or Redis is down), counts
 * the result with `count`, then calls `next` unless `c` was cancelled. */
void cache_get(context_t *c, const char *key, bool bypass, cache_count_fn count, cache_found_fn next, void *data);

/* Stores `value` under `key` for ttl_seconds (fire-and-forget; nothing
 * happens while Redis is down). */
void cache_put(worker_t *worker, const char *key, const char *value, size_t len, int ttl_seconds);

#endif
