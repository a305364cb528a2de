/* http.h - the request context every handler receives, and its responses.
 *
 * The server wraps each h2o request in an http_request_t: the matched route,
 * path parameters, trace context and start time. Responding through this
 * file is what records http_server_request_duration_seconds, writes the
 * access log line and returns `traceparent`, so handlers only do business.
 *
 * Asynchronous handlers keep the request across a callback with
 * http_request_hold() before the call and http_request_resume() first thing
 * in the callback: resume returns false when the client went away (the
 * request and its pool are gone; do nothing more).
 */
#ifndef OMS_HTTP_H
#define OMS_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "loop_timer.h"
#include "pg.h"
#include "router.h"
#include "trace.h"

struct server_worker;

typedef struct http_request {
    h2o_req_t *req;               /* NULL once h2o has disposed of the request */
    struct server_worker *worker; /* the thread this request runs on */
    router_match_t match;
    const char *route;  /* the matched template, for metrics and logs */
    const char *method; /* GET, POST, ... or _OTHER: bounded, for metrics */
    trace_context_t trace;
    char client[48]; /* a valid IPv4/IPv6 address (client_address.h), or "" when unknown */
    uint64_t started_ns;
    bool responded;
    loop_timer_t delay;                  /* injected latency */
    void *state;                         /* the handler's own context (http_request_alloc) */
    struct http_allocation *allocations; /* freed with the context, see http_request_alloc */
} http_request_t;

/* Declares the HTTP server metrics; call once before threads start. */
void http_metrics_register(void);

/* Makes h2o's own error responses (413 for an oversized body, 400 for a
 * broken one) use the JSON error shape; register on every pathconf. */
void http_register_error_filter(h2o_pathconf_t *pathconf);

/* The h2o entry point: routes and runs a request on `worker`. Returns 0. */
int http_dispatch(struct server_worker *worker, const router_t *router, h2o_req_t *req);

/* Keeps `r` valid across an asynchronous call. Returns r. */
http_request_t *http_request_hold(http_request_t *r);

/* Ends a hold. Returns true when the request is still there to answer. */
bool http_request_resume(http_request_t *r);

/* Allocates zeroed memory that lives as long as `r` itself: until the
 * request is done *and* every hold is released. Unlike h2o's request pool,
 * which goes as soon as the client does, it is safe to reach from a callback
 * before http_request_resume() (a context that points back to `r`). */
void *http_request_alloc(http_request_t *r, size_t size);

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

/* For a PostgreSQL reply that is not PG_OK: answers 503 (database down or
 * timed out) or 500 (statement failed, logged with its SQLSTATE) and returns
 * false. Returns true, answering nothing, for PG_OK. */
bool http_check_pg_reply(http_request_t *r, const pg_reply_t *reply);

/* Answers 400 {"error":{"code":"invalid_request","message":...,"field":...}}. */
void http_respond_field_error(http_request_t *r, const json_field_error_t *error);

/* Answers 503 for a dependency that did not answer (`what` names it). */
void http_respond_unavailable(http_request_t *r, const char *what, const char *reason);

#endif
