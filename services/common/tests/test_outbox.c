/* Tests for outbox.c, against the test stack's PostgreSQL and RabbitMQ,
 * on a schema of their own (relay_unit) installed the way every service's
 * is (public.oms_install_outbox): a backlog goes out in seq order in full
 * batches; a COMMIT wakes the relay long before its sweep, a ROLLBACK
 * sends nothing; while the broker is unreachable nothing is marked and
 * everything goes out once a relay can publish; a relay whose lease is
 * held elsewhere publishes nothing until that lease expires. */
#include "test_support.h"
#include "test_amqp.h"

#include "metrics.h"
#include "outbox.h"

#define SCHEMA "relay_unit"

/* --- the database, from the test's side (blocking libpq) ------------------------ */

static PGconn *db;

static PGresult *sql(const char *text)
{
    PGresult *result = PQexec(db, text);
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg("%s: %s", text, PQresultErrorMessage(result));
    return result;
}

static void exec_sql(const char *text)
{
    PQclear(sql(text));
}

static long sql_long(const char *text)
{
    PGresult *result = sql(text);
    long value = PQntuples(result) == 1 && !PQgetisnull(result, 0, 0) ? atol(PQgetvalue(result, 0, 0)) : -1;
    PQclear(result);
    return value;
}

static long unpublished(void)
{
    return sql_long("SELECT count(*) FROM " SCHEMA ".outbox WHERE published_at IS NULL");
}

static int setup(void **state)
{
    (void)state;
    db = PQconnectdb(test_env("OMS_TEST_DATABASE_URL"));
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "test_outbox: cannot connect to OMS_TEST_DATABASE_URL: %s", PQerrorMessage(db));
        return -1;
    }
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    PGresult *r = PQexec(db, "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE; CREATE SCHEMA " SCHEMA ";"
                             " SELECT public.oms_install_outbox('" SCHEMA "')");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "test_outbox: installing the outbox: %s", PQresultErrorMessage(r));
    PQclear(r);
    broker_metrics_register();
    outbox_metrics_register();
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQclear(PQexec(db, "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE"));
    PQfinish(db);
    return 0;
}

static int clean(void **state)
{
    (void)state;
    exec_sql("TRUNCATE " SCHEMA ".outbox, " SCHEMA ".outbox_relay");
    return 0;
}

/* `count` events of type relay_unit.e with data {"n": 1..count}, in one
 * statement: seq follows n. */
static void write_events(int count)
{
    char text[256];
    snprintf(text, sizeof(text),
             "SELECT " SCHEMA ".outbox_emit('" SCHEMA ".e', jsonb_build_object('n', n)) FROM generate_series(1, %d) n",
             count);
    exec_sql(text);
}

/* --- a relay on a worker of its own ------------------------------------------------ */

typedef struct relay_fixture {
    pg_statement_t statements[1 + OUTBOX_STATEMENT_COUNT];
    worker_settings_t settings;
    worker_t worker;
    outbox_relay_t *relay;
} relay_fixture_t;

static relay_fixture_t *relay_open_pool(const char *amqp_url, size_t batch_size, uint64_t sweep_ms, size_t pool_size)
{
    relay_fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    outbox_config_t config = {.schema = SCHEMA,
                              .batch_size = batch_size,
                              .sweep_interval_ms = sweep_ms,
                              .lease_ms = 30000,
                              .retention_hours = 24};
    f->statements[0] = (pg_statement_t){HEALTH_PING_STATEMENT, "SELECT 1", 0};
    assert_int_equal(outbox_statements(&config, f->statements + 1), 0);
    f->settings = test_settings("test", WORKER_POSTGRES);
    f->settings.resources |= WORKER_BROKER;
    f->settings.pg.size = pool_size;
    f->settings.pg.statements = f->statements;
    f->settings.pg.statement_count = 1 + OUTBOX_STATEMENT_COUNT;
    broker_config_t broker = {.url = amqp_url,
                              .name = "unit-test",
                              .heartbeat_s = 10,
                              .connect_timeout_ms = 2000,
                              .confirm_timeout_ms = 5000};
    f->settings.broker = broker_start(&broker);
    assert_non_null(f->settings.broker);
    test_worker_open(&f->worker, 0, &f->settings);
    f->relay = outbox_relay_start(&f->worker, &config); /* before the loop runs: the LISTEN */
    assert_non_null(f->relay);
    return f;
}

