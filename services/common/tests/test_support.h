/* test_support.h - what the unit tests that run on a real loop share:
 * where the test servers are, a worker on a fresh loop, running the loop
 * until something has happened, a small unit of work of the test's own,
 * and reading what a request was answered.
 *
 * The servers come from the environment, as scripts/run-tests.sh exports
 * them: OMS_TEST_REDIS_PORT (Redis on 127.0.0.1, no password) and
 * OMS_TEST_DATABASE_URL (a libpq URL of database oms). A test that needs
 * one fails, saying so, when it is not set.
 *
 * Waiting is always "run the loop until a condition holds", bounded by
 * TEST_WAIT_MS so that a broken test ends instead of hanging; the bound is
 * never what a test asserts.
 *
 * Header-only: every function is static, for the one file that includes it.
 */
#ifndef OMS_TEST_SUPPORT_H
#define OMS_TEST_SUPPORT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4; included first, before any system header */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "context.h"
#include "health.h"
#include "http.h"
#include "http_double.h"
#include "worker.h"

/* The longest a test waits for anything (a generous bound for a slow,
 * shared machine under the sanitizers). */
#define TEST_WAIT_MS 20000

/* Runs `loop` until `condition` holds or TEST_WAIT_MS have passed; the
 * caller asserts the condition afterwards. */
#define test_run_until(loop, condition)                                                                                \
    do {                                                                                                               \
        uint64_t test_deadline_ = loop_now_ms() + TEST_WAIT_MS;                                                        \
        while (!(condition) && loop_now_ms() < test_deadline_)                                                         \
            h2o_evloop_run((loop), 10);                                                                                \
    } while (0)

/* Runs `loop` for `ms` milliseconds, calling `check(data)` after each turn
 * (for "this never happens" tests; the time is not what they assert). */
static inline void test_run_for(h2o_evloop_t *loop, uint64_t ms, void (*check)(void *data), void *data)
{
    uint64_t deadline = loop_now_ms() + ms;
    while (loop_now_ms() < deadline) {
        h2o_evloop_run(loop, 10);
        check(data);
    }
}

static inline void test_assert_contains(const char *text, const char *needle)
{
    if (text == NULL || strstr(text, needle) == NULL)
        fail_msg("expected to find:\n%s\nin:\n%s", needle, text != NULL ? text : "(nothing)");
}

/* --- the test servers ------------------------------------------------------- */

static inline const char *test_env(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0')
        fail_msg("%s is not set: run the unit tests with scripts/run-tests.sh unit, which starts PostgreSQL and "
                 "Redis and exports it (or start scripts/stack.sh yourself and export OMS_TEST_REDIS_PORT and "
                 "OMS_TEST_DATABASE_URL)",
                 name);
    return value;
}

static inline int test_redis_port(void)
{
    const char *text = test_env("OMS_TEST_REDIS_PORT");
    char *end;
    long port = strtol(text, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        fail_msg("OMS_TEST_REDIS_PORT is not a port: '%s'", text);
    return (int)port;
}

static inline redis_target_t test_redis_target(int port)
{
    redis_target_t target;
    memset(&target, 0, sizeof(target));
    snprintf(target.host, sizeof(target.host), "127.0.0.1");
    target.port = port;
    return target;
}

/* A socket bound to a loopback port that is never listened on: connecting
 * to *port is refused for as long as the socket stays open (close it). */
static inline int test_refusing_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(address);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &len), 0);
    *port = ntohs(address.sin_port);
    return fd;
}

