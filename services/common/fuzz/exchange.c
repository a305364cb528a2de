/* exchange.c - a request through http_dispatch without sockets
 * (exchange.h says what is replaced and what is checked). */
#include "exchange.h"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "fuzz_support.h"
#include "../tests/http_double.h"
#include "http.h"
#include "log.h"
#include "loop_timer.h"
#include "trace.h"
#include "worker.h"

/* The replacements the link step wires in (-Wl,--wrap=...). */
void __wrap_pg_query(pg_pool_t *pool, const char *statement, const char *const *params, pg_callback_fn cb, void *data);
void __wrap_redis_command_argv(redis_client_t *client, redis_callback_fn cb, void *data, int argc, const char **argv,
                               const size_t *argv_len);
bool __wrap_redis_client_is_up(const redis_client_t *client);

static client_networks_t trusted_proxies;
static worker_settings_t settings = {.resources = WORKER_POSTGRES | WORKER_REDIS};
static http_server_t server = {.admin_token = FUZZ_ADMIN_TOKEN, .jwt_secret = FUZZ_JWT_SECRET};
static const pg_statement_t *statements;
static size_t statement_count;
static fuzz_exchange_t *current; /* the exchange whose handler is running */
static worker_t worker;

router_t *fuzz_exchange_router(const router_route_t *routes, size_t count)
{
    char error[256];
    router_t *router = router_create(routes, count, error, sizeof(error));
    if (router == NULL) {
        fprintf(stderr, "router_create: %s\n", error);
        abort();
    }
    return router;
}

void fuzz_exchange_setup(const char *service, const pg_statement_t *service_statements, size_t count)
{
    char error[128];
    if (client_networks_parse("127.0.0.0/8, ::1", &trusted_proxies, error, sizeof(error)) != 0)
        abort();
    settings.service = service;
    server.service = service;
    server.trusted_proxies = &trusted_proxies;
    /* handlers may start timers (retries); the loop never runs here. The
     * pool and the client are never opened: every call to them is
     * replaced, so any non-NULL value tells the steps they are declared. */
    h2o_evloop_t *loop = h2o_evloop_create();
    if (loop == NULL || loop_timers_init(loop) != 0)
        abort();
    worker.loop = loop;
    worker.settings = &settings;
    worker.pg = (pg_pool_t *)&worker;
    worker.redis = (redis_client_t *)&worker;
    statements = service_statements;
    statement_count = count;
    http_metrics_register();
    auth_metrics_register();
    log_init(service, LOG_DEBUG); /* every line is formatted, then dropped */
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(null, STDOUT_FILENO) < 0)
        abort();
    close(null);
}

static fuzz_backend_call_t *record_call(bool is_redis, const char *name)
{
    FUZZ_CHECK(current != NULL, "a backend call outside a request: %s", name);
    FUZZ_CHECK(current->call_count < FUZZ_EXCHANGE_CALLS, "more than %d backend calls", FUZZ_EXCHANGE_CALLS);
    fuzz_backend_call_t *call = &current->calls[current->call_count++];
    memset(call, 0, sizeof(*call));
    call->is_redis = is_redis;
    snprintf(call->name, sizeof(call->name), "%s", name);
    return call;
}

static void copy_arg(fuzz_backend_call_t *call, const char *value, size_t len)
{
    size_t i = call->arg_count++;
    if (value == NULL)
        return;
    call->args[i] = malloc(len + 1);
    if (call->args[i] == NULL)
        abort();
    memcpy(call->args[i], value, len);
    call->args[i][len] = '\0';
    call->arg_lens[i] = len;
}

void __wrap_pg_query(pg_pool_t *pool, const char *statement, const char *const *params, pg_callback_fn cb, void *data)
{
    (void)pool;
    const pg_statement_t *declared = NULL;
    for (size_t i = 0; i < statement_count && declared == NULL; i++)
        if (strcmp(statements[i].name, statement) == 0)
            declared = &statements[i];
    FUZZ_CHECK(declared != NULL, "pg_query of an undeclared statement '%s'", statement);
    FUZZ_CHECK(declared->param_count <= FUZZ_CALL_ARGS, "statement %s has too many parameters", statement);
    fuzz_backend_call_t *call = record_call(false, statement);
    for (int i = 0; i < declared->param_count; i++)
        copy_arg(call, params[i], params[i] != NULL ? strlen(params[i]) : 0);
    call->pg_cb = cb;
    call->data = data;
}

