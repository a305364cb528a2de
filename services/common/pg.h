/* pg.h - an asynchronous PostgreSQL connection pool on a thread's h2o loop.
 *
 * Each worker thread owns one pool. Connections are opened without blocking
 * (PQconnectStart/PQconnectPoll), prepare the service's named statements,
 * then run one query at a time each. Queries wait in a FIFO when every
 * connection is busy. A query times out after query_timeout_ms (counting
 * queue time); libpq 15 cannot cancel without blocking, so a timed-out
 * query costs its connection, which is reopened at once (the pool is not
 * counted down for it: queued queries wait for the new connection). While the database is
 * unreachable the pool answers PG_UNAVAILABLE at once instead of queueing,
 * and keeps reconnecting with exponential backoff (100 ms to 2 s).
 */
#ifndef OMS_PG_H
#define OMS_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop_timer.h"

typedef struct pg_statement {
    const char *name; /* also the `operation` label of the duration metric */
    const char *sql;
    int param_count;
} pg_statement_t;

typedef enum pg_status {
    PG_OK,          /* the statement ran; result holds its rows */
    PG_ERROR,       /* the server rejected it (constraint, syntax, ...) */
    PG_UNAVAILABLE, /* no connection to the database, or the queue is full */
    PG_TIMEOUT,     /* no answer within the query timeout */
} pg_status_t;

typedef struct pg_reply {
    pg_status_t status;
    const PGresult *result; /* PG_OK and PG_ERROR; freed after the callback */
    const char *sqlstate;   /* PG_ERROR: the SQLSTATE code, e.g. "23505" */
    const char *message;    /* human-readable reason for any non-OK status */
} pg_reply_t;

/* Called exactly once per query, on the pool's thread. */
typedef void (*pg_callback_fn)(void *data, const pg_reply_t *reply);

typedef struct pg_pool_config {
    const char *conninfo; /* a libpq connection string or URL */
    size_t size;          /* connections in this pool */
    uint64_t query_timeout_ms;
    size_t max_queue; /* queries allowed to wait for a connection */
    const pg_statement_t *statements;
    size_t statement_count;
} pg_pool_config_t;

#define PG_CHANNEL_MAX 64 /* LISTEN channel names, with their NUL (PostgreSQL's NAMEDATALEN) */

/* Called for NOTIFY on the pool's loop (several at once: one call). */
typedef void (*pg_notify_fn)(void *data, const char *channel);

typedef struct pg_pool pg_pool_t;

/* Copies a libpq message ("...\n\tIs the server running...") into `out` as
 * one line: whitespace runs become one space, the trailing newline goes. */
void pg_message_one_line(const char *message, char *out, size_t size);

/* Declares the pool metrics (db_client_*); call once before threads start. */
void pg_metrics_register(void);

/* Creates a pool on `loop` and starts connecting. The config (and its
 * statements) must outlive the pool. Returns NULL on allocation failure. */
pg_pool_t *pg_pool_create(h2o_evloop_t *loop, const pg_pool_config_t *config);

/* Closes every connection; queued and running queries get PG_UNAVAILABLE. */
void pg_pool_destroy(pg_pool_t *pool);

/* Runs the prepared statement `statement` with text parameters (NULL for
 * SQL NULL; they are copied). The callback may run before this returns when
 * the pool is down or the statement is unknown. */
void pg_query(pg_pool_t *pool, const char *statement, const char *const *params, pg_callback_fn cb, void *data);

/* True when at least one connection is open and ready. */
bool pg_pool_is_up(const pg_pool_t *pool);

/* The last connection error seen (for health messages); "" when none. */
const char *pg_pool_last_error(const pg_pool_t *pool);

/* Whether the server accepts new sessions, which the pool's open
 * connections cannot tell (while PostgreSQL shuts down they keep working):
 * opens and closes one extra connection, or answers what such a try found
 * less than a second ago. `cb` gets PG_UNAVAILABLE with the server's
 * words when it refuses new sessions because it is shutting down, PG_OK
 * otherwise (other failures show in the pool's own connections); it may
 * run before this returns. When the server is
 * shutting down, the pool also closes its connections (idle ones at once,
 * busy ones after their query), so it is not kept waiting for them. */
void pg_pool_probe(pg_pool_t *pool, pg_callback_fn cb, void *data);

/* Queries running or waiting, and a probe under way (for graceful
 * shutdown). */
size_t pg_pool_pending(const pg_pool_t *pool);

/* Makes the pool's first connection LISTEN to `channel` (copied) once
 * its statements are prepared, again after every reconnect, and call
 * `cb(data, channel)` for each NOTIFY. Call right after pg_pool_create,
 * before the loop runs. Notifications sent while that connection was down
 * are lost, so a listener also looks for work now and then (outbox.h
 * does). Returns 0, or -1 for a channel name too long or when the first
 * connection is already past connecting. "" stops the calls. */
int pg_pool_listen(pg_pool_t *pool, const char *channel, pg_notify_fn cb, void *data);

/* Makes every following query first sleep `ms` milliseconds inside the
 * database (SELECT pg_sleep), holding its connection: the lab's slow
 * database fault. 0 turns it off. */
void pg_pool_set_injected_delay(pg_pool_t *pool, uint64_t ms);

#endif
