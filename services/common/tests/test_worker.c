/* Tests for worker.c: a worker opens exactly the resources its service
 * declared, counts what is in flight, and applies fault snapshots (the
 * slow-database fault reaches its pool). */
#include "test_support.h"

static void test_nothing_declared_opens_nothing(void **state)
{
    (void)state;
    worker_settings_t settings = test_settings("svc", 0);
    worker_t worker;
    test_worker_open(&worker, 3, &settings);
    assert_int_equal(worker.index, 3);
    assert_null(worker.pg);
    assert_null(worker.redis);
    assert_non_null(worker.queue);
    assert_int_equal(worker_pending(&worker), 0);
    test_worker_close(&worker);
}

static void test_declared_resources_are_opened(void **state)
{
    (void)state;
    worker_settings_t settings = test_settings("svc", WORKER_POSTGRES | WORKER_REDIS);
    worker_t worker;
    test_worker_open(&worker, 0, &settings);
    assert_non_null(worker.pg);
    assert_non_null(worker.redis);
    test_run_until(worker.loop, pg_pool_is_up(worker.pg) && redis_client_is_up(worker.redis));
    assert_true(pg_pool_is_up(worker.pg));
    assert_true(redis_client_is_up(worker.redis));
    test_worker_close(&worker);
}

static int replies;
static uint64_t answered_ms;

static void on_reply(void *data, const pg_reply_t *reply)
{
    (void)data;
    assert_int_equal(reply->status, PG_OK);
    replies++;
    answered_ms = loop_now_ms();
}

static void set(faults_t *faults, const char *name, double value)
{
    snprintf(faults->items[faults->count].name, FAULTS_NAME_MAX, "%s", name);
    faults->items[faults->count++].value = value;
}

static void test_faults_apply_to_the_workers_own_resources(void **state)
{
    (void)state;
    worker_settings_t settings = test_settings("svc", WORKER_POSTGRES);
    worker_t worker;
    test_worker_open(&worker, 1, &settings);
    test_run_until(worker.loop, pg_pool_is_up(worker.pg));
    faults_t next = {0};
    set(&next, "svc.slow_db_ms", 300);
    set(&next, "other.latency_ms", 5);
    worker_apply_faults(&worker, &next);
    assert_true(worker_fault(&worker, "slow_db_ms") == 300);
    assert_true(worker_fault(&worker, "latency_ms") == 0); /* another service's */
    /* the slow-database fault: the query sleeps in PostgreSQL first */
    replies = 0;
    uint64_t sent = loop_now_ms();
    pg_query(worker.pg, HEALTH_PING_STATEMENT, NULL, on_reply, NULL);
    assert_int_equal(worker_pending(&worker), 1);
    test_run_until(worker.loop, replies == 1);
    assert_int_equal(replies, 1);
    assert_true(answered_ms - sent >= 300);
    /* cleared: the pool's delay goes with it */
    faults_t none = {0};
    worker_apply_faults(&worker, &none);
    assert_true(worker_fault(&worker, "slow_db_ms") == 0);
    test_worker_close(&worker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_declared_opens_nothing),
        cmocka_unit_test(test_declared_resources_are_opened),
        cmocka_unit_test(test_faults_apply_to_the_workers_own_resources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
