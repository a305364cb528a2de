/* Tests for pg.c against a real PostgreSQL: rows and errors of prepared
 * statements, the query timeout and the recovery after it, failing at once
 * when the server refuses connections, the queue limit, the injected
 * delay, the readiness probe, and pg_pool_destroy answering every query.
 * Every callback is checked to run exactly once.
 *
 * OMS_TEST_DATABASE_URL names a superuser's database (scripts/run-tests.sh
 * starts the server and sets it); the tests create and drop one table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pg.h"
#include "test_loop.h"

/* Bounds for waiting on the loop, not expectations: a query here takes
 * milliseconds, but the machine is small and shared. */
#define WAIT_BOUND_MS 15000
/* A failure that must come "at once" comes well before this, while the
 * query timeout is far longer (IMMEDIATE_MS * 5). */
#define IMMEDIATE_MS 1000
#define TIMEOUT_MS   5000
#define TABLE        "oms_unit_test_items"

static const char *database_url;

static const pg_statement_t statements[] = {
    {"series", "SELECT n, 'row ' || n FROM generate_series(1, $1::int) AS n ORDER BY n", 1},
    {"nulls", "SELECT $1::text IS NULL, coalesce($1::text, 'none'), $2::text", 2},
    {"divide", "SELECT 100 / $1::int", 1},
    {"insert", "INSERT INTO " TABLE " (id) VALUES ($1::int)", 1},
    {"sleep", "SELECT pg_sleep($1::double precision / 1000)", 1},
    {"one", "SELECT 1", 0},
};
#define STATEMENT_COUNT (sizeof(statements) / sizeof(statements[0]))

/* What one query's callback saw; the result is freed after the callback,
 * so what the tests check is copied out of it. */
typedef struct answer {
    int calls;
    pg_status_t status;
    char sqlstate[8];
    char message[256];
    int rows;
    char cells[4][3][32]; /* [row][column], "<null>" for SQL NULL */
    uint64_t answered_ms;
} answer_t;

static void on_answer(void *data, const pg_reply_t *reply)
{
    answer_t *a = data;
    a->calls++;
    a->status = reply->status;
    a->answered_ms = loop_now_ms();
    assert_non_null(reply->sqlstate);
    assert_non_null(reply->message);
    snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", reply->sqlstate);
    snprintf(a->message, sizeof(a->message), "%s", reply->message);
    if (reply->status != PG_OK)
        return;
    assert_non_null(reply->result);
    a->rows = PQntuples(reply->result);
    for (int row = 0; row < a->rows && row < 4; row++)
        for (int col = 0; col < PQnfields(reply->result) && col < 3; col++)
            snprintf(a->cells[row][col], sizeof(a->cells[row][col]), "%s",
                     PQgetisnull(reply->result, row, col) ? "<null>" : PQgetvalue(reply->result, row, col));
}

/* A probe's reply has a status and a message, never a result. */
static void on_probe(void *data, const pg_reply_t *reply)
{
    answer_t *a = data;
    a->calls++;
    a->status = reply->status;
    a->answered_ms = loop_now_ms();
    assert_null(reply->result);
    assert_non_null(reply->message);
    snprintf(a->message, sizeof(a->message), "%s", reply->message);
}

static pg_pool_config_t config_for(const char *conninfo, size_t size, uint64_t timeout_ms, size_t max_queue)
{
    return (pg_pool_config_t){.conninfo = conninfo,
                              .size = size,
                              .query_timeout_ms = timeout_ms,
                              .max_queue = max_queue,
                              .statements = statements,
                              .statement_count = STATEMENT_COUNT};
}

/* --- the loop ---------------------------------------------------------------- */

/* Runs the loop until the answer arrived (or WAIT_BOUND_MS pass), then
 * checks that it came once. */
