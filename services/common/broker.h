/* broker.h - RabbitMQ, on a thread of its own.
 *
 * librabbitmq (rabbitmq-c) blocks: connecting, logging in, publishing and
 * waiting for frames are all blocking calls. So no event loop calls it.
 * A process has one broker link: a thread that owns the AMQP connection
 * and does everything the broker is asked, while the workers' loops hand
 * it requests through a queue and get the answers back as messages on
 * their own loop (the same eventfd-backed queue work_pool.h uses):
 *
 *     worker loop --broker_publish--> [requests] --eventfd--> link thread
 *     link thread --confirms--> worker's h2o_multithread_queue --> callback
 *
 * The link thread's loop polls two things at once: the broker's socket and
 * an eventfd that says "requests are waiting", so it wakes for whichever
 * comes first and never sleeps on one while the other needs it. Between
 * the two it lets librabbitmq send and check heartbeats, which is how a
 * broker that has stopped answering (frozen, or its host gone) is noticed.
 *
 * Connecting: at start and after any failure, with a backoff that doubles
 * from 100 ms to 5 s; each connection declares the topology DESIGN.md
 * names, idempotently (declaring what exists is a no-op): the topic
 * exchange oms.events, the dead-letter exchange oms.dlx and its queue
 * oms.dead-letters. While it is down, requests fail at once ("RabbitMQ is
 * unreachable"), never wait.
 *
 * Publishing (channel 1, in confirm mode): each message goes out
 * persistent (delivery mode 2), with message_id, type, timestamp,
 * content_type application/json and a traceparent header, and a batch is
 * answered once the broker has confirmed (or refused) all of it - or the
 * connection failed, or no confirm came within confirm_timeout_ms (the
 * connection is then dropped and reopened). While the broker blocks
 * publishers (connection.blocked: a memory or disk alarm), batches fail at
 * once rather than wait in a send it would never read. The answer says how many of
 * the batch, counted from its first message, are confirmed: what a caller
 * may now mark as sent. Messages after the first unconfirmed one may or
 * may not have reached the broker, so a caller sends them again (at least
 * once: consumers drop duplicates by message_id).
 *
 * Consuming (channel 2, broker_consume): one queue per link, declared with
 * its bindings on oms.events and dead-lettering to oms.dlx, read with a
 * prefetch limit and manual acks. Each delivery is copied whole and sent
 * to the consuming port's loop the way confirms are; the loop settles it
 * (broker_settle) and the settlement comes back to the link as a request:
 *   ack          done: the broker forgets it;
 *   retry        published again, confirmed, to a retry queue whose
 *                per-queue TTL holds it for that attempt's delay and then
 *                dead-letters it back into the consumed queue (one retry
 *                queue per delay, so a long delay never holds up a short
 *                one); only once that copy is confirmed is the delivery
 *                acked, so a crash in between delivers it twice. A copy
 *                the broker refuses or cannot route (a retry queue
 *                deleted) dead-letters the delivery instead. While the
 *                broker blocks publishers, retries wait. Past the last
 *                attempt it is dead-lettered;
 *   dead-letter  rejected without requeue: oms.dlx routes it to
 *                oms.dead-letters.
 * Deliveries not settled when the connection drops (or the process dies)
 * are delivered again by the broker, flagged `redelivered`; settlements
 * of a connection that has gone are dropped. So a consumer sees every
 * message at least once, and drops duplicates by message_id itself. (The
 * broker's own dead-lettering, out of a retry queue and into
 * oms.dead-letters, is at-most-once for classic queues: a broker crash in
 * the middle of it may lose that message.)
 *
 * A consumer the broker refuses (its queue declared elsewhere with other
 * arguments) or cancels (its queue deleted) closes only its channel and is
 * tried again; publishing goes on. broker_is_consuming and the gauge
 * messaging_consumer_up say whether it consumes.
 *
 * Metrics: messaging_messages_total{destination,operation,outcome}
 * (publish: confirmed, nacked, failed; receive: delivered; settle: acked,
 * retried, dead_lettered), messaging_connection_up, messaging_consumer_up,
 * and for the consumed queue messaging_queue_messages{destination,state}
 * (ready: a passive declare each second on a channel of its own; unacked:
 * delivered to this process and not settled yet) and
 * messaging_queue_consumers{destination}.
 */
#ifndef OMS_BROKER_H
#define OMS_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#define BROKER_EVENTS_EXCHANGE      "oms.events"
#define BROKER_DEAD_LETTER_EXCHANGE "oms.dlx"
#define BROKER_DEAD_LETTER_QUEUE    "oms.dead-letters"
#define BROKER_BATCH_MAX            1000 /* messages in one broker_publish */

typedef struct broker_config {
    const char *url;             /* amqp://user:password@host:port/vhost (AMQP_URL) */
    const char *name;            /* the service: connection name and app_id */
    int heartbeat_s;             /* AMQP heartbeat; a silent broker is dropped after two */
    uint64_t connect_timeout_ms; /* TCP connect, login and each declaration */
    uint64_t confirm_timeout_ms; /* a batch not confirmed by then drops the connection */
} broker_config_t;

/* One message to publish. The strings must stay valid until the batch's
 * callback has run. */
typedef struct broker_message {
    const char *exchange;    /* BROKER_EVENTS_EXCHANGE */
    const char *routing_key; /* "user.registered"; also the message's type */
    const char *message_id;  /* the event id */
    const char *traceparent; /* W3C trace context header, or NULL */
    const char *body;        /* JSON */
    size_t body_len;
    int64_t timestamp; /* seconds since the epoch; 0: none */
} broker_message_t;

