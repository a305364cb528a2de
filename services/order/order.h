/* order.h - what the order service's files share. */
#ifndef OMS_ORDER_H
#define OMS_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "chore.h"
#include "http.h"
#include "pg.h"
#include "server.h"
#include "step.h"
#include "task.h"

#define ORDER_MAX_ITEMS 50   /* lines of one order */
#define ORDER_MAX_QTY   1000 /* units of one line */

typedef struct order_config {
    const char *inventory_url;     /* INVENTORY_URL: http://host:port of the inventory service */
    const char *payment_url;       /* PAYMENT_URL */
    int pending_timeout_s;         /* ORDER_PENDING_TIMEOUT_S: no order stays PENDING longer */
    int lease_s;                   /* ORDER_SAGA_LEASE_S: a silent saga's orders go to recovery after */
    uint64_t response_timeout_ms;  /* ORDER_RESPONSE_TIMEOUT_MS: then 202 with the PENDING order */
    uint64_t payment_timeout_ms;   /* ORDER_PAYMENT_TIMEOUT_MS: one charge call, retries included */
    int step_attempts;             /* ORDER_STEP_ATTEMPTS: tries of a forward step before the saga gives up */
    uint64_t recovery_interval_ms; /* ORDER_RECOVERY_INTERVAL_MS */
} order_config_t;

extern order_config_t order_config;

/* queries.c: every SQL statement of the service. */
extern const pg_statement_t order_statements[];
extern const size_t order_statement_count;

/* orders.c: the HTTP endpoints. */
void orders_handle_create(http_request_t *r);
void orders_handle_get(http_request_t *r);
void orders_handle_list(http_request_t *r);
void orders_handle_cancel(http_request_t *r);

/* saga.c: the order workflow as a state machine persisted step by step.
 *
 * A saga runs as a task (task.h): it goes on when the client that placed
 * the order has gone. Whoever waits for it (a request) is told once, when
 * the order's status is settled: `order` is the order document (with its
 * history) then, or NULL when the saga stopped before that (a statement
 * failed, another driver took the order over, the process is shutting
 * down): the waiter reads the order itself. The waiter's memory must stay
 * valid until it is told (a request holds its context for that). */
typedef void (*saga_settled_fn)(void *waiter, const char *order, size_t len);

/* Drives the order described by `saga_json` (orders.saga_json: what
 * create_order, begin_cancel and the recovery claim return) from its
 * persisted step on `worker`, as a child span of `parent` (NULL: of the
 * order's own trace). `settled` (may be NULL) is told as above. */
void saga_run(worker_t *worker, const char *saga_json, size_t len, const trace_context_t *parent,
              saga_settled_fn settled, void *waiter);

/* recovery.c: the chore on worker 0 that takes over unfinished sagas whose
 * driver went silent (its process died, its lease ran out). */
void recovery_start(chore_t *chore, worker_t *worker);

/* order_metrics.c */
void order_metrics_register(void);
void order_count_status(const char *status); /* oms_orders_total{status} */
void order_observe_amount(long long cents);  /* oms_order_amount_cents */
void order_observe_step(const char *step, const char *outcome, double seconds);
void order_in_flight_add(double delta); /* oms_orders_in_flight */

#endif
