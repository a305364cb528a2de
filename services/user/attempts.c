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
    attempt_recorded_fn done;
} attempt_write_t;

static loop_timer_t retention_timer;
static bool retaining;
static char retention_days[16];

const char *attempts_client_ip(const http_request_t *r)
{
    return r->client[0] != '\0' ? r->client : NULL; /* already checked to be an address */
}

static void on_attempt_written(void *data, const pg_reply_t *reply)
{
    attempt_write_t *write = data;
    if (!http_request_resume(write->r))
        return;
    if (reply->status != PG_OK)
        log_error(&write->r->trace, "login attempt not recorded", LOG_STRING("reason", reply->message));
    write->done(write->r);
}

void attempts_record(http_request_t *r, const char *email, const char *outcome, attempt_recorded_fn done)
{
    attempt_write_t *write = http_request_alloc(r, sizeof(*write));
    write->r = r;
    write->done = done;
    const char *params[] = {email, attempts_client_ip(r), outcome};
    http_request_hold(r);
    pg_query(r->worker->pg, "login_attempt_insert", params, on_attempt_written, write);
}

static void on_retention_timer(loop_timer_t *timer);

static void on_pruned(void *data, const pg_reply_t *reply)
{
    server_worker_t *worker = data;
    if (reply->status != PG_OK)
        log_warn(NULL, "login attempt retention failed", LOG_STRING("reason", reply->message));
    else if (strtol(PQgetvalue(reply->result, 0, 0), NULL, 10) > 0)
        log_info(NULL, "old login attempts deleted", LOG_STRING("rows", PQgetvalue(reply->result, 0, 0)),
                 LOG_INT("retention_days", user_config.attempts_retention_days));
    if (retaining)
        loop_timer_start(&retention_timer, RETENTION_INTERVAL_MS, on_retention_timer, worker);
}

static void on_retention_timer(loop_timer_t *timer)
{
    server_worker_t *worker = timer->data;
    const char *params[] = {retention_days};
    pg_query(worker->pg, "login_attempts_prune", params, on_pruned, worker);
}

void attempts_start_retention(server_worker_t *worker)
{
    snprintf(retention_days, sizeof(retention_days), "%d", user_config.attempts_retention_days);
    retaining = true;
    loop_timer_start(&retention_timer, FIRST_PRUNE_MS, on_retention_timer, worker);
}

void attempts_stop_retention(void)
{
    retaining = false;
    loop_timer_stop(&retention_timer);
}
