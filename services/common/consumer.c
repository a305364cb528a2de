/* consumer.c - one context per delivery; how it ended settles it. */
#include "consumer.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

typedef struct consumer_job {
    context_t super;
    struct consumer_job *next, *prev; /* the consumer's jobs under way */
    consumer_t *consumer;             /* NULL once orphaned by consumer_stop */
    broker_delivery_t *delivery;
} consumer_job_t;

static metrics_family_t *process_duration;

void consumer_metrics_register(void)
{
    static const char *const labels[] = {"destination", "outcome", NULL};
    process_duration = metrics_histogram("messaging_process_duration_seconds",
                                         "Time from a delivery to its settlement, per consumed queue and outcome.",
                                         labels, metrics_duration_buckets, metrics_duration_bucket_count);
}

static const char *outcome_name(broker_settlement_t how)
{
    return how == BROKER_ACK ? "acked" : how == BROKER_RETRY ? "retried" : "dead_lettered";
}

static void unlink_job(consumer_t *consumer, consumer_job_t *job)
{
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        consumer->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
}

/* The cause was logged where it was found; the settlement says the rest. */
static void job_fail(context_t *c, int status, const char *code, const char *message)
{
    (void)c, (void)status, (void)code, (void)message;
}

static void job_release(context_t *c)
{
    consumer_job_t *job = (consumer_job_t *)c;
    consumer_t *consumer = job->consumer;
    broker_delivery_t *delivery = job->delivery;
    if (consumer == NULL) { /* the worker is closing: the broker delivers it again */
        broker_delivery_drop(delivery);
        free(job);
        return;
    }
    unlink_job(consumer, job);
    broker_settlement_t how = BROKER_ACK;
    if (c->failed || c->cancelled)
        how = delivery->attempt > consumer->retries ? BROKER_DEAD_LETTER : BROKER_RETRY;
    double seconds = (double)(loop_now_ns() - c->started_ns) / 1e9;
    metrics_histogram_observe(process_duration, (const char *const[]){consumer->queue, outcome_name(how)}, seconds);
    /* one line per delivery, as HTTP has one per request (the context's
     * own fields are gone with its pool; the delivery's are not) */
    log_at(how == BROKER_ACK ? LOG_INFO : LOG_WARN, &c->trace, "message processed",
           LOG_STRING("queue", consumer->queue), LOG_STRING("message_id", delivery->message_id),
           LOG_STRING("event_type", delivery->type), LOG_INT("attempt", delivery->attempt),
           LOG_STRING("outcome", outcome_name(how)), LOG_DOUBLE("duration_ms", seconds * 1000));
    if (consumer->settled != NULL)
        consumer->settled(delivery, how, seconds, consumer->data);
    broker_settle(consumer->worker->broker, delivery, how);
    free(job);
}

static const context_ops_t job_ops = {job_fail, job_release};

static void on_delivery(void *data, broker_delivery_t *delivery)
{
    consumer_t *consumer = data;
    consumer_job_t *job = NULL;
    if (consumer->stopped || consumer->worker->stopping || (job = calloc(1, sizeof(*job))) == NULL) {
        broker_delivery_drop(delivery); /* delivered again, by then to someone able to take it */
        return;
    }
    job->consumer = consumer;
    job->delivery = delivery;
    job->next = consumer->jobs;
    if (consumer->jobs != NULL)
        consumer->jobs->prev = job;
    consumer->jobs = job;
    context_init(&job->super, &job_ops, consumer->worker);
    trace_start_server_span(&job->super.trace, delivery->traceparent, strlen(delivery->traceparent));
    context_add_field(&job->super, "message_id", delivery->message_id);
    context_add_field(&job->super, "event_type", delivery->type);
    consumer->handle(&job->super, delivery, consumer->data);
    context_release(&job->super); /* the job ends with its last step */
}

int consumer_start(consumer_t *consumer, worker_t *worker, const broker_consumer_config_t *config, consumer_fn handle,
                   consumer_settled_fn settled, void *data)
{
    *consumer = (consumer_t){
        .worker = worker,
        .queue = config->queue,
        .retries = config->retries,
        .handle = handle,
        .settled = settled,
        .data = data,
    };
    if (worker->broker == NULL) {
        log_error(NULL, "a consumer needs RabbitMQ declared", LOG_STRING("queue", config->queue));
        return -1;
    }
    const char *problem = broker_consumer_problem(config);
    if (problem != NULL) {
        log_error(NULL, "invalid consumer", LOG_STRING("queue", config->queue), LOG_STRING("reason", problem));
        return -1;
    }
    if (broker_consume(worker->broker, config, on_delivery, consumer) != 0) {
        log_error(NULL, "cannot consume", LOG_STRING("queue", config->queue));
        return -1;
    }
    return 0;
}

const broker_delivery_t *consumer_delivery(const context_t *job)
{
    return ((const consumer_job_t *)job)->delivery;
}

void consumer_stop(consumer_t *consumer)
{
    consumer->stopped = true;
    while (consumer->jobs != NULL) {
        consumer_job_t *job = consumer->jobs;
        unlink_job(consumer, job);
        job->consumer = NULL;
        context_cancel(&job->super);
    }
}
