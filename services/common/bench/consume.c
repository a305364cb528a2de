/* consume.c - a benchmark: how fast the broker link's consumer drains a
 * backlog, every message acked (broker.h, "Consuming"). scripts/bench.sh
 * consume runs it against a private RabbitMQ.
 *
 *   1. a first link declares the queue (consumer, then its port closes, so
 *      nothing consumes) and publishes EVENTS messages to it through
 *      oms.events, in confirmed batches of 1000, two in flight;
 *   2. a second link consumes the backlog with PREFETCH, acking each
 *      delivery on arrival; the time from broker_consume until the last
 *      delivery is the drain.
 *
 *   BENCH_AMQP_URL [amqp://guest:guest@127.0.0.1:5672/]  EVENTS [100000]
 *   PREFETCH [200]  BODY_BYTES [300] (an event's size, as user.registered)
 *
 * Not part of the lab's system: it exists to be measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "loop_timer.h"

#define BATCH    1000
#define QUEUE    "bench.consume"
#define KEY      "bench.consume.event"
#define LIMIT_MS 600000 /* a phase that takes longer than this has failed */

typedef struct bench {
    h2o_evloop_t *loop;
    broker_port_t *port;
    size_t received, confirmed, batches_out;
    bool failed;
} bench_t;

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process has used, all threads. */
static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

static void on_confirm(void *data, size_t confirmed, const char *error)
{
    bench_t *b = data;
    b->confirmed += confirmed;
    b->batches_out--;
    if (error != NULL) {
        fprintf(stderr, "bench-consume: a batch failed: %s\n", error);
        b->failed = true;
    }
}

static void on_delivery(void *data, broker_delivery_t *d)
{
    bench_t *b = data;
    b->received++;
    broker_settle(b->port, d, BROKER_ACK);
}

static void ignore(void *data, broker_delivery_t *d)
{
    (void)data;
    broker_delivery_drop(d);
}

/* Runs the loop until `done(b)` or the time limit; false on the limit. */
static bool run_until(bench_t *b, bool (*done)(const bench_t *, void *), void *arg)
{
    uint64_t deadline = loop_now_ms() + LIMIT_MS;
    while (!done(b, arg) && !b->failed) {
        if (loop_now_ms() > deadline)
            return false;
        h2o_evloop_run(b->loop, 10);
    }
    return !b->failed;
}

static bool link_up(const bench_t *b, void *arg)
{
    (void)b;
    return broker_is_up(arg);
}
static bool consuming(const bench_t *b, void *arg)
{
    (void)b;
    return broker_is_consuming(arg);
}
static bool not_consuming(const bench_t *b, void *arg)
{
    (void)b;
    return !broker_is_consuming(arg);
}
static bool all_confirmed(const bench_t *b, void *arg)
{
    return b->confirmed >= *(size_t *)arg && b->batches_out == 0;
}
static bool window_free(const bench_t *b, void *arg)
{
    (void)arg;
    return b->batches_out < 2;
}
static bool all_received(const bench_t *b, void *arg)
{
    return b->received >= *(size_t *)arg;
}

