/* idempotency.c - Idempotency-Key headers and the retention of the records
 * behind them.
 *
 * A client that did not get an answer (a timeout, a dropped connection)
 * sends the same request again with the same key. The key's record in
 * payments.idempotency_keys holds a fingerprint of the request it first
 * came with and that request's final answer; a retry with the same
 * fingerprint gets the answer again, one with another fingerprint is a
 * client bug (422). The fingerprint (digest_json_fingerprint, digest.h)
 * is an HMAC keyed with the service's
 * secret rather than a plain hash because a charge request carries a card
 * number: with only 10^n numbers to try, a plain SHA-256 of it could be
 * reversed by brute force; without the key it cannot.
 *
 * Answered keys are kept PAYMENT_IDEMPOTENCY_TTL_HOURS (at least a day),
 * then worker 0 deletes them in batches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "payment.h"

#define PRUNE_INTERVAL_MS (10 * 60 * 1000)
#define FIRST_PRUNE_MS    (30 * 1000)
#define PRUNE_BATCH       1000

bool idempotency_key_header(http_request_t *r, const char *fallback, const char **key)
{
    size_t len = 0;
    const char *value = http_header(r, "idempotency-key", &len);
    *key = fallback;
    if (value == NULL)
        return true;
    bool printable = len >= 1 && len <= IDEMPOTENCY_KEY_MAX;
    for (size_t i = 0; printable && i < len; i++)
        printable = value[i] >= 0x20 && value[i] <= 0x7e;
    if (!printable) {
        json_field_error_t error;
        json_fail(&error, "Idempotency-Key", "the Idempotency-Key header must be 1 to %d printable ASCII characters",
                  IDEMPOTENCY_KEY_MAX);
        http_respond_field_error(r, &error);
        return false;
    }
    *key = context_strdup(&r->super, value, len);
    return true;
}

/* --- retention (a chore on worker 0) ---------------------------------------- */

typedef struct prune {
    context_t *run;
    chore_t *chore;
} prune_t;

static void report_pruned(void *data, const PGresult *result)
{
    prune_t *prune = data;
    long deleted = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    if (deleted > 0)
        context_info(prune->run, "old idempotency keys deleted", LOG_INT("count", deleted),
                     LOG_INT("ttl_hours", payment_config.idempotency_ttl_hours));
    if (deleted == PRUNE_BATCH)
        chore_again_now(prune->chore); /* more are waiting */
}

static void prune_keys(context_t *run, void *data)
{
    prune_t *prune = context_alloc(run, sizeof(*prune));
    *prune = (prune_t){run, data};
    char ttl[16], batch[16];
    snprintf(ttl, sizeof(ttl), "%d", payment_config.idempotency_ttl_hours);
    snprintf(batch, sizeof(batch), "%d", PRUNE_BATCH);
    const char *params[] = {ttl, batch};
    step_query(run, "idempotency_keys_prune", params, report_pruned, prune);
}

void idempotency_start_pruning(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "idempotency_key_retention", FIRST_PRUNE_MS, PRUNE_INTERVAL_MS, prune_keys, chore);
}
