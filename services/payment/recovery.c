/* recovery.c - charges abandoned mid-way, failed so that their keys answer.
 *
 * A charge is `processing` from payments.begin_charge until
 * payments.finish_charge, which takes at most the processor's timeout. If
 * the process dies in between (a crash, SIGKILL, the machine), nothing
 * finishes it, and a client retrying with the same key would wait for ever.
 * So every second worker 0 fails the charges still processing
 * PAYMENT_PROCESSOR_TIMEOUT_MS + PAYMENT_RECOVERY_MARGIN_MS after they
 * began: status `failed`, reason `processor_timeout`, the key's answer a
 * 402, and a payment.failed event (payments.recover_charges, migrations/002).
 * The margin covers a live process that is merely slow to finish; if it
 * does finish later, finish_charge sees the payment already failed and
 * answers what the recovery recorded.
 */
#include <stdio.h>

#include "log.h"
#include "payment.h"

#define RECOVERY_INTERVAL_MS 1000
#define FIRST_RECOVERY_MS    1000
#define RECOVERY_BATCH       100

typedef struct recovery_run {
    context_t *run;
    chore_t *chore;
} recovery_run_t;

static void count_recovered(void *data, const PGresult *result)
{
    recovery_run_t *recovery = data;
    int rows = PQntuples(result);
    for (int i = 0; i < rows; i++)
        payment_count("failed", PQgetvalue(result, i, 0));
    if (rows > 0)
        context_warn(recovery->run, "abandoned charges failed", LOG_INT("count", rows));
    if (rows == RECOVERY_BATCH)
        chore_again_now(recovery->chore); /* more are waiting */
}

static void recover_charges(context_t *run, void *data)
{
    recovery_run_t *recovery = context_alloc(run, sizeof(*recovery));
    *recovery = (recovery_run_t){run, data};
    char older_than[24], batch[16], traceparent[TRACE_TRACEPARENT_LEN + 1];
    snprintf(older_than, sizeof(older_than), "%llu",
             (unsigned long long)(payment_config.processor_timeout_ms + payment_config.recovery_margin_ms));
    snprintf(batch, sizeof(batch), "%d", RECOVERY_BATCH);
    trace_format_traceparent(&run->trace, traceparent); /* the events carry the run's trace */
    const char *params[] = {older_than, batch, traceparent};
    step_query(run, "charge_recover", params, count_recovered, recovery);
}

void recovery_start(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "charge_recovery", FIRST_RECOVERY_MS, RECOVERY_INTERVAL_MS, recover_charges, chore);
}
