/* Tests for step.c against a real PostgreSQL and Redis: a step goes on
 * only when its call succeeded and its context is alive, fails the
 * context once otherwise, and always lets go of the context.
 *
 * OMS_TEST_DATABASE_URL (a PostgreSQL URL) and OMS_TEST_REDIS_PORT (a Redis
 * on 127.0.0.1) come from scripts/run-tests.sh, which starts both. */
#include "test_support.h"

#include "step.h"

static const pg_statement_t statements[] = {
    {"plus_one", "SELECT $1::int + 1", 1},
    {"divide", "SELECT 10 / $1::int", 1},
    {"sleep", "SELECT pg_sleep($1::float8)", 1},
};

static worker_settings_t settings = {
    .service = "test",
    .resources = WORKER_POSTGRES | WORKER_REDIS,
    .pg = {.size = 2, .query_timeout_ms = 5000, .max_queue = 16, .statements = statements, .statement_count = 3},
    .redis_timeout_ms = 2000,
};

/* A unit of work that records how it ended. */
typedef struct work {
    context_t super;
    int failures, status;
    char code[64];
    int next_runs;
    char value[64];
    bool *released;
} work_t;

static void work_fail(context_t *c, int status, const char *code, const char *message)
{
    work_t *w = (work_t *)c;
    (void)message;
    w->failures++;
    w->status = status;
    snprintf(w->code, sizeof(w->code), "%s", code);
}

static void work_release(context_t *c)
{
    *((work_t *)c)->released = true;
    free(c);
}

static const context_ops_t work_ops = {work_fail, work_release};

typedef struct fixture {
    worker_t worker;
    bool released;
    work_t *work;
} fixture_t;

static int setup(void **state)
{
    settings.pg.conninfo = test_env("OMS_TEST_DATABASE_URL");
    settings.redis = test_redis_target(test_redis_port());
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || worker_open(&f->worker, 0, h2o_evloop_create(), &settings) != 0)
        return -1;
    /* wait until both are connected */
    for (int i = 0; i < 1000 && !(pg_pool_is_up(f->worker.pg) && redis_client_is_up(f->worker.redis)); i++)
        h2o_evloop_run(f->worker.loop, 10);
    if (!pg_pool_is_up(f->worker.pg) || !redis_client_is_up(f->worker.redis)) {
        fprintf(stderr, "test_step: the test stack's PostgreSQL or Redis does not answer\n");
        return -1;
    }
    f->work = calloc(1, sizeof(*f->work));
    context_init(&f->work->super, &work_ops, &f->worker);
    f->work->released = &f->released;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f->released)
        context_release(&f->work->super);
    h2o_evloop_t *loop = f->worker.loop;
    worker_close(&f->worker);
    h2o_evloop_destroy(loop);
    free(f);
    return 0;
}

/* Lets the owner go, then runs the loop until the context is freed. */
static void finish(fixture_t *f)
{
    context_release(&f->work->super);
    for (int i = 0; i < 1000 && !f->released; i++)
        h2o_evloop_run(f->worker.loop, 10);
    assert_true(f->released);
    assert_int_equal(f->worker.busy, 0);
}

static void run_until(fixture_t *f, const int *count, int expected)
{
    for (int i = 0; i < 1000 && *count < expected; i++)
        h2o_evloop_run(f->worker.loop, 10);
}

static int rows_seen; /* every on_rows call, also for a context that is gone */

static void on_rows(void *data, const PGresult *result)
{
    work_t *w = data;
    rows_seen++;
    w->next_runs++;
    snprintf(w->value, sizeof(w->value), "%s", PQgetvalue(result, 0, 0));
}