static void wait_for(h2o_evloop_t *loop, const answer_t *a)
{
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (a->calls == 0 && loop_now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    assert_int_equal(a->calls, 1);
}

/* Runs the loop for `ms`: lets a late duplicate callback show itself. */
static void run_for(h2o_evloop_t *loop, uint64_t ms)
{
    uint64_t end = loop_now_ms() + ms;
    while (loop_now_ms() < end)
        h2o_evloop_run(loop, 10);
}

static void query(pg_pool_t *pool, const char *statement, const char *const *params, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    pg_query(pool, statement, params, on_answer, a);
}

/* Runs SELECT 1 and waits for it to succeed: the pool has a ready
 * connection afterwards. */
static void warm_up(h2o_evloop_t *loop, pg_pool_t *pool)
{
    answer_t a;
    query(pool, "one", NULL, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_OK);
}

/* A loopback port that refuses connections: bound, so nobody else takes
 * it, but not listening. Returns the socket to close afterwards. */
static int refusing_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* --- rows and errors ------------------------------------------------------------ */

static void test_rows_of_a_prepared_statement(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 2, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    assert_non_null(pool);

    char count[8] = "3";
    answer_t rows;
    query(pool, "series", (const char *const[]){count}, &rows);
    count[0] = '9'; /* the pool copied the parameter */
    wait_for(loop, &rows);
    assert_int_equal(rows.status, PG_OK);
    assert_string_equal(rows.sqlstate, "");
    assert_int_equal(rows.rows, 3);
    assert_string_equal(rows.cells[0][0], "1");
    assert_string_equal(rows.cells[0][1], "row 1");
    assert_string_equal(rows.cells[2][1], "row 3");

    answer_t nulls;
    query(pool, "nulls", (const char *const[]){NULL, "it's \"quoted\" – ünïcode"}, &nulls);
    wait_for(loop, &nulls);
    assert_int_equal(nulls.status, PG_OK);
    assert_int_equal(nulls.rows, 1);
    assert_string_equal(nulls.cells[0][0], "t");
    assert_string_equal(nulls.cells[0][1], "none");
    assert_string_equal(nulls.cells[0][2], "it's \"quoted\" – ünïcode");

    answer_t none;
    query(pool, "series", (const char *const[]){"0"}, &none);
    wait_for(loop, &none);
    assert_int_equal(none.status, PG_OK);
    assert_int_equal(none.rows, 0);
    assert_int_equal(pg_pool_pending(pool), 0);

    pg_pool_destroy(pool);
    run_for(loop, 20);
    assert_int_equal(rows.calls + nulls.calls + none.calls, 3);
    test_loop_free(loop);
}

static void test_an_unknown_statement_is_an_error_at_once(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    answer_t a;
    memset(&a, 0, sizeof(a));
    pg_query(pool, "no_such_statement", NULL, on_answer, &a);
    assert_int_equal(a.calls, 1); /* before pg_query returned */
    assert_int_equal(a.status, PG_ERROR);
    assert_string_equal(a.message, "unknown statement");
    assert_int_equal(pg_pool_pending(pool), 0);
    pg_pool_destroy(pool);
    test_loop_free(loop);
}

static void test_errors_carry_their_sqlstate(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);

    answer_t a;
    query(pool, "divide", (const char *const[]){"0"}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_ERROR);
    assert_string_equal(a.sqlstate, "22012");
    assert_string_equal(a.message, "division by zero");

    query(pool, "insert", (const char *const[]){"7"}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_OK);
    query(pool, "insert", (const char *const[]){"7"}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_ERROR);
    assert_string_equal(a.sqlstate, "23505");
    assert_non_null(strstr(a.message, "unique constraint"));

    query(pool, "insert", (const char *const[]){NULL}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_ERROR);
    assert_string_equal(a.sqlstate, "23502"); /* not_null_violation: the NULL went through as NULL */

    /* An error costs nothing but the query: the connection goes on. */
    query(pool, "divide", (const char *const[]){"4"}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_OK);
    assert_string_equal(a.cells[0][0], "25");

    pg_pool_destroy(pool);
    test_loop_free(loop);
}

/* --- timeouts and unavailability ----------------------------------------------- */

