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
#include "faults.h"
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

static bool cache_disabled(const server_worker_t *worker)
{
    return faults_own(worker, "cache_failure") > 0;
}

void product_cache_get(http_request_t *r, const char *key, product_cache_get_cb cb)
{
    cache_get(r, key, cache_disabled(r->worker), inventory_count_cache, cb);
}

void product_cache_put(server_worker_t *worker, const char *key, const char *json, size_t len, bool is_list)
{
    if (cache_disabled(worker) || !redis_client_is_up(worker->redis))
        return;
    cache_put(worker, key, json, len, inventory_config.cache_ttl_seconds);
    if (is_list) {
        const char *track[] = {"SADD", LIST_KEYS_SET, key};
        redis_command_argv(worker->redis, NULL, NULL, 3, track, NULL);
    }
}

typedef struct invalidation {
    product_cache_done_cb done;
    void *data;
} invalidation_t;

static void on_invalidated(void *data, const redisReply *reply, const char *error)
{
    invalidation_t invalidation = *(invalidation_t *)data;
    free(data);
    (void)reply;
    (void)error; /* Redis down: nothing cached can be served either */
    invalidation.done(invalidation.data);
}

void product_cache_invalidate(server_worker_t *worker, const char *const *skus, size_t count,
                              product_cache_done_cb done, void *data)
{
    invalidation_t *invalidation = malloc(sizeof(*invalidation));
    char **keys = calloc(count + 1, sizeof(char *));
    const char **argv = calloc(count + 4, sizeof(char *));
    if (invalidation == NULL || keys == NULL || argv == NULL) {
        free(invalidation);
        free(keys);
        free(argv);
        done(data);
        return;
    }
    *invalidation = (invalidation_t){done, data};
    char key_count[16];
    snprintf(key_count, sizeof(key_count), "%zu", count + 1);
    argv[0] = "EVAL";
    argv[1] = invalidate_script;
    argv[2] = key_count;
    for (size_t i = 0; i < count; i++) {
        keys[i] = malloc(64);
        if (keys[i] != NULL)
            product_cache_product_key(keys[i], 64, skus[i]);
        argv[3 + i] = keys[i] != NULL ? keys[i] : LIST_KEYS_SET;
    }
    argv[3 + count] = LIST_KEYS_SET;
    redis_command_argv(worker->redis, on_invalidated, invalidation, (int)count + 4, argv, NULL);
    for (size_t i = 0; i < count; i++)
        free(keys[i]);
    free(keys);
    free(argv);
}

typedef struct deferred_response {
    http_request_t *r;
    int status;
    size_t len;
    char body[];
} deferred_response_t;

static void on_invalidated_respond(void *data)
{
    deferred_response_t *deferred = data;
    if (http_request_resume(deferred->r))
        http_respond_json_text(deferred->r, deferred->status, deferred->body, deferred->len);
    free(deferred);
}

void product_cache_invalidate_and_respond(http_request_t *r, const char *const *skus, size_t count, int status,
                                          const char *json, size_t len)
{
    deferred_response_t *deferred = malloc(sizeof(*deferred) + len + 1);
    if (deferred == NULL) {
        http_respond_error(r, 500, "internal", "out of memory");
        return;
    }
    deferred->r = http_request_hold(r);
    deferred->status = status;
    deferred->len = len;
    memcpy(deferred->body, json, len);
    deferred->body[len] = '\0';
    product_cache_invalidate(r->worker, skus, count, on_invalidated_respond, deferred);
}
