/* consumer.h - a queue's deliveries as units of work on a worker's loop.
 *
 * broker.h hands a consuming loop raw deliveries that must be settled;
 * this turns each one into a unit of work (context.h) like an HTTP
 * request: its trace continues the producer's (the message's traceparent),
 * its log lines carry the message's id and type, and it ends the way
 * every context ends, when its last step has finished. How it ended
 * settles the delivery:
 *
 *   ended without a failure      ack: the broker forgets it;
 *   failed (context_fail, or a   retry: back after the next attempt's delay,
 *   step that could not go on)   dead-lettered past the last attempt.
 *
 * A message that can never succeed (not JSON, an unknown type) fails the
 * same way: it goes through its attempts and ends in oms.dead-letters,
 * while the deliveries behind it go on (the prefetch window holds many).
 *
 * A handler that drops duplicates, records what it did in the same
 * transaction as the dedupe key, and only then lets the context end gets
 * effectively-once processing from the broker's at-least-once delivery:
 * a crash before the end means a redelivery, which finds the record.
 *
 * While the worker shuts down, new deliveries are not started: they are
 * dropped unsettled, and the broker delivers them again once this
 * process's connection has gone. consumer_stop orphans the jobs still
 * under way the same way.
 *
 * Metrics: messaging_process_duration_seconds{destination,outcome} (from
 * delivery to settlement; outcome acked, retried, dead_lettered).
 */
#ifndef OMS_CONSUMER_H
#define OMS_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"
#include "context.h"

typedef struct consumer consumer_t;

/* Starts the work for one delivery on `job` (which it may simply let go;
 * the delivery stays valid as long as the job). */
typedef void (*consumer_fn)(context_t *job, const broker_delivery_t *delivery, void *data);

/* Told how each delivery was settled, after `seconds` of processing (for
 * a service's own counters). Optional. */
typedef void (*consumer_settled_fn)(const broker_delivery_t *delivery, broker_settlement_t how, double seconds,
                                    void *data);

struct consumer {
    worker_t *worker;
    const char *queue;
    size_t retries;
    consumer_fn handle;
    consumer_settled_fn settled;
    void *data;
    struct consumer_job *jobs; /* under way */
    bool stopped;
};

/* Declares messaging_process_duration_seconds; call before threads start. */
void consumer_metrics_register(void);

/* Makes `worker`'s broker port the link's consumer of config->queue
 * (broker_consume: declared, bound, retried as configured). `config` is
 * copied by the broker; its queue name must outlive the consumer. Returns
 * 0, or -1 (logged: no broker port, a bad config, a consumer already). */
int consumer_start(consumer_t *consumer, worker_t *worker, const broker_consumer_config_t *config, consumer_fn handle,
                   consumer_settled_fn settled, void *data);

/* The delivery a job works on. */
const broker_delivery_t *consumer_delivery(const context_t *job);

/* Stops starting jobs; those under way are cancelled and their deliveries
 * left to the broker to deliver again. Call before the worker closes. */
void consumer_stop(consumer_t *consumer);

#endif