static relay_fixture_t *relay_open(const char *amqp_url, size_t batch_size, uint64_t sweep_ms)
{
    return relay_open_pool(amqp_url, batch_size, sweep_ms, 2);
}

static void relay_close(relay_fixture_t *f)
{
    outbox_relay_stop(f->relay);
    broker_t *broker = f->settings.broker;
    test_worker_close(&f->worker);
    broker_stop(broker);
    for (size_t i = 1; i <= OUTBOX_STATEMENT_COUNT; i++)
        free((char *)f->statements[i].sql);
    free(f);
}

/* The statements' text is generated for the schema and validated. */
static void test_statements_are_made_for_a_valid_schema_only(void **state)
{
    (void)state;
    pg_statement_t st[OUTBOX_STATEMENT_COUNT];
    outbox_config_t bad = {.schema = "users; DROP"};
    assert_int_equal(outbox_statements(&bad, st), -1);
    assert_int_equal(outbox_check_schema("Users"), -1);
    assert_int_equal(outbox_check_schema("9lives"), -1);
    assert_int_equal(outbox_check_schema(""), -1);
    assert_int_equal(outbox_check_schema("inventory"), 0);
    outbox_config_t good = {.schema = "inventory"};
    assert_int_equal(outbox_statements(&good, st), 0);
    test_assert_contains(st[0].sql, "FROM \"inventory\".outbox o");
    for (size_t i = 0; i < OUTBOX_STATEMENT_COUNT; i++)
        free((char *)st[i].sql);
}

