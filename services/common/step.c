/* step.c - one backend call per step: hold, call, check, go on or fail.
 *
 * Each call's state lives in its context's memory; the context is held
 * from the call to the end of its callback, so the state is there even
 * when the callback runs after the owner let go. */
#include "step.h"

#include <stdio.h>
#include <string.h>

typedef struct pg_step {
    context_t *c;
    step_rows_fn next;
    step_error_fn on_error;
    step_reply_fn done; /* the raw form */
    void *data;
} pg_step_t;

typedef struct redis_step {
    context_t *c;
    step_redis_fn next;
    step_redis_reply_fn done; /* the raw form */
    void *data;
} redis_step_t;

typedef struct http_step {
    context_t *c;
    const char *peer;
    step_http_fn next;
    step_http_fn raw; /* instead of next: gets every outcome, cancelled or not */
    void *data;
} http_step_t;

typedef struct publish_step {
    context_t *c;
    step_confirm_fn done;
    void *data;
} publish_step_t;

typedef struct work_step {
    context_t *c;
    work_run_fn run;
    step_done_fn next;
    void *data;
} work_step_t;

bool step_check_pg(context_t *c, const pg_reply_t *reply)
{
    switch (reply->status) {
    case PG_OK: return true;
    case PG_UNAVAILABLE: context_unavailable(c, "postgres", reply->message); return false;
    case PG_TIMEOUT: context_unavailable(c, "postgres", "query timed out"); return false;
    case PG_ERROR: break;
    }
    context_error(c, "database statement failed", LOG_STRING("sqlstate", reply->sqlstate),
                  LOG_STRING("reason", reply->message));
    context_fail(c, 500, "internal", "the request could not be completed");
    return false;
}

static void on_pg_reply(void *arg, const pg_reply_t *reply)
{
    pg_step_t *step = arg;
    context_t *c = step->c;
    if (step->done != NULL)
        step->done(step->data, reply);
    else if (context_is_cancelled(c))
        ; /* nobody to go on for */
    else if (reply->status == PG_ERROR && step->on_error != NULL && step->on_error(step->data, reply))
        ; /* answered by the handler */
    else if (step_check_pg(c, reply))
        step->next(step->data, reply->result);
    context_release(c);
}

static void start_query(context_t *c, const char *statement, const char *const *params, pg_step_t *step)
{
    step->c = context_hold(c);
    if (c->worker->pg == NULL) { /* the service did not declare PostgreSQL */
        pg_reply_t reply = {PG_UNAVAILABLE, NULL, "", "not configured"};
        on_pg_reply(step, &reply);
        return;
    }
    pg_query(c->worker->pg, statement, params, on_pg_reply, step);
}

void step_query(context_t *c, const char *statement, const char *const *params, step_rows_fn next, void *data)
{
    step_query_catch(c, statement, params, next, NULL, data);
}

void step_query_catch(context_t *c, const char *statement, const char *const *params, step_rows_fn next,
                      step_error_fn on_error, void *data)
{
    pg_step_t *step = context_alloc(c, sizeof(*step));
    step->next = next;
    step->on_error = on_error;
    step->data = data;
    start_query(c, statement, params, step);
}

void step_query_raw(context_t *c, const char *statement, const char *const *params, step_reply_fn done, void *data)
{
    pg_step_t *step = context_alloc(c, sizeof(*step));
    step->done = done;
    step->data = data;
    start_query(c, statement, params, step);
}

static void on_redis_reply(void *arg, const redisReply *reply, const char *error)
{
    redis_step_t *step = arg;
    context_t *c = step->c;
    if (step->done != NULL) {
        step->done(step->data, reply, error);
    } else if (!context_is_cancelled(c)) {
        if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
            step->next(step->data, reply);
        else
            context_unavailable(c, "redis", reply != NULL ? reply->str : error);
    }
    context_release(c);
}

