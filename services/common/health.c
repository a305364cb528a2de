/* health.c - liveness, readiness and the metrics endpoint. */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "step.h"

void health_handle_live(http_request_t *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_respond_json_text(r, 200, body, sizeof(body) - 1);
}

/* --- readiness ---------------------------------------------------------------- */

#define REASON_MAX 160

/* One row per resource a service may declare: adding a resource to
 * worker.h means adding its check here. The HTTP client has none on
 * purpose: a peer that is down is that peer's readiness (a service that
 * went unready with it would take every caller down in a cascade); its
 * open circuit shows in http_client_circuit_state. */
typedef struct readiness readiness_t;
typedef struct readiness_check {
    worker_resource_t resource;
    const char *name;
    void (*start)(readiness_t *state, size_t slot);
    /* Shown, but a service stays ready without it. RabbitMQ: events wait
     * in the outbox until it is back, and the service keeps taking orders
     * and registrations meanwhile - that is what the outbox is for. */
    bool informational;
} readiness_check_t;

static void start_postgres(readiness_t *state, size_t slot);
static void start_redis(readiness_t *state, size_t slot);
static void start_broker(readiness_t *state, size_t slot);

static const readiness_check_t checks[] = {
    {WORKER_POSTGRES, "postgres", start_postgres, false},
    {WORKER_REDIS, "redis", start_redis, false},
    {WORKER_BROKER, "rabbitmq", start_broker, true},
};
#define CHECK_COUNT (sizeof(checks) / sizeof(checks[0]))

struct readiness {
    http_request_t *r;
    int pending;                           /* calls not answered yet */
    char failure[CHECK_COUNT][REASON_MAX]; /* "" while up, else why not */
};

typedef struct readiness_call {
    readiness_t *state;
    size_t slot;
} readiness_call_t;

static void note_failure(readiness_t *state, size_t slot, const char *reason)
{
    if (state->failure[slot][0] == '\0')
        snprintf(state->failure[slot], REASON_MAX, "%s", reason[0] != '\0' ? reason : "no answer");
}

/* {"status":"ready","checks":{...}}: what readiness depends on; beside
 * it, "optional":{...} for what it only reports (RabbitMQ). */
static void answer(readiness_t *state)
{
    http_request_t *r = state->r;
    unsigned declared = r->super.worker->settings->resources;
    json_t *body = json_object(), *optional = NULL;
    char down[96] = "";
    for (size_t i = 0; i < CHECK_COUNT; i++) {
        if (!(declared & checks[i].resource))
            continue;
        const char *failure = state->failure[i];
        json_t *row = failure[0] == '\0' ? json_pack("{s:s}", "status", "up")
                                         : json_pack("{s:s,s:s}", "status", "down", "reason", failure);
        if (checks[i].informational) {
            if (optional == NULL)
                optional = json_object();
            json_object_set_new(optional, checks[i].name, row);
            continue;
        }
        json_object_set_new(body, checks[i].name, row);
        if (failure[0] != '\0')
            snprintf(down + strlen(down), sizeof(down) - strlen(down), "%s%s", down[0] != '\0' ? " and " : "",
                     checks[i].name);
    }
    json_t *reply;
    int status = 200;
    if (down[0] == '\0') {
        reply = json_pack("{s:s,s:o}", "status", "ready", "checks", body);
    } else {
        char message[128];
        snprintf(message, sizeof(message), "%s is down", down);
        json_t *error = json_pack("{s:s,s:s}", "code", "dependency_unavailable", "message", message);
        reply = json_pack("{s:o,s:o}", "error", error, "checks", body);
        status = 503;
    }
    if (optional != NULL)
        json_object_set_new(reply, "optional", optional);
    http_respond_json(r, status, reply);
}

static void finish_call(readiness_t *state)
{
    if (--state->pending == 0)
        answer(state);
}

static readiness_call_t *new_call(readiness_t *state, size_t slot)
{
    readiness_call_t *call = context_alloc(&state->r->super, sizeof(*call));
    *call = (readiness_call_t){state, slot};
    state->pending++;
    return call;
}

static void on_postgres_reply(void *data, const pg_reply_t *reply)
{
    readiness_call_t *call = data;
    if (reply->status != PG_OK)
        note_failure(call->state, call->slot, reply->message);
    finish_call(call->state);
}

/* The probe is no statement, so it holds the request itself. */
static void on_probe_reply(void *data, const pg_reply_t *reply)
{
    readiness_call_t *call = data;
    context_t *c = &call->state->r->super;
    on_postgres_reply(data, reply);
    context_release(c);
}

static void start_postgres(readiness_t *state, size_t slot)
{
    step_query_raw(&state->r->super, HEALTH_PING_STATEMENT, NULL, on_postgres_reply, new_call(state, slot));
    /* the ping runs on an open connection, which works on while the server
     * shuts down; only a new one tells */
    pg_pool_t *pg = state->r->super.worker->pg;
    if (pg != NULL) {
        context_hold(&state->r->super);
        pg_pool_probe(pg, on_probe_reply, new_call(state, slot));
    }
}

static void on_redis_reply(void *data, const redisReply *reply, const char *error)
{
    readiness_call_t *call = data;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        note_failure(call->state, call->slot, reply != NULL ? reply->str : error);
    finish_call(call->state);
}

static void start_redis(readiness_t *state, size_t slot)
{
    const char *argv[] = {"PING"};
    step_redis_raw(&state->r->super, 1, argv, NULL, on_redis_reply, new_call(state, slot));
}

/* The link thread knows; asking the broker itself would be a blocking
 * round trip through that thread for nothing more. */
static void start_broker(readiness_t *state, size_t slot)
{
    broker_t *broker = state->r->super.worker->settings->broker;
    if (broker != NULL && broker_is_up(broker))
        return;
    char reason[REASON_MAX] = "not configured";
    if (broker != NULL)
        broker_last_error(broker, reason, sizeof(reason));
    note_failure(state, slot, reason);
}

void health_handle_ready(http_request_t *r)
{
    readiness_t *state = context_alloc(&r->super, sizeof(*state));
    state->r = r;
    state->pending = 1; /* until every check has started: a call may answer at once */
    unsigned declared = r->super.worker->settings->resources;
    for (size_t i = 0; i < CHECK_COUNT; i++)
        if (declared & checks[i].resource)
            checks[i].start(state, i);
    finish_call(state);
}

/* --- metrics ------------------------------------------------------------------ */

void health_handle_metrics(http_request_t *r)
{
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    http_respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buffer_free(&out);
}
