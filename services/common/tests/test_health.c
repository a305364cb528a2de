/* Tests for health.c (with worker.c): /health/ready checks exactly the
 * resources the worker declared, against the test PostgreSQL and Redis,
 * and a worker opens nothing it did not declare. */
#include "test_support.h"

static const router_route_t routes[] = {
    {"GET", "/health/live", health_handle_live},
    {"GET", "/health/ready", health_handle_ready},
};

static int setup(void **state)
{
    *state = test_fixture_new(routes, sizeof(routes) / sizeof(routes[0]));
    return 0;
}

static int teardown(void **state)
{
    test_fixture_free(*state);
    return 0;
}

/* GET `path`: the answer's status, and its body (the request keeps it). */
static int get(test_fixture_t *f, const char *path, json_t **body)
{
    http_double_t *d = test_request(f, "GET", path);
    test_request_exchange(f, d);
    *body = test_request_json(d);
    return d->status;
}

/* The status of check `name` in the body's checks ("" when absent). */
static const char *check_status(const json_t *body, const char *name)
{
    return test_json_text(json_object_get(json_object_get(body, "checks"), name), "status");
}

static size_t check_count(const json_t *body)
{
    const json_t *checks = json_object_get(body, "checks");
    assert_true(json_is_object(checks));
    return json_object_size(checks);
}

static void test_postgres_only_checks_postgres(void **state)
{
    test_fixture_t *f = *state;
    test_fixture_open_worker(f, "test", WORKER_POSTGRES, true);
    json_t *body;
    assert_int_equal(get(f, "/health/ready", &body), 200);
    assert_string_equal(test_json_text(body, "status"), "ready");
    assert_int_equal(check_count(body), 1);
    assert_string_equal(check_status(body, "postgres"), "up");
}

static void test_postgres_and_redis_up_are_both_checked(void **state)
{
    test_fixture_t *f = *state;
    test_fixture_open_worker(f, "test", WORKER_POSTGRES | WORKER_REDIS, true);
    json_t *body;
    assert_int_equal(get(f, "/health/ready", &body), 200);
    assert_string_equal(test_json_text(body, "status"), "ready");
    assert_int_equal(check_count(body), 2);
    assert_string_equal(check_status(body, "postgres"), "up");
    assert_string_equal(check_status(body, "redis"), "up");
}

static void test_redis_declared_and_down_is_503(void **state)
{
    test_fixture_t *f = *state;
    test_fixture_open_worker(f, "test", WORKER_POSTGRES | WORKER_REDIS, false);
    json_t *body;
    assert_int_equal(get(f, "/health/ready", &body), 503);
    const json_t *error = json_object_get(body, "error");
    assert_string_equal(test_json_text(error, "code"), "dependency_unavailable");
    assert_string_equal(test_json_text(error, "message"), "redis is down");
    assert_int_equal(check_count(body), 2);
    assert_string_equal(check_status(body, "redis"), "down");
    assert_string_not_equal(test_json_text(json_object_get(json_object_get(body, "checks"), "redis"), "reason"), "");
    assert_string_equal(check_status(body, "postgres"), "up");
}

static void test_nothing_declared_is_ready_with_no_checks(void **state)
{
    test_fixture_t *f = *state;
    test_fixture_open_worker(f, "test", 0, true);
    json_t *body;
    assert_int_equal(get(f, "/health/ready", &body), 200);
    assert_string_equal(test_json_text(body, "status"), "ready");
    assert_int_equal(check_count(body), 0);
}

/* Readiness goes by the declaration, not by which clients exist: with a
 * Redis client open but only PostgreSQL declared (the settings changed
 * after opening, which worker_open alone never leaves), Redis is not asked. */
static void test_an_undeclared_resource_is_not_asked(void **state)
{
    test_fixture_t *f = *state;
    test_fixture_open_worker(f, "test", WORKER_POSTGRES | WORKER_REDIS, true);
    f->settings.resources = WORKER_POSTGRES;
    http_double_t *d = test_request(f, "GET", "/health/ready");
    http_dispatch(&f->server, &f->worker, &d->req);
    assert_int_equal(redis_client_pending(f->worker.redis), 0);
    test_run_until(f->worker.loop, d->responded);
    assert_int_equal(d->status, 200);
    assert_int_equal(check_count(test_request_json(d)), 1);
    assert_string_equal(check_status(test_request_json(d), "postgres"), "up");
}

static void test_live_is_200(void **state)
{
    test_fixture_t *f = *state;
    test_fixture_open_worker(f, "test", 0, true);
    json_t *body;
    assert_int_equal(get(f, "/health/live", &body), 200);
    assert_string_equal(test_json_text(body, "status"), "ok");
}

static void assert_no_connection(void *data)
{
    if (test_accept_one(*(int *)data))
        fail_msg("a worker that declared no Redis connected to its Redis address");
}

static void test_a_worker_without_redis_opens_no_redis_connection(void **state)
{
    test_fixture_t *f = *state;
    int port, listener = test_listening_socket(&port);
    f->settings = test_settings("test", WORKER_POSTGRES);
    f->settings.redis = test_redis_target(port); /* set, but not declared */
    test_worker_open(&f->worker, 0, &f->settings);
    assert_null(f->worker.redis);
    test_run_for(f->worker.loop, 500, assert_no_connection, &listener);
    json_t *body; /* readiness does not reach for it either */
    assert_int_equal(get(f, "/health/ready", &body), 200);
    assert_int_equal(check_count(body), 1);
    test_run_for(f->worker.loop, 100, assert_no_connection, &listener);
    test_fixture_close_worker(f);

    /* the same worker declaring Redis does connect there: the watch above
     * would have seen it */
    f->settings.resources |= WORKER_REDIS;
    test_worker_open(&f->worker, 0, &f->settings);
    assert_non_null(f->worker.redis);
    bool connected = false;
    test_run_until(f->worker.loop, (connected = test_accept_one(listener)));
    assert_true(connected);
    close(listener);
}

int main(void)
{
    log_init("test_health", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_postgres_only_checks_postgres, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postgres_and_redis_up_are_both_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_declared_and_down_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_declared_is_ready_with_no_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_undeclared_resource_is_not_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_is_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_worker_without_redis_opens_no_redis_connection, setup, teardown),
    };
    return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
