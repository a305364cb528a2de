/* Tests for consumer.c against the test stack's RabbitMQ: a delivery is a
 * unit of work that continues the producer's trace; it is acked only when
 * its last step has ended; a failed one comes back for its next attempt
 * and is dead-lettered after the last; a stopped consumer leaves what it
 * held to the broker. */
#include "test_support.h"

#include <unistd.h>

#include "consumer.h"
#include "metrics.h"
#include "test_amqp.h"

#define TRACE_ID "0af7651916cd43dd8448eb211c80319c"

typedef struct seen {
    size_t jobs;
    char trace_ids[8][TRACE_ID_HEX_LEN + 1];
    char fields[8][128];
    unsigned attempts[8];
    bool redelivered[8];
    bool fail;         /* fail every job */
    bool hold;         /* end each job only when `release` is set */
    context_t *held;   /* the job held */
    size_t settled[3]; /* by broker_settlement_t */
} seen_t;

static void handle(context_t *job, const broker_delivery_t *d, void *data)
{
    seen_t *s = data;
    size_t i = s->jobs < 8 ? s->jobs : 7;
    s->jobs++;
    snprintf(s->trace_ids[i], sizeof(s->trace_ids[i]), "%s", job->trace.trace_id);
    snprintf(s->fields[i], sizeof(s->fields[i]), "%s=%s %s=%s", job->fields[0].key, job->fields[0].value.string.base,
             job->fields[1].key, job->fields[1].value.string.base);
    s->attempts[i] = d->attempt;
    s->redelivered[i] = d->redelivered;
    assert_ptr_equal(consumer_delivery(job), d);
    if (s->fail)
        context_fail(job, 503, "unavailable", "the test says no");
    if (s->hold)
        s->held = context_hold(job);
}

static seen_t *watched;

/* test_run_for's check: nothing was settled while the job was held. */
static void nothing_settled(void *data)
{
    (void)data;
    assert_int_equal(watched->settled[BROKER_ACK] + watched->settled[BROKER_RETRY], 0);
}

static void settled(const broker_delivery_t *d, broker_settlement_t how, double seconds, void *data)
{
    seen_t *s = data;
    (void)d;
    assert_true(seconds >= 0);
    s->settled[how]++;
}

typedef struct fixture {
    worker_settings_t settings;
    worker_t worker;
    consumer_t consumer;
    char queue[96], key[96];
    seen_t seen;
} fixture_t;

static fixture_t *open_consumer(const char *what, size_t retries, const uint32_t *delays)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->queue, sizeof(f->queue), "unit.consumer.%s.%d", what, (int)getpid());
    snprintf(f->key, sizeof(f->key), "unit.consumer.%s.%d.event", what, (int)getpid());
    f->settings = test_settings("test", 0);
    f->settings.resources = WORKER_BROKER;
    broker_config_t broker = {.url = test_amqp_url(),
                              .name = "unit-test",
                              .heartbeat_s = 10,
                              .connect_timeout_ms = 2000,
                              .confirm_timeout_ms = 5000};
    f->settings.broker = broker_start(&broker);
    assert_non_null(f->settings.broker);
    test_worker_open(&f->worker, 0, &f->settings);
    const char *bindings[] = {f->key, NULL};
    broker_consumer_config_t config = {
        .queue = f->queue, .bindings = bindings, .prefetch = 10, .retries = retries, .retry_delays_ms = delays};
    assert_int_equal(consumer_start(&f->consumer, &f->worker, &config, handle, settled, &f->seen), 0);
    test_run_until(f->worker.loop, broker_is_consuming(f->settings.broker));
    assert_true(broker_is_consuming(f->settings.broker));
    return f;
}

static void close_consumer(fixture_t *f, const char *const *queues)
{
    consumer_stop(&f->consumer);
    broker_t *broker = f->settings.broker;
    test_worker_close(&f->worker);
    broker_stop(broker);
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    for (size_t i = 0; queues != NULL && queues[i] != NULL; i++)
        test_queue_delete(&probe, queues[i]);
    test_queue_delete(&probe, f->queue);
    test_queue_close(&probe);
    free(f);
}

static void on_confirm(void *data, size_t confirmed, const char *error)
{
    (void)error;
    *(int *)data = (int)confirmed + 1;
}

static void publish(fixture_t *f, const char *id)
{
    broker_message_t m = {.exchange = BROKER_EVENTS_EXCHANGE,
                          .routing_key = f->key,
                          .message_id = id,
                          .traceparent = "00-" TRACE_ID "-b7ad6b7169203331-01",
                          .body = "{}",
                          .body_len = 2};
    int outcome = 0;
    assert_int_equal(broker_publish(f->worker.broker, &m, 1, on_confirm, &outcome), 0);
    test_run_until(f->worker.loop, outcome != 0);
    assert_int_equal(outcome, 2); /* one confirmed */
}

