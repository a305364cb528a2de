/* pg.c - connection state machine:
 *
 *   DOWN --backoff timer--> CONNECTING --PQconnectPoll ok--> PREPARING
 *   PREPARING --all statements prepared (and LISTEN sent)--> IDLE <--> BUSY
 *   any state --socket error / timeout--> DOWN
 *
 * Beside the pool, a probe opens one extra connection now and then (for
 * /health/ready, at most once a second) to learn whether the server still
 * takes new sessions. When it is shutting down, the pool lets go of its
 * connections (DOWN, reconnecting as usual) so that the shutdown can end.
 */
#include "pg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "random.h"

#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  2000
#define DELAY_STATEMENT "SELECT pg_sleep($1::double precision / 1000)"
#define PROBE_CACHE_MS  1000
/* What PostgreSQL answers a new session while it shuts down (SQLSTATE
 * 57P03, which libpq does not expose for a failed connection). */
#define SHUTTING_DOWN_TEXT    "shutting down"
#define SHUTTING_DOWN_MESSAGE "the database system is shutting down"

typedef enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_PREPARING, CONN_IDLE, CONN_BUSY } conn_state_t;

typedef struct query {
    h2o_linklist_t link; /* in pool->queue while waiting */
    pg_pool_t *pool;
    const pg_statement_t *statement;
    char **params;
    pg_callback_fn cb;
    void *data;
    uint64_t started_ns;
    loop_timer_t timeout;
    struct connection *conn; /* set while running */
    bool delay_pending;      /* the injected pg_sleep runs first */
} query_t;

/* A readiness probe waiting for the answer of the current connection try. */
typedef struct probe_waiter {
    struct probe_waiter *next;
    pg_callback_fn cb;
    void *data;
} probe_waiter_t;

/* One extra connection, opened and closed to learn whether the server
 * still accepts sessions: while it shuts down ("smart" mode, SIGTERM) the
 * pool's open connections keep working, so only a new one can tell. */
typedef struct probe {
    PGconn *pg;
    h2o_socket_t *sock;
    int watched_fd;
    loop_timer_t timeout;
    probe_waiter_t *waiters;
    uint64_t answered_ms; /* when the last try ended; 0: never */
    bool shutting_down;   /* the last try was refused because the server is shutting down */
    char error[256];      /* why the last try failed; "" when it opened */
} probe_t;

typedef struct connection {
    pg_pool_t *pool;
    conn_state_t state;
    PGconn *pg;
    h2o_socket_t *sock;
    int watched_fd; /* PQsocket() the h2o socket duplicates */
    size_t prepared;
    unsigned failures;
    loop_timer_t reconnect;
    query_t *query;
    PGresult *result; /* first result of the running command */
} connection_t;

struct pg_pool {
    h2o_evloop_t *loop;
    const pg_pool_config_t *config;
    connection_t *conns;
    h2o_linklist_t queue;
    size_t queued, running;
    bool down; /* the last attempt failed and no connection is usable */
    uint64_t injected_delay_ms;
    char last_error[256];
    bool draining; /* the server is shutting down: let go of every connection */
    probe_t probe;
    char listen[PG_CHANNEL_MAX]; /* "" unless pg_pool_listen: conns[0] LISTENs to it */
    pg_notify_fn on_notify;
    void *notify_data;
};

static metrics_family_t *connections_gauge, *operation_duration;

void pg_metrics_register(void)
{
    static const char *const state_label[] = {"state", NULL};
    static const char *const operation_labels[] = {"system", "operation", NULL};
    connections_gauge =
        metrics_gauge("db_client_connections", "PostgreSQL connections of this process by state.", state_label);
    operation_duration = metrics_histogram("db_client_operation_duration_seconds",
                                           "Duration of database operations, queue wait included.", operation_labels,
                                           metrics_duration_buckets, metrics_duration_bucket_count);
}

