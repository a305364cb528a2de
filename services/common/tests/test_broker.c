/* Tests for broker.c, against the test stack's RabbitMQ: a batch is
 * confirmed and arrives in order with DESIGN's properties; the topology is
 * declared; a broker that refuses or never answers fails batches at once
 * instead of holding them; a closed port gets no callback; an answer never
 * comes from inside broker_publish. */
#include "test_support.h"
#include "test_amqp.h"
#include "test_loop.h"

#include "broker.h"
#include "metrics.h"

typedef struct outcome {
    int calls;
    size_t confirmed;
    char error[256];
} outcome_t;

static void on_confirm(void *data, size_t confirmed, const char *error)
{
    outcome_t *o = data;
    o->calls++;
    o->confirmed = confirmed;
    snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
}

typedef struct link {
    h2o_evloop_t *loop;
    h2o_multithread_queue_t *queue;
    broker_t *broker;
    broker_port_t *port;
} link_t;

static void link_open(link_t *l, const char *url, uint64_t timeout_ms)
{
    l->loop = test_loop_new();
    l->queue = h2o_multithread_create_queue(l->loop);
    broker_config_t config = {.url = url,
                              .name = "unit-test",
                              .heartbeat_s = 10,
                              .connect_timeout_ms = timeout_ms,
                              .confirm_timeout_ms = 5000};
    l->broker = broker_start(&config);
    assert_non_null(l->broker);
    l->port = broker_port_open(l->broker, l->queue);
    assert_non_null(l->port);
}

static void link_close(link_t *l)
{
    broker_port_close(l->port);
    broker_stop(l->broker);
    h2o_multithread_destroy_queue(l->queue);
    free(l->queue);
    test_loop_free(l->loop);
}

static void wait_outcome(link_t *l, const outcome_t *o)
{
    test_run_until(l->loop, o->calls > 0);
    assert_int_equal(o->calls, 1);
}

static broker_message_t event(const char *routing_key, const char *id, const char *body, const char *traceparent)
{
    return (broker_message_t){.exchange = BROKER_EVENTS_EXCHANGE,
                              .routing_key = routing_key,
                              .message_id = id,
                              .traceparent = traceparent,
                              .body = body,
                              .body_len = strlen(body),
                              .timestamp = 1796000000};
}

