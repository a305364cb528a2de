/* attempts.c - the login_attempts table: one row per checked attempt, and
 * its retention.
 *
 * The table is what the lab's security dashboards query (failures per
 * address, per account, over time); it keeps LOGIN_ATTEMPTS_RETENTION_DAYS
 * of history, pruned hourly by worker 0.
 */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "user.h"

#define RETENTION_INTERVAL_MS (3600 * 1000)
#define FIRST_PRUNE_MS        (10 * 1000)

typedef struct attempt_write {
    http_request_t *r;
    step_done_fn done;
    void *data;
} attempt_write_t;

static char retention_days[16];

const char *attempts_client_ip(const http_request_t *r)
{
    return r->client[0] != '\0' ? r->client : NULL; /* already checked to be an address */
}

static void on_attempt_written(void *data, const pg_reply_t *reply)
{
    attempt_write_t *write = data;
    if (context_is_cancelled(&write->r->super))
        return;
    if (reply->status != PG_OK)
        context_error(&write->r->super, "login attempt not recorded", LOG_STRING("reason", reply->message));
    write->done(write->data);
}

void attempts_record(http_request_t *r, const char *email, const char *outcome, step_done_fn done, void *data)
{
    attempt_write_t *write = context_alloc(&r->super, sizeof(*write));
    *write = (attempt_write_t){r, done, data};
    const char *params[] = {email, attempts_client_ip(r), outcome};
    step_query_raw(&r->super, "login_attempt_insert", params, on_attempt_written, write);
}

static void report_pruned(void *data, const PGresult *result)
{
    context_t *run = data;
    if (strtol(PQgetvalue(result, 0, 0), NULL, 10) > 0)
        context_info(run, "old login attempts deleted", LOG_STRING("rows", PQgetvalue(result, 0, 0)),
                     LOG_INT("retention_days", user_config.attempts_retention_days));
}

static void prune_attempts(context_t *run, void *data)
{
    (void)data;
    const char *params[] = {retention_days};
    step_query(run, "login_attempts_prune", params, report_pruned, run);
}

void attempts_start_retention(chore_t *chore, worker_t *worker)
{
    snprintf(retention_days, sizeof(retention_days), "%d", user_config.attempts_retention_days);
    chore_start(chore, worker, "login_attempts_retention", FIRST_PRUNE_MS, RETENTION_INTERVAL_MS, prune_attempts, NULL);
}
