/* Tests for broker.c, against the test stack's RabbitMQ: a batch is
 * confirmed and arrives in order with DESIGN's properties; the topology is
 * declared; a broker that refuses or never answers fails batches at once
 * instead of holding them; a closed port gets no callback; an answer never
 * comes from inside broker_publish. Consuming: deliveries arrive whole and
 * acked ones are gone; unsettled ones come back redelivered; a retried one
 * comes back after each delay without holding up the next, then lands in
 * the dead letters; the prefetch limit holds; an oversized message is
 * dead-lettered unread; configs are checked. */
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

/* --- consuming ------------------------------------------------------------------ */

#define HELD_MAX 64

/* What a consuming loop saw, and how it settles each delivery: `policy`
 * returns the settlement, or -1 to hold it (kept in `held`). */
typedef struct consumer_log {
    broker_port_t *port;
    int (*policy)(const broker_delivery_t *d);
    size_t count;
    char ids[HELD_MAX][64];
    char types[HELD_MAX][64];
    char routing_keys[HELD_MAX][96];
    char traceparents[HELD_MAX][128];
    char bodies[HELD_MAX][64];
    unsigned attempts[HELD_MAX];
    bool redelivered[HELD_MAX];
    uint64_t at_ms[HELD_MAX];
    broker_delivery_t *held[HELD_MAX];
    size_t held_count;
} consumer_log_t;

static void on_delivery(void *data, broker_delivery_t *d)
{
    consumer_log_t *log = data;
    if (log->count < HELD_MAX) {
        size_t i = log->count++;
        snprintf(log->ids[i], sizeof(log->ids[i]), "%s", d->message_id);
        snprintf(log->types[i], sizeof(log->types[i]), "%s", d->type);
        snprintf(log->routing_keys[i], sizeof(log->routing_keys[i]), "%s", d->routing_key);
        snprintf(log->traceparents[i], sizeof(log->traceparents[i]), "%s", d->traceparent);
        snprintf(log->bodies[i], sizeof(log->bodies[i]), "%.*s", (int)d->body_len, d->body);
        assert_int_equal(strlen(d->body), d->body_len); /* NUL-terminated */
        log->attempts[i] = d->attempt;
        log->redelivered[i] = d->redelivered;
        log->at_ms[i] = loop_now_ms();
    }
    int how = log->policy != NULL ? log->policy(d) : BROKER_ACK;
    if (how < 0 && log->held_count < HELD_MAX)
        log->held[log->held_count++] = d;
    else
        broker_settle(log->port, d, how < 0 ? BROKER_ACK : (broker_settlement_t)how);
}

static size_t deliveries_of(const consumer_log_t *log, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < log->count; i++)
        n += strcmp(log->ids[i], id) == 0;
    return n;
}

/* A queue name and a routing key of this test run's own. */
static void unique_names(const char *what, char *queue, size_t qsize, char *key, size_t ksize)
{
    snprintf(queue, qsize, "unit.%s.%d", what, (int)getpid());
    snprintf(key, ksize, "unit.%s.%d.event", what, (int)getpid());
}

static void consume(link_t *l, consumer_log_t *log, const char *queue, const char *key, uint16_t prefetch,
                    size_t retries, const uint32_t *delays)
{
    const char *bindings[] = {key, NULL};
    broker_consumer_config_t config = {
        .queue = queue, .bindings = bindings, .prefetch = prefetch, .retries = retries, .retry_delays_ms = delays};
    log->port = l->port;
    assert_int_equal(broker_consume(l->port, &config, on_delivery, log), 0);
}

static void wait_for_queue(link_t *l, const char *queue);

/* A link consuming `queue` (bound to `key`), once the queue exists. */
static void consuming_link(link_t *l, consumer_log_t *log, const char *queue, const char *key, uint16_t prefetch,
                           size_t retries, const uint32_t *delays)
{
    link_open(l, test_amqp_url(), 3000);
    consume(l, log, queue, key, prefetch, retries, delays);
    wait_for_queue(l, queue);
}

/* Deletes queues a test declared (durable: they would outlive it). */
static void delete_queues(const char *const *names)
{
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    for (size_t i = 0; names[i] != NULL; i++)
        test_queue_delete(&probe, names[i]);
    test_queue_close(&probe);
}

