/* step.h - asynchronous handlers as named steps.
 *
 * A handler that waits on a backend is a sequence of small functions, each
 * named for what it does:
 *
 *     static void load_product(void *data, const char *cached, size_t len)
 *     {
 *         product_read_t *read = data;
 *         ...
 *         step_query(&read->r->super, "product_get", read->params, store_and_answer, read);
 *     }
 *
 * Each helper runs one backend call for a unit of work (context.h) and
 * holds the context across it. When the call succeeds and the context was
 * not cancelled, the next step runs with the result; when it fails, the
 * helper logs the cause and fails the context once with DESIGN's error
 * (503 dependency_unavailable when PostgreSQL or Redis did not answer, 500
 * internal when a statement failed), and the next step never runs. Either
 * way the hold ends after the callback.
 *
 * The `_catch` and `_raw` forms are for the few places that must see a
 * failure themselves: a constraint violation that is a 409, work that must
 * be finished even when the client has gone. (The HTTP client's call, when
 * there is one, is a step of the same shape.)
 */
#ifndef OMS_STEP_H
#define OMS_STEP_H

#include <stdbool.h>

#include "broker.h"
#include "context.h"
#include "http_client.h"
#include "pg.h"
#include "redis.h"
#include "work_pool.h"

/* The next step after a statement: its rows (PG_OK). */
typedef void (*step_rows_fn)(void *data, const PGresult *result);

/* Sees a PG_ERROR first (reply->sqlstate); returns true when it has
 * answered, false to let the default 500 happen. */
typedef bool (*step_error_fn)(void *data, const pg_reply_t *reply);

/* Gets every reply, whatever its status, cancelled or not. */
typedef void (*step_reply_fn)(void *data, const pg_reply_t *reply);

/* The next step after a Redis command: its reply (never NULL or an error). */
typedef void (*step_redis_fn)(void *data, const redisReply *reply);

/* Gets every Redis outcome (reply NULL with `error` when none came). */
typedef void (*step_redis_reply_fn)(void *data, const redisReply *reply, const char *error);

/* The next step after an HTTP call: the peer's answer, whatever its status
 * below 500 (a 409 is the handler's to read). */
typedef void (*step_http_fn)(void *data, const http_response_t *response);

/* Gets how a publish ended: `confirmed` messages from the first are
 * confirmed by the broker; `error` says why the rest are not (NULL when
 * all are). */
typedef void (*step_confirm_fn)(void *data, size_t confirmed, const char *error);

/* The next step after background work. */
typedef void (*step_done_fn)(void *data);

/* Runs prepared statement `statement` with text parameters (copied), then
 * `next(data, rows)`. */
void step_query(context_t *c, const char *statement, const char *const *params, step_rows_fn next, void *data);

/* Like step_query, but a PG_ERROR goes to `on_error` first. */
void step_query_catch(context_t *c, const char *statement, const char *const *params, step_rows_fn next,
                      step_error_fn on_error, void *data);

/* Runs the statement and calls `done` with whatever came back, even when
 * the context has been cancelled (work that must finish once started). */
void step_query_raw(context_t *c, const char *statement, const char *const *params, step_reply_fn done, void *data);

/* Sends a Redis command (argv as redis_command_argv), then `next(data,
 * reply)`; no reply or an error reply fails the context with 503. */
void step_redis(context_t *c, int argc, const char **argv, const size_t *argv_len, step_redis_fn next, void *data);

/* Sends the command and calls `done` with whatever came back, even when
 * the context has been cancelled. */
void step_redis_raw(context_t *c, int argc, const char **argv, const size_t *argv_len, step_redis_reply_fn done,
                    void *data);

/* Calls a peer (http_client.h) as a child span of c's trace, then
 * `next(data, response)`. No answer, a timeout, an open circuit or a 5xx
 * fails the context with 503 dependency_unavailable naming the peer. */
void step_http(context_t *c, const http_call_t *call, step_http_fn next, void *data);

/* Calls a peer and gives `done` the outcome whatever it is (no answer, a
 * 5xx, the context cancelled): for a workflow that decides itself what a
 * failed call means (order.c's saga). */
void step_http_raw(context_t *c, const http_call_t *call, step_http_fn done, void *data);

/* Publishes `count` messages to RabbitMQ (broker.h) as a step of `c`, and
 * calls `done` with the outcome whatever it is, cancelled or not: what
 * the broker confirmed has to be recorded either way (outbox.h does).
 * `messages` should be context memory. */
void step_publish_raw(context_t *c, const broker_message_t *messages, size_t count, step_confirm_fn done, void *data);

/* Runs `run(data)` on the background pool (work_pool.h), then `next(data)`
 * back on the loop. `data` should be context memory: it stays valid until
 * `run` has ended even if the context is cancelled meanwhile. Returns 0,
 * or -1 when the pool is saturated: nothing was queued or answered (the
 * caller says how busy it is). */
int step_work(context_t *c, work_run_fn run, step_done_fn next, void *data);

/* For a PostgreSQL reply that is not PG_OK: logs it, fails the context
 * (503 or 500) and returns false. Returns true for PG_OK. */
bool step_check_pg(context_t *c, const pg_reply_t *reply);

#endif