/* How a batch ended: `confirmed` messages from the first are confirmed
 * (== count when all were); `error` says why the rest were not (NULL when
 * all were). Runs on the loop of the port that published. */
typedef void (*broker_confirm_fn)(void *data, size_t confirmed, const char *error);

typedef struct broker broker_t;
typedef struct broker_port broker_port_t;

/* Checks AMQP_URL's shape (amqp://, a host, a port number if any, at most
 * one path segment). Returns NULL when usable, else what is wrong. */
const char *broker_url_problem(const char *url);

/* Declares the messaging_* metrics; call once before threads start. */
void broker_metrics_register(void);

/* Starts the link thread, which begins connecting at once. The config is
 * copied. Returns NULL (logged) when the thread cannot start. */
broker_t *broker_start(const broker_config_t *config);

/* Closes the connection and joins the thread. Ports must have been closed;
 * batches still under way are dropped without their callbacks. */
void broker_stop(broker_t *broker);

/* Whether the connection is open and the topology declared (any thread). */
bool broker_is_up(broker_t *broker);

/* Why it is down, "" when up (copied into `out`; any thread). */
void broker_last_error(broker_t *broker, char *out, size_t size);

/* A loop's end of the link: answers to its requests are delivered as
 * messages on `queue` (the loop's h2o_multithread_queue_t). NULL on
 * allocation failure. */
broker_port_t *broker_port_open(broker_t *broker, h2o_multithread_queue_t *queue);

/* Detaches the port: batches under way will not call back, and those not
 * yet published are not published. Their messages may still be read by
 * the link until it has dropped them, so a caller that closes a port with
 * batches under way leaves their data to the process exit (the server
 * does so only past its shutdown deadline). Call on the port's loop. */
void broker_port_close(broker_port_t *port);

/* Batches published through this port not answered yet (for shutdown). */
size_t broker_port_pending(const broker_port_t *port);

/* Publishes `count` (1..BROKER_BATCH_MAX) messages in order, then calls
 * `cb(data, confirmed, error)` on the port's loop - never before this
 * returns. `messages` must stay valid until then. Returns 0, or -1 when
 * nothing was queued (count out of range, out of memory): `cb` will not
 * run. */
int broker_publish(broker_port_t *port, const broker_message_t *messages, size_t count, broker_confirm_fn cb,
                   void *data);

/* --- consuming ----------------------------------------------------------------- */

#define BROKER_RETRIES_MAX 8

typedef struct broker_consumer_config {
    const char *queue;               /* "notification.events" */
    const char *const *bindings;     /* routing keys bound on oms.events ("order.*"), NULL-terminated */
    uint16_t prefetch;               /* deliveries the broker lets this consumer hold unsettled */
    size_t retries;                  /* 0..BROKER_RETRIES_MAX: attempts after the first */
    const uint32_t *retry_delays_ms; /* `retries` delays: before attempt 2, 3, ... (each > 0) */
} broker_consumer_config_t;

/* One message as the consuming loop gets it: every string is a copy,
 * NUL-terminated, valid until broker_settle. */
typedef struct broker_delivery {
    h2o_multithread_message_t super; /* private */
    const char *type;                /* the event type: the message's `type`, else its routing key */
    const char *routing_key;         /* the key it was published with (kept across retries) */
    const char *message_id;          /* "" when the message has none */
    const char *traceparent;         /* "" when the message has none */
    const char *body;                /* not validated: as the publisher sent it */
    size_t body_len;
    unsigned attempt; /* 1 on the first delivery; 2.. after retries */
    bool redelivered; /* delivered before to a consumer that did not settle it */
    /* private: */
    const char *content_type, *app_id;
    uint64_t timestamp, tag, generation, retry_tag, deadline_ms;
    int settle;
    h2o_linklist_t link;
} broker_delivery_t;

typedef enum broker_settlement { BROKER_ACK, BROKER_RETRY, BROKER_DEAD_LETTER } broker_settlement_t;

/* A delivery, on the consuming port's loop. It must be settled, now or
 * later, with broker_settle (on the same loop). */
typedef void (*broker_delivery_fn)(void *data, broker_delivery_t *delivery);

/* Checks a consumer config: NULL when usable, else what is wrong. */
const char *broker_consumer_problem(const broker_consumer_config_t *config);

/* Makes `port` the link's consumer: from now on (and after every
 * reconnection) the link declares the queues and consumes, and calls
 * `cb(data, delivery)` on the port's loop for each message. The config is
 * copied. Once per link. Returns 0, or -1 (config problem, a consumer
 * already, out of memory). */
int broker_consume(broker_port_t *port, const broker_consumer_config_t *config, broker_delivery_fn cb, void *data);

/* Whether the consumer is consuming (any thread). */
bool broker_is_consuming(broker_t *broker);

/* Settles (and frees) a delivery; see the top of this file. On the port's
 * loop, before the port closes (a delivery held then: broker_delivery_drop). */
void broker_settle(broker_port_t *port, broker_delivery_t *delivery, broker_settlement_t how);

/* Frees a delivery without settling it: the broker delivers it again once
 * this connection has gone (for a port closing with deliveries held). */
void broker_delivery_drop(broker_delivery_t *delivery);

/* The retry queue of `queue` for a delay ("notification.events.retry.1000ms"). */
void broker_retry_queue_name(const char *queue, uint32_t delay_ms, char *out, size_t size);

#endif
