/* http_client.h - calls to other services over HTTP, on a thread's h2o loop.
 *
 * libcurl's multi interface does the protocol, driven from the h2o loop
 * by curl_loop.h, so no call ever blocks a loop. Each worker owns one
 * client: its connection cache is the keep-alive pool for that thread.
 *
 * Per call: a timeout (the whole budget, retries included); retries with
 * exponential backoff and full jitter, for idempotent calls only (GET, or a
 * call that carries an idempotency key); `traceparent` for a child span of
 * the caller's trace. Per peer (a short name: "inventory"): a circuit
 * breaker. After `breaker_failures` failures in a row (no answer, a
 * timeout, or a 5xx) it opens: calls fail at once for `breaker_open_ms`;
 * then one call is let through (half-open) and its outcome closes or
 * re-opens it. http_client_circuit_state{peer} is 0 closed, 1 half-open,
 * 2 open; every attempt is timed in
 * http_client_request_duration_seconds{peer,method,status_code}.
 */
#ifndef OMS_HTTP_CLIENT_H
#define OMS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop_timer.h"
#include "trace.h"

#define HTTP_CLIENT_PEER_MAX       32      /* peer names, with their NUL */
#define HTTP_CLIENT_RESPONSE_MAX   1048576 /* larger bodies are an error */
#define HTTP_CLIENT_CIRCUIT_CLOSED 0
#define HTTP_CLIENT_CIRCUIT_HALF   1
#define HTTP_CLIENT_CIRCUIT_OPEN   2

typedef struct http_client_config {
    uint64_t timeout_ms;      /* default budget of a call */
    int max_retries;          /* extra attempts of an idempotent call */
    uint64_t retry_base_ms;   /* first backoff; doubles per attempt, jittered */
    int breaker_failures;     /* failures in a row that open a peer's circuit */
    uint64_t breaker_open_ms; /* how long it stays open before a probe */
} http_client_config_t;

typedef struct http_call {
    const char *peer;   /* who is called, for metrics and the breaker */
    const char *method; /* GET, POST, PUT, PATCH, DELETE */
    const char *url;    /* http://host:port/path */
    const char *body;   /* JSON, or NULL */
    size_t body_len;
    const char *idempotency_key; /* sent as Idempotency-Key; makes the call retryable */
    const char *authorization;   /* the whole header value ("Bearer ..."), or NULL */
    uint64_t timeout_ms;         /* 0: the client's default */
} http_call_t;

typedef enum http_client_status {
    HTTP_CLIENT_OK,          /* the peer answered: see code (any status) */
    HTTP_CLIENT_TIMEOUT,     /* no answer within the budget */
    HTTP_CLIENT_UNAVAILABLE, /* no connection, circuit open, or shutting down */
} http_client_status_t;

typedef struct http_response {
    http_client_status_t status;
    int code;         /* HTTP status when status is HTTP_CLIENT_OK */
    const char *body; /* NUL-terminated, valid during the callback */
    size_t body_len;
    const char *error; /* why, for any other status */
    int attempts;      /* how many were made */
} http_response_t;

/* Called exactly once per call, on the client's thread. */
typedef void (*http_client_fn)(void *data, const http_response_t *response);

typedef struct http_client http_client_t;

/* Initialises libcurl and declares the http_client_* metrics; call once
 * before threads start. Returns 0 or -1. */
int http_client_global_init(void);

/* A client on `loop` (config copied). NULL when libcurl refuses. */
http_client_t *http_client_create(h2o_evloop_t *loop, const http_client_config_t *config);

/* Ends every call under way (each gets HTTP_CLIENT_UNAVAILABLE, "shutting
 * down") and frees the client. */
void http_client_destroy(http_client_t *client);

/* Starts `call` (copied) as a child span of `trace` (NULL: a new trace),
 * then `cb(data, response)`. The callback may run before this returns
 * (the circuit is open, the URL is malformed). */
void http_client_send(http_client_t *client, const http_call_t *call, const trace_context_t *trace, http_client_fn cb,
                      void *data);

/* Calls under way, retries waiting included (for the shutdown drain). */
size_t http_client_pending(const http_client_t *client);

/* The circuit of `peer`: HTTP_CLIENT_CIRCUIT_CLOSED, _HALF or _OPEN. */
int http_client_circuit(const http_client_t *client, const char *peer);

#endif
