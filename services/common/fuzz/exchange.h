/* exchange.h - one HTTP request through http_dispatch, without sockets.
 *
 * A fuzz target hands over the bytes of an HTTP/1-style request:
 *
 *     METHOD SP TARGET [SP VERSION] LF
 *     Name: value LF          (any number of header lines)
 *     LF
 *     body                    (the rest, raw; absent without the empty line)
 *
 * (CR before LF is dropped). fuzz_exchange_run() builds the h2o_req_t that
 * h2o would (the path normalised by h2o_url_normalize_path, header names
 * lower-cased, values trimmed), runs it through http_dispatch() with the
 * target's router, and captures the response. Nothing reaches a network:
 *
 *   - pg_query and redis_command_argv are replaced at link time
 *     (-Wl,--wrap=pg_query,--wrap=redis_command_argv, and
 *     redis_client_is_up says yes): each call is recorded
 *     with a copy of its parameters, and once the handler returns it is
 *     answered as if the backend were down (PG_UNAVAILABLE, or no Redis
 *     reply), which every handler must turn into a 503; Redis calls that
 *     callbacks make in turn get the integer reply 1;
 *   - the server's settings (http_server_t): service name from
 *     fuzz_exchange_setup, admin token FUZZ_ADMIN_TOKEN, JWT secret
 *     FUZZ_JWT_SECRET, trusted proxies "127.0.0.0/8, ::1"; the worker
 *     declares PostgreSQL and Redis;
 *   - stdout (the access log) goes to /dev/null.
 *
 * Every exchange is checked against what DESIGN.md promises any client:
 * exactly one response; a JSON body with Content-Type application/json;
 * errors shaped {"error":{"code":...,"message":...}}; a valid traceparent
 * header; Content-Length equal to the body. A violation aborts.
 *
 * With FUZZ_VERBOSE set in the environment, each exchange prints its
 * status, body and backend calls to stderr (to check what a seed reaches).
 */
#ifndef OMS_FUZZ_EXCHANGE_H
#define OMS_FUZZ_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "pg.h"
#include "redis.h"
#include "router.h"

#define FUZZ_ADMIN_TOKEN      "fuzz-admin-token"
#define FUZZ_JWT_SECRET       "fuzz-jwt-secret"
#define FUZZ_EXCHANGE_HEADERS 16
#define FUZZ_EXCHANGE_CALLS   8
#define FUZZ_CALL_ARGS        12

/* One pg_query or redis_command_argv call a handler made. */
typedef struct fuzz_backend_call {
    bool is_redis;
    char name[64];              /* the statement name, or the Redis command */
    size_t arg_count;           /* the statement's parameters, or the Redis arguments after the command */
    char *args[FUZZ_CALL_ARGS]; /* NUL-terminated copies; NULL for SQL NULL */
    size_t arg_lens[FUZZ_CALL_ARGS];
    /* how to answer it */
    pg_callback_fn pg_cb;
    redis_callback_fn redis_cb;
    void *data;
    bool answered;
} fuzz_backend_call_t;

typedef struct fuzz_exchange {
    /* the request, pointing into the fuzz input */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    struct {
        const char *name, *value;
        size_t name_len, value_len;
    } headers[FUZZ_EXCHANGE_HEADERS];
    size_t header_count;
    const char *body; /* NULL when the request has none */
    size_t body_len;
    const char *peer;     /* the connection's peer address; "127.0.0.1" by default */
    bool add_admin_token; /* add "authorization: Bearer FUZZ_ADMIN_TOKEN" when absent */

    /* what h2o made of it */
    char *path; /* the normalised path (NUL-terminated copy; may hold NULs) */
    size_t path_len;
    bool has_query;

    /* what came back */
    bool responded;
    int status;
    char *response; /* the body, NUL-terminated */
    size_t response_len;
    json_t *response_json; /* the parsed body, when it is JSON */
    fuzz_backend_call_t calls[FUZZ_EXCHANGE_CALLS];
    size_t call_count;
} fuzz_exchange_t;

/* Once, from LLVMFuzzerInitialize: registers the metrics families the
 * handlers update, sets the service name and the statements whose parameter
 * counts pg_query needs, and sends stdout to /dev/null. */
void fuzz_exchange_setup(const char *service, const pg_statement_t *statements, size_t statement_count);

/* The router of a target's route table; prints why and aborts when the
 * routes do not make one. */
router_t *fuzz_exchange_router(const router_route_t *routes, size_t count);

/* Reads `size` bytes in the format above into `ex` (zeroing it first).
 * Returns false when they are no request h2o would accept (control bytes in
 * the request line or a header, no space after the method, too many
 * headers): the target should skip such input. */
bool fuzz_exchange_parse(const char *data, size_t size, fuzz_exchange_t *ex);

/* Dispatches the request on `router`, answers every backend call as down,
 * checks the response invariants above and fills the response fields. */
void fuzz_exchange_run(const router_t *router, fuzz_exchange_t *ex);

/* The first call to `name`, or NULL. */
const fuzz_backend_call_t *fuzz_exchange_call(const fuzz_exchange_t *ex, const char *name);

/* How many request headers are named `name` (any case); *value and *len
 * get the first one's. */
size_t fuzz_exchange_header(const fuzz_exchange_t *ex, const char *name, const char **value, size_t *len);

/* True when the request is a clean call of `method` on exactly `path`:
 * no query string, one Content-Type header "application/json" (in any
 * case) when `with_json_body`, and no Authorization header of its own. */
bool fuzz_exchange_is_clean(const fuzz_exchange_t *ex, const char *method, const char *path, bool with_json_body);

/* Frees what run allocated. */
void fuzz_exchange_clear(fuzz_exchange_t *ex);

/* The error object's "field" of an error response, or NULL. */
const char *fuzz_exchange_error_field(const fuzz_exchange_t *ex);

#endif
