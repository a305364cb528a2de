/* Tests for redis.c: REDIS_URL parsing, then against a real Redis the
 * command round trip, error replies, SELECT and AUTH from the URL, and
 * against local sockets a refused connection (commands fail at once), a
 * server that never answers (the command times out and the client
 * reconnects) and redis_client_destroy failing what is pending. Every
 * callback is checked to run exactly once.
 *
 * OMS_TEST_REDIS_PORT is the port of a Redis on 127.0.0.1 without a
 * password (scripts/run-tests.sh starts one and sets it). The tests use
 * keys under oms-unit-test: in databases 0 and 3 and delete them, and one
 * ACL user, oms-unit-test, which they delete too. */
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

#include "redis.h"
#include "test_loop.h"

/* Bounds for waiting on the loop, not expectations: a command here takes
 * well under a millisecond, but the machine is small and shared. */
#define WAIT_BOUND_MS 15000
#define TIMEOUT_MS    5000
#define KEY           "oms-unit-test:key"
#define ACL_USER      "oms-unit-test"

static int redis_port;

/* What one command's callback saw, copied out of the reply (hiredis frees
 * it after the callback). */
typedef struct answer {
    int calls;
    bool replied; /* reply != NULL */
    int type;
    long long integer;
    char str[128];
    size_t len;
    char error[64];
    uint64_t answered_ms;
} answer_t;

static void on_answer(void *data, const redisReply *reply, const char *error)
{
    answer_t *a = data;
    a->calls++;
    a->answered_ms = loop_now_ms();
    a->replied = reply != NULL;
    if (reply == NULL) {
        assert_non_null(error);
        snprintf(a->error, sizeof(a->error), "%s", error);
        return;
    }
    assert_null(error);
    a->type = reply->type;
    a->integer = reply->integer;
    if (reply->str != NULL) {
        assert_true(reply->len < sizeof(a->str));
        memcpy(a->str, reply->str, reply->len);
        a->len = reply->len;
    }
}

/* Sends a command of NUL-terminated arguments. */
static void command(redis_client_t *client, answer_t *a, int argc, const char **argv)
{
    memset(a, 0, sizeof(*a));
    redis_command_argv(client, on_answer, a, argc, argv, NULL);
}

/* COMMAND(client, &answer, "SET", key, value): command() with the arguments counted. */
#define COMMAND(client, answer, ...)                                                                                   \
    command(client, answer, sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *), (const char *[]){__VA_ARGS__})

/* --- the loop, and servers that do not behave ------------------------------------ */

static void run_for(h2o_evloop_t *loop, uint64_t ms)
{
    uint64_t end = loop_now_ms() + ms;
    while (loop_now_ms() < end)
        h2o_evloop_run(loop, 10);
}