static void test_query_goes_on_with_the_rows(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    const char *params[] = {"41"};
    step_query(&w->super, "plus_one", params, on_rows, w);
    assert_int_equal(w->super.refs, 2); /* held across the call */
    run_until(f, &w->next_runs, 1);
    assert_int_equal(w->next_runs, 1);
    assert_string_equal(w->value, "42");
    assert_int_equal(w->failures, 0);
    assert_int_equal(w->super.refs, 1); /* and let go after it */
    finish(f);
}

static void test_a_failed_statement_fails_the_context_with_500(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    const char *params[] = {"0"};
    step_query(&w->super, "divide", params, on_rows, w);
    run_until(f, &w->failures, 1);
    assert_int_equal(w->failures, 1);
    assert_int_equal(w->status, 500);
    assert_string_equal(w->code, "internal");
    assert_int_equal(w->next_runs, 0);
    finish(f);
}

static char caught_sqlstate[8];

static bool catch_division(void *data, const pg_reply_t *reply)
{
    work_t *w = data;
    snprintf(caught_sqlstate, sizeof(caught_sqlstate), "%s", reply->sqlstate);
    if (strcmp(reply->sqlstate, "22012") != 0)
        return false;
    context_fail(&w->super, 422, "division_by_zero", "the handler's own answer");
    return true;
}

static void test_catch_sees_the_error_first(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    const char *params[] = {"0"};
    step_query_catch(&w->super, "divide", params, on_rows, catch_division, w);
    run_until(f, &w->failures, 1);
    assert_string_equal(caught_sqlstate, "22012");
    assert_int_equal(w->status, 422); /* the handler's, not the default 500 */
    assert_int_equal(w->failures, 1);
    /* success skips the catcher */
    caught_sqlstate[0] = '\0';
    const char *two[] = {"2"};
    step_query_catch(&w->super, "divide", two, on_rows, catch_division, w);
    run_until(f, &w->next_runs, 1);
    assert_string_equal(w->value, "5");
    assert_string_equal(caught_sqlstate, "");
    finish(f);
}

static void test_a_cancelled_context_does_not_go_on(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    const char *params[] = {"0.05"};
    rows_seen = 0;
    step_query(&w->super, "sleep", params, on_rows, w);
    context_cancel(&w->super);  /* the client left while the query ran */
    context_release(&w->super); /* and its owner let go */
    assert_false(f->released);  /* the step still holds it */
    for (int i = 0; i < 1000 && !f->released; i++)
        h2o_evloop_run(f->worker.loop, 10);
    assert_true(f->released); /* freed after the reply, without going on */
    assert_int_equal(rows_seen, 0);
    assert_int_equal(f->worker.busy, 0);
}

static int raw_replies;
static pg_status_t raw_status;

static void on_raw_reply(void *data, const pg_reply_t *reply)
{
    (void)data;
    raw_replies++;
    raw_status = reply->status;
}

static void test_raw_gets_every_reply_even_cancelled(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    raw_replies = 0;
    const char *zero[] = {"0"};
    step_query_raw(&w->super, "divide", zero, on_raw_reply, w);
    context_cancel(&w->super);
    run_until(f, &raw_replies, 1);
    assert_int_equal(raw_replies, 1);
    assert_int_equal(raw_status, PG_ERROR);
    assert_int_equal(w->failures, 0); /* raw answers nothing itself */
    finish(f);
}

static void test_an_undeclared_database_is_unavailable(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    pg_pool_t *pool = f->worker.pg;
    f->worker.pg = NULL; /* as for a service that declared no PostgreSQL */
    const char *params[] = {"1"};
    step_query(&w->super, "plus_one", params, on_rows, w);
    f->worker.pg = pool;
    assert_int_equal(w->failures, 1); /* at once, before returning */
    assert_int_equal(w->status, 503);
    assert_string_equal(w->code, "dependency_unavailable");
    assert_int_equal(w->super.refs, 1);
    finish(f);
}

static void on_redis(void *data, const redisReply *reply)
{
    work_t *w = data;
    w->next_runs++;
    snprintf(w->value, sizeof(w->value), "%s", reply->type == REDIS_REPLY_STATUS ? reply->str : "?");
}