static void test_a_batch_is_confirmed_and_arrives_in_order_with_its_properties(void **state)
{
    (void)state;
    link_t l;
    link_open(&l, test_amqp_url(), 3000);
    test_run_until(l.loop, broker_is_up(l.broker));
    assert_true(broker_is_up(l.broker));

    char binding[64], key[3][96], id[3][48];
    test_unique_id(binding, sizeof(binding), "unit");
    test_queue_t q;
    char pattern[80];
    snprintf(pattern, sizeof(pattern), "%s.#", binding);
    test_queue_open(&q, pattern);
    broker_message_t batch[3];
    const char *bodies[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}"};
    for (int i = 0; i < 3; i++) {
        snprintf(key[i], sizeof(key[i]), "%s.thing_%d", binding, i);
        snprintf(id[i], sizeof(id[i]), "00000000-0000-4000-8000-00000000000%d", i);
        batch[i] =
            event(key[i], id[i], bodies[i], i == 1 ? NULL : "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }
    outcome_t o = {0};
    assert_int_equal(broker_publish(l.port, batch, 3, on_confirm, &o), 0);
    assert_int_equal(o.calls, 0); /* never from inside broker_publish */
    assert_int_equal(broker_port_pending(l.port), 1);
    wait_outcome(&l, &o);
    assert_int_equal(o.confirmed, 3);
    assert_string_equal(o.error, "");
    assert_int_equal(broker_port_pending(l.port), 0);

    test_message_t got[3];
    assert_int_equal(test_queue_take(&q, NULL, got, 3), 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(got[i].routing_key, key[i]);
        assert_string_equal(got[i].message_id, id[i]);
        assert_string_equal(got[i].type, key[i]);
        assert_string_equal(got[i].content_type, "application/json");
        assert_int_equal(got[i].delivery_mode, 2); /* persistent */
        assert_int_equal(got[i].timestamp, 1796000000);
        assert_string_equal(got[i].body, bodies[i]);
        assert_string_equal(got[i].traceparent,
                            i == 1 ? "" : "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }
    test_message_t extra;
    assert_false(test_queue_get(&q, &extra));

    /* DESIGN's topology exists: passive declarations fail (closing the
     * channel) for anything missing */
    amqp_exchange_declare(q.conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(BROKER_DEAD_LETTER_EXCHANGE),
                          amqp_cstring_bytes("topic"), 1, 1, 0, 0, amqp_empty_table);
    test_amqp_check(q.conn, "a passive declaration of oms.dlx");
    amqp_queue_declare(q.conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(BROKER_DEAD_LETTER_QUEUE), 1, 1, 0, 0,
                       amqp_empty_table);
    test_amqp_check(q.conn, "a passive declaration of oms.dead-letters");
    test_queue_close(&q);

    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    test_assert_contains(
        out.data, "messaging_messages_total{destination=\"oms.events\",operation=\"publish\",outcome=\"confirmed\"}");
    test_assert_contains(out.data, "messaging_connection_up 1");
    buffer_free(&out);
    link_close(&l);
}

/* A second link declares the same topology again without error. */
static void test_declaring_the_topology_twice_is_harmless(void **state)
{
    (void)state;
    link_t a;
    link_open(&a, test_amqp_url(), 3000);
    broker_config_t config = {.url = test_amqp_url(),
                              .name = "unit-test-2",
                              .heartbeat_s = 10,
                              .connect_timeout_ms = 3000,
                              .confirm_timeout_ms = 5000};
    broker_t *b = broker_start(&config);
    assert_non_null(b);
    test_run_until(a.loop, broker_is_up(a.broker) && broker_is_up(b));
    assert_true(broker_is_up(a.broker));
    assert_true(broker_is_up(b));
    char error[256];
    broker_last_error(b, error, sizeof(error));
    assert_string_equal(error, "");
    broker_stop(b);
    link_close(&a);
}

/* A link to 127.0.0.1:`port` reports `expected` as its error, is not up,
 * and answers a batch at once with nothing confirmed. */
static void assert_batches_fail(int port, uint64_t timeout_ms, const char *expected, const char *answer)
{
    char url[96];
    snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%d/", port);
    link_t l;
    link_open(&l, url, timeout_ms);
    char error[256] = "";
    test_run_until(l.loop, (broker_last_error(l.broker, error, sizeof(error)), strstr(error, expected) != NULL));
    test_assert_contains(error, expected);
    assert_false(broker_is_up(l.broker));
    broker_message_t m = event("unit.down", "id-1", "{}", NULL);
    outcome_t o = {0};
    assert_int_equal(broker_publish(l.port, &m, 1, on_confirm, &o), 0);
    wait_outcome(&l, &o);
    assert_int_equal(o.confirmed, 0);
    test_assert_contains(o.error, answer);
    link_close(&l);
}

static void test_a_refusing_broker_fails_batches_at_once(void **state)
{
    (void)state;
    int port;
    int fd = test_refusing_port(&port);
    assert_batches_fail(port, 3000, "cannot connect", "RabbitMQ is unreachable");
    close(fd);
}

/* A peer that accepts the connection and never says a word (a frozen
 * broker, a firewall that swallows packets) costs the handshake timeout,
 * not forever. */
static void test_a_silent_broker_is_given_up_on(void **state)
{
    (void)state;
    int port;
    int fd = test_listening_socket(&port);
    assert_batches_fail(port, 300, "login", "RabbitMQ is unreachable");
    close(fd);
}

/* A port closed with a batch under way: no callback (the data is gone),
 * nothing leaks (LeakSanitizer). */
static void test_a_closed_port_gets_no_callback(void **state)
{
    (void)state;
    link_t l;
    link_open(&l, test_amqp_url(), 3000);
    test_run_until(l.loop, broker_is_up(l.broker));
    static broker_message_t m;
    m = event("unit.closed", "id-1", "{}", NULL);
    static outcome_t o;
    assert_int_equal(broker_publish(l.port, &m, 1, on_confirm, &o), 0);
    broker_port_close(l.port);
    l.port = NULL;
    uint64_t until = loop_now_ms() + 300;
    while (loop_now_ms() < until)
        h2o_evloop_run(l.loop, 10);
    assert_int_equal(o.calls, 0);
    broker_stop(l.broker);
    h2o_multithread_destroy_queue(l.queue);
    free(l.queue);
    test_loop_free(l.loop);
}

static void test_batches_out_of_range_are_refused(void **state)
{
    (void)state;
    link_t l;
    link_open(&l, test_amqp_url(), 3000);
    broker_message_t m = event("unit.range", "id", "{}", NULL);
    outcome_t o = {0};
    assert_int_equal(broker_publish(l.port, &m, 0, on_confirm, &o), -1);
    assert_int_equal(broker_publish(l.port, &m, BROKER_BATCH_MAX + 1, on_confirm, &o), -1);
    assert_int_equal(broker_port_pending(l.port), 0);
    link_close(&l);
    assert_int_equal(o.calls, 0);
}

static void test_url_problems(void **state)
{
    (void)state;
    assert_null(broker_url_problem("amqp://guest:guest@127.0.0.1:5672/"));
    assert_null(broker_url_problem("amqp://oms:p%40ss@rabbitmq:5672/%2F"));
    assert_null(broker_url_problem("amqp://localhost"));
    assert_non_null(broker_url_problem(""));
    assert_non_null(broker_url_problem("amqp"));
    assert_non_null(broker_url_problem("http://localhost:5672/"));
    assert_non_null(broker_url_problem("amqps://localhost:5671/"));
    assert_non_null(broker_url_problem("amqp://localhost:notaport/"));
    assert_non_null(broker_url_problem("amqp://localhost:5672/a/b"));
    assert_non_null(broker_url_problem("amqp://:5672/"));
}

int main(void)
{
    broker_metrics_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_batch_is_confirmed_and_arrives_in_order_with_its_properties),
        cmocka_unit_test(test_declaring_the_topology_twice_is_harmless),
        cmocka_unit_test(test_a_refusing_broker_fails_batches_at_once),
        cmocka_unit_test(test_a_silent_broker_is_given_up_on),
        cmocka_unit_test(test_a_closed_port_gets_no_callback),
        cmocka_unit_test(test_batches_out_of_range_are_refused),
        cmocka_unit_test(test_url_problems),
    };
    return cmocka_run_group_tests_name("broker", tests, NULL, NULL);
}