void pg_message_one_line(const char *message, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = message; *p != '\0' && n + 1 < size; p++) {
        bool space = *p == '\n' || *p == '\t' || *p == ' ';
        if (!space || (n > 0 && out[n - 1] != ' '))
            out[n++] = space ? ' ' : *p;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static void on_socket_event(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);
static void start_connect(loop_timer_t *timer);
static void dispatch(pg_pool_t *pool);

static const char *state_label(conn_state_t state)
{
    return state == CONN_IDLE ? "idle" : state == CONN_BUSY ? "used" : NULL;
}

static void set_state(connection_t *conn, conn_state_t state)
{
    const char *before = state_label(conn->state), *after = state_label(state);
    if (before != NULL)
        metrics_gauge_add(connections_gauge, (const char *const[]){before}, -1);
    if (after != NULL)
        metrics_gauge_add(connections_gauge, (const char *const[]){after}, 1);
    conn->state = state;
}

static bool any_usable(const pg_pool_t *pool)
{
    for (size_t i = 0; i < pool->config->size; i++)
        if (pool->conns[i].state == CONN_IDLE || pool->conns[i].state == CONN_BUSY)
            return true;
    return false;
}

/* Delivers the reply and frees the query. */
static void complete(query_t *q, pg_status_t status, const PGresult *result, const char *message)
{
    pg_reply_t reply = {status, result, NULL, message};
    if (status == PG_ERROR && result != NULL) {
        reply.sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        reply.message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    }
    if (reply.sqlstate == NULL)
        reply.sqlstate = "";
    if (reply.message == NULL)
        reply.message = "";
    loop_timer_stop(&q->timeout);
    double seconds = (double)(loop_now_ns() - q->started_ns) / 1e9;
    metrics_histogram_observe(operation_duration, (const char *const[]){"postgresql", q->statement->name}, seconds);
    q->cb(q->data, &reply);
    free(q->params);
    free(q);
}

static void fail_queue(pg_pool_t *pool, const char *message)
{
    while (!h2o_linklist_is_empty(&pool->queue)) {
        query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, link, pool->queue.next);
        h2o_linklist_unlink(&q->link);
        pool->queued--;
        complete(q, PG_UNAVAILABLE, NULL, message);
    }
}

static void close_socket(connection_t *conn)
{
    if (conn->sock != NULL) {
        h2o_socket_read_stop(conn->sock);
        h2o_socket_close(conn->sock); /* closes our dup, not libpq's fd */
        conn->sock = NULL;
    }
    conn->watched_fd = -1;
}

/* Closes the connection's session; its running query, if any, gets
 * PG_UNAVAILABLE with `message`. */
static void connection_close(connection_t *conn, const char *message)
{
    pg_pool_t *pool = conn->pool;
    query_t *q = conn->query;
    close_socket(conn);
    if (conn->result != NULL) {
        PQclear(conn->result);
        conn->result = NULL;
    }
    if (conn->pg != NULL) {
        PQfinish(conn->pg);
        conn->pg = NULL;
    }
    set_state(conn, CONN_DOWN);
    conn->query = NULL;
    if (q != NULL) {
        pool->running--;
        complete(q, PG_UNAVAILABLE, NULL, message);
    }
}

/* Tears the connection down, fails its running query and schedules a
 * reconnect with backoff; when it was the last usable one, the pool is
 * down and its queue fails. `reason` is remembered for /health/ready. */
static void connection_fail(connection_t *conn, const char *reason)
{
    pg_pool_t *pool = conn->pool;
    bool was_usable = conn->state == CONN_IDLE || conn->state == CONN_BUSY;
    char message[256];
    pg_message_one_line(reason, message, sizeof(message));
    snprintf(pool->last_error, sizeof(pool->last_error), "%s", message);
    connection_close(conn, message);
    conn->failures++;
    uint64_t backoff = BACKOFF_MIN_MS << (conn->failures < 5 ? conn->failures - 1 : 4);
    if (backoff > BACKOFF_MAX_MS)
        backoff = BACKOFF_MAX_MS;
    backoff = backoff / 2 + random_u64() % (backoff / 2 + 1); /* jitter spreads reconnect storms */
    loop_timer_start(&conn->reconnect, backoff, start_connect, conn);

    if (was_usable)
        log_warn(NULL, "postgres connection lost", LOG_STRING("reason", message));
    if (!any_usable(pool)) {
        if (!pool->down)
            log_error(NULL, "postgres unavailable", LOG_STRING("reason", message));
        pool->down = true;
        fail_queue(pool, message);
    }
}

