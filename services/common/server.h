/* server.h - the process: configuration, worker threads, graceful shutdown.
 *
 * One worker per thread (THREADS, default: the core count), each with its
 * own h2o event loop, SO_REUSEPORT listener and the resources the service
 * declares (worker.h: a PostgreSQL pool, a Redis client, an HTTP client), so
 * nothing on the request path is shared between threads. RabbitMQ is the
 * exception: one link thread per process (broker.h), and worker 0 relays
 * the outbox through it (outbox.h). SIGTERM/SIGINT stop accepting,
 * let in-flight work finish within SHUTDOWN_TIMEOUT_MS, close the pools and
 * exit 0. This is the top of services/common: it hands every module below
 * its settings at start-up.
 */
#ifndef OMS_SERVER_H
#define OMS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "client_address.h"
#include "config.h"
#include "http_client.h"
#include "outbox.h"
#include "pg.h"
#include "redis.h"
#include "router.h"
#include "worker.h"

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
    size_t max_connections;           /* MAX_CONNECTIONS, per worker (default: what the fd limit allows) */
    http_client_config_t http_client; /* HTTP_CLIENT_*: calls to other services, if the service makes any */
    broker_config_t broker;           /* AMQP_URL, AMQP_*: RabbitMQ, if the service declares WORKER_BROKER */
    outbox_config_t outbox;           /* OUTBOX_*: the relay, if the service has an outbox (schema set by it) */
    const char *version;
} server_config_t;

typedef struct service_definition {
    const char *name;
    unsigned resources; /* worker_resource_t bits: what each worker opens */
    const router_route_t *routes;
    size_t route_count;
    const pg_statement_t *statements;
    size_t statement_count;
    /* Optional: the schema whose outbox (outbox.h) worker 0 relays to
     * RabbitMQ; needs WORKER_POSTGRES | WORKER_BROKER. */
    const char *outbox_schema;
    /* Optional: declare the service's metrics (before threads start). */
    void (*register_metrics)(void);
    /* Optional: per-thread set-up once the resources exist; returns 0 or -1. */
    int (*init_worker)(worker_t *worker);
    /* Optional: per-thread tear-down before the resources close. */
    void (*dispose_worker)(worker_t *worker);
} service_definition_t;

/* Reads the common variables (PORT, THREADS, DATABASE_URL, REDIS_URL,
 * ADMIN_TOKEN, JWT_SECRET, LOG_LEVEL, ...) into `config`, recording errors. */
void server_config_load(server_config_t *config, const char *service, int default_port,
                        const char *default_database_url, config_errors_t *errors);

/* Runs the service until SIGTERM/SIGINT. Returns the process exit status. */
int server_run(const service_definition_t *service, const server_config_t *config);

#endif
