/* outbox.h - the transactional outbox relay: events from PostgreSQL to
 * RabbitMQ, none lost, none invented.
 *
 * A service never publishes an event from a handler: if it did, a crash
 * between its COMMIT and the publish would lose the event, and a publish
 * before a COMMIT that then fails would invent one. Instead it writes the
 * event as a row of <schema>.outbox in the same transaction as the change
 * the event describes, so the event exists exactly when the change does.
 * The relay, running on worker 0, then carries the rows to the broker:
 *
 *   1. claim: the oldest pending rows, in `seq` order (the order the rows
 *      were written, which for one aggregate - one order, one product - is
 *      the order its changes were committed, since they lock its row);
 *   2. publish them as one batch (broker.h) and wait for the confirms;
 *   3. mark the confirmed prefix as published (published_at).
 *
 * A crash, a broker outage or a database outage anywhere in between leaves
 * rows unmarked, and they are published again later: at least once, in
 * order. Consumers drop the duplicates by the event id (the AMQP
 * message_id). One case the relay cannot keep in order: when the broker
 * refuses one message (a nack: an internal error, a full queue with
 * reject-publish) but takes the ones after it, those reach consumers
 * before the refused one is sent again. Nothing is lost: the relay marks
 * nothing from the refused message on.
 *
 * When does it run? An insert into the outbox fires a NOTIFY at commit
 * (the trigger installed by public.oms_install_outbox,
 * infrastructure/postgres/init/002_outbox.sql); the relay LISTENs on
 * worker 0's first pool connection and starts a batch at once. It also sweeps every
 * sweep_interval_ms, which covers notifications lost while it was
 * disconnected, and it goes on without pause while full batches come back.
 *
 * Several processes of one service may run: the claim also takes (or
 * renews) a lease in <schema>.outbox_relay, so one relay publishes at a
 * time (the others' claims find nothing) and events keep their order;
 * when the holder dies, another takes over once the lease expires.
 *
 * Metrics: oms_outbox_pending (rows not yet published, counted about once
 * a second), oms_outbox_publish_lag_seconds (from the row's created_at,
 * its transaction's start, to its confirm), and the broker's
 * messaging_messages_total.
 */
#ifndef OMS_OUTBOX_H
#define OMS_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "chore.h"
#include "pg.h"
#include "worker.h"

#define OUTBOX_STATEMENT_COUNT 4
#define OUTBOX_SCHEMA_MAX      32

typedef struct outbox_config {
    char schema[OUTBOX_SCHEMA_MAX]; /* "users": tables users.outbox and users.outbox_relay */
    size_t batch_size;              /* OUTBOX_BATCH_SIZE: rows per batch (1..BROKER_BATCH_MAX) */
    uint64_t sweep_interval_ms;     /* OUTBOX_SWEEP_MS: look for rows at least this often */
    uint64_t lease_ms;              /* how long a relay's claim keeps others out */
    int retention_hours;            /* OUTBOX_RETENTION_HOURS: published rows kept this long */
} outbox_config_t;

typedef struct outbox_relay outbox_relay_t;

/* Checks a schema name: lower-case letters, digits and '_', starting with
 * a letter, shorter than OUTBOX_SCHEMA_MAX. Returns 0 or -1. */
int outbox_check_schema(const char *schema);

/* Writes the relay's prepared statements for config->schema into `out`
 * (their text is allocated once and kept for the process). Returns 0, or
 * -1 for a bad schema name or no memory. */
int outbox_statements(const outbox_config_t *config, pg_statement_t out[OUTBOX_STATEMENT_COUNT]);

/* Declares oms_outbox_*; call once before threads start. */
void outbox_metrics_register(void);

/* Starts the relay on `worker`, whose pool must have prepared
 * outbox_statements() and whose service declared WORKER_BROKER: the
 * pool's LISTEN (pg_pool_listen, so before the loop runs) and the chore.
 * The config is copied. Returns NULL (logged) on failure. */
outbox_relay_t *outbox_relay_start(worker_t *worker, const outbox_config_t *config);

/* Stops the chore (a batch under way is cancelled; what the broker had
 * confirmed is still marked) and the wake-ups. */
void outbox_relay_stop(outbox_relay_t *relay);

#endif