void __wrap_redis_command_argv(redis_client_t *client, redis_callback_fn cb, void *data, int argc, const char **argv,
                               const size_t *argv_len)
{
    (void)client;
    FUZZ_CHECK(argc >= 1 && argc <= FUZZ_CALL_ARGS + 1, "redis command with %d arguments", argc);
    fuzz_backend_call_t *call = record_call(true, argv[0]);
    for (int i = 1; i < argc; i++)
        copy_arg(call, argv[i], argv_len != NULL ? argv_len[i] : strlen(argv[i]));
    call->redis_cb = cb;
    call->data = data;
}

/* Redis counts as connected, so that callers send their commands (which
 * then fail): the path with the most code. */
bool __wrap_redis_client_is_up(const redis_client_t *client)
{
    (void)client;
    return true;
}

/* --- parsing the input ------------------------------------------------------- */

/* One line of `p..end` (without CR LF); returns where the next one starts,
 * or NULL at the end of the input without a final LF. */
static const char *next_line(const char *p, const char *end, const char **line, size_t *len)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = lf != NULL ? lf : end;
    *line = p;
    *len = (size_t)(line_end - p);
    if (*len > 0 && p[*len - 1] == '\r')
        (*len)--;
    return lf != NULL ? lf + 1 : NULL;
}

static bool is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

bool fuzz_exchange_parse(const char *data, size_t size, fuzz_exchange_t *ex)
{
    memset(ex, 0, sizeof(*ex));
    ex->peer = "127.0.0.1";
    const char *end = data + size, *line;
    size_t len;
    const char *next = next_line(data, end, &line, &len);

    /* request line: the method is a token, the target has no space or control */
    const char *space = memchr(line, ' ', len);
    if (space == NULL || space == line)
        return false;
    ex->method = line;
    ex->method_len = (size_t)(space - line);
    for (size_t i = 0; i < ex->method_len; i++)
        if (!is_token_char((unsigned char)line[i]))
            return false;
    ex->target = space + 1;
    const char *target_end = memchr(ex->target, ' ', (size_t)(line + len - ex->target));
    ex->target_len = (size_t)((target_end != NULL ? target_end : line + len) - ex->target);
    if (ex->target_len == 0)
        return false;
    for (size_t i = 0; i < ex->target_len; i++)
        if (fuzz_is_control((unsigned char)ex->target[i]) || ex->target[i] == ' ')
            return false;

    /* headers until an empty line */
    while (next != NULL) {
        next = next_line(next, end, &line, &len);
        if (len == 0) {
            if (next != NULL || line < end) {
                ex->body = next != NULL ? next : end;
                ex->body_len = (size_t)(end - ex->body);
            }
            break;
        }
        const char *colon = memchr(line, ':', len);
        if (colon == NULL || colon == line || ex->header_count == FUZZ_EXCHANGE_HEADERS)
            return false;
        for (const char *p = line; p < colon; p++)
            if (!is_token_char((unsigned char)*p))
                return false;
        const char *value = colon + 1, *value_end = line + len;
        while (value < value_end && (*value == ' ' || *value == '\t'))
            value++;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
        for (const char *p = value; p < value_end; p++)
            if (fuzz_is_control((unsigned char)*p) && *p != '\t')
                return false;
        size_t i = ex->header_count++;
        ex->headers[i].name = line;
        ex->headers[i].name_len = (size_t)(colon - line);
        ex->headers[i].value = value;
        ex->headers[i].value_len = (size_t)(value_end - value);
    }
    return true;
}

/* --- running it -------------------------------------------------------------- */

static h2o_iovec_t header_value(const h2o_headers_t *headers, const char *name)
{
    ssize_t index = h2o_find_header_by_str(headers, name, strlen(name), -1);
    return index >= 0 ? headers->entries[index].value : h2o_iovec_init(NULL, 0);
}