static void test_a_slow_query_times_out_and_the_pool_recovers(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, 1000, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    warm_up(loop, pool);

    answer_t slow, queued;
    uint64_t started = loop_now_ms();
    query(pool, "sleep", (const char *const[]){"3000"}, &slow);
    assert_int_equal(pg_pool_pending(pool), 1);
    run_for(loop, 500);
    query(pool, "one", NULL, &queued); /* waits behind it, with 500 ms of its own left then */
    wait_for(loop, &slow);
    assert_int_equal(slow.status, PG_TIMEOUT);
    assert_string_equal(slow.message, "query timed out");
    assert_true(slow.answered_ms - started >= 1000); /* not before the timeout */
    /* The timed-out query cost its connection, not the pool: the queued
     * query runs on the new connection, and new ones are taken, not
     * refused as if the database were down. */
    assert_true(pg_pool_pending(pool) >= 1);
    answer_t right_after;
    query(pool, "one", NULL, &right_after);
    assert_int_equal(right_after.calls, 0);
    wait_for(loop, &queued);
    assert_int_equal(queued.status, PG_OK);
    wait_for(loop, &right_after);
    assert_int_equal(right_after.status, PG_OK);
    assert_int_equal(pg_pool_pending(pool), 0);
    answer_t after;
    query(pool, "series", (const char *const[]){"2"}, &after);
    wait_for(loop, &after);
    assert_int_equal(after.status, PG_OK);
    assert_int_equal(after.rows, 2);

    run_for(loop, 20);
    assert_int_equal(slow.calls, 1);
    pg_pool_destroy(pool);
    test_loop_free(loop);
}

/* A listener that completes TCP handshakes and never says a word: a
 * connection to it never opens. Returns the socket. */
