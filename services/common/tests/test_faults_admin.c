/* Tests for faults_admin.c: GET and PUT /admin/faults through
 * http_dispatch with the admin credential, against the test Redis. A PUT
 * is checked whole before anything is written; what it writes is in
 * oms:faults (read back over a connection of the test's own) and in the
 * answering worker's snapshot at once. The tests use the fault names
 * "x.*" and remove them before and after each test. */
#include "test_support.h"

#include "faults_admin.h"

static const router_route_t routes[] = {
    {"GET", "/admin/faults", faults_admin_handle_get},
    {"PUT", "/admin/faults", faults_admin_handle_put},
};

/* Removes every field of oms:faults whose name starts with "x.". */
static void remove_test_faults(void)
{
    redisContext *redis = test_redis_connect();
    redisReply *names = test_redis_command(redis, "HKEYS %s", FAULTS_REDIS_KEY);
    for (size_t i = 0; i < names->elements; i++)
        if (names->element[i]->len >= 2 && memcmp(names->element[i]->str, "x.", 2) == 0)
            freeReplyObject(test_redis_command(redis, "HDEL %s %b", FAULTS_REDIS_KEY, names->element[i]->str,
                                               names->element[i]->len));
    freeReplyObject(names);
    redisFree(redis);
}

static int setup(void **state)
{
    remove_test_faults();
    test_fixture_t *f = test_fixture_new(routes, sizeof(routes) / sizeof(routes[0]));
    test_fixture_open_worker(f, "x", WORKER_REDIS, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    test_fixture_free(*state);
    remove_test_faults();
    return 0;
}

/* What oms:faults holds for `name`, in `out` ("" and false when absent). */
static bool stored(const char *name, char *out, size_t size)
{
    redisContext *redis = test_redis_connect();
    redisReply *value = test_redis_command(redis, "HGET %s %s", FAULTS_REDIS_KEY, name);
    bool found = value->type == REDIS_REPLY_STRING;
    snprintf(out, size, "%s", found ? value->str : "");
    freeReplyObject(value);
    redisFree(redis);
    return found;
}

static void assert_stored(const char *name, const char *expected)
{
    char value[64];
    if (!stored(name, value, sizeof(value)))
        fail_msg("%s is not in %s", name, FAULTS_REDIS_KEY);
    assert_string_equal(value, expected);
}

static void assert_not_stored(const char *name)
{
    char value[64];
    if (stored(name, value, sizeof(value)))
        fail_msg("%s is in %s (%s)", name, FAULTS_REDIS_KEY, value);
}

/* `method` /admin/faults with `authorization` (none when NULL) and a JSON
 * body (none when NULL); waits for the answer. */
static http_double_t *exchange(test_fixture_t *f, const char *method, const char *authorization, const char *body)
{
    http_double_t *d = test_request(f, method, "/admin/faults");
    if (authorization != NULL)
        http_double_header(d, "authorization", authorization);
    if (body != NULL) {
        http_double_header(d, "content-type", "application/json");
        http_double_body(d, body, strlen(body));
    }
    test_request_exchange(f, d);
    return d;
}

/* PUTs `body` as the admin; returns the status and the answer in *answer
 * (the flags when it is 200). */
static int put(test_fixture_t *f, const char *body, json_t **answer)
{
    http_double_t *d = exchange(f, "PUT", "Bearer " TEST_ADMIN_TOKEN, body);
    *answer = test_request_json(d);
    return d->status;
}

/* PUTs `body`, expecting 400 invalid_request naming `field` ("" for none). */
static void assert_put_refused(test_fixture_t *f, const char *body, const char *field)
{
    json_t *answer;
    int status = put(f, body, &answer);
    const json_t *error = json_object_get(answer, "error");
    if (status != 400 || strcmp(test_json_text(error, "code"), "invalid_request") != 0)
        fail_msg("PUT %s: expected 400 invalid_request, got %d", body, status);
    assert_string_equal(test_json_text(error, "field"), field);
}

static void test_put_stores_the_fault_and_the_worker_applies_it(void **state)
{
    test_fixture_t *f = *state;
    json_t *flags;
    assert_int_equal(put(f, "{\"x.latency_ms\": 5, \"x.error_rate\": 0.25, \"x.big\": 1e9}", &flags), 200);
    assert_int_equal(json_integer_value(json_object_get(flags, "x.latency_ms")), 5);
    assert_true(json_real_value(json_object_get(flags, "x.error_rate")) == 0.25);
    assert_int_equal(json_integer_value(json_object_get(flags, "x.big")), 1000000000);
    assert_stored("x.latency_ms", "5");
    assert_stored("x.error_rate", "0.25");
    assert_stored("x.big", "1000000000");
    /* the answering worker applied the snapshot at once */
    assert_true(worker_fault(&f->worker, "latency_ms") == 5);
    assert_true(faults_value(&f->worker.faults, "x.error_rate") == 0.25);

    http_double_t *d = exchange(f, "GET", "Bearer " TEST_ADMIN_TOKEN, NULL); /* and GET reads the same */
    assert_int_equal(d->status, 200);
    assert_int_equal(json_integer_value(json_object_get(test_request_json(d), "x.latency_ms")), 5);
}

static void test_zero_false_and_null_clear_a_fault(void **state)
{
    test_fixture_t *f = *state;
    json_t *flags;
    assert_int_equal(put(f, "{\"x.a\": 1, \"x.b\": true, \"x.c\": 2.5, \"x.kept\": 3}", &flags), 200);
    assert_stored("x.a", "1");
    assert_stored("x.b", "1");
    assert_stored("x.c", "2.5");
    assert_int_equal(put(f, "{\"x.a\": 0, \"x.b\": false, \"x.c\": null}", &flags), 200);
    const char *cleared[] = {"x.a", "x.b", "x.c"};
    for (size_t i = 0; i < 3; i++) {
        assert_not_stored(cleared[i]);
        assert_null(json_object_get(flags, cleared[i]));
        assert_true(faults_value(&f->worker.faults, cleared[i]) == 0);
    }
    assert_int_equal(json_integer_value(json_object_get(flags, "x.kept")), 3); /* a merge, not a replacement */
    assert_true(worker_fault(&f->worker, "kept") == 3);
}

static void test_an_invalid_entry_is_400_and_nothing_is_written(void **state)
{
    test_fixture_t *f = *state;
    const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"x.ok\": 1, \"X.bad\": 1}", "X.bad"},           {"{\"x.ok\": 1, \"x\": 1}", "x"},
        {"{\"x.ok\": 1, \"x.bad.name\": 1}", "x.bad.name"}, {"{\"x.ok\": 1, \"x.bad\": \"5\"}", "x.bad"},
        {"{\"x.ok\": 1, \"x.bad\": -1}", "x.bad"},          {"{\"x.ok\": 1, \"x.bad\": 1.5e9}", "x.bad"},
        {"{\"x.ok\": 1, \"x.bad\": [1]}", "x.bad"},         {"{\"x.ok\": 1, \"x.bad\": {\"v\": 1}}", "x.bad"},
        {"{\"x.bad\": -0.5, \"x.ok\": 1}", "x.bad"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_put_refused(f, cases[i].body, cases[i].field);
        assert_not_stored("x.ok");
        assert_true(worker_fault(&f->worker, "ok") == 0);
    }
}

