/* worker.h - one worker thread's context: its event loop and the
 * resources it opened for the service.
 *
 * Everything that runs on a loop (requests, chores, background jobs'
 * completions) reaches its backends through the worker_t of that thread,
 * so nothing on the request path is shared between threads. A service
 * declares which resources it needs (worker_settings_t.resources); a worker
 * opens exactly those, and /health/ready checks exactly those. Settings are
 * handed in at start-up by the server and never change afterwards.
 */
#ifndef OMS_WORKER_H
#define OMS_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "faults.h"
#include "http_client.h"
#include "loop_timer.h"
#include "pg.h"
#include "redis.h"

/* What a service may declare it needs; each worker opens its own. */
typedef enum worker_resource {
    WORKER_POSTGRES = 1 << 0,    /* a PostgreSQL pool (pg.h) */
    WORKER_REDIS = 1 << 1,       /* a Redis client (redis.h); also carries the fault flags */
    WORKER_HTTP_CLIENT = 1 << 2, /* calls to other services (http_client.h) */
    WORKER_BROKER = 1 << 3,      /* RabbitMQ through the process's link (broker.h) */
} worker_resource_t;

typedef struct worker_settings {
    const char *service;    /* "inventory": prefix of its own fault flags, sub of its service tokens */
    const char *jwt_secret; /* JWT_SECRET: what the service signs its tokens for peers with (auth.h) */
    unsigned resources;     /* worker_resource_t bits */
    pg_pool_config_t pg;    /* WORKER_POSTGRES */
    redis_target_t redis;
    uint64_t redis_timeout_ms;        /* WORKER_REDIS */
    http_client_config_t http_client; /* WORKER_HTTP_CLIENT */
    broker_t *broker;                 /* WORKER_BROKER: the process's one link, started by the server */
} worker_settings_t;

typedef struct worker {
    size_t index; /* 0..threads-1; worker 0 also runs process-wide chores */
    h2o_evloop_t *loop;
    const worker_settings_t *settings;
    pg_pool_t *pg;                  /* NULL unless the service declared WORKER_POSTGRES */
    redis_client_t *redis;          /* NULL unless the service declared WORKER_REDIS */
    http_client_t *http;            /* NULL unless the service declared WORKER_HTTP_CLIENT */
    broker_port_t *broker;          /* NULL unless the service declared WORKER_BROKER */
    faults_t faults;                /* this thread's snapshot of the fault flags */
    size_t busy;                    /* units of work alive on this thread (context.h) */
    size_t active_requests;         /* of which HTTP requests not answered yet (http.c) */
    bool stopping;                  /* shutting down: chores start no new runs */
    h2o_multithread_queue_t *queue; /* messages to this thread: shutdown, finished background jobs */
    struct work_port *work_port;    /* where background jobs report back (work_pool.h) */
    void *service_state;            /* owned by the service's init/dispose hooks */
} worker_t;

/* Sets up `worker` on `loop`: the loop's timers, its message queue and the
 * declared resources (which start connecting). `settings` must outlive
 * the worker. Returns 0, or -1 (logged). */
int worker_open(worker_t *worker, size_t index, h2o_evloop_t *loop, const worker_settings_t *settings);

/* Closes the resources (pending calls fail), the queue and the timers. */
void worker_close(worker_t *worker);

/* Backend calls in flight on this worker (for the shutdown drain). */
size_t worker_pending(const worker_t *worker);

/* Takes a new fault snapshot: applies slow_db_ms to the pool, and counts
 * it (faults_report). */
void worker_apply_faults(worker_t *worker, const faults_t *next);

/* The value of this service's fault "<service>.<suffix>", 0 when not set. */
double worker_fault(const worker_t *worker, const char *suffix);

#endif
