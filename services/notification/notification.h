/* notification.h - the notification service's shared declarations.
 *
 * The asynchronous end of the system: it consumes `notification.events`
 * (order, payment, inventory and user events from oms.events) and turns
 * each event into notifications on the channels routing.c assigns it:
 * email over SMTP (mailer.c), a webhook POST with a Slack-compatible
 * `text`, and the in-app inbox (inbox.c). Alertmanager's webhook
 * (alerts.c) feeds the same path.
 *
 *   delivery -> events.c: validate, find the recipient
 *            -> routing.c: what to send, rendered (a notice_t)
 *            -> dispatch.c: take it in once (dedupe by event id, the inbox
 *               rows and the deliveries in one transaction), send what
 *               is claimed, record how each send went
 *            -> ack; a failure: retried with a growing delay, then the
 *               dead letters (consumer.h)
 */
#ifndef NOTIFICATION_H
#define NOTIFICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "chore.h"
#include "consumer.h"
#include "http.h"
#include "log.h"
#include "pg.h"
#include "server.h"
#include "step.h"

#define NOTIFICATION_QUEUE    "notification.events"
#define NOTIFICATION_TEXT_MAX 16384 /* the longest rendered body */

typedef struct notification_config {
    const char *smtp_url;           /* SMTP_URL: smtp://host:port */
    const char *smtp_from;          /* SMTP_FROM: the sender address */
    const char *smtp_from_name;     /* SMTP_FROM_NAME */
    uint64_t smtp_timeout_ms;       /* SMTP_TIMEOUT_MS: one message, connecting included */
    long smtp_connections;          /* SMTP_CONNECTIONS: per worker, reused from message to message */
    const char *webhook_url;        /* WEBHOOK_URL: "" when off */
    const char *user_url;           /* USER_URL: the user service, for recipients not known yet */
    const char *admin_email;        /* NOTIFICATION_ADMIN_EMAIL: where admin notices go */
    const char *alertmanager_token; /* ALERTMANAGER_TOKEN: Alertmanager's bearer credential */
    uint16_t prefetch;              /* NOTIFICATION_PREFETCH */
    size_t retries;                 /* how many NOTIFICATION_RETRY_DELAYS_MS there are */
    uint32_t retry_delays_ms[BROKER_RETRIES_MAX];
    uint64_t claim_lease_ms;   /* NOTIFICATION_CLAIM_LEASE_MS: a send's claim on its delivery row */
    uint64_t reclaim_every_ms; /* NOTIFICATION_RECLAIM_INTERVAL_MS */
} notification_config_t;

extern notification_config_t notification_config;

/* --- the notice: what one event becomes (routing.c builds it) --------------- */

typedef enum channel { CHANNEL_EMAIL = 1, CHANNEL_WEBHOOK = 2, CHANNEL_IN_APP = 4 } channel_t;

/* Who an event is for: the customer it names, or the admins. */
typedef struct recipient {
    const char *user_id; /* NULL for admins */
    const char *email;   /* NULL when unknown: no email then */
    const char *name;
} recipient_t;

typedef struct notice {
    const char *event_id, *type;
    char *deliveries; /* JSON [{channel, recipient, subject, body}], context memory */
    char *inbox;      /* JSON [{audience, user_id, kind, title, body, order_id}] */
    char *facts;      /* JSON {order: {order_id, user_id}, recipient: {user_id, email, name}} or "{}" */
    size_t inbox_count;
} notice_t;

/* An event routed: its channels and who it is for. */
typedef struct route {
    const char *type;
    unsigned channels; /* channel_t bits; 0: taken in (dedupe, facts), nothing sent */
    bool for_admins;   /* false: the customer the event names */
} route_t;

/* The routing table's row for `type`; NULL for a type this service does
 * not know. */
const route_t *routing_find(const char *type);

/* Renders event `event` (its whole JSON: id, type, occurred_at, data) for
 * `to` into `notice` (context memory of c). Returns 0, or -1 with
 * `error` saying which field is missing or wrong. */
int routing_render(context_t *c, const route_t *route, const json_t *event, const recipient_t *to, notice_t *notice,
                   char *error, size_t error_size);

/* Adds the Alertmanager group `payload` (validated) as notice `notice`. */
int routing_render_alerts(context_t *c, const char *event_id, const json_t *payload, notice_t *notice);

/* --- dispatch.c --------------------------------------------------------------- */

/* How a dispatch ended: `sent` deliveries went out now, `failed` did not
 * (they are tried again with the event's next attempt), `held` are being
 * sent by another copy of the event right now (it is not done either:
 * try again later), `duplicate` when the event had been taken in before. */
typedef struct dispatch_result {
    size_t sent, failed, held;
    bool duplicate;
} dispatch_result_t;

typedef void (*dispatch_done_fn)(void *data, const dispatch_result_t *result);

/* Takes `notice` in and sends what it claims, as steps of `c`; `done` runs
 * once every send has ended and been recorded (not when a statement
 * fails: then c has failed). */
void dispatch_notice(context_t *c, const notice_t *notice, dispatch_done_fn done, void *data);

/* The reclaim sweep (worker 0): sends deliveries whose sender died. */
void dispatch_start_reclaim(chore_t *chore, worker_t *worker);

/* --- mailer.c: SMTP through libcurl on the loop ------------------------------ */

typedef struct mailer mailer_t;

typedef struct mail {
    const char *to;         /* an address */
    const char *to_name;    /* shown in To:, or NULL */
    const char *subject;    /* UTF-8 */
    const char *text;       /* UTF-8 plain text, \n line ends */
    const char *message_id; /* the Message-ID's local part: the same for every attempt */
} mail_t;

/* error NULL: the server accepted the message. */
typedef void (*mailer_fn)(void *data, const char *error);

mailer_t *mailer_create(h2o_evloop_t *loop);
void mailer_destroy(mailer_t *mailer);
/* Sends `mail` (copied) and calls `cb` on the loop, never before this
 * returns. */
void mailer_send(mailer_t *mailer, worker_t *worker, const mail_t *mail, mailer_fn cb, void *data);

/* Whether `address` is a plain mailbox address we may put in a header. */
bool mailer_address_valid(const char *address);

/* The worker's mailer (service_state). */
mailer_t *notification_mailer(const worker_t *worker);

/* --- events.c, inbox.c, alerts.c --------------------------------------------- */

void events_handle(context_t *job, const broker_delivery_t *delivery, void *data);
void events_settled(const broker_delivery_t *delivery, broker_settlement_t how, double seconds, void *data);

void inbox_handle_list(http_request_t *r);
void inbox_handle_read(http_request_t *r);
void alerts_handle(http_request_t *r);

/* --- leak.c: the memory-leak fault ------------------------------------------ */

void leak_start(chore_t *chore, worker_t *worker);
/* Stops it and gives back what it took. */
void leak_stop(chore_t *chore);

/* --- metrics (notification_metrics.c) ------------------------------------------ */

void notification_metrics_register(void);
/* oms_notifications_total{channel,outcome} */
void notification_count(const char *channel, const char *outcome);
void notification_count_settled(broker_settlement_t how);
void notification_count_duplicate(void);

/* queries.c */
extern const pg_statement_t notification_statements[];
extern const size_t notification_statement_count;

#endif