/* Watches a libpq socket: readable always (level-triggered), writable
 * only when asked. libpq may swap its socket while connecting, so the
 * watch is recreated whenever PQsocket() changes. */
static int watch_fd(h2o_evloop_t *loop, PGconn *pg, h2o_socket_t **sock, int *watched_fd, h2o_socket_cb on_event,
                    void *data)
{
    int fd = PQsocket(pg);
    if (fd < 0)
        return -1;
    if (*sock != NULL && *watched_fd == fd)
        return 0;
    if (*sock != NULL) {
        h2o_socket_read_stop(*sock);
        h2o_socket_close(*sock);
        *sock = NULL;
    }
    int copy = dup(fd);
    if (copy < 0)
        return -1;
    *sock = h2o_evloop_socket_create(loop, copy, H2O_SOCKET_FLAG_DONT_READ);
    (*sock)->data = data;
    *watched_fd = fd;
    h2o_socket_read_start(*sock, on_event);
    return 0;
}

static int watch_socket(connection_t *conn)
{
    return watch_fd(conn->pool->loop, conn->pg, &conn->sock, &conn->watched_fd, on_socket_event, conn);
}

static void want_write(connection_t *conn)
{
    if (!h2o_socket_is_writing(conn->sock))
        h2o_socket_notify_write(conn->sock, on_writable);
}

static bool listens(const connection_t *conn)
{
    return conn->pool->listen[0] != '\0' && conn == &conn->pool->conns[0];
}

/* LISTEN, as the last step of preparing the first connection. */
static int send_listen(connection_t *conn)
{
    char *channel = PQescapeIdentifier(conn->pg, conn->pool->listen, strlen(conn->pool->listen));
    if (channel == NULL)
        return -1;
    char sql[256];
    int n = snprintf(sql, sizeof(sql), "LISTEN %s", channel);
    PQfreemem(channel);
    return n > 0 && (size_t)n < sizeof(sql) && PQsendQuery(conn->pg, sql) ? 0 : -1;
}

/* Sends the next prepare (then the LISTEN, if any), or marks the
 * connection ready. */
static void prepare_next(connection_t *conn)
{
    pg_pool_t *pool = conn->pool;
    size_t statements = pool->config->statement_count;
    if (conn->prepared == statements && listens(conn)) {
        if (send_listen(conn) != 0) {
            connection_fail(conn, PQerrorMessage(conn->pg));
            return;
        }
        if (PQflush(conn->pg) == 1)
            want_write(conn);
        return;
    }
    if (conn->prepared >= statements) {
        conn->failures = 0;
        set_state(conn, CONN_IDLE);
        if (pool->down)
            log_info(NULL, "postgres available again");
        pool->down = false;
        pool->draining = false;
        pool->last_error[0] = '\0';
        dispatch(pool);
        return;
    }
    const pg_statement_t *st = &pool->config->statements[conn->prepared];
    if (!PQsendPrepare(conn->pg, st->name, st->sql, st->param_count, NULL)) {
        connection_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    if (PQflush(conn->pg) == 1)
        want_write(conn);
}

static void continue_connect(connection_t *conn)
{
    switch (PQconnectPoll(conn->pg)) {
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(conn->pg, 1) != 0 || watch_socket(conn) != 0) {
            connection_fail(conn, PQerrorMessage(conn->pg));
            return;
        }
        set_state(conn, CONN_PREPARING);
        conn->prepared = 0;
        prepare_next(conn);
        return;
    case PGRES_POLLING_FAILED: connection_fail(conn, PQerrorMessage(conn->pg)); return;
    case PGRES_POLLING_WRITING:
        if (watch_socket(conn) != 0) {
            connection_fail(conn, "cannot watch the database socket");
            return;
        }
        want_write(conn);
        return;
    default: /* PGRES_POLLING_READING: the read watch is always on */
        if (watch_socket(conn) != 0)
            connection_fail(conn, "cannot watch the database socket");
        return;
    }
}

