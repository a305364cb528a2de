/* cache.h - cache-aside documents in Redis.
 *
 * A read asks Redis first; on a miss, on any Redis problem, or when the
 * caller bypasses the cache (a fault flag), the callback gets NULL and the
 * caller loads from PostgreSQL, then stores the document with cache_put.
 * Redis trouble never fails a read: the cache only makes it cheaper.
 */
#ifndef OMS_CACHE_H
#define OMS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

struct server_worker;

/* Called with the cached document, or NULL on a miss (request resumed). */
typedef void (*cache_get_fn)(http_request_t *r, const char *value, size_t len);

/* Counts a lookup: result is hit, miss, error or bypass. */
typedef void (*cache_count_fn)(const char *result);

/* Looks up `key` (skipped when `bypass`), counts the result with `count`,
 * then calls `cb`. */
void cache_get(http_request_t *r, const char *key, bool bypass, cache_count_fn count, cache_get_fn cb);

/* Stores `value` under `key` for ttl_seconds (fire-and-forget; nothing
 * happens while Redis is down). */
void cache_put(struct server_worker *worker, const char *key, const char *value, size_t len, int ttl_seconds);

#endif
