/* http.c - the request as a unit of work, middleware (trace, faults,
 * metrics, access log) and JSON responses. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client_address.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "random.h"
#include "utf8.h"

#define MAX_INJECTED_LATENCY_MS 60000

static metrics_family_t *request_duration, *active_requests;

void http_metrics_register(void)
{
    static const char *const labels[] = {"method", "route", "status_code", NULL};
    request_duration = metrics_histogram("http_server_request_duration_seconds",
                                         "Duration of HTTP requests served, by route template.", labels,
                                         metrics_duration_buckets, metrics_duration_bucket_count);
    active_requests = metrics_gauge("http_server_active_requests", "HTTP requests being served right now.", NULL);
}

static const char *method_label(h2o_iovec_t method)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (h2o_memis(method.base, method.len, known[i], strlen(known[i])))
            return known[i];
    return "_OTHER"; /* keeps the label's values bounded */
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case HTTP_CLIENT_CLOSED_REQUEST: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* Records the request's metrics and access log line; runs once per request,
 * when it is answered or when the client leaves first (status 499,
 * HTTP_CLIENT_CLOSED_REQUEST). */
static void record(http_request_t *r, int status, h2o_iovec_t path)
{
    double seconds = (double)(loop_now_ns() - r->super.started_ns) / 1e9;
    char status_text[8];
    snprintf(status_text, sizeof(status_text), "%d", status);
    const char *method_name = r->method;
    metrics_histogram_observe(request_duration, (const char *const[]){method_name, r->route, status_text}, seconds);
    metrics_gauge_add(active_requests, NULL, -1);
    r->super.worker->active_requests--;
    log_at(status >= 500 ? LOG_ERROR : LOG_INFO, &r->super.trace, "request", LOG_STRING("method", method_name),
           LOG_STRING("route", r->route), LOG_STRING_N("path", path.base, path.len), LOG_STRING("client", r->client),
           LOG_INT("status", status), LOG_DOUBLE("duration_ms", seconds * 1000));
}

/* h2o is done with the request (answered, or the client went away): its
 * pool goes now, so the context is cancelled and h2o's reference dropped;
 * steps still under way keep the context itself alive. */
static void on_request_disposed(void *sentinel)
{
    http_request_t *r = *(http_request_t **)sentinel;
    if (loop_timer_is_active(&r->delay)) {
        /* the injected delay will not run: drop the hold it had */
        loop_timer_stop(&r->delay);
        context_release(&r->super);
    }
    if (!r->responded) {
        r->responded = true;
        /* the request's buffers may already be gone: no path in this line */
        record(r, HTTP_CLIENT_CLOSED_REQUEST, h2o_iovec_init("", 0));
    }
    r->req = NULL;
    context_cancel(&r->super);
    context_release(&r->super);
}

static void request_fail(context_t *c, int status, const char *code, const char *message)
{
    http_respond_error((http_request_t *)c, status, code, "%s", message);
}

static void request_release(context_t *c)
{
    free(c);
}

static const context_ops_t request_ops = {request_fail, request_release};

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes a query-string key or value into the request pool ('+'
 * is a space there); *len gets the decoded length. */