static int silent_listener(int *port)
{
    int fd = refusing_port(port);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static void test_a_query_waiting_for_a_connection_times_out(void **state)
{
    (void)state;
    int port;
    int listener = silent_listener(&port);
    char conninfo[128];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=oms", port);
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(conninfo, 1, 200, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    answer_t a;
    query(pool, "one", NULL, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_TIMEOUT);
    assert_string_equal(a.message, "query timed out waiting for a database connection");
    assert_int_equal(pg_pool_pending(pool), 0);
    pg_pool_destroy(pool);
    test_loop_free(loop);
    close(listener);
}

static void test_a_refused_connection_fails_at_once(void **state)
{
    (void)state;
    int port;
    int blocker = refusing_port(&port);
    char conninfo[128];
    snprintf(conninfo, sizeof(conninfo), "postgresql://postgres@127.0.0.1:%d/oms?connect_timeout=5", port);
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(conninfo, 2, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);

    /* Queued while the first connection is tried; failed when it fails. */
    answer_t first;
    uint64_t started = loop_now_ms();
    query(pool, "one", NULL, &first);
    wait_for(loop, &first);
    assert_int_equal(first.status, PG_UNAVAILABLE);
    assert_true(first.answered_ms - started < IMMEDIATE_MS);
    assert_non_null(strstr(first.message, "refused"));

    /* Once the pool knows the server is down, without even queueing. */
    answer_t second;
    query(pool, "one", NULL, &second);
    assert_int_equal(second.calls, 1);
    assert_int_equal(second.status, PG_UNAVAILABLE);
    assert_int_equal(pg_pool_pending(pool), 0);

    /* The probe reports only a server that is shutting down as unavailable. */
    answer_t probe;
    memset(&probe, 0, sizeof(probe));
    pg_pool_probe(pool, on_probe, &probe);
    wait_for(loop, &probe);
    assert_int_equal(probe.status, PG_OK);
    assert_non_null(strstr(probe.message, "refused"));

    run_for(loop, 20);
    assert_int_equal(first.calls + second.calls + probe.calls, 3);
    pg_pool_destroy(pool);
    test_loop_free(loop);
    close(blocker);
}

static void test_a_full_queue_refuses(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, TIMEOUT_MS, 2);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    warm_up(loop, pool);

    answer_t running, queued[2], refused;
    query(pool, "sleep", (const char *const[]){"200"}, &running);
    query(pool, "series", (const char *const[]){"1"}, &queued[0]);
    query(pool, "series", (const char *const[]){"2"}, &queued[1]);
    assert_int_equal(pg_pool_pending(pool), 3);
    query(pool, "one", NULL, &refused);
    assert_int_equal(refused.calls, 1); /* before pg_query returned */
    assert_int_equal(refused.status, PG_UNAVAILABLE);
    assert_string_equal(refused.message, "database connection queue is full");
    assert_int_equal(pg_pool_pending(pool), 3);

    wait_for(loop, &running);
    wait_for(loop, &queued[0]);
    wait_for(loop, &queued[1]);
    assert_int_equal(running.status, PG_OK);
    assert_int_equal(queued[0].status, PG_OK);
    assert_int_equal(queued[0].rows, 1);
    assert_int_equal(queued[1].status, PG_OK);
    assert_int_equal(queued[1].rows, 2);
    assert_true(running.answered_ms <= queued[0].answered_ms); /* first in, first out */
    assert_true(queued[0].answered_ms <= queued[1].answered_ms);
    assert_int_equal(pg_pool_pending(pool), 0);
    assert_int_equal(refused.calls, 1);
    pg_pool_destroy(pool);
    test_loop_free(loop);
}

/* --- destroy ---------------------------------------------------------------------- */

static void test_destroy_answers_running_and_queued_queries_once(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    warm_up(loop, pool);

    answer_t running, queued[2], probe;
    query(pool, "sleep", (const char *const[]){"2000"}, &running);
    query(pool, "one", NULL, &queued[0]);
    query(pool, "series", (const char *const[]){"1"}, &queued[1]);
    memset(&probe, 0, sizeof(probe));
    pg_pool_probe(pool, on_probe, &probe);
    assert_int_equal(pg_pool_pending(pool), 4); /* one running, two queued, the probe */
    run_for(loop, 20);                          /* the running query reaches the server */
    pg_pool_destroy(pool);
    assert_int_equal(running.calls, 1);
    assert_int_equal(running.status, PG_UNAVAILABLE);
    assert_string_equal(running.message, "shutting down");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(queued[i].calls, 1);
        assert_int_equal(queued[i].status, PG_UNAVAILABLE);
        assert_string_equal(queued[i].message, "shutting down");
    }
    assert_int_equal(probe.calls, 1);
    run_for(loop, 100); /* no timer of the pool is left to fire */
    assert_int_equal(running.calls + queued[0].calls + queued[1].calls + probe.calls, 4);
    test_loop_free(loop);
}

static void test_destroy_while_connecting(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 2, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    answer_t a;
    query(pool, "one", NULL, &a); /* waits: no connection is open yet */
    h2o_evloop_run(loop, 0);      /* the connections start */
    pg_pool_destroy(pool);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, PG_UNAVAILABLE);
    run_for(loop, 50);
    assert_int_equal(a.calls, 1);
    test_loop_free(loop);
}

/* --- injected delay, probe, messages ---------------------------------------------- */

static void test_an_injected_delay_slows_every_query(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    warm_up(loop, pool);

    pg_pool_set_injected_delay(pool, 400);
    answer_t a;
    uint64_t started = loop_now_ms();
    query(pool, "series", (const char *const[]){"2"}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_OK);
    assert_int_equal(a.rows, 2); /* the statement's own result, not the sleep's */
    assert_true(a.answered_ms - started >= 400);

    /* The delay counts against the query timeout. */
    pg_pool_config_t short_config = config_for(database_url, 1, 200, 16);
    pg_pool_t *short_pool = pg_pool_create(loop, &short_config);
    warm_up(loop, short_pool);
    pg_pool_set_injected_delay(short_pool, 3000);
    answer_t slow;
    query(short_pool, "one", NULL, &slow);
    wait_for(loop, &slow);
    assert_int_equal(slow.status, PG_TIMEOUT);
    pg_pool_destroy(short_pool);

    pg_pool_set_injected_delay(pool, 0);
    query(pool, "series", (const char *const[]){"1"}, &a);
    wait_for(loop, &a);
    assert_int_equal(a.status, PG_OK);
    assert_int_equal(a.rows, 1);
    pg_pool_destroy(pool);
    test_loop_free(loop);
}

