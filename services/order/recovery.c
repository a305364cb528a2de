/* recovery.c - no order is left mid-saga.
 *
 * A saga renews its order's lease with every step it persists. When the
 * process driving it dies (or a peer call outlasts the lease), the lease
 * runs out and this chore, on worker 0 of every order process, claims the
 * order (FOR UPDATE SKIP LOCKED: two processes never take the same one)
 * and drives it on from its persisted step (saga.c). The first run comes
 * right at start-up, so orders a crash left behind move on as soon as
 * their lease allows. A forward step past the order's deadline gives up
 * at once: nothing stays PENDING longer than ORDER_PENDING_TIMEOUT_S
 * (plus a lease, when its process died).
 */
#include <stdio.h>

#include "log.h"
#include "order.h"

#define CLAIM_BATCH 50

typedef struct recovery_run {
    context_t *run;
    chore_t *chore;
} recovery_run_t;

static void resume_sagas(void *data, const PGresult *result)
{
    recovery_run_t *recovery = data;
    int count = PQntuples(result);
    if (count > 0)
        context_info(recovery->run, "recovering unfinished orders", LOG_INT("count", count));
    for (int i = 0; i < count; i++)
        saga_run(recovery->run->worker, PQgetvalue(result, i, 0), (size_t)PQgetlength(result, i, 0), NULL, NULL, NULL);
    if (count == CLAIM_BATCH)
        chore_again_now(recovery->chore); /* more are waiting */
}

static void claim_unfinished(context_t *run, void *data)
{
    recovery_run_t *recovery = context_alloc(run, sizeof(*recovery));
    *recovery = (recovery_run_t){run, data};
    char batch[16], lease[16];
    snprintf(batch, sizeof(batch), "%d", CLAIM_BATCH);
    snprintf(lease, sizeof(lease), "%d", order_config.lease_s);
    const char *params[] = {batch, lease};
    step_query(run, "saga_claim", params, resume_sagas, recovery);
}

void recovery_start(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "saga_recovery", 0, order_config.recovery_interval_ms, claim_unfinished, chore);
}
