/* faults_refresh.c - the once-a-second read of oms:faults. */
#include "faults_refresh.h"

#include "step.h"

static void apply(void *data, const redisReply *reply, const char *error)
{
    worker_t *worker = data;
    (void)error; /* Redis down: keep the last known faults */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    faults_t next;
    faults_parse(reply, &next);
    worker_apply_faults(worker, &next);
}

static void read_faults(context_t *run, void *data)
{
    const char *argv[] = {"HGETALL", FAULTS_REDIS_KEY};
    step_redis_raw(run, 2, argv, NULL, apply, data);
}

void faults_refresh_start(chore_t *chore, worker_t *worker)
{
    chore_start(chore, worker, "faults_refresh", 0, FAULTS_REFRESH_INTERVAL_MS, read_faults, worker);
}