static void start_command(context_t *c, int argc, const char **argv, const size_t *argv_len, redis_step_t *step)
{
    step->c = context_hold(c);
    if (c->worker->redis == NULL) { /* the service did not declare Redis */
        on_redis_reply(step, NULL, "not configured");
        return;
    }
    redis_command_argv(c->worker->redis, on_redis_reply, step, argc, argv, argv_len);
}

void step_redis(context_t *c, int argc, const char **argv, const size_t *argv_len, step_redis_fn next, void *data)
{
    redis_step_t *step = context_alloc(c, sizeof(*step));
    step->next = next;
    step->data = data;
    start_command(c, argc, argv, argv_len, step);
}

void step_redis_raw(context_t *c, int argc, const char **argv, const size_t *argv_len, step_redis_reply_fn done,
                    void *data)
{
    redis_step_t *step = context_alloc(c, sizeof(*step));
    step->done = done;
    step->data = data;
    start_command(c, argc, argv, argv_len, step);
}

static void on_http_response(void *arg, const http_response_t *response)
{
    http_step_t *step = arg;
    context_t *c = step->c;
    if (step->raw) {
        step->raw(step->data, response);
    } else if (!context_is_cancelled(c)) {
        if (response->status == HTTP_CLIENT_OK && response->code < 500) {
            step->next(step->data, response);
        } else {
            char reason[160];
            if (response->status == HTTP_CLIENT_OK)
                snprintf(reason, sizeof(reason), "answered %d", response->code);
            else
                snprintf(reason, sizeof(reason), "%s", response->error);
            context_unavailable(c, step->peer, reason);
        }
    }
    context_release(c);
}

static void send_http(context_t *c, const http_call_t *call, step_http_fn next, step_http_fn raw, void *data)
{
    http_step_t *step = context_alloc(c, sizeof(*step));
    *step = (http_step_t){context_hold(c), context_strdup(c, call->peer, SIZE_MAX), next, raw, data};
    if (c->worker->http == NULL) { /* the service did not declare an HTTP client */
        http_response_t response = {.status = HTTP_CLIENT_UNAVAILABLE, .body = "", .error = "not configured"};
        on_http_response(step, &response);
        return;
    }
    http_client_send(c->worker->http, call, &c->trace, on_http_response, step);
}

void step_http(context_t *c, const http_call_t *call, step_http_fn next, void *data)
{
    send_http(c, call, next, NULL, data);
}

void step_http_raw(context_t *c, const http_call_t *call, step_http_fn done, void *data)
{
    send_http(c, call, NULL, done, data);
}

static void on_confirmed(void *arg, size_t confirmed, const char *error)
{
    publish_step_t *step = arg;
    step->done(step->data, confirmed, error);
    context_release(step->c);
}

void step_publish_raw(context_t *c, const broker_message_t *messages, size_t count, step_confirm_fn done, void *data)
{
    publish_step_t *step = context_alloc(c, sizeof(*step));
    *step = (publish_step_t){context_hold(c), done, data};
    if (c->worker->broker == NULL) { /* the service did not declare RabbitMQ */
        on_confirmed(step, 0, "not configured");
        return;
    }
    if (broker_publish(c->worker->broker, messages, count, on_confirmed, step) != 0)
        on_confirmed(step, 0, "the batch could not be queued");
}

static void run_work(void *arg)
{
    work_step_t *step = arg;
    step->run(step->data);
}

static void on_work_done(void *arg)
{
    work_step_t *step = arg;
    if (!context_is_cancelled(step->c))
        step->next(step->data);
    context_release(step->c);
}

int step_work(context_t *c, work_run_fn run, step_done_fn next, void *data)
{
    work_step_t *step = context_alloc(c, sizeof(*step));
    *step = (work_step_t){context_hold(c), run, next, data};
    if (work_pool_submit(c->worker, run_work, on_work_done, step) != 0) {
        context_release(c);
        return -1;
    }
    return 0;
}