/* Answers every recorded call: PostgreSQL is down; Redis is down for the
 * calls the handler made, and answers the follow-ups that callbacks make
 * (a refund, a cache write) with the integer 1, so that nothing is left
 * retrying on a timer. */
static void answer_calls(fuzz_exchange_t *ex)
{
    size_t first_follow_up = ex->call_count;
    for (size_t i = 0; i < ex->call_count; i++) {
        fuzz_backend_call_t *call = &ex->calls[i];
        if (call->answered)
            continue;
        call->answered = true;
        if (call->is_redis) {
            redisReply one = {.type = REDIS_REPLY_INTEGER, .integer = 1};
            if (call->redis_cb != NULL)
                call->redis_cb(call->data, i < first_follow_up ? NULL : &one, "fuzz: Redis is down");
        } else {
            pg_reply_t reply = {PG_UNAVAILABLE, NULL, "", "fuzz: PostgreSQL is down"};
            call->pg_cb(call->data, &reply);
        }
    }
}

/* The response promises of DESIGN.md, for every exchange. */
static void check_response(fuzz_exchange_t *ex, h2o_req_t *req)
{
    FUZZ_CHECK(ex->responded, "no response once every backend call was answered (%zu calls)", ex->call_count);
    FUZZ_CHECK(ex->status >= 200 && ex->status <= 599, "status %d", ex->status);
    FUZZ_CHECK(req->res.content_length == ex->response_len, "Content-Length %zu for a body of %zu bytes",
               req->res.content_length, ex->response_len);

    h2o_iovec_t traceparent = header_value(&req->res.headers, "traceparent");
    trace_context_t trace;
    FUZZ_CHECK(traceparent.base != NULL && trace_parse_traceparent(traceparent.base, traceparent.len, &trace) == 0,
               "response traceparent '%s'", fuzz_show(traceparent.base, traceparent.len));

    h2o_iovec_t type = header_value(&req->res.headers, "content-type");
    bool is_json = type.base != NULL && h2o_memis(type.base, type.len, H2O_STRLIT("application/json"));
    if (is_json) {
        json_error_t error;
        ex->response_json = json_loadb(ex->response, ex->response_len, 0, &error);
        FUZZ_CHECK(ex->response_json != NULL, "a JSON response that does not parse (%s): %s", error.text,
                   fuzz_show(ex->response, ex->response_len));
    }
    if (ex->status >= 400) {
        FUZZ_CHECK(is_json, "error %d without a JSON body", ex->status);
        const json_t *err = json_object_get(ex->response_json, "error");
        FUZZ_CHECK(json_is_object(err) && json_is_string(json_object_get(err, "code")) &&
                       json_is_string(json_object_get(err, "message")),
                   "error %d not shaped {\"error\":{\"code\",\"message\"}}: %s", ex->status,
                   fuzz_show(ex->response, ex->response_len));
        const json_t *field = json_object_get(err, "field");
        FUZZ_CHECK(field == NULL || json_is_string(field), "error field is not a string");
    }
}