static void wait_for(h2o_evloop_t *loop, const answer_t *a)
{
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (a->calls == 0 && loop_now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    assert_int_equal(a->calls, 1);
}

static void wait_until_up(h2o_evloop_t *loop, const redis_client_t *client)
{
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (!redis_client_is_up(client) && loop_now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    assert_true(redis_client_is_up(client));
}

/* A loopback socket bound to a free port; it refuses connections until it
 * listens. */
static int bound_socket(int *port)
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

/* A server that accepts connections and never answers. */
typedef struct silent_server {
    h2o_socket_t *listener;
    int port;
    size_t accepted;
    h2o_socket_t *connections[16];
} silent_server_t;

static void on_accept(h2o_socket_t *listener, const char *err)
{
    silent_server_t *server = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL) {
        if (server->accepted < sizeof(server->connections) / sizeof(server->connections[0]))
            server->connections[server->accepted] = sock;
        else
            h2o_socket_close(sock);
        server->accepted++;
    }
}

static void silent_server_start(h2o_evloop_t *loop, silent_server_t *server)
{
    memset(server, 0, sizeof(*server));
    int fd = bound_socket(&server->port);
    assert_int_equal(listen(fd, 16), 0);
    server->listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    server->listener->data = server;
    h2o_socket_read_start(server->listener, on_accept);
}

/* Runs the loop until the server has accepted `count` connections. */
static void wait_until_accepted(h2o_evloop_t *loop, const silent_server_t *server, size_t count)
{
    uint64_t deadline = loop_now_ms() + WAIT_BOUND_MS;
    while (server->accepted < count && loop_now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    assert_int_equal(server->accepted, count);
}

static void silent_server_stop(silent_server_t *server)
{
    size_t kept = server->accepted < 16 ? server->accepted : 16;
    for (size_t i = 0; i < kept; i++)
        h2o_socket_close(server->connections[i]);
    h2o_socket_read_stop(server->listener);
    h2o_socket_close(server->listener);
}

static redis_client_t *client_for(h2o_evloop_t *loop, const char *url, uint64_t timeout_ms)
{
    redis_target_t target;
    char error[128];
    if (redis_parse_url(url, &target, error, sizeof(error)) != 0)
        fail_msg("%s: %s", url, error);
    redis_client_t *client = redis_client_create(loop, &target, timeout_ms);
    assert_non_null(client);
    return client;
}

static redis_client_t *test_client(h2o_evloop_t *loop, int database)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/%d", redis_port, database);
    return client_for(loop, url, TIMEOUT_MS);
}

/* --- redis_parse_url ------------------------------------------------------------- */

static void test_parse_valid_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *username, *password;
        int port, database;
    } cases[] = {
        {"redis://127.0.0.1", "127.0.0.1", "", "", 6379, 0},
        {"redis://localhost:6380/3", "localhost", "", "", 6380, 3},
        {"redis://redis_cache-1.lab/15", "redis_cache-1.lab", "", "", 6379, 15},
        {"redis://host:/", "host", "", "", 6379, 0}, /* an empty port and db mean the defaults */
        {"redis://:secret@host/1", "host", "", "secret", 6379, 1},
        {"redis://user@host", "host", "user", "", 6379, 0},
        {"redis://app:p%40ss%3Aw%2Frd@host:7000/2", "host", "app", "p@ss:w/rd", 7000, 2},
        {"redis://us%65r:pa@ss@host", "host", "user", "pa@ss", 6379, 0}, /* userinfo ends at the last '@' */
        {"redis://a:b:c@host", "host", "a", "b:c", 6379, 0},             /* and the user at its first ':' */
        {"redis://@host", "host", "", "", 6379, 0},
        {"redis://h%6Fst:65535/01", "host", "", "", 65535, 1},
        {"redis://[::1]", "::1", "", "", 6379, 0},
        {"redis://[::1]:6390/4", "::1", "", "", 6390, 4},
        {"redis://u:p@[2001:db8::7]:1", "2001:db8::7", "u", "p", 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redis_target_t target;
        char error[128] = "";
        if (redis_parse_url(cases[i].url, &target, error, sizeof(error)) != 0)
            fail_msg("%s: %s", cases[i].url, error);
        assert_string_equal(target.host, cases[i].host);
        assert_string_equal(target.username, cases[i].username);
        assert_string_equal(target.password, cases[i].password);
        assert_int_equal(target.port, cases[i].port);
        assert_int_equal(target.database, cases[i].database);
    }
}

static void test_parse_invalid_urls(void **state)
{
    (void)state;
    char long_host[300], long_password[300];
    memset(long_host, 'h', sizeof(long_host));
    memcpy(long_host, "redis://", 8);
    long_host[sizeof(long_host) - 1] = '\0';
    snprintf(long_password, sizeof(long_password), "redis://:%0270d@host", 0);
    const struct {
        const char *url, *reason; /* a word the error must contain */
    } cases[] = {
        {"http://host", "redis://"},
        {"rediss://host", "redis://"},
        {"redis://", "host"},
        {"redis://:pw@", "host"},
        {"redis://ho st", "host"},
        {"redis://host%zz", "host"},
        {"redis://ho%2Fst", "host"}, /* a decoded '/' is no host character */
        {long_host, "host"},
        {"redis://::1", "host"}, /* IPv6 needs brackets */
        {"redis://[::1", "IPv6"},
        {"redis://[not-an-address]", "IPv6"},
        {"redis://[]", "IPv6"},
        {"redis://[::1]x", "after the host"},
        {"redis://a%00b@host", "user name"}, /* a decoded NUL */
        {"redis://us%4@host", "user name"},  /* a short escape */
        {"redis://:p%4@host", "user name"},
        {long_password, "user name"},
        {"redis://host:0", "port"},
        {"redis://host:65536", "port"},
        {"redis://host:-1", "port"},
        {"redis://host:+1", "port"},
        {"redis://host:63a", "port"},
        {"redis://host:6379:1", "port"},
        {"redis://host:00000006379", "port"},
        {"redis://host/16", "database"},
        {"redis://host/-1", "database"},
        {"redis://host/+1", "database"},
        {"redis://host/x", "database"},
        {"redis://host/1/2", "database"},
        {"redis://host?db=1", "query"},
        {"redis://host/1#x", "database"},
        {"redis://host#x", "query"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redis_target_t target;
        char error[128] = "";
        if (redis_parse_url(cases[i].url, &target, error, sizeof(error)) != -1)
            fail_msg("%s was accepted", cases[i].url);
        if (strstr(error, cases[i].reason) == NULL)
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].url, error, cases[i].reason);
    }
}

