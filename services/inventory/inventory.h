/* inventory.h - what the inventory service's files share. */
#ifndef OMS_INVENTORY_H
#define OMS_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "chore.h"
#include "http.h"
#include "pg.h"
#include "server.h"
#include "step.h"

typedef struct inventory_config {
    int reservation_ttl_seconds; /* RESERVATION_TTL_SECONDS */
    uint64_t expiry_sweep_ms;    /* RESERVATION_SWEEP_INTERVAL_MS */
    int cache_ttl_seconds;       /* CACHE_TTL_SECONDS */
    uint64_t stock_refresh_ms;   /* STOCK_METRICS_INTERVAL_MS */
} inventory_config_t;

extern inventory_config_t inventory_config;

/* queries.c: every SQL statement of the service, prepared on each connection. */
extern const pg_statement_t inventory_statements[];
extern const size_t inventory_statement_count;

/* products.c */
void products_handle_list(http_request_t *r);
void products_handle_get(http_request_t *r);
void products_handle_create(http_request_t *r);
void products_handle_update(http_request_t *r);

/* reservations.c: internal endpoints, for a service token or an admin
 * credential (auth_require with JWT_ROLE_SERVICE). */
void reservations_handle_create(http_request_t *r);
void reservations_handle_commit(http_request_t *r);
void reservations_handle_release(http_request_t *r);
void reservations_handle_restock(http_request_t *r);

/* The expiry sweep: a chore on worker 0. */
void reservations_start_sweeper(chore_t *chore, worker_t *worker);

/* product_cache.c: product documents cached in Redis (cache-aside). */

/* Looks up `key` for `c`; the next step gets the cached JSON, or NULL on
 * a miss, when Redis is down or the inventory.cache_failure fault is on. */
void product_cache_get(context_t *c, const char *key, cache_found_fn next, void *data);

/* Stores a document (fire-and-forget); list keys are also tracked so that
 * one invalidation removes every cached page. */
void product_cache_put(worker_t *worker, const char *key, const char *json, size_t len, bool is_list);

/* Removes the cached documents of `skus` and every cached list page as a
 * step of `c`, then runs `next` (also when Redis is down: nothing cached
 * can be served then either) unless `c` was cancelled. */
void product_cache_invalidate(context_t *c, const char *const *skus, size_t count, step_done_fn next, void *data);

/* Invalidates `skus` (and every list page), then answers `status` with
 * `json` (copied now): a client that gets the answer reads fresh data. */
void product_cache_invalidate_and_respond(http_request_t *r, const char *const *skus, size_t count, int status,
                                          const char *json, size_t len);

/* Cache keys. */
void product_cache_product_key(char *buf, size_t size, const char *sku);
void product_cache_list_key(char *buf, size_t size, const char *category, int limit, int offset);

/* stock_metrics.c: business metrics. */
void inventory_metrics_register(void);
/* The stock gauges' refresh: a chore on worker 0. */
void stock_metrics_start(chore_t *chore, worker_t *worker);
/* outcome: held, duplicate, insufficient_stock, unknown_sku, committed,
 * released, expired, restocked, conflict */
void inventory_count_reservation(const char *outcome, double n);
void inventory_count_cache(const char *result);

#endif
