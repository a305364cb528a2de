/* health.h - the endpoints every service serves besides its API:
 * GET /health/live, GET /health/ready, GET /metrics. */
#ifndef OMS_HEALTH_H
#define OMS_HEALTH_H

struct http_request;

/* 200 while the process serves requests; checks nothing else. */
void health_handle_live(struct http_request *r);

/* Checks, in parallel, exactly the resources the service declared
 * (worker.h): PostgreSQL (a query on the pool, and a fresh connection) and
 * Redis (PING); not the peers an HTTP client calls. 200 when all answer,
 * else 503 naming what is down; the body lists each check's status under
 * "checks". RabbitMQ is reported under "optional" and never makes a
 * service unready: its events wait in the outbox (outbox.h). */
void health_handle_ready(struct http_request *r);

/* The Prometheus text exposition of the process's metrics. */
void health_handle_metrics(struct http_request *r);

/* The statement /health/ready runs; the server prepares it on every pool. */
#define HEALTH_PING_STATEMENT "oms_health_ping"

#endif