/* A non-blocking socket listening on a loopback port (*port). */
static inline int test_listening_socket(int *port)
{
    int fd = test_refusing_port(port);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

/* Accepts one connection waiting on `listener` without blocking: true
 * when there was one (it is closed at once). */
static inline bool test_accept_one(int listener)
{
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail_msg("accept4: %s", strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

/* A blocking connection to the test Redis, for setting up and checking
 * what the code under test wrote. */
static inline redisContext *test_redis_connect(void)
{
    redisContext *redis = redisConnect("127.0.0.1", test_redis_port());
    if (redis == NULL || redis->err != 0)
        fail_msg("cannot connect to the test Redis on port %d: %s", test_redis_port(),
                 redis != NULL ? redis->errstr : "out of memory");
    return redis;
}

/* Runs a command on `redis`; the reply is the caller's (freeReplyObject). */
static inline redisReply *test_redis_command(redisContext *redis, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(redis, format, args);
    va_end(args);
    if (reply == NULL)
        fail_msg("redis command '%s' failed: %s", format, redis->errstr);
    if (reply->type == REDIS_REPLY_ERROR)
        fail_msg("redis refused '%s': %s", format, reply->str);
    return reply;
}

/* A name no other test run uses: "<prefix><pid>-<n>-<ns>". */
static inline void test_unique_id(char *out, size_t size, const char *prefix)
{
    static unsigned counter;
    snprintf(out, size, "%s%ld-%u-%llu", prefix, (long)getpid(), ++counter,
             (unsigned long long)(loop_now_ns() % 1000000000ULL));
}

/* --- a worker on its own loop ----------------------------------------------- */

/* Settings that declare `resources`, pointing at the test servers (read
 * only for what is declared). The statement /health/ready runs is
 * prepared on the pool, as server.c does. */
static inline worker_settings_t test_settings(const char *service, unsigned resources)
{
    static const pg_statement_t statements[] = {{HEALTH_PING_STATEMENT, "SELECT 1", 0}};
    worker_settings_t settings = {.service = service, .resources = resources, .redis_timeout_ms = 5000};
    if (resources & WORKER_POSTGRES)
        settings.pg = (pg_pool_config_t){.conninfo = test_env("OMS_TEST_DATABASE_URL"),
                                         .size = 1,
                                         .query_timeout_ms = 10000,
                                         .max_queue = 16,
                                         .statements = statements,
                                         .statement_count = 1};
    if (resources & WORKER_REDIS)
        settings.redis = test_redis_target(test_redis_port());
    return settings;
}

/* Opens `worker` as worker `index` on a new loop; `settings` must outlive it. */
static inline void test_worker_open(worker_t *worker, size_t index, const worker_settings_t *settings)
{
    assert_int_equal(worker_open(worker, index, h2o_evloop_create(), settings), 0);
}

/* Lets the work still alive on `worker` end, checks that it all did, and
 * closes the worker and its loop. */
static inline void test_worker_close(worker_t *worker)
{
    test_run_until(worker->loop, worker->busy == 0 && worker_pending(worker) == 0);
    assert_int_equal(worker->busy, 0);
    assert_int_equal(worker->active_requests, 0);
    h2o_evloop_t *loop = worker->loop;
    worker_close(worker);
    h2o_evloop_destroy(loop);
    memset(worker, 0, sizeof(*worker)); /* loop NULL: closed */
}

/* --- a unit of work of the test's own ----------------------------------------- */

typedef struct test_work {
    context_t super;
} test_work_t;

/* The unit of work cannot go on: the step that failed it has logged why;
 * this says it in the test's output too. */
static inline void test_work_fail(context_t *c, int status, const char *code, const char *message)
{
    (void)c;
    print_message("the unit of work failed: %d %s: %s\n", status, code, message);
}

static inline void test_work_release(context_t *c)
{
    free(c);
}

/* Starts a unit of work on `worker` with the owner's reference (drop it
 * with context_release). It is freed with its last reference, which
 * worker->busy tells, and points to nothing on the test's stack, so it may
 * outlive a test that failed. */
static inline test_work_t *test_work_start(worker_t *worker)
{
    static const context_ops_t ops = {test_work_fail, test_work_release};
    test_work_t *work = calloc(1, sizeof(*work));
    assert_non_null(work);
    context_init(&work->super, &ops, worker);
    return work;
}

/* --- a fixture: a worker, and a server on routes of the test's own ------------ */

#define TEST_ADMIN_TOKEN "unit-test-admin-token"
#define TEST_JWT_SECRET  "unit-test-secret-0123456789abcdef"

/* A request the fixture owns, so that one a failed assertion left behind
 * is still disposed of before the worker closes. */
typedef struct test_request {
    http_double_t d;
    bool disposed;
    json_t *json; /* the answer parsed, once asked for */
    struct test_request *next;
} test_request_t;

typedef struct test_fixture {
    worker_settings_t settings;
    worker_t worker;      /* worker.loop is NULL until test_fixture_open_worker */
    http_server_t server; /* answers the routes given to test_fixture_new */
    int refusing_fd;      /* -1, or the socket behind a Redis that is down */
    test_request_t *requests;
} test_fixture_t;

/* A fixture whose server routes `routes` (none when count is 0) and
 * accepts TEST_ADMIN_TOKEN and tokens signed with TEST_JWT_SECRET. */
static inline test_fixture_t *test_fixture_new(const router_route_t *routes, size_t count)
{
    test_fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    char error[128] = "";
    router_t *router = count > 0 ? router_create(routes, count, error, sizeof(error)) : NULL;
    if (count > 0 && router == NULL)
        fail_msg("the test's routes are malformed: %s", error);
    f->server = (http_server_t){
        .router = router, .service = "test", .admin_token = TEST_ADMIN_TOKEN, .jwt_secret = TEST_JWT_SECRET};
    f->refusing_fd = -1;
    return f;
}

/* Opens the fixture's worker for `service` declaring `resources`, with
 * Redis up (the test Redis) or down (a loopback port that refuses), and
 * waits for what is up to connect. */
static inline void test_fixture_open_worker(test_fixture_t *f, const char *service, unsigned resources, bool redis_up)
{
    f->settings = test_settings(service, redis_up ? resources : resources & ~(unsigned)WORKER_REDIS);
    f->settings.resources = resources;
    /* the server's key: what the worker mints its service tokens with */
    f->settings.jwt_secret = TEST_JWT_SECRET;
    if (!redis_up) { /* declared, at an address that refuses */
        int port;
        f->refusing_fd = test_refusing_port(&port);
        f->settings.redis = test_redis_target(port);
    }
    test_worker_open(&f->worker, 0, &f->settings);
    if (f->worker.pg != NULL) {
        test_run_until(f->worker.loop, pg_pool_is_up(f->worker.pg));
        if (!pg_pool_is_up(f->worker.pg))
            fail_msg("PostgreSQL (OMS_TEST_DATABASE_URL) did not accept the pool: %s",
                     pg_pool_last_error(f->worker.pg));
    }
    if (redis_up && f->worker.redis != NULL) {
        test_run_until(f->worker.loop, redis_client_is_up(f->worker.redis));
        if (!redis_client_is_up(f->worker.redis))
            fail_msg("Redis on 127.0.0.1:%d (OMS_TEST_REDIS_PORT) did not accept the client", f->settings.redis.port);
    }
}

/* Starts a request `method target` from 127.0.0.1 (http_double.h); it
 * stays readable until test_fixture_free. */
static inline http_double_t *test_request(test_fixture_t *f, const char *method, const char *target)
{
    test_request_t *request = calloc(1, sizeof(*request));
    assert_non_null(request);
    http_double_init(&request->d, method, target, "127.0.0.1");
    request->next = f->requests;
    f->requests = request;
    return &request->d;
}

/* h2o is done with `d`: answered, or the client has gone. */
static inline void test_request_dispose(http_double_t *d)
{
    test_request_t *request = H2O_STRUCT_FROM_MEMBER(test_request_t, d, d);
    if (!request->disposed)
        http_double_dispose(d);
    request->disposed = true;
}

/* Dispatches `d` on the fixture's worker and runs the loop until it is
 * answered. */
static inline void test_request_exchange(test_fixture_t *f, http_double_t *d)
{
    http_dispatch(&f->server, &f->worker, &d->req);
    test_run_until(f->worker.loop, d->responded);
    if (!d->responded)
        fail_msg("%.*s %.*s got no answer", (int)d->req.method.len, d->req.method.base, (int)d->req.path.len,
                 d->req.path.base);
}

/* The answer's body parsed as JSON (the request keeps the reference). */
static inline json_t *test_request_json(http_double_t *d)
{
    test_request_t *request = H2O_STRUCT_FROM_MEMBER(test_request_t, d, d);
    json_error_t error;
    if (request->json == NULL && d->body != NULL)
        request->json = json_loadb(d->body, d->body_len, 0, &error);
    if (request->json == NULL)
        fail_msg("the answer is not JSON: %s", d->body != NULL ? d->body : "(no body)");
    return request->json;
}

/* A string member of `object` ("" when absent or not a string). */
static inline const char *test_json_text(const json_t *object, const char *name)
{
    const char *text = json_string_value(json_object_get(object, name));
    return text != NULL ? text : "";
}

/* Asserts that `d` was answered `status` with DESIGN's error `code`. */
static inline void test_assert_error(http_double_t *d, int status, const char *code)
{
    if (d->status != status)
        fail_msg("expected %d %s, got %d: %s", status, code, d->status, d->body != NULL ? d->body : "");
    assert_string_equal(test_json_text(json_object_get(test_request_json(d), "error"), "code"), code);
}

/* Disposes of the requests not disposed of yet and closes the worker if
 * open, checking that no work was left behind. */
static inline void test_fixture_close_worker(test_fixture_t *f)
{
    for (test_request_t *request = f->requests; request != NULL; request = request->next)
        test_request_dispose(&request->d);
    if (f->worker.loop != NULL)
        test_worker_close(&f->worker);
}

/* Closes the worker, then frees the requests and the fixture. */
static inline void test_fixture_free(test_fixture_t *f)
{
    test_fixture_close_worker(f);
    while (f->requests != NULL) {
        test_request_t *request = f->requests;
        f->requests = request->next;
        json_decref(request->json);
        free(request);
    }
    router_free((router_t *)f->server.router);
    if (f->refusing_fd >= 0)
        close(f->refusing_fd);
    free(f);
}

#endif