void fuzz_exchange_run(const router_t *router, fuzz_exchange_t *ex)
{
    server.router = router;
    http_double_t d;
    char method[64], *target = strndup(ex->target, ex->target_len);
    if (target == NULL)
        abort();
    snprintf(method, sizeof(method), "%.*s", (int)ex->method_len, ex->method);
    http_double_init(&d, method, target, ex->peer);
    free(target);
    h2o_req_t *req = &d.req;
    if (ex->method_len >= sizeof(method)) /* a long method, whole */
        req->method = h2o_strdup(&req->pool, ex->method, ex->method_len);
    ex->path = malloc(req->path_normalized.len + 1);
    if (ex->path == NULL)
        abort();
    memcpy(ex->path, req->path_normalized.base, req->path_normalized.len);
    ex->path[req->path_normalized.len] = '\0';
    ex->path_len = req->path_normalized.len;
    ex->has_query = req->query_at != SIZE_MAX;
    bool has_authorization = false;
    for (size_t i = 0; i < ex->header_count; i++) {
        http_double_header_n(&d, ex->headers[i].name, ex->headers[i].name_len, ex->headers[i].value,
                             ex->headers[i].value_len);
        has_authorization |= h2o_lcstris(ex->headers[i].name, ex->headers[i].name_len, H2O_STRLIT("authorization"));
    }
    if (ex->add_admin_token && !has_authorization)
        http_double_header(&d, "authorization", "Bearer " FUZZ_ADMIN_TOKEN);
    if (ex->body != NULL)
        http_double_body(&d, ex->body, ex->body_len);

    current = ex;
    http_dispatch(&server, &worker, req);
    answer_calls(ex);
    FUZZ_CHECK(!d.sent_after_final, "data sent after the final chunk");
    ex->responded = d.responded;
    ex->status = d.status;
    ex->response = d.body;
    ex->response_len = d.body_len;
    d.body = NULL; /* the exchange owns it now */
    check_response(ex, req);
    if (getenv("FUZZ_VERBOSE") != NULL) { /* for whoever writes seeds */
        fprintf(stderr, "%.*s %s -> %d %s\n", (int)ex->method_len, ex->method, fuzz_show(ex->path, ex->path_len),
                ex->status, fuzz_show(ex->response, ex->response_len));
        for (size_t i = 0; i < ex->call_count; i++) {
            fprintf(stderr, "  %s %s", ex->calls[i].is_redis ? "redis" : "pg", ex->calls[i].name);
            for (size_t j = 0; j < ex->calls[i].arg_count; j++)
                fprintf(stderr, " [%s]",
                        ex->calls[i].args[j] != NULL ? fuzz_show(ex->calls[i].args[j], ex->calls[i].arg_lens[j])
                                                     : "NULL");
            fputc('\n', stderr);
        }
    }
    current = NULL;
    http_double_dispose(&d);
    FUZZ_CHECK(worker.active_requests == 0, "%zu requests still counted active", worker.active_requests);
    FUZZ_CHECK(worker.busy == 0, "%zu units of work still alive after every call was answered", worker.busy);
}

const fuzz_backend_call_t *fuzz_exchange_call(const fuzz_exchange_t *ex, const char *name)
{
    for (size_t i = 0; i < ex->call_count; i++)
        if (strcmp(ex->calls[i].name, name) == 0)
            return &ex->calls[i];
    return NULL;
}

size_t fuzz_exchange_header(const fuzz_exchange_t *ex, const char *name, const char **value, size_t *len)
{
    size_t count = 0;
    for (size_t i = 0; i < ex->header_count; i++) {
        if (ex->headers[i].name_len != strlen(name) || strncasecmp(ex->headers[i].name, name, strlen(name)) != 0)
            continue;
        if (count++ == 0) {
            *value = ex->headers[i].value;
            *len = ex->headers[i].value_len;
        }
    }
    return count;
}

bool fuzz_exchange_is_clean(const fuzz_exchange_t *ex, const char *method, const char *path, bool with_json_body)
{
    const char *value;
    size_t len;
    if (ex->method_len != strlen(method) || memcmp(ex->method, method, ex->method_len) != 0 || ex->has_query ||
        ex->path_len != strlen(path) || memcmp(ex->path, path, ex->path_len) != 0 ||
        fuzz_exchange_header(ex, "authorization", &value, &len) != 0)
        return false;
    if (!with_json_body)
        return true;
    return fuzz_exchange_header(ex, "content-type", &value, &len) == 1 && len == 16 &&
           strncasecmp(value, "application/json", 16) == 0;
}

const char *fuzz_exchange_error_field(const fuzz_exchange_t *ex)
{
    return json_string_value(json_object_get(json_object_get(ex->response_json, "error"), "field"));
}

void fuzz_exchange_clear(fuzz_exchange_t *ex)
{
    for (size_t i = 0; i < ex->call_count; i++)
        for (size_t j = 0; j < ex->calls[i].arg_count; j++)
            free(ex->calls[i].args[j]);
    free(ex->response);
    free(ex->path);
    json_decref(ex->response_json);
    ex->path = NULL;
    ex->response = NULL;
    ex->response_json = NULL;
    ex->call_count = 0;
}
