/* Tests for cache.c: cache-aside reads and writes against the test Redis,
 * for a unit of work of the test's own. A lookup is counted whatever
 * happens; its next step runs with the document, with NULL on a miss or
 * when the cache is skipped, and never for a cancelled unit of work. */
#include "test_support.h"

#include "cache.h"

/* What the callbacks were told, at file scope: the count callback has no
 * data pointer, and a lookup may outlive a failed test's frame. */
static struct {
    int counts;
    char last_count[16];
    int calls; /* of the next step */
    bool was_null;
    char value[64];
    size_t len;
} seen;

static void count_result(const char *result)
{
    seen.counts++;
    snprintf(seen.last_count, sizeof(seen.last_count), "%s", result);
}

static void on_found(void *data, const char *value, size_t len)
{
    (void)data;
    seen.calls++;
    seen.was_null = value == NULL;
    assert_true(len < sizeof(seen.value));
    if (value != NULL)
        memcpy(seen.value, value, len);
    seen.len = len;
}

static int open_fixture(void **state, bool redis_up)
{
    test_fixture_t *f = test_fixture_new(NULL, 0);
    test_fixture_open_worker(f, "test", WORKER_REDIS, redis_up);
    memset(&seen, 0, sizeof(seen));
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return open_fixture(state, true);
}

static int setup_redis_down(void **state)
{
    return open_fixture(state, false);
}

static int teardown(void **state)
{
    test_fixture_free(*state);
    return 0;
}

/* Looks `key` up for a new unit of work and waits until the next step has
 * run and the unit of work is freed. */
static void lookup(test_fixture_t *f, const char *key, bool bypass)
{
    test_work_t *work = test_work_start(&f->worker);
    cache_get(&work->super, key, bypass, count_result, on_found, NULL);
    context_release(&work->super);
    test_run_until(f->worker.loop, seen.calls > 0 && f->worker.busy == 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(f->worker.busy, 0);
}

static void unique_key(char *key, size_t size)
{
    test_unique_id(key, size, "oms:test:cache:");
}

static void forget(const char *key)
{
    redisContext *redis = test_redis_connect();
    freeReplyObject(test_redis_command(redis, "DEL %s", key));
    redisFree(redis);
}

static void test_a_stored_document_is_a_hit(void **state)
{
    test_fixture_t *f = *state;
    char key[96];
    unique_key(key, sizeof(key));
    cache_put(&f->worker, key, "{\"sku\":\"A-1\"}", 13, 60);
    lookup(f, key, false);
    assert_string_equal(seen.last_count, "hit");
    assert_int_equal(seen.counts, 1);
    assert_false(seen.was_null);
    assert_int_equal(seen.len, 13);
    assert_memory_equal(seen.value, "{\"sku\":\"A-1\"}", 13);

    /* stored with the TTL asked for */
    redisContext *redis = test_redis_connect();
    redisReply *ttl = test_redis_command(redis, "TTL %s", key);
    assert_in_range(ttl->integer, 1, 60);
    freeReplyObject(ttl);
    redisFree(redis);
    forget(key);
}

static void test_an_unknown_key_is_a_miss(void **state)
{
    test_fixture_t *f = *state;
    char key[96];
    unique_key(key, sizeof(key));
    lookup(f, key, false);
    assert_string_equal(seen.last_count, "miss");
    assert_int_equal(seen.counts, 1);
    assert_true(seen.was_null);
    assert_int_equal(seen.len, 0);
}

static void test_bypass_sends_nothing(void **state)
{
    test_fixture_t *f = *state;
    char key[96];
    unique_key(key, sizeof(key));
    cache_put(&f->worker, key, "cached", 6, 60);
    test_run_until(f->worker.loop, worker_pending(&f->worker) == 0);

    test_work_t *work = test_work_start(&f->worker);
    cache_get(&work->super, key, true, count_result, on_found, NULL);
    size_t sent = redis_client_pending(f->worker.redis);
    context_release(&work->super);
    /* answered at once, without a command */
    assert_int_equal(sent, 0);
    assert_int_equal(seen.calls, 1);
    assert_true(seen.was_null);
    assert_string_equal(seen.last_count, "bypass");
    assert_int_equal(seen.counts, 1);
    assert_int_equal(f->worker.busy, 0);
    forget(key);
}

static void test_redis_down_is_a_bypass(void **state)
{
    test_fixture_t *f = *state;
    cache_put(&f->worker, "oms:test:cache:down", "x", 1, 60); /* nothing happens */
    lookup(f, "oms:test:cache:down", false);
    assert_string_equal(seen.last_count, "bypass");
    assert_int_equal(seen.counts, 1);
    assert_true(seen.was_null);
}

static void test_a_cancelled_lookup_is_counted_but_goes_no_further(void **state)
{
    test_fixture_t *f = *state;
    char key[96];
    unique_key(key, sizeof(key));
    cache_put(&f->worker, key, "cached", 6, 60);

    test_work_t *work = test_work_start(&f->worker);
    cache_get(&work->super, key, false, count_result, on_found, NULL);
    context_cancel(&work->super);
    context_release(&work->super); /* the owner lets go; the lookup holds it */
    assert_int_equal(f->worker.busy, 1);
    test_run_until(f->worker.loop, f->worker.busy == 0);
    assert_int_equal(f->worker.busy, 0); /* freed once the reply came */
    assert_int_equal(seen.counts, 1);
    assert_string_equal(seen.last_count, "hit");
    assert_int_equal(seen.calls, 0);
    forget(key);
}

static void test_binary_documents_survive(void **state)
{
    test_fixture_t *f = *state;
    static const char document[] = {'a', '\0', 'b', '\0', '\xff', '\0', '\r', '\n'};
    char key[96];
    unique_key(key, sizeof(key));
    cache_put(&f->worker, key, document, sizeof(document), 60);
    lookup(f, key, false);
    assert_string_equal(seen.last_count, "hit");
    assert_int_equal(seen.len, sizeof(document));
    assert_memory_equal(seen.value, document, sizeof(document));
    forget(key);
}

int main(void)
{
    log_init("test_cache", LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_stored_document_is_a_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_unknown_key_is_a_miss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bypass_sends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_is_a_bypass, setup_redis_down, teardown),
        cmocka_unit_test_setup_teardown(test_a_cancelled_lookup_is_counted_but_goes_no_further, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_documents_survive, setup, teardown),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
