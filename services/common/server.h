/* server.h - the process: configuration, worker threads, graceful shutdown.
 *
 * One worker per thread (THREADS, default: the core count), each with its
 * own h2o event loop, SO_REUSEPORT listener, PostgreSQL pool, Redis client
 * and fault-flag snapshot, so nothing on the request path is shared between
 * threads. SIGTERM/SIGINT stop accepting, let in-flight requests finish
 * within SHUTDOWN_TIMEOUT_MS, close the pools and exit 0.
 */
#ifndef OMS_SERVER_H
#define OMS_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_address.h"
#include "config.h"
#include "faults.h"
#include "pg.h"
#include "redis.h"
#include "router.h"

typedef struct server_config {
    const char *service;               /* "inventory": log `service`, fault prefix */
    const char *listen_address;        /* LISTEN_ADDRESS */
    int port;                          /* PORT */
    int threads;                       /* THREADS */
    const char *database_url;          /* DATABASE_URL (a libpq URL or key=value string) */
    redis_target_t redis;              /* REDIS_URL */
    const char *admin_token;           /* ADMIN_TOKEN: a static admin credential for scripts */
    const char *jwt_secret;            /* JWT_SECRET: the HS256 key every service verifies tokens with */
    client_networks_t trusted_proxies; /* TRUSTED_PROXIES: whose X-Forwarded-For is believed */
    size_t max_body_bytes;             /* MAX_BODY_BYTES */
    size_t pg_pool_size;               /* PG_POOL_SIZE, per thread */
    uint64_t pg_query_timeout_ms;
    uint64_t redis_timeout_ms;
    uint64_t shutdown_timeout_ms;
    size_t max_connections; /* MAX_CONNECTIONS, per worker (default: what the fd limit allows) */
    const char *version;
} server_config_t;

typedef struct server_worker {
    size_t index; /* 0..threads-1; worker 0 also runs process-wide chores */
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    size_t connections;        /* open client connections */
    bool accept_paused;        /* the listener is not read: at max_connections or out of descriptors */
    loop_timer_t accept_retry; /* after EMFILE/ENFILE: when to try accepting again */
    uint64_t accept_backoff_ms;
    pg_pool_t *pg;
    redis_client_t *redis;
    faults_t faults;
    size_t active_requests;
    void *service_state;         /* owned by the service's init/dispose hooks */
    struct work_port *work_port; /* where background jobs report back (work_pool.h) */
    /* shutdown */
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t shutdown_receiver;
    loop_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    bool stopping, stopped;
    pthread_t thread;
} server_worker_t;

typedef struct service_definition {
    const char *name;
    const router_route_t *routes;
    size_t route_count;
    const pg_statement_t *statements;
    size_t statement_count;
    /* Optional: declare the service's metrics (before threads start). */
    void (*register_metrics)(void);
    /* Optional: per-thread set-up once the pools exist; returns 0 or -1. */
    int (*init_worker)(server_worker_t *worker);
    /* Optional: per-thread tear-down before the pools close. */
    void (*dispose_worker)(server_worker_t *worker);
} service_definition_t;

/* Reads the common variables (PORT, THREADS, DATABASE_URL, REDIS_URL,
 * ADMIN_TOKEN, JWT_SECRET, LOG_LEVEL, ...) into `config`, recording errors. */
void server_config_load(server_config_t *config, const char *service, int default_port,
                        const char *default_database_url, config_errors_t *errors);

/* Runs the service until SIGTERM/SIGINT. Returns the process exit status. */
int server_run(const service_definition_t *service, const server_config_t *config);

/* The configuration the server runs with (valid once server_run started). */
const server_config_t *server_config(void);

#endif