static char *decode_query(http_request_t *r, const char *s, size_t len, size_t *decoded_len)
{
    char *out = h2o_mem_alloc_pool(&r->req->pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hex_digit(s[i + 1])) >= 0 && (lo = hex_digit(s[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[n] = '\0';
    *decoded_len = n;
    return out;
}

/* Calls `visit` for each key=value pair of the query string, decoded, until
 * it returns false. Returns false when a visit did. */
typedef bool (*query_visit_fn)(void *data, const char *key, size_t key_len, const char *value, size_t value_len);
static bool each_query_pair(http_request_t *r, query_visit_fn visit, void *data)
{
    h2o_req_t *req = r->req;
    if (req->query_at == SIZE_MAX)
        return true;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        const char *key_end = eq != NULL ? eq : pair_end;
        size_t key_len, value_len = 0;
        const char *key = decode_query(r, p, (size_t)(key_end - p), &key_len);
        const char *value = eq != NULL ? decode_query(r, eq + 1, (size_t)(pair_end - eq - 1), &value_len) : "";
        if (!visit(data, key, key_len, value, value_len))
            return false;
        p = pair_end + 1;
    }
    return true;
}

typedef struct query_lookup {
    const char *name;
    const char *value;
} query_lookup_t;

static bool find_query_value(void *data, const char *key, size_t key_len, const char *value, size_t value_len)
{
    query_lookup_t *lookup = data;
    (void)value_len;
    if (strlen(lookup->name) != key_len || memcmp(key, lookup->name, key_len) != 0)
        return true;
    lookup->value = value;
    return false;
}

const char *http_path_param(http_request_t *r, const char *name)
{
    const router_param_t *param = router_param(&r->match, name);
    /* h2o's normalized path is already percent-decoded: decoding it again
     * would read "%2541" as "A". */
    return param != NULL ? h2o_strdup(&r->req->pool, param->value, param->value_len).base : NULL;
}

const char *http_query_param(http_request_t *r, const char *name)
{
    query_lookup_t lookup = {name, NULL};
    each_query_pair(r, find_query_value, &lookup);
    return lookup.value;
}

bool http_query_long(http_request_t *r, const char *name, long fallback, long min, long max, long *out)
{
    const char *text = http_query_param(r, name);
    *out = fallback;
    if (text == NULL)
        return true;
    long value;
    if (config_parse_long(text, &value) != 0 || value < min || value > max) {
        json_field_error_t error;
        json_fail(&error, name, "%s must be a whole number from %ld to %ld", name, min, max);
        http_respond_field_error(r, &error);
        return false;
    }
    *out = value;
    return true;
}

bool http_query_page(http_request_t *r, long default_limit, long max_limit, http_page_t *page)
{
    if (!http_query_long(r, "limit", default_limit, 1, max_limit, &page->limit) ||
        !http_query_long(r, "offset", 0, 0, HTTP_MAX_OFFSET, &page->offset))
        return false;
    snprintf(page->limit_text, sizeof(page->limit_text), "%ld", page->limit);
    snprintf(page->offset_text, sizeof(page->offset_text), "%ld", page->offset);
    return true;
}

const char *http_header(http_request_t *r, const char *name, size_t *len)
{
    ssize_t index = h2o_find_header_by_str(&r->req->headers, name, strlen(name), -1);
    if (index < 0)
        return NULL;
    h2o_iovec_t value = r->req->headers.entries[index].value;
    if (len != NULL)
        *len = value.len;
    return value.base;
}

/* Sends `body` (already in the request pool) with the common headers. */
static void send_response(http_request_t *r, int status, const char *content_type, h2o_iovec_t body)
{
    if (r->responded || r->req == NULL)
        return;
    r->responded = true;
    h2o_req_t *req = r->req;
    char *traceparent = h2o_mem_alloc_pool(&req->pool, TRACE_TRACEPARENT_LEN + 1);
    trace_format_traceparent(&r->super.trace, traceparent);
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("traceparent"), 0, NULL, traceparent,
                          TRACE_TRACEPARENT_LEN);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    record(r, status, req->path_normalized);
    static h2o_generator_t generator = {NULL, NULL};
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

void http_respond_text(http_request_t *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->req == NULL)
        return;
    h2o_iovec_t copy = h2o_strdup(&r->req->pool, body, len);
    send_response(r, status, content_type, copy);
}

void http_respond_json_text(http_request_t *r, int status, const char *body, size_t len)
{
    http_respond_text(r, status, "application/json", body, len);
}

void http_respond_json(http_request_t *r, int status, json_t *body)
{
    if (r->req == NULL) {
        json_decref(body);
        return;
    }
    /* 15 significant digits: 0.05 stays 0.05, not 0.050000000000000003 */
    const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(15);
    size_t size = json_dumpb(body, NULL, 0, flags);
    char *text = h2o_mem_alloc_pool(&r->req->pool, size + 1);
    json_dumpb(body, text, size, flags);
    json_decref(body);
    send_response(r, status, "application/json", h2o_iovec_init(text, size));
}

/* A JSON string of `text`; jansson refuses invalid UTF-8 (which a message
 * quoting client input can contain), so that becomes a placeholder. */
static json_t *utf8_string(const char *text)
{
    json_t *value = json_string(text);
    return value != NULL ? value : json_string("(text with invalid UTF-8 omitted)");
}

static void respond_error_object(http_request_t *r, int status, const char *code, const char *message,
                                 const char *field)
{
    json_t *error = json_pack("{s:s,s:o}", "code", code, "message", utf8_string(message));
    if (field != NULL && field[0] != '\0')
        json_object_set_new(error, "field", utf8_string(field));
    http_respond_json(r, status, json_pack("{s:o}", "error", error));
}

void http_respond_error(http_request_t *r, int status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    respond_error_object(r, status, code, message, NULL);
}

void http_respond_error_details(http_request_t *r, int status, const char *code, const char *message, json_t *details)
{
    json_t *error = json_pack("{s:s,s:o}", "code", code, "message", utf8_string(message));
    json_object_update_missing(error, details);
    json_decref(details);
    http_respond_json(r, status, json_pack("{s:o}", "error", error));
}

void http_respond_field_error(http_request_t *r, const json_field_error_t *error)
{
    respond_error_object(r, 400, "invalid_request", error->message, error->field);
}

void http_add_header(http_request_t *r, const char *name, const char *value)
{
    if (r->req == NULL || r->responded)
        return;
    h2o_iovec_t copy = h2o_strdup(&r->req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name, strlen(name), 0, NULL, copy.base, copy.len);
}

bool http_client_has_left(http_request_t *r)
{
    if (r->req == NULL)
        return true;
    /* HTTP/2 multiplexes streams on one socket, and h2o reads it all the
     * time: a reset stream's request is disposed of at once. */
    if (r->req->version >= 0x200 || r->req->conn->callbacks->get_socket == NULL)
        return false;
    h2o_socket_t *sock = r->req->conn->callbacks->get_socket(r->req->conn);
    if (sock == NULL)
        return false;
    char byte;
    ssize_t n = recv(h2o_socket_get_fd(sock), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    /* 0: the client's end of stream; an error other than "nothing yet": the
     * connection is broken. Bytes waiting (a pipelined request) say nothing. */
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* True for "application/json", in any case, alone or followed by
 * parameters ("; charset=utf-8"); not for "application/json-patch+json". */
static bool is_json_media_type(const char *type, size_t len)
{
    static const char json[] = "application/json";
    const size_t json_len = sizeof(json) - 1;
    if (len < json_len || strncasecmp(type, json, json_len) != 0)
        return false;
    for (size_t i = json_len; i < len; i++) {
        if (type[i] == ';')
            return true;
        if (type[i] != ' ' && type[i] != '\t')
            return false;
    }
    return true;
}

json_t *http_read_json_body(http_request_t *r)
{
    size_t len = 0;
    const char *type = http_header(r, "content-type", &len);
    bool has_body = r->req->entity.base != NULL && r->req->entity.len > 0;
    if ((type != NULL || has_body) && (type == NULL || !is_json_media_type(type, len))) {
        http_respond_error(r, 415, "unsupported_media_type", "Content-Type must be application/json");
        return NULL;
    }
    json_field_error_t error;
    json_t *body = json_parse_object(r->req->entity.base, r->req->entity.len, &error);
    if (body == NULL)
        http_respond_field_error(r, &error);
    return body;
}

/* --- h2o's own errors as JSON ----------------------------------------------- */

/* h2o answers some errors before any handler runs (an oversized or broken
 * request body) with a text/plain body. This output filter rewrites those
 * into DESIGN's JSON error shape, so every error a client sees parses the
 * same way. */
typedef struct json_error_stream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} json_error_stream_t;

static void send_rewritten(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                           h2o_send_state_t state)
{
    json_error_stream_t *stream = (json_error_stream_t *)self;
    (void)bufs;
    (void)bufcnt;
    if (stream->sent) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    stream->sent = true;
    h2o_ostream_send_next(self, req, &stream->body, 1, state);
}

static void on_setup_error_stream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    ssize_t index = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && index >= 0 &&
        h2o_memis(req->res.headers.entries[index].value.base, req->res.headers.entries[index].value.len,
                  H2O_STRLIT("text/plain; charset=utf-8"))) {
        const char *code = req->res.status == 413   ? "payload_too_large"
                           : req->res.status == 400 ? "invalid_request"
                                                    : "http_error";
        char text[256];
        int len = snprintf(text, sizeof(text), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                           req->res.status == 413 ? "request body is too large" : "the request is malformed");
        req->res.headers.entries[index].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        req->res.content_length = (size_t)len;
        json_error_stream_t *stream = (json_error_stream_t *)h2o_add_ostream(req, sizeof(*stream), slot);
        stream->super.do_send = send_rewritten;
        stream->body = h2o_strdup(&req->pool, text, (size_t)len);
        stream->sent = false;
        slot = &stream->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void http_register_error_filter(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *filter = h2o_create_filter(pathconf, sizeof(*filter));
    filter->on_setup_ostream = on_setup_error_stream;
}

/* The client's address for logs and per-client limits: the peer, or
 * behind a trusted proxy the client it forwarded for (client_address.h). */
static void find_client(http_request_t *r)
{
    char peer_text[CLIENT_ADDRESS_TEXT_MAX] = "";
    struct sockaddr_storage peer;
    socklen_t peer_len = r->req->conn->callbacks->get_peername(r->req->conn, (struct sockaddr *)&peer);
    const void *address = NULL;
    if (peer_len > 0 && peer.ss_family == AF_INET)
        address = &((struct sockaddr_in *)&peer)->sin_addr;
    else if (peer_len > 0 && peer.ss_family == AF_INET6)
        address = &((struct sockaddr_in6 *)&peer)->sin6_addr;
    if (address == NULL || inet_ntop(peer.ss_family, address, peer_text, sizeof(peer_text)) == NULL)
        peer_text[0] = '\0';
    size_t len = 0;
    const char *forwarded = http_header(r, "x-forwarded-for", &len);
    client_address_resolve(r->server->trusted_proxies, peer_text, forwarded, len, r->client);
}

/* --- dispatch ------------------------------------------------------------ */

/* RFC 9112 section 6.3: a request with both Transfer-Encoding and
 * Content-Length, or with Content-Length values that differ, cannot be
 * framed reliably (the way requests are smuggled past proxies); it gets 400
 * and the connection is closed. h2o keeps neither header in req->headers
 * (it reads the body by them, Transfer-Encoding winning), so for HTTP/1 the
 * head is read again from the connection's input buffer, where it still
 * starts while the request runs. Requests without a body are not looked
 * at: h2o saw neither header there. */
static bool has_conflicting_framing(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->entity.base == NULL || req->conn->callbacks->get_socket == NULL)
        return false;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL)
        return false;
    const char *p = sock->input->bytes, *end = p + sock->input->size;
    while (p < end && (*p == '\r' || *p == '\n')) /* empty lines a client may send first */
        p++;
    const char *line_end = memchr(p, '\n', (size_t)(end - p)); /* the request line */
    const char *length = NULL;
    size_t length_len = 0;
    bool chunked = false;
    while (line_end != NULL && (p = line_end + 1) < end && (line_end = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t len = (size_t)(line_end - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len == 0)
            break; /* end of the head */
        const char *colon = memchr(p, ':', len);
        if (colon == NULL)
            continue;
        size_t name_len = (size_t)(colon - p);
        const char *value = colon + 1, *value_end = p + len;
        while (value < value_end && (*value == ' ' || *value == '\t'))
            value++;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
        if (h2o_lcstris(p, name_len, H2O_STRLIT("transfer-encoding"))) {
            chunked = true;
        } else if (h2o_lcstris(p, name_len, H2O_STRLIT("content-length"))) {
            size_t value_len = (size_t)(value_end - value);
            if (length != NULL && !h2o_memis(length, length_len, value, value_len))
                return true;
            length = value, length_len = value_len;
        }
    }
    return chunked && length != NULL;
}

/* Path parameters and query-string keys and values must be printable
 * UTF-8: a decoded %00 would cut a C string short, other controls corrupt
 * logs and downstream systems. Answers 400 naming the first bad one. */
static bool check_query_pair(void *data, const char *key, size_t key_len, const char *value, size_t value_len)
{
    http_request_t *r = data;
    if (utf8_printable(key, key_len) && utf8_printable(value, value_len))
        return true;
    json_field_error_t error;
    const char *field = utf8_printable(key, key_len) ? key : "query";
    json_fail(&error, field, "query parameter '%s' must be printable text without control characters", field);
    http_respond_field_error(r, &error);
    return false;
}

static bool parameters_are_printable(http_request_t *r)
{
    for (size_t i = 0; i < r->match.param_count; i++) {
        const router_param_t *param = &r->match.params[i];
        if (!utf8_printable(param->value, param->value_len)) {
            char name[ROUTER_MAX_SEGMENTS * 8];
            snprintf(name, sizeof(name), "%.*s", (int)param->name_len, param->name);
            json_field_error_t error;
            json_fail(&error, name, "path parameter '%s' must be printable text without control characters", name);
            http_respond_field_error(r, &error);
            return false;
        }
    }
    return each_query_pair(r, check_query_pair, r);
}

static void run_handler(http_request_t *r)
{
    r->match.route->handler(r);
}

static void on_delay_elapsed(loop_timer_t *timer)
{
    http_request_t *r = timer->data;
    if (!context_is_cancelled(&r->super))
        run_handler(r);
    context_release(&r->super);
}

/* Applies the generic fault flags to business routes (/api/...): a random
 * share of requests fails, and every request waits latency_ms first. */
static bool apply_faults(http_request_t *r)
{
    if (strncmp(r->route, "/api/", 5) != 0)
        return false;
    double error_rate = context_fault(&r->super, "error_rate");
    if (error_rate > 0 && random_unit() < error_rate) {
        http_respond_error(r, 500, "fault_injected", "injected failure (fault %s.error_rate)", r->server->service);
        return true;
    }
    double latency_ms = context_fault(&r->super, "latency_ms");
    if (latency_ms >= 1) {
        /* capped: a typo must not park requests for days */
        uint64_t delay = latency_ms < MAX_INJECTED_LATENCY_MS ? (uint64_t)latency_ms : MAX_INJECTED_LATENCY_MS;
        context_hold(&r->super);
        loop_timer_start(&r->delay, delay, on_delay_elapsed, r);
        return true;
    }
    return false;
}

int http_dispatch(const http_server_t *server, worker_t *worker, h2o_req_t *req)
{
    http_request_t *r = malloc(sizeof(*r));
    if (r == NULL)
        h2o_fatal("out of memory");
    memset(r, 0, sizeof(*r));
    context_init(&r->super, &request_ops, worker);
    r->req = req;
    r->server = server;
    r->route = "unmatched";
    r->method = method_label(req->method);
    http_request_t **sentinel = h2o_mem_alloc_shared(&req->pool, sizeof(*sentinel), on_request_disposed);
    *sentinel = r;

    size_t len;
    const char *traceparent = http_header(r, "traceparent", &len);
    trace_start_server_span(&r->super.trace, traceparent, traceparent != NULL ? len : 0);
    find_client(r);
    worker->active_requests++;
    metrics_gauge_add(active_requests, NULL, 1);

    if (has_conflicting_framing(req)) {
        req->http1_is_persistent = 0;
        http_respond_error(r, 400, "invalid_request",
                           "Content-Length and Transfer-Encoding disagree on where the body ends");
        return 0;
    }
    char allow[128];
    router_result_t result = router_match(server->router, req->method.base, req->method.len, req->path_normalized.base,
                                          req->path_normalized.len, &r->match, allow, sizeof(allow));
    if (result == ROUTER_NOT_FOUND) {
        http_respond_error(r, 404, "not_found", "no route for %.*s",
                           (int)utf8_prefix(req->path_normalized.base, req->path_normalized.len, 200),
                           req->path_normalized.base);
        return 0;
    }
    if (result == ROUTER_METHOD_NOT_ALLOWED) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        http_respond_error(r, 405, "method_not_allowed", "allowed methods: %s", allow);
        return 0;
    }
    r->route = r->match.route->template;
    if (!parameters_are_printable(r))
        return 0;
    /* Bodies over MAX_BODY_BYTES never get here: h2o refuses them (HTTP/1
     * and HTTP/2) and the error filter above makes that answer JSON. */
    if (!apply_faults(r))
        run_handler(r);
    return 0;
}