static void publish_and_confirm(link_t *l, const broker_message_t *messages, size_t count)
{
    outcome_t o = {0};
    assert_int_equal(broker_publish(l->port, messages, count, on_confirm, &o), 0);
    wait_outcome(l, &o);
    assert_int_equal(o.confirmed, count);
}

/* Whether the rendered metrics hold `line` right now. */
static bool metrics_show(const char *line)
{
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    bool found = out.data != NULL && strstr(out.data, line) != NULL;
    buffer_free(&out);
    return found;
}

static int hold(const broker_delivery_t *d)
{
    (void)d;
    return -1;
}

static void release_held(consumer_log_t *log)
{
    for (size_t i = 0; i < log->held_count; i++)
        broker_delivery_drop(log->held[i]);
    log->held_count = 0;
}

/* Waits until `queue` exists (a link declares it once connected). */
static void wait_for_queue(link_t *l, const char *queue)
{
    uint64_t deadline = loop_now_ms() + TEST_WAIT_MS;
    for (;;) {
        test_queue_t probe;
        test_queue_open(&probe, "unit.none");
        amqp_queue_declare(probe.conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
        bool exists = amqp_get_rpc_reply(probe.conn).reply_type == AMQP_RESPONSE_NORMAL;
        amqp_connection_close(probe.conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(probe.conn);
        if (exists)
            return;
        if (loop_now_ms() > deadline)
            fail_msg("the queue %s was never declared", queue);
        h2o_evloop_run(l->loop, 10);
    }
}

/* Deliveries arrive in order with what the publisher set; acked ones are
 * gone from the queue once the link has stopped (unsettled ones would be
 * back in it, ready). */
static void test_consumed_messages_arrive_whole_and_acked_ones_are_gone(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("consume", queue, sizeof(queue), key, sizeof(key));
    link_t l;
    link_open(&l, test_amqp_url(), 3000);
    consumer_log_t log = {0};
    consume(&l, &log, queue, key, 10, 0, NULL);
    test_run_until(l.loop, broker_is_up(l.broker));
    const char *trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    broker_message_t m[3] = {event(key, "c-1", "{\"n\":1}", trace), event(key, "c-2", "{\"n\":2}", NULL),
                             event(key, "c-3", "{\"n\":3}", trace)};
    /* the consumer's queue exists once the link consumes: publish after */
    wait_for_queue(&l, queue);
    publish_and_confirm(&l, m, 3);
    test_run_until(l.loop, log.count == 3);
    assert_int_equal(log.count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(log.ids[i], m[i].message_id);
        assert_string_equal(log.types[i], key);
        assert_string_equal(log.bodies[i], m[i].body);
        assert_string_equal(log.traceparents[i], m[i].traceparent != NULL ? trace : "");
        assert_int_equal(log.attempts[i], 1);
        assert_false(log.redelivered[i]);
        assert_string_equal(log.routing_keys[i], key);
    }
    link_close(&l);
    /* acked: after the stop only what the test puts in is ready */
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    test_queue_put(&probe, queue, "marker", "{}", 2);
    uint32_t ready = 0;
    uint64_t deadline = loop_now_ms() + TEST_WAIT_MS;
    while ((ready = test_queue_ready(&probe, queue)) < 1 && loop_now_ms() < deadline)
        usleep(10000);
    assert_int_equal(ready, 1);
    test_queue_delete(&probe, queue);
    test_queue_close(&probe);
}

/* Held (never settled) when the link stops: the next consumer of the
 * queue gets them again, flagged redelivered, still at attempt 1. */
static void test_unsettled_deliveries_come_back_redelivered(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("unsettled", queue, sizeof(queue), key, sizeof(key));
    link_t a;
    consumer_log_t first = {.policy = hold};
    consuming_link(&a, &first, queue, key, 10, 0, NULL);
    broker_message_t m[2] = {event(key, "u-1", "{}", NULL), event(key, "u-2", "{}", NULL)};
    publish_and_confirm(&a, m, 2);
    test_run_until(a.loop, first.count == 2);
    assert_int_equal(first.held_count, 2);
    link_close(&a);
    release_held(&first);

    link_t b;
    link_open(&b, test_amqp_url(), 3000);
    consumer_log_t second = {0};
    consume(&b, &second, queue, key, 10, 0, NULL);
    test_run_until(b.loop, second.count == 2);
    assert_int_equal(second.count, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(second.ids[i], m[i].message_id);
        assert_true(second.redelivered[i]);
        assert_int_equal(second.attempts[i], 1);
    }
    link_close(&b);
    delete_queues((const char *const[]){queue, NULL});
}

static const char *poison_id;
static int retry_the_poison(const broker_delivery_t *d)
{
    return strcmp(d->message_id, poison_id) == 0 ? BROKER_RETRY : BROKER_ACK;
}

/* Takes messages off the dead-letter test queue until one with `id`. */
static bool dead_lettered(test_queue_t *dlq, link_t *l, const char *id, test_message_t *out)
{
    uint64_t deadline = loop_now_ms() + TEST_WAIT_MS;
    while (loop_now_ms() < deadline) {
        if (test_queue_get(dlq, out)) {
            if (strcmp(out->message_id, id) == 0)
                return true;
            continue;
        }
        h2o_evloop_run(l->loop, 10);
    }
    return false;
}

/* A message retried every time: attempts 1, 2, 3, each after its delay,
 * while the message behind it goes through at once; after the last it is
 * in the dead letters, whole, with its type. */
static void test_a_retried_delivery_comes_back_after_each_delay_then_is_dead_lettered(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("retry", queue, sizeof(queue), key, sizeof(key));
    test_queue_t dlq;
    test_queue_open_on(&dlq, BROKER_DEAD_LETTER_EXCHANGE, "#");
    static const uint32_t delays[] = {300, 600};
    poison_id = "r-poison";
    link_t l;
    consumer_log_t log = {.policy = retry_the_poison};
    consuming_link(&l, &log, queue, key, 10, 2, delays);
    broker_message_t m[2] = {
        event(key, "r-poison", "{\"bad\":true}", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        event(key, "r-fine", "{}", NULL)};
    publish_and_confirm(&l, m, 2);
    test_message_t dead;
    assert_true(dead_lettered(&dlq, &l, "r-poison", &dead));
    assert_int_equal(deliveries_of(&log, "r-poison"), 3);
    assert_int_equal(deliveries_of(&log, "r-fine"), 1);
    unsigned attempt = 0;
    uint64_t previous = 0;
    for (size_t i = 0; i < log.count; i++) {
        if (strcmp(log.ids[i], "r-poison") != 0)
            continue;
        assert_int_equal(log.attempts[i], ++attempt);
        assert_string_equal(log.types[i], key);        /* the event type survives the retry queues */
        assert_string_equal(log.routing_keys[i], key); /* and so does the routing key */
        assert_string_equal(log.bodies[i], "{\"bad\":true}");
        test_assert_contains(log.traceparents[i], "4bf92f3577b34da6a3ce929d0e0e4736");
        if (attempt > 1) /* the retry queue held it at least its delay (less a little clock slack) */
            assert_true(log.at_ms[i] - previous + 50 >= delays[attempt - 2]);
        previous = log.at_ms[i];
    }
    assert_string_equal(dead.body, "{\"bad\":true}");
    assert_string_equal(dead.type, key);
    char retry_queue[160];
    link_close(&l);
    for (size_t i = 0; i < 2; i++) {
        broker_retry_queue_name(queue, delays[i], retry_queue, sizeof(retry_queue));
        assert_int_equal(test_queue_ready(&dlq, retry_queue), 0);
        test_queue_delete(&dlq, retry_queue);
    }
    test_queue_delete(&dlq, queue);
    test_queue_close(&dlq);
}

static int dead_letter(const broker_delivery_t *d)
{
    (void)d;
    return BROKER_DEAD_LETTER;
}

static void test_a_dead_lettered_delivery_goes_to_the_dead_letters_at_once(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("dead", queue, sizeof(queue), key, sizeof(key));
    test_queue_t dlq;
    test_queue_open_on(&dlq, BROKER_DEAD_LETTER_EXCHANGE, "#");
    static const uint32_t delays[] = {100};
    link_t l;
    consumer_log_t log = {.policy = dead_letter};
    consuming_link(&l, &log, queue, key, 10, 1, delays);
    broker_message_t m = event(key, "d-1", "not json", NULL);
    publish_and_confirm(&l, &m, 1);
    test_message_t dead;
    assert_true(dead_lettered(&dlq, &l, "d-1", &dead));
    assert_string_equal(dead.body, "not json");
    assert_int_equal(log.count, 1); /* no retry */
    link_close(&l);
    char retry_queue[160];
    broker_retry_queue_name(queue, delays[0], retry_queue, sizeof(retry_queue));
    test_queue_delete(&dlq, retry_queue);
    test_queue_delete(&dlq, queue);
    test_queue_close(&dlq);
}

/* prefetch 2, five messages, none settled: the broker hands out two and
 * keeps three ready. */
static void test_the_prefetch_limit_bounds_what_is_handed_out(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("prefetch", queue, sizeof(queue), key, sizeof(key));
    link_t l;
    consumer_log_t log = {.policy = hold};
    consuming_link(&l, &log, queue, key, 2, 0, NULL);
    broker_message_t m[5];
    static const char *ids[] = {"p-1", "p-2", "p-3", "p-4", "p-5"};
    for (size_t i = 0; i < 5; i++)
        m[i] = event(key, ids[i], "{}", NULL);
    publish_and_confirm(&l, m, 5);
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    test_run_until(l.loop, log.count == 2 && test_queue_ready(&probe, queue) == 3);
    assert_int_equal(log.count, 2);
    assert_int_equal(test_queue_ready(&probe, queue), 3);
    /* the backlog gauges say the same: 3 waiting, 2 held, 1 consumer */
    char ready[256], unacked[256], consumers[256];
    snprintf(ready, sizeof(ready), "messaging_queue_messages{destination=\"%s\",state=\"ready\"} 3\n", queue);
    snprintf(unacked, sizeof(unacked), "messaging_queue_messages{destination=\"%s\",state=\"unacked\"} 2\n", queue);
    snprintf(consumers, sizeof(consumers), "messaging_queue_consumers{destination=\"%s\"} 1\n", queue);
    test_run_until(l.loop, metrics_show(ready) && metrics_show(unacked) && metrics_show(consumers));
    assert_true(metrics_show(ready));
    assert_true(metrics_show(unacked));
    assert_true(metrics_show(consumers));
    /* one settled: one more comes */
    broker_settle(l.port, log.held[0], BROKER_ACK);
    log.held[0] = log.held[1];
    log.held_count = 1;
    test_run_until(l.loop, log.count == 3);
    assert_int_equal(log.count, 3);
    link_close(&l);
    release_held(&log);
    test_queue_delete(&probe, queue);
    test_queue_close(&probe);
}

/* A message over the size limit is dead-lettered unread, and the one
 * behind it is delivered. */
static void test_an_oversized_message_is_dead_lettered_unread(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("large", queue, sizeof(queue), key, sizeof(key));
    test_queue_t dlq;
    test_queue_open_on(&dlq, BROKER_DEAD_LETTER_EXCHANGE, "#");
    link_t l;
    consumer_log_t log = {0};
    consuming_link(&l, &log, queue, key, 10, 0, NULL);
    size_t size = (5u << 20);
    char *big = malloc(size);
    assert_non_null(big);
    memset(big, 'x', size);
    test_queue_put(&dlq, queue, "big-1", big, size);
    free(big);
    test_queue_put(&dlq, queue, "small-1", "{}", 2);
    test_run_until(l.loop, log.count == 1);
    assert_int_equal(log.count, 1);
    assert_string_equal(log.ids[0], "small-1");
    test_message_t dead;
    assert_true(dead_lettered(&dlq, &l, "big-1", &dead));
    link_close(&l);
    test_queue_delete(&dlq, queue);
    test_queue_close(&dlq);
}

/* A queue that exists with other arguments: the broker refuses the
 * consumer (406), publishing goes on meanwhile, and once the queue is
 * gone the consumer starts on its own. */
static void test_a_refused_consumer_leaves_publishing_alone_and_tries_again(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("refused", queue, sizeof(queue), key, sizeof(key));
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    amqp_queue_declare(probe.conn, TEST_AMQP_CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    test_amqp_check(probe.conn, "declaring a queue without dead-lettering");
    link_t l;
    link_open(&l, test_amqp_url(), 3000);
    consumer_log_t log = {0};
    consume(&l, &log, queue, key, 10, 0, NULL);
    test_run_until(l.loop, broker_is_up(l.broker));
    broker_message_t m = event("unit.refused.other", "x-1", "{}", NULL);
    publish_and_confirm(&l, &m, 1); /* the connection is fine */
    assert_false(broker_is_consuming(l.broker));
    assert_true(broker_is_up(l.broker));
    assert_int_equal(log.count, 0);
    test_queue_delete(&probe, queue);
    wait_for_queue(&l, queue); /* declared again, this time by the consumer */
    broker_message_t e = event(key, "x-2", "{}", NULL);
    publish_and_confirm(&l, &e, 1);
    test_run_until(l.loop, log.count == 1);
    assert_int_equal(log.count, 1);
    assert_string_equal(log.ids[0], "x-2");
    assert_true(broker_is_consuming(l.broker));
    link_close(&l);
    test_queue_delete(&probe, queue);
    test_queue_close(&probe);
}

/* Each delay has its queue: a message put into the long one first comes
 * back after one put into the short one. */
static void test_a_long_retry_delay_does_not_hold_up_a_short_one(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("delays", queue, sizeof(queue), key, sizeof(key));
    static const uint32_t delays[] = {1500, 100};
    link_t l;
    consumer_log_t log = {0};
    consuming_link(&l, &log, queue, key, 10, 2, delays);
    char slow[160], fast[160];
    broker_retry_queue_name(queue, delays[0], slow, sizeof(slow));
    broker_retry_queue_name(queue, delays[1], fast, sizeof(fast));
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    test_queue_put(&probe, slow, "slow-1", "{}", 2);
    test_queue_put(&probe, fast, "fast-1", "{}", 2);
    test_run_until(l.loop, log.count == 2);
    assert_int_equal(log.count, 2);
    assert_string_equal(log.ids[0], "fast-1");
    assert_string_equal(log.ids[1], "slow-1");
    link_close(&l);
    test_queue_close(&probe);
    delete_queues((const char *const[]){queue, slow, fast, NULL});
}

/* A retry queue deleted under the consumer: the copy has nowhere to go
 * (mandatory: it comes back), so the delivery is dead-lettered, not lost. */
static void test_a_retry_with_no_retry_queue_is_dead_lettered_not_lost(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("noretry", queue, sizeof(queue), key, sizeof(key));
    test_queue_t dlq;
    test_queue_open_on(&dlq, BROKER_DEAD_LETTER_EXCHANGE, "#");
    static const uint32_t delays[] = {200};
    poison_id = "n-1";
    link_t l;
    consumer_log_t log = {.policy = retry_the_poison};
    consuming_link(&l, &log, queue, key, 10, 1, delays);
    char retry_queue[160];
    broker_retry_queue_name(queue, delays[0], retry_queue, sizeof(retry_queue));
    test_queue_delete(&dlq, retry_queue);
    broker_message_t m = event(key, "n-1", "{}", NULL);
    publish_and_confirm(&l, &m, 1);
    test_message_t dead;
    assert_true(dead_lettered(&dlq, &l, "n-1", &dead));
    assert_int_equal(log.count, 1);
    link_close(&l);
    test_queue_delete(&dlq, queue);
    test_queue_close(&dlq);
}

/* The consuming port closed while the link goes on: the broker stops
 * handing out messages, which stay in the queue, ready. */
static void test_a_closed_consumer_port_stops_the_consumer(void **state)
{
    (void)state;
    char queue[96], key[96];
    unique_names("orphan", queue, sizeof(queue), key, sizeof(key));
    link_t l;
    consumer_log_t log = {0};
    consuming_link(&l, &log, queue, key, 10, 0, NULL);
    test_run_until(l.loop, broker_is_consuming(l.broker));
    broker_port_t *publisher = broker_port_open(l.broker, l.queue);
    broker_port_close(l.port);
    l.port = publisher;
    test_run_until(l.loop, !broker_is_consuming(l.broker));
    assert_false(broker_is_consuming(l.broker));
    broker_message_t m[3] = {event(key, "o-1", "{}", NULL), event(key, "o-2", "{}", NULL),
                             event(key, "o-3", "{}", NULL)};
    publish_and_confirm(&l, m, 3);
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    test_run_until(l.loop, test_queue_ready(&probe, queue) == 3);
    assert_int_equal(test_queue_ready(&probe, queue), 3);
    assert_int_equal(log.count, 0);
    link_close(&l);
    test_queue_close(&probe);
    delete_queues((const char *const[]){queue, NULL});
}

static void test_consumer_configs_are_checked_and_a_link_has_one_consumer(void **state)
{
    (void)state;
    const char *bindings[] = {"a.*", NULL}, *none[] = {NULL}, *empty[] = {"", NULL};
    static const uint32_t delays[] = {100, 0};
    broker_consumer_config_t ok = {.queue = "q", .bindings = bindings, .prefetch = 1};
    assert_null(broker_consumer_problem(&ok));
    broker_consumer_config_t c = ok;
    c.queue = "";
    assert_non_null(broker_consumer_problem(&c));
    c = ok, c.bindings = none;
    assert_non_null(broker_consumer_problem(&c));
    c = ok, c.bindings = empty;
    assert_non_null(broker_consumer_problem(&c));
    c = ok, c.prefetch = 0;
    assert_non_null(broker_consumer_problem(&c));
    c = ok, c.retries = BROKER_RETRIES_MAX + 1, c.retry_delays_ms = delays;
    assert_non_null(broker_consumer_problem(&c));
    c = ok, c.retries = 2, c.retry_delays_ms = delays; /* the second delay is 0 */
    assert_non_null(broker_consumer_problem(&c));
    c = ok, c.retries = 1, c.retry_delays_ms = NULL;
    assert_non_null(broker_consumer_problem(&c));

    link_t l;
    link_open(&l, test_amqp_url(), 3000);
    consumer_log_t log = {0};
    c = ok, c.prefetch = 0;
    assert_int_equal(broker_consume(l.port, &c, on_delivery, &log), -1);
    char queue[96], key[96];
    unique_names("once", queue, sizeof(queue), key, sizeof(key));
    consume(&l, &log, queue, key, 1, 0, NULL);
    assert_int_equal(broker_consume(l.port, &ok, on_delivery, &log), -1);
    broker_port_t *other = broker_port_open(l.broker, l.queue); /* one consumer per link, whichever port */
    assert_int_equal(broker_consume(other, &ok, on_delivery, &log), -1);
    broker_port_close(other);
    wait_for_queue(&l, queue);
    link_close(&l);
    delete_queues((const char *const[]){queue, NULL});
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
        cmocka_unit_test(test_consumed_messages_arrive_whole_and_acked_ones_are_gone),
        cmocka_unit_test(test_unsettled_deliveries_come_back_redelivered),
        cmocka_unit_test(test_a_retried_delivery_comes_back_after_each_delay_then_is_dead_lettered),
        cmocka_unit_test(test_a_dead_lettered_delivery_goes_to_the_dead_letters_at_once),
        cmocka_unit_test(test_the_prefetch_limit_bounds_what_is_handed_out),
        cmocka_unit_test(test_an_oversized_message_is_dead_lettered_unread),
        cmocka_unit_test(test_a_refused_consumer_leaves_publishing_alone_and_tries_again),
        cmocka_unit_test(test_a_long_retry_delay_does_not_hold_up_a_short_one),
        cmocka_unit_test(test_a_retry_with_no_retry_queue_is_dead_lettered_not_lost),
        cmocka_unit_test(test_a_closed_consumer_port_stops_the_consumer),
        cmocka_unit_test(test_consumer_configs_are_checked_and_a_link_has_one_consumer),
    };
    return cmocka_run_group_tests_name("broker", tests, NULL, NULL);
}
