/* cache.c - cache-aside reads and writes on the worker's Redis client. */
#include "cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

typedef struct cache_lookup {
    http_request_t *r;
    cache_count_fn count;
    cache_get_fn cb;
} cache_lookup_t;

static void on_cache_get(void *data, const redisReply *reply, const char *error)
{
    cache_lookup_t lookup = *(cache_lookup_t *)data;
    free(data);
    (void)error; /* any failure is a miss */
    if (!http_request_resume(lookup.r))
        return;
    if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
        lookup.count("hit");
        lookup.cb(lookup.r, reply->str, reply->len);
        return;
    }
    lookup.count(reply != NULL && reply->type == REDIS_REPLY_NIL ? "miss" : "error");
    lookup.cb(lookup.r, NULL, 0);
}

void cache_get(http_request_t *r, const char *key, bool bypass, cache_count_fn count, cache_get_fn cb)
{
    cache_lookup_t *lookup = NULL;
    if (!bypass && redis_client_is_up(r->worker->redis))
        lookup = malloc(sizeof(*lookup));
    if (lookup == NULL) {
        count("bypass");
        cb(r, NULL, 0);
        return;
    }
    *lookup = (cache_lookup_t){http_request_hold(r), count, cb};
    const char *argv[] = {"GET", key};
    redis_command_argv(r->worker->redis, on_cache_get, lookup, 2, argv, NULL);
}

void cache_put(server_worker_t *worker, const char *key, const char *value, size_t len, int ttl_seconds)
{
    if (!redis_client_is_up(worker->redis))
        return;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_seconds);
    const char *set[] = {"SET", key, value, "EX", ttl};
    const size_t set_len[] = {3, strlen(key), len, 2, strlen(ttl)};
    redis_command_argv(worker->redis, NULL, NULL, 5, set, set_len);
}