/* --- commands against the test Redis ------------------------------------------- */

static void test_commands_round_trip_binary_safe(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    redis_client_t *client = test_client(loop, 0);
    wait_until_up(loop, client);

    static const char value[] = "a\0b\r\nc\xff"; /* NUL, CRLF and a non-UTF-8 byte */
    const char *set[] = {"SET", KEY, value};
    const size_t set_len[] = {3, strlen(KEY), sizeof(value) - 1};
    answer_t a;
    memset(&a, 0, sizeof(a));
    redis_command_argv(client, on_answer, &a, 3, set, set_len);
    assert_int_equal(redis_client_pending(client), 1);
    wait_for(loop, &a);
    assert_true(a.replied);
    assert_int_equal(a.type, REDIS_REPLY_STATUS);
    assert_string_equal(a.str, "OK");

    COMMAND(client, &a, "GET", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_STRING);
    assert_int_equal(a.len, sizeof(value) - 1);
    assert_memory_equal(a.str, value, sizeof(value) - 1);

    COMMAND(client, &a, "del", KEY); /* any case */
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_INTEGER);
    assert_int_equal(a.integer, 1);
    COMMAND(client, &a, "GET", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_NIL);

    /* Pipelined: every command waits on the one connection, answers in order. */
    enum { N = 50 };
    static answer_t counts[N];
    for (int i = 0; i < N; i++)
        COMMAND(client, &counts[i], "INCR", KEY);
    assert_int_equal(redis_client_pending(client), N);
    wait_for(loop, &counts[N - 1]);
    for (int i = 0; i < N; i++) {
        assert_int_equal(counts[i].calls, 1);
        assert_int_equal(counts[i].type, REDIS_REPLY_INTEGER);
        assert_int_equal(counts[i].integer, i + 1);
    }
    assert_int_equal(redis_client_pending(client), 0);

    /* Without a callback the command still runs. */
    const char *forget[] = {"DEL", KEY};
    redis_command_argv(client, NULL, NULL, 2, forget, NULL);
    COMMAND(client, &a, "EXISTS", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.integer, 0);

    redis_client_destroy(client);
    run_for(loop, 20);
    assert_int_equal(a.calls, 1);
    test_loop_free(loop);
}

static void test_an_error_reply_is_a_reply(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    redis_client_t *client = test_client(loop, 0);
    wait_until_up(loop, client);

    answer_t a;
    COMMAND(client, &a, "SET", KEY, "not a number");
    wait_for(loop, &a);
    COMMAND(client, &a, "INCR", KEY);
    wait_for(loop, &a);
    assert_true(a.replied);
    assert_int_equal(a.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(a.str, "not an integer"));
    COMMAND(client, &a, "NO-SUCH-COMMAND");
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(a.str, "unknown command"));

    /* An error reply is an answer like any other: the connection goes on. */
    assert_true(redis_client_is_up(client));
    COMMAND(client, &a, "DEL", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.integer, 1);
    redis_client_destroy(client);
    test_loop_free(loop);
}