static void start_connect(loop_timer_t *timer)
{
    connection_t *conn = timer->data;
    conn->pg = PQconnectStart(conn->pool->config->conninfo);
    if (conn->pg == NULL) {
        connection_fail(conn, "out of memory");
        return;
    }
    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        connection_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    set_state(conn, CONN_CONNECTING);
    continue_connect(conn);
}

static void send_query(connection_t *conn)
{
    query_t *q = conn->query;
    int ok;
    if (q->delay_pending) {
        char ms[32];
        snprintf(ms, sizeof(ms), "%llu", (unsigned long long)conn->pool->injected_delay_ms);
        const char *values[] = {ms};
        ok = PQsendQueryParams(conn->pg, DELAY_STATEMENT, 1, NULL, values, NULL, NULL, 0);
    } else {
        ok = PQsendQueryPrepared(conn->pg, q->statement->name, q->statement->param_count,
                                 (const char *const *)q->params, NULL, NULL, 0);
    }
    if (!ok) {
        connection_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    if (PQflush(conn->pg) == 1)
        want_write(conn);
}

static void dispatch(pg_pool_t *pool)
{
    for (size_t i = 0; i < pool->config->size && !h2o_linklist_is_empty(&pool->queue); i++) {
        connection_t *conn = &pool->conns[i];
        if (conn->state != CONN_IDLE)
            continue;
        query_t *q = H2O_STRUCT_FROM_MEMBER(query_t, link, pool->queue.next);
        h2o_linklist_unlink(&q->link);
        pool->queued--;
        pool->running++;
        q->conn = conn;
        q->delay_pending = pool->injected_delay_ms > 0;
        conn->query = q;
        set_state(conn, CONN_BUSY);
        send_query(conn);
    }
}

/* A command finished (PQgetResult returned NULL): move on. */
static void on_command_done(connection_t *conn)
{
    PGresult *result = conn->result;
    conn->result = NULL;
    ExecStatusType status = result != NULL ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;

    if (conn->state == CONN_PREPARING) {
        if (!ok) {
            const pg_pool_config_t *config = conn->pool->config;
            const char *what =
                conn->prepared < config->statement_count ? config->statements[conn->prepared].name : "LISTEN";
            log_error(NULL, "cannot prepare statement", LOG_STRING("statement", what),
                      LOG_STRING("reason", result != NULL ? PQresultErrorMessage(result) : ""));
            PQclear(result);
            connection_fail(conn, "statement preparation failed");
            return;
        }
        PQclear(result);
        conn->prepared++;
        prepare_next(conn);
        return;
    }

    query_t *q = conn->query;
    if (q != NULL && q->delay_pending) {
        PQclear(result);
        q->delay_pending = false;
        send_query(conn);
        return;
    }
    pg_pool_t *pool = conn->pool;
    conn->query = NULL;
    set_state(conn, CONN_IDLE);
    if (q != NULL) {
        pool->running--;
        complete(q, ok ? PG_OK : PG_ERROR, result, ok ? "" : "query failed");
    }
    PQclear(result);
    if (pool->draining) {
        connection_fail(conn, SHUTTING_DOWN_MESSAGE);
        return;
    }
    dispatch(pool);
}

/* Hands every NOTIFY libpq has parsed to the listener. The callback may
 * start queries on this pool, so nothing of `conn` is used afterwards. */
static void deliver_notifications(connection_t *conn)
{
    pg_pool_t *pool = conn->pool;
    PGnotify *notify;
    bool any = false;
    char channel[PG_CHANNEL_MAX] = "";
    while ((notify = PQnotifies(conn->pg)) != NULL) {
        if (!any)
            snprintf(channel, sizeof(channel), "%s", notify->relname);
        any = true;
        PQfreemem(notify);
    }
    if (any)
        pool->on_notify(pool->notify_data, channel); /* one call however many arrived */
}

static void read_results(connection_t *conn)
{
    while (conn->state == CONN_PREPARING || conn->state == CONN_BUSY) {
        if (PQisBusy(conn->pg))
            return;
        PGresult *result = PQgetResult(conn->pg);
        if (result == NULL) {
            on_command_done(conn); /* may fail or start the next command */
            if (conn->state == CONN_DOWN || conn->state == CONN_IDLE)
                return;
            continue;
        }
        if (conn->result == NULL)
            conn->result = result;
        else
            PQclear(result); /* one statement, one result: extras are ignored */
    }
    if (PQstatus(conn->pg) == CONNECTION_BAD)
        connection_fail(conn, PQerrorMessage(conn->pg));
}

static void on_readable(connection_t *conn)
{
    if (conn->state == CONN_CONNECTING) {
        continue_connect(conn);
        return;
    }
    if (!PQconsumeInput(conn->pg)) {
        connection_fail(conn, PQerrorMessage(conn->pg));
        return;
    }
    read_results(conn);
    if (conn->state != CONN_DOWN && listens(conn))
        deliver_notifications(conn);
}

static void on_socket_event(h2o_socket_t *sock, const char *err)
{
    connection_t *conn = sock->data;
    (void)err; /* the socket is never read by h2o: readiness only */
    on_readable(conn);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    connection_t *conn = sock->data;
    (void)err;
    if (conn->state == CONN_CONNECTING) {
        continue_connect(conn);
        return;
    }
    int flushed = PQflush(conn->pg);
    if (flushed == -1)
        connection_fail(conn, PQerrorMessage(conn->pg));
    else if (flushed == 1)
        want_write(conn);
}

static void on_query_timeout(loop_timer_t *timer)
{
    query_t *q = timer->data;
    pg_pool_t *pool = q->pool;
    if (q->conn == NULL) { /* still queued */
        h2o_linklist_unlink(&q->link);
        pool->queued--;
        complete(q, PG_TIMEOUT, NULL, "query timed out waiting for a database connection");
        return;
    }
    connection_t *conn = q->conn;
    conn->query = NULL;
    pool->running--;
    log_warn(NULL, "postgres query timed out", LOG_STRING("statement", q->statement->name),
             LOG_INT("timeout_ms", pool->config->query_timeout_ms));
    complete(q, PG_TIMEOUT, NULL, "query timed out");
    /* The server is still running the statement; dropping the connection is
     * the only non-blocking way to stop waiting for it. A timeout is not a
     * connection failure: the pool is not down (queued queries wait for the
     * new connection, within their own timeouts), and it reconnects at once. */
    connection_close(conn, "query timed out");
    loop_timer_start(&conn->reconnect, 0, start_connect, conn);
}

/* --- probe: does the server accept new sessions? --------------------------- */

/* Stops watching and closes the probe's connection. */
static void probe_close(probe_t *probe)
{
    loop_timer_stop(&probe->timeout);
    if (probe->sock != NULL) {
        h2o_socket_read_stop(probe->sock);
        h2o_socket_close(probe->sock);
        probe->sock = NULL;
    }
    probe->watched_fd = -1;
    if (probe->pg != NULL) {
        PQfinish(probe->pg);
        probe->pg = NULL;
    }
}

/* Idle connections close now and busy ones when their query is done, so a
 * server shutting down in smart mode is not kept waiting for this pool. */
static void pool_drain(pg_pool_t *pool)
{
    if (!pool->draining)
        log_warn(NULL, "postgres is shutting down: closing the pool's connections");
    pool->draining = true;
    for (size_t i = 0; i < pool->config->size; i++)
        if (pool->conns[i].state == CONN_IDLE)
            connection_fail(&pool->conns[i], SHUTTING_DOWN_MESSAGE);
}

/* Ends the try with `error` ("" when the connection opened) and answers
 * every waiter. */
static void probe_answer(pg_pool_t *pool, const char *error)
{
    probe_t *probe = &pool->probe;
    pg_message_one_line(error, probe->error, sizeof(probe->error)); /* `error` may be libpq's: copy, then close */
    probe_close(probe);
    probe->shutting_down = strstr(probe->error, SHUTTING_DOWN_TEXT) != NULL;
    probe->answered_ms = loop_now_ms();
    probe_waiter_t *waiters = probe->waiters;
    probe->waiters = NULL;
    while (waiters != NULL) {
        probe_waiter_t *next = waiters->next;
        pg_reply_t reply = {probe->shutting_down ? PG_UNAVAILABLE : PG_OK, NULL, "", probe->error};
        waiters->cb(waiters->data, &reply);
        free(waiters);
        waiters = next;
    }
    if (probe->shutting_down)
        pool_drain(pool);
}

static void probe_continue(pg_pool_t *pool);

static void on_probe_event(h2o_socket_t *sock, const char *err)
{
    (void)err;
    probe_continue(sock->data);
}

static void on_probe_timeout(loop_timer_t *timer)
{
    probe_answer(timer->data, "no answer to a new connection");
}

static void probe_continue(pg_pool_t *pool)
{
    probe_t *probe = &pool->probe;
    PostgresPollingStatusType status = PQconnectPoll(probe->pg);
    if (status == PGRES_POLLING_OK) {
        probe_answer(pool, "");
        return;
    }
    if (status == PGRES_POLLING_FAILED) {
        probe_answer(pool, PQerrorMessage(probe->pg));
        return;
    }
    if (watch_fd(pool->loop, probe->pg, &probe->sock, &probe->watched_fd, on_probe_event, pool) != 0) {
        probe_answer(pool, "cannot watch the database socket");
        return;
    }
    if (status == PGRES_POLLING_WRITING && !h2o_socket_is_writing(probe->sock))
        h2o_socket_notify_write(probe->sock, on_probe_event);
}

void pg_pool_probe(pg_pool_t *pool, pg_callback_fn cb, void *data)
{
    probe_t *probe = &pool->probe;
    if (probe->pg == NULL && probe->answered_ms != 0 && loop_now_ms() - probe->answered_ms < PROBE_CACHE_MS) {
        pg_reply_t reply = {probe->shutting_down ? PG_UNAVAILABLE : PG_OK, NULL, "", probe->error};
        cb(data, &reply);
        return;
    }
    probe_waiter_t *waiter = malloc(sizeof(*waiter));
    if (waiter == NULL) {
        pg_reply_t reply = {PG_UNAVAILABLE, NULL, "", "out of memory"};
        cb(data, &reply);
        return;
    }
    *waiter = (probe_waiter_t){probe->waiters, cb, data};
    probe->waiters = waiter;
    if (probe->pg != NULL)
        return; /* a try is under way: its answer serves this waiter too */
    probe->pg = PQconnectStart(pool->config->conninfo);
    if (probe->pg == NULL || PQstatus(probe->pg) == CONNECTION_BAD) {
        probe_answer(pool, probe->pg != NULL ? PQerrorMessage(probe->pg) : "out of memory");
        return;
    }
    loop_timer_start(&probe->timeout, pool->config->query_timeout_ms, on_probe_timeout, pool);
    probe_continue(pool);
}

pg_pool_t *pg_pool_create(h2o_evloop_t *loop, const pg_pool_config_t *config)
{
    pg_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->conns = calloc(config->size, sizeof(*pool->conns));
    if (pool->conns == NULL) {
        free(pool);
        return NULL;
    }
    pool->loop = loop;
    pool->config = config;
    pool->probe.watched_fd = -1;
    h2o_linklist_init_anchor(&pool->queue);
    for (size_t i = 0; i < config->size; i++) {
        connection_t *conn = &pool->conns[i];
        conn->pool = pool;
        conn->watched_fd = -1;
        loop_timer_start(&conn->reconnect, 0, start_connect, conn);
    }
    return pool;
}

void pg_pool_destroy(pg_pool_t *pool)
{
    if (pool == NULL)
        return;
    pool->down = true;
    fail_queue(pool, "shutting down");
    if (pool->probe.pg != NULL)
        probe_answer(pool, "the pool is closing");
    for (size_t i = 0; i < pool->config->size; i++) {
        connection_t *conn = &pool->conns[i];
        loop_timer_stop(&conn->reconnect);
        if (conn->query != NULL) {
            query_t *q = conn->query;
            conn->query = NULL;
            complete(q, PG_UNAVAILABLE, NULL, "shutting down");
        }
        close_socket(conn);
        if (conn->result != NULL)
            PQclear(conn->result);
        if (conn->pg != NULL)
            PQfinish(conn->pg);
        set_state(conn, CONN_DOWN);
    }
    free(pool->conns);
    free(pool);
}

static const pg_statement_t *find_statement(const pg_pool_t *pool, const char *name)
{
    for (size_t i = 0; i < pool->config->statement_count; i++)
        if (strcmp(pool->config->statements[i].name, name) == 0)
            return &pool->config->statements[i];
    return NULL;
}

/* Copies the parameters into one allocation: the pointer array, then the
 * strings. */
static char **copy_params(const char *const *params, int count)
{
    size_t size = (size_t)count * sizeof(char *);
    for (int i = 0; i < count; i++)
        if (params[i] != NULL)
            size += strlen(params[i]) + 1;
    char **copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return NULL;
    char *text = (char *)(copy + count);
    for (int i = 0; i < count; i++) {
        if (params[i] == NULL) {
            copy[i] = NULL;
            continue;
        }
        size_t len = strlen(params[i]) + 1;
        memcpy(text, params[i], len);
        copy[i] = text;
        text += len;
    }
    return copy;
}

void pg_query(pg_pool_t *pool, const char *statement, const char *const *params, pg_callback_fn cb, void *data)
{
    const pg_statement_t *st = find_statement(pool, statement);
    if (st == NULL) {
        log_error(NULL, "unknown prepared statement", LOG_STRING("statement", statement));
        pg_reply_t reply = {PG_ERROR, NULL, "", "unknown statement"};
        cb(data, &reply);
        return;
    }
    query_t *q = calloc(1, sizeof(*q));
    char **copy = q != NULL ? copy_params(params, st->param_count) : NULL;
    if (copy == NULL) {
        free(q);
        pg_reply_t reply = {PG_UNAVAILABLE, NULL, "", "out of memory"};
        cb(data, &reply);
        return;
    }
    *q = (query_t){.pool = pool, .statement = st, .params = copy, .cb = cb, .data = data, .started_ns = loop_now_ns()};
    if (pool->down || pool->queued >= pool->config->max_queue) {
        complete(q, PG_UNAVAILABLE, NULL, pool->down ? pool->last_error : "database connection queue is full");
        return;
    }
    h2o_linklist_insert(&pool->queue, &q->link);
    pool->queued++;
    loop_timer_start(&q->timeout, pool->config->query_timeout_ms, on_query_timeout, q);
    dispatch(pool);
}

bool pg_pool_is_up(const pg_pool_t *pool)
{
    return any_usable(pool);
}

const char *pg_pool_last_error(const pg_pool_t *pool)
{
    return pool->last_error;
}

size_t pg_pool_pending(const pg_pool_t *pool)
{
    return pool->queued + pool->running + (pool->probe.pg != NULL);
}

int pg_pool_listen(pg_pool_t *pool, const char *channel, pg_notify_fn cb, void *data)
{
    conn_state_t first = pool->conns[0].state;
    bool too_late = channel[0] != '\0' && (first == CONN_IDLE || first == CONN_BUSY);
    if (strlen(channel) >= sizeof(pool->listen) || too_late)
        return -1; /* too late: the first connection is ready without it */
    snprintf(pool->listen, sizeof(pool->listen), "%s", channel);
    pool->on_notify = cb;
    pool->notify_data = data;
    return 0;
}

void pg_pool_set_injected_delay(pg_pool_t *pool, uint64_t ms)
{
    pool->injected_delay_ms = ms;
}
