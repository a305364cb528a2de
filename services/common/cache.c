/* cache.c - cache-aside reads and writes on the worker's Redis client. */
#include "cache.h"

#include <stdio.h>
#include <string.h>

#include "step.h"

typedef struct cache_lookup {
    context_t *c;
    cache_count_fn count;
    cache_found_fn next;
    void *data;
} cache_lookup_t;

static void on_cache_reply(void *data, const redisReply *reply, const char *error)
{
    cache_lookup_t *lookup = data;
    (void)error; /* any failure is a miss */
    bool hit = reply != NULL && reply->type == REDIS_REPLY_STRING;
    lookup->count(hit ? "hit" : reply != NULL && reply->type == REDIS_REPLY_NIL ? "miss" : "error");
    if (context_is_cancelled(lookup->c))
        return;
    lookup->next(lookup->data, hit ? reply->str : NULL, hit ? reply->len : 0);
}

void cache_get(context_t *c, const char *key, bool bypass, cache_count_fn count, cache_found_fn next, void *data)
{
    redis_client_t *redis = c->worker->redis;
    if (bypass || redis == NULL || !redis_client_is_up(redis)) {
        count("bypass");
        next(data, NULL, 0);
        return;
    }
    cache_lookup_t *lookup = context_alloc(c, sizeof(*lookup));
    *lookup = (cache_lookup_t){c, count, next, data};
    const char *argv[] = {"GET", key};
    step_redis_raw(c, 2, argv, NULL, on_cache_reply, lookup);
}

void cache_put(worker_t *worker, const char *key, const char *value, size_t len, int ttl_seconds)
{
    if (worker->redis == NULL || !redis_client_is_up(worker->redis))
        return;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_seconds);
    const char *set[] = {"SET", key, value, "EX", ttl};
    const size_t set_len[] = {3, strlen(key), len, 2, strlen(ttl)};
    redis_command_argv(worker->redis, NULL, NULL, 5, set, set_len);
}
