/* health.c - liveness, readiness and the metrics endpoint. */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "server.h"

void health_handle_live(http_request_t *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_respond_json_text(r, 200, body, sizeof(body) - 1);
}

/* Heap-allocated: both callbacks write to it before the request resumes. */
typedef struct readiness {
    http_request_t *r;
    int pending;
    char postgres[160]; /* "" when up, else why not */
    char redis[160];
} readiness_t;

static void add_check(json_t *checks, const char *name, const char *failure)
{
    json_t *check = failure[0] == '\0' ? json_pack("{s:s}", "status", "up")
                                       : json_pack("{s:s,s:s}", "status", "down", "reason", failure);
    json_object_set_new(checks, name, check);
}

static void finish_check(readiness_t *state)
{
    if (--state->pending > 0)
        return;
    http_request_t *r = state->r;
    json_t *checks = json_object();
    add_check(checks, "postgres", state->postgres);
    add_check(checks, "redis", state->redis);
    bool postgres_down = state->postgres[0] != '\0', redis_down = state->redis[0] != '\0';
    free(state);
    if (!http_request_resume(r)) {
        json_decref(checks);
        return;
    }
    if (!postgres_down && !redis_down) {
        http_respond_json(r, 200, json_pack("{s:s,s:o}", "status", "ready", "checks", checks));
        return;
    }
    char message[64];
    snprintf(message, sizeof(message), "%s is down",
             postgres_down && redis_down ? "postgres and redis"
             : postgres_down             ? "postgres"
                                         : "redis");
    json_t *error = json_pack("{s:s,s:s}", "code", "dependency_unavailable", "message", message);
    http_respond_json(r, 503, json_pack("{s:o,s:o}", "error", error, "checks", checks));
}

static void on_postgres_ping(void *data, const pg_reply_t *reply)
{
    readiness_t *state = data;
    if (reply->status != PG_OK)
        snprintf(state->postgres, sizeof(state->postgres), "%s",
                 reply->message[0] != '\0' ? reply->message : "no answer");
    finish_check(state);
}

static void on_postgres_probe(void *data, const pg_reply_t *reply)
{
    readiness_t *state = data;
    if (reply->status != PG_OK && state->postgres[0] == '\0')
        snprintf(state->postgres, sizeof(state->postgres), "%s", reply->message);
    finish_check(state);
}

static void on_redis_ping(void *data, const redisReply *reply, const char *error)
{
    readiness_t *state = data;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        snprintf(state->redis, sizeof(state->redis), "%s", reply != NULL ? reply->str : error);
    finish_check(state);
}

void health_handle_ready(http_request_t *r)
{
    readiness_t *state = calloc(1, sizeof(*state));
    if (state == NULL) {
        http_respond_error(r, 500, "internal", "out of memory");
        return;
    }
    state->r = http_request_hold(r);
    state->pending = 3;
    pg_query(r->worker->pg, HEALTH_PING_STATEMENT, NULL, on_postgres_ping, state);
    /* the ping runs on an open connection, which works on while the server
     * shuts down; only a new one tells */
    pg_pool_probe(r->worker->pg, on_postgres_probe, state);
    const char *argv[] = {"PING"};
    redis_command_argv(r->worker->redis, on_redis_ping, state, 1, argv, NULL);
}

void health_handle_metrics(http_request_t *r)
{
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    http_respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buffer_free(&out);
}