static uint32_t ready(const char *queue)
{
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    uint32_t n = test_queue_ready(&probe, queue);
    test_queue_close(&probe);
    return n;
}

/* The job continues the producer's trace, logs with the message's id and
 * type, and is acked once it has ended: held, it is unsettled; let go, it
 * is acked and gone for good. */
static void test_a_delivery_is_a_unit_of_work_acked_when_it_ends(void **state)
{
    (void)state;
    fixture_t *f = open_consumer("ack", 0, NULL);
    f->seen.hold = true;
    publish(f, "c-1");
    test_run_until(f->worker.loop, f->seen.jobs == 1);
    assert_int_equal(f->seen.jobs, 1);
    assert_string_equal(f->seen.trace_ids[0], TRACE_ID);
    char expected[160];
    snprintf(expected, sizeof(expected), "message_id=c-1 event_type=%s", f->key);
    assert_string_equal(f->seen.fields[0], expected);
    assert_int_equal(f->worker.busy, 1); /* the job is alive */
    watched = &f->seen;
    test_run_for(f->worker.loop, 300, nothing_settled, NULL); /* not before it ends */
    context_release(f->seen.held);
    test_run_until(f->worker.loop, f->seen.settled[BROKER_ACK] == 1);
    assert_int_equal(f->seen.settled[BROKER_ACK], 1);
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    char line[256];
    snprintf(line, sizeof(line), "messaging_process_duration_seconds_count{destination=\"%s\",outcome=\"acked\"} 1",
             f->queue);
    test_assert_contains(out.data, line);
    buffer_free(&out);
    const char *const none[] = {NULL};
    close_consumer(f, none);
}

/* A failed job comes back for its next attempt after the delay, and is
 * dead-lettered once it has failed the last. */
static void test_a_failed_job_is_retried_then_dead_lettered(void **state)
{
    (void)state;
    static const uint32_t delays[] = {100};
    test_queue_t dead;
    test_queue_open_on(&dead, BROKER_DEAD_LETTER_EXCHANGE, "#");
    fixture_t *f = open_consumer("retry", 1, delays);
    f->seen.fail = true;
    publish(f, "c-2");
    test_run_until(f->worker.loop, f->seen.settled[BROKER_DEAD_LETTER] == 1);
    assert_int_equal(f->seen.jobs, 2);
    assert_int_equal(f->seen.attempts[0], 1);
    assert_int_equal(f->seen.attempts[1], 2);
    assert_string_equal(f->seen.trace_ids[1], TRACE_ID); /* the retry still belongs to the trace */
    assert_int_equal(f->seen.settled[BROKER_RETRY], 1);
    assert_int_equal(f->seen.settled[BROKER_DEAD_LETTER], 1);
    test_message_t m[4];
    size_t got = 0;
    bool found = false;
    while (!found && (got = test_queue_take(&dead, f->worker.loop, m, 1)) == 1)
        found = strcmp(m[0].message_id, "c-2") == 0;
    assert_true(found);
    char retry_queue[160];
    broker_retry_queue_name(f->queue, delays[0], retry_queue, sizeof(retry_queue));
    const char *const queues[] = {retry_queue, NULL};
    close_consumer(f, queues);
    test_queue_delete(&dead, dead.name);
    test_queue_close(&dead);
}

/* Stopped with a job under way: the job is cancelled, its delivery left
 * unsettled, and the broker has it again for the next consumer. */
static void test_a_stopped_consumer_leaves_its_deliveries_to_the_broker(void **state)
{
    (void)state;
    fixture_t *f = open_consumer("stop", 0, NULL);
    f->seen.hold = true;
    publish(f, "c-3");
    test_run_until(f->worker.loop, f->seen.jobs == 1);
    assert_int_equal(f->seen.jobs, 1);
    char queue[96];
    snprintf(queue, sizeof(queue), "%s", f->queue);
    consumer_stop(&f->consumer);
    assert_true(context_is_cancelled(f->seen.held));
    context_release(f->seen.held);
    assert_int_equal(f->seen.settled[BROKER_ACK] + f->seen.settled[BROKER_RETRY], 0);
    broker_t *broker = f->settings.broker;
    test_worker_close(&f->worker);
    broker_stop(broker);
    free(f);
    /* back in the queue, ready */
    uint64_t deadline = loop_now_ms() + TEST_WAIT_MS;
    while (ready(queue) != 1 && loop_now_ms() < deadline)
        usleep(20000);
    assert_int_equal(ready(queue), 1);
    test_queue_t probe;
    test_queue_open(&probe, "unit.none");
    test_queue_delete(&probe, queue);
    test_queue_close(&probe);
}

int main(void)
{
    log_init("unit-test", LOG_WARN);
    broker_metrics_register();
    consumer_metrics_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_delivery_is_a_unit_of_work_acked_when_it_ends),
        cmocka_unit_test(test_a_failed_job_is_retried_then_dead_lettered),
        cmocka_unit_test(test_a_stopped_consumer_leaves_its_deliveries_to_the_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