static void test_redis_goes_on_with_the_reply(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    const char *argv[] = {"PING"};
    step_redis(&w->super, 1, argv, NULL, on_redis, w);
    run_until(f, &w->next_runs, 1);
    assert_string_equal(w->value, "PONG");
    assert_int_equal(w->failures, 0);
    finish(f);
}

static void test_a_redis_error_reply_fails_with_503(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    const char *argv[] = {"NO-SUCH-COMMAND"};
    step_redis(&w->super, 1, argv, NULL, on_redis, w);
    run_until(f, &w->failures, 1);
    assert_int_equal(w->status, 503);
    assert_int_equal(w->next_runs, 0);
    finish(f);
}

static int raw_redis_replies;
static int raw_redis_type;

static void on_raw_redis(void *data, const redisReply *reply, const char *error)
{
    (void)data, (void)error;
    raw_redis_replies++;
    raw_redis_type = reply != NULL ? reply->type : -1;
}

static void test_redis_raw_gets_errors_and_cancelled_replies(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    raw_redis_replies = 0;
    const char *argv[] = {"NO-SUCH-COMMAND"};
    step_redis_raw(&w->super, 1, argv, NULL, on_raw_redis, w);
    context_cancel(&w->super);
    run_until(f, &raw_redis_replies, 1);
    assert_int_equal(raw_redis_type, REDIS_REPLY_ERROR);
    assert_int_equal(w->failures, 0);
    finish(f);
}

static void test_an_undeclared_redis_is_unavailable(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    redis_client_t *client = f->worker.redis;
    f->worker.redis = NULL;
    const char *argv[] = {"PING"};
    step_redis(&w->super, 1, argv, NULL, on_redis, w);
    f->worker.redis = client;
    assert_int_equal(w->status, 503);
    assert_int_equal(w->next_runs, 0);
    finish(f);
}

static void double_it(void *data)
{
    int *n = data;
    *n *= 2; /* on a pool thread */
}

static int work_done;

static void on_work_done(void *data)
{
    (void)data;
    work_done++;
}

static void test_background_work_comes_back_to_the_loop(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    assert_int_equal(work_pool_start(1, 1, 0), 0);
    assert_int_equal(work_pool_attach(&f->worker), 0);
    int *n = context_alloc(&w->super, sizeof(*n));
    *n = 21;
    work_done = 0;
    assert_int_equal(step_work(&w->super, double_it, on_work_done, n), 0);
    run_until(f, &work_done, 1);
    assert_int_equal(work_done, 1);
    assert_int_equal(*n, 42);
    /* cancelled while it runs: `next` does not run, the context is kept until it ends */
    assert_int_equal(step_work(&w->super, double_it, on_work_done, n), 0);
    context_cancel(&w->super);
    context_release(&w->super);
    for (int i = 0; i < 1000 && !f->released; i++)
        h2o_evloop_run(f->worker.loop, 10);
    assert_true(f->released);
    assert_int_equal(work_done, 1);
    work_pool_detach(&f->worker);
    work_pool_stop();
}

static void test_saturated_background_work_is_refused(void **state)
{
    fixture_t *f = *state;
    work_t *w = f->work;
    /* no pool running: refused, nothing held */
    assert_int_equal(step_work(&w->super, double_it, on_work_done, NULL), -1);
    assert_int_equal(w->super.refs, 1);
    assert_int_equal(w->failures, 0); /* the caller says how busy it is */
    finish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_query_goes_on_with_the_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_statement_fails_the_context_with_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_sees_the_error_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_cancelled_context_does_not_go_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_gets_every_reply_even_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_undeclared_database_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_goes_on_with_the_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_redis_error_reply_fails_with_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_raw_gets_errors_and_cancelled_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_undeclared_redis_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_work_comes_back_to_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saturated_background_work_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
