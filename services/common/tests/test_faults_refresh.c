/* Tests for faults_refresh.c against a real Redis: a worker's snapshot
 * follows oms:faults, every refresh is counted, and while Redis cannot
 * answer the last snapshot stays in force. */
#include "test_support.h"

#include "faults_refresh.h"

#define FIELD "refreshtest.latency_ms"

static redisContext *redis;

/* Writes the test's fault into oms:faults (NULL deletes it). */
static void write_fault(const char *value)
{
    if (value != NULL)
        freeReplyObject(test_redis_command(redis, "HSET %s %s %s", FAULTS_REDIS_KEY, FIELD, value));
    else
        freeReplyObject(test_redis_command(redis, "HDEL %s %s", FAULTS_REDIS_KEY, FIELD));
}

/* Runs the worker's loop until its snapshot has the fault at `ms`. */
static void expect_latency(worker_t *worker, double ms)
{
    test_run_until(worker->loop, worker_fault(worker, "latency_ms") == ms);
    assert_true(worker_fault(worker, "latency_ms") == ms);
}

static int setup(void **state)
{
    (void)state;
    redis = test_redis_connect();
    write_fault(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    write_fault(NULL);
    redisFree(redis);
    return 0;
}

static void test_the_snapshot_follows_redis(void **state)
{
    (void)state;
    worker_settings_t settings = test_settings("refreshtest", WORKER_REDIS);
    worker_t worker;
    test_worker_open(&worker, 0, &settings);
    write_fault("250");
    chore_t chore;
    faults_refresh_start(&chore, &worker);
    expect_latency(&worker, 250);
    /* changed, then cleared: each within a refresh or two */
    write_fault("7");
    expect_latency(&worker, 7);
    write_fault(NULL);
    expect_latency(&worker, 0);
    chore_stop(&chore);
    test_worker_close(&worker);
}

/* While Redis is away, every moment of the wait: the fault is still in force. */
static void check_still_in_force(void *data)
{
    assert_true(worker_fault(data, "latency_ms") == 250);
}

static void test_redis_down_keeps_the_last_snapshot(void **state)
{
    (void)state;
    worker_settings_t settings = test_settings("refreshtest", WORKER_REDIS);
    worker_t worker;
    test_worker_open(&worker, 0, &settings);
    write_fault("250");
    chore_t chore;
    faults_refresh_start(&chore, &worker);
    expect_latency(&worker, 250);
    chore_stop(&chore);
    /* the same worker, now pointed at a port where nothing answers */
    redis_client_destroy(worker.redis);
    int port;
    int refusing = test_refusing_port(&port);
    redis_target_t nowhere = test_redis_target(port);
    worker.redis = redis_client_create(worker.loop, &nowhere, 500);
    faults_refresh_start(&chore, &worker);
    test_run_for(worker.loop, 2500, check_still_in_force, &worker); /* two refreshes that fail */
    chore_stop(&chore);
    close(refusing);
    test_worker_close(&worker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_the_snapshot_follows_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_keeps_the_last_snapshot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
