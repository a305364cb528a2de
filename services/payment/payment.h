/* payment.h - what the payment service's files share. */
#ifndef OMS_PAYMENT_H
#define OMS_PAYMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chore.h"
#include "digest.h"
#include "domain.h"
#include "http.h"
#include "pg.h"
#include "server.h"
#include "step.h"

typedef struct payment_config {
    uint64_t processor_latency_ms; /* PAYMENT_PROCESSOR_LATENCY_MS: the processor's mean answer time */
    uint64_t processor_jitter_ms;  /* PAYMENT_PROCESSOR_JITTER_MS: +- this much, uniformly */
    uint64_t processor_timeout_ms; /* PAYMENT_PROCESSOR_TIMEOUT_MS: no answer by then is a failure */
    uint64_t recovery_margin_ms;   /* PAYMENT_RECOVERY_MARGIN_MS: after the timeout, a charge is abandoned */
    int idempotency_ttl_hours;     /* PAYMENT_IDEMPOTENCY_TTL_HOURS: answered keys kept at least this long */
} payment_config_t;

extern payment_config_t payment_config;

/* queries.c: every SQL statement of the service, prepared on each connection. */
extern const pg_statement_t payment_statements[];
extern const size_t payment_statement_count;

/* charges.c: POST /api/payments (internal: service or admin credentials). */
void charges_handle_create(http_request_t *r);

/* payments.c: reading payments (internal). */
void payments_handle_get(http_request_t *r);
void payments_handle_list(http_request_t *r);

/* The {id} path parameter when it is a UUID; otherwise answers 400 naming
 * it and returns NULL. */
const char *payments_id_param(http_request_t *r);

/* refunds.c: POST /api/payments/{id}/refund (internal). */
void refunds_handle_create(http_request_t *r);

/* voids.c: POST /api/payments/void (internal). */
void voids_handle_create(http_request_t *r);

/* processor.c: the simulated card processor. */
typedef enum processor_verdict {
    PROCESSOR_APPROVED,
    PROCESSOR_DECLINED, /* the processor said no: `reason` says why */
    PROCESSOR_TIMEOUT,  /* no answer within PAYMENT_PROCESSOR_TIMEOUT_MS */
} processor_verdict_t;

typedef struct processor_result {
    processor_verdict_t verdict;
    const char *reason; /* a literal: NULL, or the decline_reason to store */
} processor_result_t;

typedef void (*processor_done_fn)(void *data, const processor_result_t *result);

/* Asks the processor to charge `amount_cents` to `card` (NULL: a wallet)
 * as a step of `c`. `done` runs once, on the loop, when the processor has
 * answered or the timeout has passed, whether or not `c` was cancelled.
 * `card` is read during the call only. */
void processor_charge(context_t *c, const char *card, long long amount_cents, processor_done_fn done, void *data);

/* idempotency.c: Idempotency-Key headers and the records behind them. */
#define IDEMPOTENCY_KEY_MAX         128
#define IDEMPOTENCY_FINGERPRINT_LEN DIGEST_HEX_LEN /* an HMAC-SHA256 in hex */

/* Reads the request's Idempotency-Key (1-128 printable ASCII characters)
 * into *key, NUL-terminated in the request's memory, or `fallback` when
 * the header is absent. Answers 400 naming the header and returns false
 * when it is malformed. */
bool idempotency_key_header(http_request_t *r, const char *fallback, const char **key);

/* The retention of answered keys: a chore on worker 0. */
void idempotency_start_pruning(chore_t *chore, worker_t *worker);

/* recovery.c: charges abandoned mid-way by a process that died; a chore
 * on worker 0. */
void recovery_start(chore_t *chore, worker_t *worker);

/* payment_metrics.c: business metrics. */
void payment_metrics_register(void);

/* A charge ended (status succeeded, declined or failed) or a refund was
 * made (status refunded), for oms_payments_total. */
void payment_count(const char *status, const char *method);

/* A succeeded charge's amount, for oms_payment_amount_cents. */
void payment_observe_amount(long long amount_cents);

/* How long the processor took and what it said (approved, declined,
 * timeout), for oms_payment_processor_duration_seconds. */
void payment_observe_processor(const char *outcome, double seconds);

#endif
