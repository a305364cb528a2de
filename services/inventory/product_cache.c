/* product_cache.c - cache-aside for product documents in Redis.
 *
 * Reads try Redis first and fall back to PostgreSQL on a miss, on any Redis
 * problem, or while the inventory.cache_failure fault is on; the service
 * keeps answering with Redis down. Every change deletes the changed
 * products' keys and every cached list page before the change is
 * acknowledged, so a client never reads its own write as stale. A reader
 * that loaded the old row just before a change can still store it after the
 * deletion; entries expire after CACHE_TTL_SECONDS, which bounds that window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "inventory.h"

#define LIST_KEYS_SET "inventory:list-keys"

/* Deletes the given product keys (KEYS[1..n-1]) and every list page named in
 * the set KEYS[n], in one atomic step. */
static const char invalidate_script[] = "for i = 1, #KEYS - 1 do redis.call('DEL', KEYS[i]) end "
                                        "local pages = redis.call('SMEMBERS', KEYS[#KEYS]) "
                                        "for _, k in ipairs(pages) do redis.call('DEL', k) end "
                                        "redis.call('DEL', KEYS[#KEYS]) "
                                        "return #pages";

void product_cache_product_key(char *buf, size_t size, const char *sku)
{
    snprintf(buf, size, "inventory:product:%s", sku);
}

void product_cache_list_key(char *buf, size_t size, const char *category, int limit, int offset)
{
    snprintf(buf, size, "inventory:list:%s:%d:%d", category != NULL ? category : "*", limit, offset);
}

static bool cache_disabled(const worker_t *worker)
{
    return worker_fault(worker, "cache_failure") > 0;
}

void product_cache_get(context_t *c, const char *key, cache_found_fn next, void *data)
{
    cache_get(c, key, cache_disabled(c->worker), inventory_count_cache, next, data);
}

void product_cache_put(worker_t *worker, const char *key, const char *json, size_t len, bool is_list)
{
    if (cache_disabled(worker) || worker->redis == NULL || !redis_client_is_up(worker->redis))
        return;
    cache_put(worker, key, json, len, inventory_config.cache_ttl_seconds);
    if (is_list) {
        const char *track[] = {"SADD", LIST_KEYS_SET, key};
        redis_command_argv(worker->redis, NULL, NULL, 3, track, NULL);
    }
}

typedef struct invalidation {
    context_t *c;
    step_done_fn next;
    void *data;
} invalidation_t;

static void on_invalidated(void *data, const redisReply *reply, const char *error)
{
    invalidation_t *invalidation = data;
    (void)reply;
    (void)error; /* Redis down: nothing cached can be served either */
    if (!context_is_cancelled(invalidation->c))
        invalidation->next(invalidation->data);
}

void product_cache_invalidate(context_t *c, const char *const *skus, size_t count, step_done_fn next, void *data)
{
    invalidation_t *invalidation = context_alloc(c, sizeof(*invalidation));
    *invalidation = (invalidation_t){c, next, data};
    /* EVAL script n-keys product-keys... list-keys-set */
    const char **argv = context_alloc(c, (count + 4) * sizeof(*argv));
    char key_count[16];
    snprintf(key_count, sizeof(key_count), "%zu", count + 1);
    argv[0] = "EVAL";
    argv[1] = invalidate_script;
    argv[2] = key_count;
    for (size_t i = 0; i < count; i++) {
        char *key = context_alloc(c, 64);
        product_cache_product_key(key, 64, skus[i]);
        argv[3 + i] = key;
    }
    argv[3 + count] = LIST_KEYS_SET;
    step_redis_raw(c, (int)count + 4, argv, NULL, on_invalidated, invalidation);
}

typedef struct deferred_response {
    http_request_t *r;
    int status;
    const char *body;
    size_t len;
} deferred_response_t;

static void respond(void *data)
{
    deferred_response_t *deferred = data;
    http_respond_json_text(deferred->r, deferred->status, deferred->body, deferred->len);
}

void product_cache_invalidate_and_respond(http_request_t *r, const char *const *skus, size_t count, int status,
                                          const char *json, size_t len)
{
    deferred_response_t *deferred = context_alloc(&r->super, sizeof(*deferred));
    *deferred = (deferred_response_t){r, status, context_strdup(&r->super, json, len), len};
    product_cache_invalidate(&r->super, skus, count, respond, deferred);
}