static void test_the_probe_answers_ok_for_a_healthy_server(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 1, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    warm_up(loop, pool);

    answer_t probes[2];
    memset(probes, 0, sizeof(probes));
    pg_pool_probe(pool, on_probe, &probes[0]);
    pg_pool_probe(pool, on_probe, &probes[1]); /* shares the try under way */
    assert_int_equal(pg_pool_pending(pool), 1);
    wait_for(loop, &probes[0]);
    wait_for(loop, &probes[1]);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(probes[i].status, PG_OK);
        assert_string_equal(probes[i].message, "");
    }
    assert_int_equal(pg_pool_pending(pool), 0);

    answer_t cached;
    memset(&cached, 0, sizeof(cached));
    pg_pool_probe(pool, on_probe, &cached);
    if (cached.calls == 0) /* more than a second since the last try on a slow machine */
        wait_for(loop, &cached);
    assert_int_equal(cached.calls, 1);
    assert_int_equal(cached.status, PG_OK);

    run_for(loop, 20);
    assert_int_equal(probes[0].calls + probes[1].calls, 2);
    pg_pool_destroy(pool);
    test_loop_free(loop);
}

static void test_message_one_line(void **state)
{
    (void)state;
    char out[256];
    pg_message_one_line("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
                        "\tIs the server running on that host and accepting TCP/IP connections?\n",
                        out, sizeof(out));
    assert_string_equal(out, "connection to server at \"127.0.0.1\", port 1 failed: Connection refused Is the "
                             "server running on that host and accepting TCP/IP connections?");
    char wide[256];
    pg_message_one_line("first line\n\tsecond  line\n", wide, sizeof(wide));
    assert_string_equal(wide, "first line second line");
    pg_message_one_line("  \n\t leading and trailing \n\n", wide, sizeof(wide));
    assert_string_equal(wide, "leading and trailing");
    pg_message_one_line("", wide, sizeof(wide));
    assert_string_equal(wide, "");
    pg_message_one_line("\n\t \n", wide, sizeof(wide));
    assert_string_equal(wide, "");
    char tiny[4];
    pg_message_one_line("abcdef", tiny, sizeof(tiny));
    assert_string_equal(tiny, "abc");
    pg_message_one_line("ab     cd", tiny, sizeof(tiny));
    assert_string_equal(tiny, "ab"); /* no trailing space where the cut falls */
}

/* --- LISTEN / NOTIFY --------------------------------------------------------------- */

static int exec_blocking(const char *sql);

#define CHANNEL "oms_unit_test_channel"

typedef struct notified {
    int calls;
    char channel[64];
} notified_t;

static void on_notify(void *data, const char *channel)
{
    notified_t *n = data;
    n->calls++;
    snprintf(n->channel, sizeof(n->channel), "%s", channel);
}

/* The backend pid of the session that LISTENs (its last statement), or 0. */
static int listening_pid(void)
{
    PGconn *conn = PQconnectdb(database_url);
    PGresult *result = PQexec(conn, "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN \"" CHANNEL "\"'"
                                    " AND state = 'idle'");
    int pid = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 ? atoi(PQgetvalue(result, 0, 0)) : 0;
    PQclear(result);
    PQfinish(conn);
    return pid;
}

static int wait_listening(h2o_evloop_t *loop, int not_pid)
{
    int pid = 0;
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (((pid = listening_pid()) == 0 || pid == not_pid) && loop_now_ms() < deadline)
        run_for(loop, 20);
    assert_int_not_equal(pid, 0);
    assert_int_not_equal(pid, not_pid);
    return pid;
}