static void test_the_database_of_the_url_is_selected(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    redis_client_t *db3 = test_client(loop, 3), *db0 = test_client(loop, 0);
    wait_until_up(loop, db3);
    wait_until_up(loop, db0);

    answer_t a;
    COMMAND(db3, &a, "SET", KEY, "in three");
    wait_for(loop, &a);
    assert_string_equal(a.str, "OK");
    COMMAND(db0, &a, "GET", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_NIL);

    redis_client_t *other3 = test_client(loop, 3);
    wait_until_up(loop, other3);
    COMMAND(other3, &a, "GET", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_STRING);
    assert_string_equal(a.str, "in three");

    COMMAND(db3, &a, "DEL", KEY);
    wait_for(loop, &a);
    assert_int_equal(a.integer, 1);
    redis_client_destroy(other3);
    redis_client_destroy(db0);
    redis_client_destroy(db3);
    test_loop_free(loop);
}

/* Runs one command on a fresh client to the test Redis, for ACL set-up. */
static void admin_command(h2o_evloop_t *loop, answer_t *a, int argc, const char **argv)
{
    redis_client_t *admin = test_client(loop, 0);
    wait_until_up(loop, admin);
    command(admin, a, argc, argv);
    wait_for(loop, a);
    redis_client_destroy(admin);
}

static void test_auth_from_the_url(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    answer_t a;
    /* A user who may touch only keys under oms-unit-test:, password "p@ss:word". */
    const char *create[] = {"ACL", "SETUSER", ACL_USER, "reset", "on", ">p@ss:word", "~oms-unit-test:*", "+@all"};
    admin_command(loop, &a, 8, create);
    assert_string_equal(a.str, "OK");

    char url[128];
    snprintf(url, sizeof(url), "redis://" ACL_USER ":p%%40ss%%3Aword@127.0.0.1:%d/0", redis_port);
    redis_client_t *client = client_for(loop, url, TIMEOUT_MS);
    wait_until_up(loop, client);
    COMMAND(client, &a, "SET", KEY, "mine");
    wait_for(loop, &a);
    assert_string_equal(a.str, "OK");
    COMMAND(client, &a, "GET", "another-key");
    wait_for(loop, &a);
    assert_int_equal(a.type, REDIS_REPLY_ERROR); /* so the commands run as the ACL user */
    assert_non_null(strstr(a.str, "NOPERM"));
    COMMAND(client, &a, "DEL", KEY);
    wait_for(loop, &a);
    redis_client_destroy(client);

    /* A wrong password, and a password where the server wants none: redis.c
     * logs the refused AUTH and keeps the connection, so the commands run
     * as the default user. They are answered, not left to time out. */
    const char *wrong_urls[] = {"redis://" ACL_USER ":wrong@127.0.0.1:%d/0", "redis://:no-password-here@127.0.0.1:%d"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), wrong_urls[i], redis_port);
        client = client_for(loop, url, TIMEOUT_MS);
        wait_until_up(loop, client);
        uint64_t sent = loop_now_ms();
        COMMAND(client, &a, "PING");
        wait_for(loop, &a);
        assert_true(a.replied);
        assert_string_equal(a.str, "PONG");
        assert_true(a.answered_ms - sent < TIMEOUT_MS);
        redis_client_destroy(client);
    }

    const char *drop[] = {"ACL", "DELUSER", ACL_USER};
    admin_command(loop, &a, 3, drop);
    assert_int_equal(a.integer, 1);
    test_loop_free(loop);
}

/* --- servers that refuse or say nothing ----------------------------------------- */

static void test_a_refused_connection_fails_commands_at_once(void **state)
{
    (void)state;
    int port;
    int blocker = bound_socket(&port); /* bound, not listening: connections are refused */
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    h2o_evloop_t *loop = test_loop_new();
    redis_client_t *client = client_for(loop, url, TIMEOUT_MS);

    answer_t a;
    COMMAND(client, &a, "PING");
    assert_int_equal(a.calls, 1); /* before redis_command_argv returned */
    assert_false(a.replied);
    assert_string_equal(a.error, "unavailable");

    run_for(loop, 300); /* a few connection attempts, all refused */
    assert_false(redis_client_is_up(client));
    COMMAND(client, &a, "PING");
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.error, "unavailable");
    assert_int_equal(redis_client_pending(client), 0);

    redis_client_destroy(client);
    run_for(loop, 20);
    assert_int_equal(a.calls, 1);
    test_loop_free(loop);
    close(blocker);
}

