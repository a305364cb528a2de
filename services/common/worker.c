/* worker.c - a worker thread's loop and resources. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int worker_open(worker_t *worker, size_t index, h2o_evloop_t *loop, const worker_settings_t *settings)
{
    memset(worker, 0, sizeof(*worker));
    worker->index = index;
    worker->loop = loop;
    worker->settings = settings;
    if (loop_timers_init(loop) != 0)
        goto Error;
    worker->queue = h2o_multithread_create_queue(loop);
    if (settings->resources & WORKER_POSTGRES && (worker->pg = pg_pool_create(loop, &settings->pg)) == NULL)
        goto Error;
    if (settings->resources & WORKER_REDIS &&
        (worker->redis = redis_client_create(loop, &settings->redis, settings->redis_timeout_ms)) == NULL)
        goto Error;
    if (settings->resources & WORKER_HTTP_CLIENT &&
        (worker->http = http_client_create(loop, &settings->http_client)) == NULL)
        goto Error;
    if (settings->resources & WORKER_BROKER &&
        (settings->broker == NULL || (worker->broker = broker_port_open(settings->broker, worker->queue)) == NULL))
        goto Error;
    return 0;
Error:
    log_error(NULL, "cannot open the worker's resources", LOG_INT("worker", index));
    return -1;
}

void worker_close(worker_t *worker)
{
    /* Each destroy answers the calls still under way, and their callbacks
     * may start others: each pointer goes NULL as soon as its resource has
     * gone (a call then fails as "not configured"), and the HTTP client goes
     * first, since what follows a peer's answer is often a query. */
    http_client_t *http = worker->http;
    worker->http = NULL;
    if (http != NULL)
        http_client_destroy(http);
    pg_pool_t *pg = worker->pg;
    worker->pg = NULL;
    if (pg != NULL)
        pg_pool_destroy(pg);
    redis_client_t *redis = worker->redis;
    worker->redis = NULL;
    if (redis != NULL)
        redis_client_destroy(redis);
    broker_port_close(worker->broker);
    worker->broker = NULL;
    if (worker->queue != NULL) {
        h2o_multithread_destroy_queue(worker->queue);
        free(worker->queue); /* h2o 2.2.5's evloop flavour leaves that to the caller */
        worker->queue = NULL;
    }
    loop_timers_dispose();
    h2o_evloop_run(worker->loop, 0); /* lets h2o free the sockets closed above */
}

size_t worker_pending(const worker_t *worker)
{
    return (worker->pg != NULL ? pg_pool_pending(worker->pg) : 0) +
           (worker->redis != NULL ? redis_client_pending(worker->redis) : 0) +
           (worker->http != NULL ? http_client_pending(worker->http) : 0) + broker_port_pending(worker->broker);
}

void worker_apply_faults(worker_t *worker, const faults_t *next)
{
    faults_report(&worker->faults, next, worker->index);
    worker->faults = *next;
    double slow_ms = worker_fault(worker, "slow_db_ms");
    if (worker->pg != NULL)
        pg_pool_set_injected_delay(worker->pg, slow_ms > 0 ? (uint64_t)slow_ms : 0);
}

double worker_fault(const worker_t *worker, const char *suffix)
{
    char name[FAULTS_NAME_MAX];
    snprintf(name, sizeof(name), "%s.%s", worker->settings->service, suffix);
    return faults_value(&worker->faults, name);
}