static void wait_notified(h2o_evloop_t *loop, const notified_t *n, int calls)
{
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (n->calls < calls && loop_now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    run_for(loop, 50); /* a duplicate would show now */
    assert_int_equal(n->calls, calls);
}

/* Only the first connection listens (one call per NOTIFY however big the
 * pool), it listens again after it was cut off, and NOTIFYs sent at once
 * reach the listener as one call. */
static void test_the_first_connection_listens_and_listens_again_after_a_reconnect(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    pg_pool_config_t config = config_for(database_url, 2, TIMEOUT_MS, 16);
    pg_pool_t *pool = pg_pool_create(loop, &config);
    notified_t n = {0};
    assert_int_equal(pg_pool_listen(pool, CHANNEL, on_notify, &n), 0);
    int pid = wait_listening(loop, 0);
    warm_up(loop, pool); /* queries on the pool do not disturb the listener */
    notified_t late = {0};
    assert_int_equal(pg_pool_listen(pool, "oms_unit_test_late", on_notify, &late), -1); /* it would never LISTEN */

    assert_int_equal(exec_blocking("NOTIFY " CHANNEL), 0);
    wait_notified(loop, &n, 1);
    assert_string_equal(n.channel, CHANNEL);
    assert_int_equal(exec_blocking("NOTIFY other_channel"), 0);
    run_for(loop, 100);
    assert_int_equal(n.calls, 1);

    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
    PGconn *conn = PQconnectdb(database_url);
    PQclear(PQexec(conn, sql));
    PQfinish(conn);
    wait_listening(loop, pid);
    assert_int_equal(exec_blocking("NOTIFY " CHANNEL ", 'a'; NOTIFY " CHANNEL ", 'b'"), 0);
    wait_notified(loop, &n, 2);

    pg_pool_destroy(pool);
    test_loop_free(loop);
}

/* --- the test database ---------------------------------------------------------- */

static int exec_blocking(const char *sql)
{
    PGconn *conn = PQconnectdb(database_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "test_pg: cannot connect to OMS_TEST_DATABASE_URL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    PGresult *result = PQexec(conn, sql);
    int ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "test_pg: %s: %s", sql, PQresultErrorMessage(result));
    PQclear(result);
    PQfinish(conn);
    return ok ? 0 : -1;
}

static bool table_created;

static int create_table(void **state)
{
    (void)state;
    database_url = getenv("OMS_TEST_DATABASE_URL");
    if (database_url == NULL || database_url[0] == '\0') {
        fprintf(stderr, "test_pg: OMS_TEST_DATABASE_URL is not set: it must name a PostgreSQL superuser's "
                        "database (scripts/run-tests.sh unit starts one and sets it)\n");
        return -1;
    }
    if (exec_blocking("SET client_min_messages = warning; DROP TABLE IF EXISTS " TABLE "; CREATE TABLE " TABLE
                      " (id integer PRIMARY KEY)") != 0)
        return -1;
    table_created = true;
    return 0;
}

static int drop_table(void **state)
{
    (void)state;
    return table_created ? exec_blocking("DROP TABLE " TABLE) : 0; /* cmocka tears down after a failed setup too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_of_a_prepared_statement),
        cmocka_unit_test(test_an_unknown_statement_is_an_error_at_once),
        cmocka_unit_test(test_errors_carry_their_sqlstate),
        cmocka_unit_test(test_a_slow_query_times_out_and_the_pool_recovers),
        cmocka_unit_test(test_a_query_waiting_for_a_connection_times_out),
        cmocka_unit_test(test_a_refused_connection_fails_at_once),
        cmocka_unit_test(test_a_full_queue_refuses),
        cmocka_unit_test(test_destroy_answers_running_and_queued_queries_once),
        cmocka_unit_test(test_destroy_while_connecting),
        cmocka_unit_test(test_an_injected_delay_slows_every_query),
        cmocka_unit_test(test_the_probe_answers_ok_for_a_healthy_server),
        cmocka_unit_test(test_message_one_line),
        cmocka_unit_test(test_the_first_connection_listens_and_listens_again_after_a_reconnect),
    };
    return cmocka_run_group_tests_name("pg", tests, create_table, drop_table);
}