static void test_an_unanswered_command_times_out_and_the_client_reconnects(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    silent_server_t server;
    silent_server_start(loop, &server);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", server.port);
    redis_client_t *client = client_for(loop, url, 200);
    wait_until_up(loop, client);
    wait_until_accepted(loop, &server, 1);

    answer_t first, second;
    uint64_t sent = loop_now_ms();
    COMMAND(client, &first, "GET", KEY);
    run_for(loop, 20); /* so that the second one's deadline is later */
    COMMAND(client, &second, "GET", KEY);
    assert_int_equal(redis_client_pending(client), 2);
    wait_for(loop, &first);
    assert_false(first.replied);
    assert_string_equal(first.error, "timeout");
    assert_true(first.answered_ms - sent >= 200); /* not before the timeout */
    /* The connection is dropped, and what waited behind fails with it. */
    assert_int_equal(second.calls, 1);
    assert_false(second.replied);
    assert_string_equal(second.error, "connection lost");
    assert_int_equal(redis_client_pending(client), 0);
    assert_false(redis_client_is_up(client));

    /* It reconnects by itself. */
    wait_until_up(loop, client);
    wait_until_accepted(loop, &server, 2);

    run_for(loop, 20);
    assert_int_equal(first.calls + second.calls, 2);
    redis_client_destroy(client);
    silent_server_stop(&server);
    test_loop_free(loop);
}

static void test_destroy_fails_pending_commands_once(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    silent_server_t server;
    silent_server_start(loop, &server);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", server.port);
    redis_client_t *client = client_for(loop, url, TIMEOUT_MS);
    wait_until_up(loop, client);

    answer_t pending[3];
    for (int i = 0; i < 3; i++)
        COMMAND(client, &pending[i], "GET", KEY);
    assert_int_equal(redis_client_pending(client), 3);
    run_for(loop, 20); /* the commands leave */
    redis_client_destroy(client);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pending[i].calls, 1);
        assert_false(pending[i].replied);
        assert_string_equal(pending[i].error, "shutting down"); /* as redis.h promises */
    }
    run_for(loop, 50); /* no timer of the client is left to fire */
    assert_int_equal(pending[0].calls + pending[1].calls + pending[2].calls, 3);
    silent_server_stop(&server);
    test_loop_free(loop);
}

static void test_destroy_while_connecting(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    redis_client_t *client = test_client(loop, 0);
    h2o_evloop_run(loop, 0); /* the connection starts */
    redis_client_destroy(client);
    run_for(loop, 50);
    test_loop_free(loop);
}

static int read_environment(void **state)
{
    (void)state;
    const char *port = getenv("OMS_TEST_REDIS_PORT");
    if (port == NULL || port[0] == '\0' || (redis_port = atoi(port)) <= 0 || redis_port > 65535) {
        fprintf(stderr,
                "test_redis: OMS_TEST_REDIS_PORT is %s: it must be the port of a Redis on 127.0.0.1 "
                "without a password (scripts/run-tests.sh unit starts one and sets it)\n",
                port == NULL ? "not set" : "not a port");
        return -1;
    }
    /* Fails now, with the reason, rather than test by test after a wait. */
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, (struct timeval){.tv_sec = 5});
    redisReply *reply = c != NULL && c->err == 0 ? redisCommand(c, "PING") : NULL;
    int ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
    if (!ok)
        fprintf(stderr, "test_redis: no Redis answers on 127.0.0.1:%d (OMS_TEST_REDIS_PORT): %s\n", redis_port,
                c == NULL       ? "out of memory"
                : c->err != 0   ? c->errstr
                : reply != NULL ? reply->str
                                : "no reply");
    freeReplyObject(reply);
    redisFree(c);
    return ok ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid_urls),
        cmocka_unit_test(test_parse_invalid_urls),
        cmocka_unit_test(test_commands_round_trip_binary_safe),
        cmocka_unit_test(test_an_error_reply_is_a_reply),
        cmocka_unit_test(test_the_database_of_the_url_is_selected),
        cmocka_unit_test(test_auth_from_the_url),
        cmocka_unit_test(test_a_refused_connection_fails_commands_at_once),
        cmocka_unit_test(test_an_unanswered_command_times_out_and_the_client_reconnects),
        cmocka_unit_test(test_destroy_fails_pending_commands_once),
        cmocka_unit_test(test_destroy_while_connecting),
    };
    return cmocka_run_group_tests_name("redis", tests, read_environment, NULL);
}