static void test_a_backlog_goes_out_in_seq_order_in_full_batches(void **state)
{
    (void)state;
    enum { EVENTS = 1200, BATCH = 500 };
    write_events(EVENTS);
    test_queue_t q;
    relay_fixture_t *f = relay_open(test_amqp_url(), BATCH, 60000);
    test_run_until(f->worker.loop, broker_is_up(f->settings.broker));
    test_queue_open(&q, SCHEMA ".#"); /* the exchange exists once the link is up */
    test_run_until(f->worker.loop, unpublished() == 0);
    assert_int_equal(unpublished(), 0);

    static test_message_t got[EVENTS];
    assert_int_equal(test_queue_take(&q, f->worker.loop, got, EVENTS), EVENTS);
    for (int i = 0; i < EVENTS; i++) {
        char expected[32];
        snprintf(expected, sizeof(expected), "\"n\": %d}", i + 1);
        test_assert_contains(got[i].body, expected);
        assert_string_equal(got[i].routing_key, SCHEMA ".e");
    }
    /* message_id is the event id, which is also the body's "id" */
    char first_id[64];
    PGresult *r = sql("SELECT id FROM " SCHEMA ".outbox ORDER BY seq LIMIT 1");
    snprintf(first_id, sizeof(first_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_string_equal(got[0].message_id, first_id);
    test_assert_contains(got[0].body, first_id);

    /* each batch is marked by one UPDATE, so one published_at per batch */
    r = sql("SELECT count(*) FROM " SCHEMA ".outbox GROUP BY published_at ORDER BY min(seq)");
    assert_int_equal(PQntuples(r), 3);
    assert_int_equal(atoi(PQgetvalue(r, 0, 0)), BATCH);
    assert_int_equal(atoi(PQgetvalue(r, 1, 0)), BATCH);
    assert_int_equal(atoi(PQgetvalue(r, 2, 0)), EVENTS - 2 * BATCH);
    PQclear(r);
    test_message_t extra;
    assert_false(test_queue_get(&q, &extra)); /* nothing twice */
    test_queue_close(&q);
    relay_close(f);
}

static void test_a_commit_wakes_the_relay_and_a_rollback_sends_nothing(void **state)
{
    (void)state;
    test_queue_t q;
    /* a sweep far beyond the wait bound; one connection, so that the first
     * claim (which writes the lease row) comes after its LISTEN */
    relay_fixture_t *f = relay_open_pool(test_amqp_url(), 100, 60000, 1);
    test_run_until(f->worker.loop,
                   broker_is_up(f->settings.broker) && sql_long("SELECT count(*) FROM " SCHEMA ".outbox_relay") == 1);
    assert_int_equal(sql_long("SELECT count(*) FROM " SCHEMA ".outbox_relay"), 1); /* listening, and claimed */
    test_queue_open(&q, SCHEMA ".#");

    exec_sql("BEGIN; SELECT " SCHEMA ".outbox_emit('" SCHEMA ".rolled_back', '{}'); ROLLBACK");
    exec_sql("SELECT " SCHEMA ".outbox_emit('" SCHEMA ".committed', '{}')");
    test_message_t got;
    assert_int_equal(test_queue_take(&q, f->worker.loop, &got, 1), 1);
    assert_string_equal(got.routing_key, SCHEMA ".committed");
    test_run_until(f->worker.loop, unpublished() == 0);
    assert_int_equal(unpublished(), 0);
    assert_false(test_queue_get(&q, &got));
    test_queue_close(&q);
    relay_close(f);
}

static void test_events_wait_while_the_broker_is_unreachable(void **state)
{
    (void)state;
    write_events(10);
    int port;
    int fd = test_refusing_port(&port);
    char url[96];
    snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%d/", port);
    relay_fixture_t *down = relay_open(url, 100, 50);
    /* a few sweeps: each claims the rows and fails to publish them */
    uint64_t until = loop_now_ms() + 500;
    while (loop_now_ms() < until)
        h2o_evloop_run(down->worker.loop, 10);
    assert_int_equal(sql_long("SELECT count(*) FROM " SCHEMA ".outbox_relay"), 1); /* it did claim */
    assert_int_equal(unpublished(), 10);                                           /* and marked nothing */
    relay_close(down);
    close(fd);

    /* the next holder must wait for the dead one's lease: expire it, as
     * time would */
    exec_sql("UPDATE " SCHEMA ".outbox_relay SET lease_until = now() - interval '1 second'");
    test_queue_t q;
    relay_fixture_t *up = relay_open(test_amqp_url(), 100, 50);
    test_run_until(up->worker.loop, broker_is_up(up->settings.broker));
    test_queue_open(&q, SCHEMA ".#");
    test_run_until(up->worker.loop, unpublished() == 0);
    assert_int_equal(unpublished(), 0);
    test_message_t got[10];
    assert_int_equal(test_queue_take(&q, up->worker.loop, got, 10), 10);
    for (int i = 0; i < 10; i++) {
        char expected[32];
        snprintf(expected, sizeof(expected), "\"n\": %d}", i + 1);
        test_assert_contains(got[i].body, expected);
    }
    test_queue_close(&q);
    relay_close(up);
}

static double counter(const char *sample)
{
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    const char *at = out.data != NULL ? strstr(out.data, sample) : NULL;
    double value = at != NULL ? strtod(at + strlen(sample), NULL) : 0;
    buffer_free(&out);
    return value;
}

/* The broker refuses the first batch (nacks: the only queue it routes to
 * is full and says reject-publish) and takes the second, published behind
 * it while the first waited for its answer: the second is not marked
 * either, so that when the first goes out again the second follows it. */
static void test_nothing_after_a_refused_batch_is_marked(void **state)
{
    (void)state;
    test_queue_t capped;
    test_queue_open(&capped, "nothing-" SCHEMA);
    amqp_table_entry_t limits[] = {
        {amqp_cstring_bytes("x-max-length"), {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 0}},
        {amqp_cstring_bytes("x-overflow"),
         {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("reject-publish")}},
    };
    amqp_table_t arguments = {2, limits};
    char name[160]; /* amq.* (capped.name's prefix) is the broker's own */
    test_unique_id(name, sizeof(name), "test.capped-");
    amqp_queue_declare(capped.conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(name), 0, 0, 1, 1, arguments);
    test_amqp_check(capped.conn, "a capped queue");
    amqp_queue_bind(capped.conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(name),
                    amqp_cstring_bytes(BROKER_EVENTS_EXCHANGE), amqp_cstring_bytes(SCHEMA ".capped"), amqp_empty_table);
    test_amqp_check(capped.conn, "binding the capped queue");
    exec_sql("SELECT " SCHEMA ".outbox_emit('" SCHEMA ".capped', jsonb_build_object('n', n))"
             " FROM generate_series(1, 500) n");
    exec_sql("SELECT " SCHEMA ".outbox_emit('" SCHEMA ".open', jsonb_build_object('n', n))"
             " FROM generate_series(501, 510) n");

    static const char nacked[] =
        "messaging_messages_total{destination=\"oms.events\",operation=\"publish\",outcome=\"nacked\"} ";
    static const char confirmed[] =
        "messaging_messages_total{destination=\"oms.events\",operation=\"publish\",outcome=\"confirmed\"} ";
    double nacked_before = counter(nacked), confirmed_before = counter(confirmed);
    relay_fixture_t *f = relay_open(test_amqp_url(), 500, 60000); /* one run in the test's time */
    test_run_until(f->worker.loop, counter(nacked) >= nacked_before + 500 && f->worker.busy == 0);
    assert_true(counter(nacked) >= nacked_before + 500);
    assert_int_equal(f->worker.busy, 0); /* the run is over, marks included */
    assert_int_equal(sql_long("SELECT count(*) FROM " SCHEMA ".outbox WHERE published_at IS NULL"
                              " AND routing_key = '" SCHEMA ".capped'"),
                     500);
    /* the broker took the second batch (when it went out before the first
     * was refused), yet it is not marked */
    print_message("second batch confirmed by the broker: %.0f of 10\n", counter(confirmed) - confirmed_before);
    assert_int_equal(sql_long("SELECT count(*) FROM " SCHEMA ".outbox WHERE published_at IS NULL"
                              " AND routing_key = '" SCHEMA ".open'"),
                     10);
    test_queue_close(&capped);
    relay_close(f);
}

static void fail_if_published(void *data)
{
    (void)data;
    if (unpublished() != 5)
        fail_msg("a relay published while another held the lease");
}

static void test_one_relay_at_a_time(void **state)
{
    (void)state;
    exec_sql("INSERT INTO " SCHEMA
             ".outbox_relay (holder, lease_until) VALUES ('elsewhere:1:0', now() + interval '1 hour')");
    write_events(5);
    relay_fixture_t *f = relay_open(test_amqp_url(), 100, 50);
    test_run_until(f->worker.loop, broker_is_up(f->settings.broker));
    test_run_for(f->worker.loop, 500, fail_if_published, NULL);
    assert_int_equal(sql_long("SELECT count(*) FROM " SCHEMA ".outbox_relay WHERE holder = 'elsewhere:1:0'"), 1);
    exec_sql("UPDATE " SCHEMA ".outbox_relay SET lease_until = now() - interval '1 second'");
    test_run_until(f->worker.loop, unpublished() == 0);
    assert_int_equal(unpublished(), 0);
    assert_int_equal(sql_long("SELECT count(*) FROM " SCHEMA ".outbox_relay WHERE holder = 'elsewhere:1:0'"), 0);
    relay_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statements_are_made_for_a_valid_schema_only),
        cmocka_unit_test_setup(test_a_backlog_goes_out_in_seq_order_in_full_batches, clean),
        cmocka_unit_test_setup(test_a_commit_wakes_the_relay_and_a_rollback_sends_nothing, clean),
        cmocka_unit_test_setup(test_events_wait_while_the_broker_is_unreachable, clean),
        cmocka_unit_test_setup(test_one_relay_at_a_time, clean),
        cmocka_unit_test_setup(test_nothing_after_a_refused_batch_is_marked, clean),
    };
    return cmocka_run_group_tests_name("outbox", tests, setup, teardown);
}