/* {"x.f0": 1, ..., "x.f<count-1>": 1} */
static void many_faults(char *out, size_t size, int count)
{
    size_t len = (size_t)snprintf(out, size, "{");
    for (int i = 0; i < count; i++)
        len += (size_t)snprintf(out + len, size - len, "%s\"x.f%d\": 1", i > 0 ? ", " : "", i);
    snprintf(out + len, size - len, "}");
}

static void test_at_most_32_faults_per_request(void **state)
{
    test_fixture_t *f = *state;
    char body[2048];
    many_faults(body, sizeof(body), FAULTS_MAX + 1);
    assert_put_refused(f, body, "");
    assert_not_stored("x.f0");
    assert_not_stored("x.f32");

    json_t *flags;
    many_faults(body, sizeof(body), FAULTS_MAX);
    assert_int_equal(put(f, body, &flags), 200);
    assert_stored("x.f0", "1");
    assert_stored("x.f31", "1");
    assert_true(worker_fault(&f->worker, "f31") == 1);
}

static void test_the_admin_credential_is_required(void **state)
{
    test_fixture_t *f = *state;
    test_assert_error(exchange(f, "PUT", NULL, "{\"x.latency_ms\": 5}"), 401, "unauthorized");
    test_assert_error(exchange(f, "GET", "Bearer not-the-admin-token", NULL), 401, "invalid_token");
    assert_not_stored("x.latency_ms");
}

static void test_a_name_with_a_nul_inside_is_not_a_fault(void **state)
{
    test_fixture_t *f = *state;
    redisContext *redis = test_redis_connect();
    freeReplyObject(test_redis_command(redis, "HSET %s %b 250", FAULTS_REDIS_KEY, "x.latency_ms\0junk", (size_t)17));
    redisFree(redis);
    http_double_t *d = exchange(f, "GET", "Bearer " TEST_ADMIN_TOKEN, NULL);
    assert_int_equal(d->status, 200);
    json_t *flags = test_request_json(d);
    /* it would read as x.latency_ms, which PUT {"x.latency_ms": 0} cannot clear */
    assert_null(json_object_get(flags, "x.latency_ms"));
    assert_true(worker_fault(&f->worker, "latency_ms") == 0);
}

int main(void)
{
    log_init("test_faults_admin", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_stores_the_fault_and_the_worker_applies_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_false_and_null_clear_a_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_invalid_entry_is_400_and_nothing_is_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_at_most_32_faults_per_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_admin_credential_is_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_name_with_a_nul_inside_is_not_a_fault, setup, teardown),
    };
    return cmocka_run_group_tests_name("faults_admin", tests, NULL, NULL);
}
