/* http.h - the HTTP request as a unit of work, and its responses.
 *
 * The server wraps each h2o request in an http_request_t: a unit of work
 * (context.h, embedded as `super`) plus the matched route, its path
 * parameters and the client's address. Responding through this file is
 * what records http_server_request_duration_seconds, writes the access log
 * line and returns `traceparent`, so handlers only do business.
 *
 * A handler that waits on a backend does so through step.h with
 * &r->super: its next step runs only while the client is still there (the
 * context is cancelled when h2o disposes of the request), and a failed
 * call is answered once with DESIGN's error. Memory for the handler's own
 * state comes from context_alloc(&r->super, ...).
 */
#ifndef OMS_HTTP_H
#define OMS_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_address.h"
#include "context.h"
#include "json.h"
#include "loop_timer.h"
#include "router.h"

/* What the HTTP layer is handed at start-up: the same for every worker. */
typedef struct http_server {
    const router_t *router;
    const char *service;                      /* named in injected-fault errors */
    const client_networks_t *trusted_proxies; /* whose X-Forwarded-For is believed */
    const char *admin_token;                  /* what auth.h accepts as the static admin credential */
    const char *jwt_secret;                   /* the HS256 key tokens are signed and verified with */
} http_server_t;

typedef struct http_request {
    context_t super;             /* first: the unit of work (trace, start time, lifetime) */
    h2o_req_t *req;              /* NULL once h2o has disposed of the request */
    const http_server_t *server; /* settings of the server this request came to */
    router_match_t match;
    const char *route;  /* the matched template, for metrics and logs */
    const char *method; /* GET, POST, ... or _OTHER: bounded, for metrics */
    char client[48];    /* a valid IPv4/IPv6 address (client_address.h), or "" when unknown */
    bool responded;
    loop_timer_t delay; /* injected latency */
} http_request_t;

/* Declares the HTTP server metrics; call once before threads start. */
void http_metrics_register(void);

/* Makes h2o's own error responses (413 for an oversized body, 400 for a
 * broken one) use the JSON error shape; register on every pathconf. */
void http_register_error_filter(h2o_pathconf_t *pathconf);

/* The h2o entry point: routes and runs a request on `worker`. Returns 0. */
int http_dispatch(const http_server_t *server, worker_t *worker, h2o_req_t *req);

/* A path parameter of the matched template, NUL-terminated in the request
 * pool; NULL when the template has no such parameter. */
const char *http_path_param(http_request_t *r, const char *name);

/* A query-string parameter, percent-decoded and NUL-terminated in the
 * request pool; NULL when absent. */
const char *http_query_param(http_request_t *r, const char *name);

/* Reads an optional whole-number query parameter in [min, max] into *out
 * (`fallback` when absent). Answers 400 naming it and returns false when it
 * is malformed. */
bool http_query_long(http_request_t *r, const char *name, long fallback, long min, long max, long *out);

/* One page of a listing, from ?limit= and ?offset=, with both as text for
 * statement parameters. */
#define HTTP_MAX_OFFSET 1000000
typedef struct http_page {
    long limit, offset;
    char limit_text[24], offset_text[24];
} http_page_t;

/* Reads limit (1..max_limit, `default_limit` when absent) and offset
 * (0..HTTP_MAX_OFFSET, 0 when absent) into *page. Answers 400 naming the
 * parameter and returns false when one is malformed. */
bool http_query_page(http_request_t *r, long default_limit, long max_limit, http_page_t *page);

/* A request header (lower-case name); NULL when absent. *len gets its length. */
const char *http_header(http_request_t *r, const char *name, size_t *len);

/* Parses the body as a JSON object. On failure answers 400 (or 415 for a
 * non-JSON content type) and returns NULL. */
json_t *http_read_json_body(http_request_t *r);

/* Answers with a JSON body; takes over the reference to `body`. */
void http_respond_json(http_request_t *r, int status, json_t *body);

/* Answers with an already serialized JSON body (copied). */
void http_respond_json_text(http_request_t *r, int status, const char *body, size_t len);

/* Answers with plain text of the given content type (copied). */
void http_respond_text(http_request_t *r, int status, const char *content_type, const char *body, size_t len);

/* Answers {"error":{"code":code,"message":...}} with `status`. */
void http_respond_error(http_request_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like http_respond_error, with the members of `details` (an object whose
 * reference is taken) added to the error object, e.g. {"sku": "..."}. */
void http_respond_error_details(http_request_t *r, int status, const char *code, const char *message, json_t *details);

/* Answers 400 {"error":{"code":"invalid_request","message":...,"field":...}}. */
void http_respond_field_error(http_request_t *r, const json_field_error_t *error);

/* Adds a response header (lower-case name; both copied) to the answer. */
void http_add_header(http_request_t *r, const char *name, const char *value);

/* True when the client has closed its connection while the request waits
 * for its answer. h2o notices that by itself only when it writes the answer
 * (an HTTP/1 connection is not read while its request is being handled),
 * so a handler that keeps a request waiting for long asks here; the
 * request then ends once it is answered (HTTP_CLIENT_CLOSED_REQUEST, which
 * nobody reads but the access log records). */
bool http_client_has_left(http_request_t *r);

/* The status logged for a request whose client left first (nginx's 499). */
#define HTTP_CLIENT_CLOSED_REQUEST 499

#endif