int main(void)
{
    log_init("bench-consume", LOG_WARN);
    config_errors_t errors = {0};
    const char *url = config_string("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/");
    size_t events = (size_t)config_long(&errors, "EVENTS", 100000, 1, 10000000);
    uint16_t prefetch = (uint16_t)config_long(&errors, "PREFETCH", 200, 1, 65535);
    size_t body_bytes = (size_t)config_long(&errors, "BODY_BYTES", 300, 2, 1 << 20);
    config_exit_on_error(&errors, "bench-consume");
    broker_metrics_register();

    bench_t b = {.loop = h2o_evloop_create()};
    if (b.loop == NULL || loop_timers_init(b.loop) != 0)
        return 1;
    h2o_multithread_queue_t *queue = h2o_multithread_create_queue(b.loop);
    broker_config_t config = {.url = url,
                              .name = "bench-consume",
                              .heartbeat_s = 10,
                              .connect_timeout_ms = 3000,
                              .confirm_timeout_ms = 30000};
    const char *bindings[] = {KEY, NULL};
    broker_consumer_config_t consumer = {.queue = QUEUE, .bindings = bindings, .prefetch = prefetch};

    /* 1. the queue, then the backlog */
    broker_t *producer = broker_start(&config);
    broker_port_t *declaring = producer != NULL ? broker_port_open(producer, queue) : NULL;
    if (declaring == NULL || broker_consume(declaring, &consumer, ignore, NULL) != 0 ||
        !run_until(&b, link_up, producer) || !run_until(&b, consuming, producer)) {
        fprintf(stderr, "bench-consume: cannot declare the queue on %s\n", url);
        return 1;
    }
    broker_port_close(declaring);
    b.port = broker_port_open(producer, queue);
    if (b.port == NULL || !run_until(&b, not_consuming, producer))
        return 1;
    char *body = malloc(body_bytes + 1);
    broker_message_t *messages = calloc(BATCH, sizeof(*messages));
    char(*ids)[40] = calloc(BATCH, sizeof(*ids));
    if (body == NULL || messages == NULL || ids == NULL)
        return 1;
    memset(body, 'x', body_bytes);
    body[0] = '{', body[body_bytes - 1] = '}', body[body_bytes] = '\0';
    for (size_t i = 0; i < BATCH; i++) {
        snprintf(ids[i], sizeof(ids[i]), "bench-%zu", i);
        messages[i] = (broker_message_t){.exchange = BROKER_EVENTS_EXCHANGE,
                                         .routing_key = KEY,
                                         .message_id = ids[i],
                                         .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                         .body = body,
                                         .body_len = body_bytes};
    }
    double t0 = seconds(), cpu0 = cpu_seconds();
    for (size_t sent = 0; sent < events;) {
        size_t n = events - sent < BATCH ? events - sent : BATCH;
        if (!run_until(&b, window_free, NULL) || broker_publish(b.port, messages, n, on_confirm, &b) != 0)
            return 1;
        b.batches_out++;
        sent += n;
    }
    if (!run_until(&b, all_confirmed, &events))
        return 1;
    double published = seconds() - t0, published_cpu = cpu_seconds() - cpu0;

    /* 2. the drain */
    broker_t *drainer = broker_start(&config);
    broker_port_t *port = drainer != NULL ? broker_port_open(drainer, queue) : NULL;
    if (port == NULL || !run_until(&b, link_up, drainer))
        return 1;
    broker_port_t *publishing = b.port;
    b.port = port;
    double t1 = seconds(), cpu1 = cpu_seconds();
    if (broker_consume(port, &consumer, on_delivery, &b) != 0 || !run_until(&b, all_received, &events)) {
        fprintf(stderr, "bench-consume: %zu of %zu delivered\n", b.received, events);
        return 1;
    }
    double drained = seconds() - t1, drained_cpu = cpu_seconds() - cpu1;
    printf("events %zu  body %zu B  prefetch %u\n", events, body_bytes, prefetch);
    printf("published (confirmed): %8.2f s  %9.0f events/s  CPU %.2f s (%.1f us/event)\n", published,
           (double)events / published, published_cpu, published_cpu * 1e6 / (double)events);
    printf("drained (acked):       %8.2f s  %9.0f events/s  CPU %.2f s (%.1f us/event)\n", drained,
           (double)events / drained, drained_cpu, drained_cpu * 1e6 / (double)events);

    broker_port_close(port);
    broker_stop(drainer); /* sends the acks still queued, then closes */
    broker_port_close(publishing);
    broker_stop(producer);
    h2o_multithread_destroy_queue(queue);
    free(queue);
    free(ids);
    free(messages);
    free(body);
    loop_timers_dispose();
    h2o_evloop_destroy(b.loop);
    return 0;
}
