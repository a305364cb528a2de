/* http_client.c - libcurl multi on the h2o loop, retries, circuit breakers.
 *
 * A call is one `call_t`; each attempt is one curl easy handle added to the
 * client's curl_loop (curl_loop.h: curl on the h2o loop), which hands the
 * finished transfer back to on_transfer_done, where the attempt is judged:
 * answered, retried after a backoff, or failed.
 *
 *   send -> [circuit open? fail at once] -> attempt -> finished
 *        -> ok / 4xx: done          -> 5xx, timeout, no connection:
 *           retryable and budget left? backoff -> attempt : done (failed)
 */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "curl_loop.h"
#include "log.h"
#include "metrics.h"
#include "random.h"

typedef struct peer {
    struct peer *next;
    char name[HTTP_CLIENT_PEER_MAX];
    int state; /* HTTP_CLIENT_CIRCUIT_* */
    int failures;
    uint64_t open_until_ms;
    bool probing; /* half-open: the one call let through is under way */
} peer_t;

typedef struct call {
    struct call *next, *prev; /* the client's calls under way */
    http_client_t *client;
    peer_t *peer;
    char method[8];
    char *url, *body, *idempotency_key, *authorization;
    size_t body_len;
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    bool retryable;
    bool probe; /* the half-open circuit's one call */
    int attempts;
    uint64_t deadline_ms;
    uint64_t attempt_started_ns;
    CURL *easy; /* the attempt under way, NULL between attempts */
    struct curl_slist *headers;
    buffer_t response;
    bool too_large;
    loop_timer_t backoff;
    http_client_fn cb;
    void *data;
} call_t;

struct http_client {
    curl_loop_t *curl;
    http_client_config_t config;
    call_t *calls;
    size_t pending;
    peer_t *peers;
};

static metrics_family_t *request_duration, *circuit_state;

int http_client_global_init(void)
{
    static const char *const labels[] = {"peer", "method", "status_code", NULL};
    static const char *const peer_label[] = {"peer", NULL};
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    request_duration = metrics_histogram("http_client_request_duration_seconds",
                                         "Duration of HTTP calls to other services, per attempt.", labels,
                                         metrics_duration_buckets, metrics_duration_bucket_count);
    circuit_state = metrics_gauge("http_client_circuit_state",
                                  "Circuit breaker per peer: 0 closed, 1 half-open (probing), 2 open.", peer_label);
    return 0;
}

/* --- circuit breakers ------------------------------------------------------- */

static void set_state(peer_t *peer, int state)
{
    peer->state = state;
    metrics_gauge_set(circuit_state, (const char *const[]){peer->name}, state);
}

static peer_t *find_peer(http_client_t *client, const char *name)
{
    for (peer_t *p = client->peers; p != NULL; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    peer_t *peer = calloc(1, sizeof(*peer));
    if (peer == NULL)
        return NULL;
    snprintf(peer->name, sizeof(peer->name), "%s", name);
    peer->next = client->peers;
    client->peers = peer;
    set_state(peer, HTTP_CLIENT_CIRCUIT_CLOSED);
    return peer;
}

/* May a call to `peer` go out now? Moves an open circuit whose time is up
 * to half-open and lets exactly one call through. */
static bool admit(peer_t *peer, bool *probe)
{
    *probe = false;
    if (peer->state == HTTP_CLIENT_CIRCUIT_CLOSED)
        return true;
    if (peer->state == HTTP_CLIENT_CIRCUIT_OPEN && loop_now_ms() >= peer->open_until_ms) {
        set_state(peer, HTTP_CLIENT_CIRCUIT_HALF);
        peer->probing = false;
    }
    if (peer->state == HTTP_CLIENT_CIRCUIT_HALF && !peer->probing) {
        peer->probing = *probe = true;
        return true;
    }
    return false;
}

static void record_outcome(http_client_t *client, call_t *call, bool success)
{
    peer_t *peer = call->peer;
    if (success) {
        peer->failures = 0;
        if (peer->state != HTTP_CLIENT_CIRCUIT_CLOSED) {
            log_info(NULL, "circuit closed", LOG_STRING("peer", peer->name));
            set_state(peer, HTTP_CLIENT_CIRCUIT_CLOSED);
        }
        return;
    }
    peer->failures++;
    bool reopen = peer->state == HTTP_CLIENT_CIRCUIT_HALF && call->probe;
    if (reopen || (peer->state == HTTP_CLIENT_CIRCUIT_CLOSED && peer->failures >= client->config.breaker_failures)) {
        peer->open_until_ms = loop_now_ms() + client->config.breaker_open_ms;
        if (peer->state != HTTP_CLIENT_CIRCUIT_OPEN)
            log_warn(NULL, "circuit open", LOG_STRING("peer", peer->name), LOG_INT("failures", peer->failures),
                     LOG_INT("open_ms", client->config.breaker_open_ms));
        set_state(peer, HTTP_CLIENT_CIRCUIT_OPEN);
    }
}

int http_client_circuit(const http_client_t *client, const char *peer)
{
    for (const peer_t *p = client->peers; p != NULL; p = p->next)
        if (strcmp(p->name, peer) == 0)
            return p->state;
    return HTTP_CLIENT_CIRCUIT_CLOSED;
}

/* --- finishing a call ----------------------------------------------------- */

static void free_call(call_t *call)
{
    loop_timer_stop(&call->backoff);
    curl_slist_free_all(call->headers);
    buffer_free(&call->response);
    free(call->url);
    free(call->body);
    free(call->idempotency_key);
    free(call->authorization);
    free(call);
}

static void unlink_call(http_client_t *client, call_t *call)
{
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        client->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    client->pending--;
}

static void finish(call_t *call, http_client_status_t status, int code, const char *error)
{
    http_client_t *client = call->client;
    unlink_call(client, call);
    if (call->probe)
        call->peer->probing = false; /* whatever became of it, the next call may probe */
    http_response_t response = {
        .status = status,
        .code = code,
        .body = call->response.data != NULL ? call->response.data : "",
        .body_len = call->response.len,
        .error = error != NULL ? error : "",
        .attempts = call->attempts,
    };
    call->cb(call->data, &response);
    free_call(call);
}

/* --- attempts ---------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    call_t *call = arg;
    size_t len = size * count;
    if (call->response.len + len > HTTP_CLIENT_RESPONSE_MAX) {
        call->too_large = true;
        return 0; /* curl ends the transfer with an error */
    }
    buffer_append(&call->response, data, len);
    return len;
}

static void start_attempt(call_t *call);

static void on_backoff(loop_timer_t *timer)
{
    start_attempt(timer->data);
}

static void start_attempt(call_t *call)
{
    http_client_t *client = call->client;
    uint64_t now = loop_now_ms();
    if (now >= call->deadline_ms) {
        finish(call, HTTP_CLIENT_TIMEOUT, 0, "timed out");
        return;
    }
    CURL *easy = curl_easy_init();
    if (easy == NULL) {
        finish(call, HTTP_CLIENT_UNAVAILABLE, 0, "out of memory");
        return;
    }
    call->attempts++;
    buffer_free(&call->response);
    call->too_large = false;
    curl_easy_setopt(easy, CURLOPT_URL, call->url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, call->method);
    if (strcmp(call->method, "GET") == 0)
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    if (call->body != NULL) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)call->body_len);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(call->deadline_ms - now));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(call->deadline_ms - now));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
    call->easy = easy;
    call->attempt_started_ns = loop_now_ns();
    if (curl_loop_add(client->curl, easy) != 0) {
        curl_easy_cleanup(easy);
        call->easy = NULL;
        finish(call, HTTP_CLIENT_UNAVAILABLE, 0, "the transfer could not be started");
    }
}

/* Retries (after a jittered, doubling backoff) when the call may be sent
 * again, its peer's circuit is still closed and its budget allows;
 * otherwise the call ends with `status`. A probe is never retried: its
 * one outcome decides the circuit. */
static void retry_or_finish(call_t *call, http_client_status_t status, int code, const char *error)
{
    http_client_t *client = call->client;
    if (call->retryable && !call->probe && call->attempts <= client->config.max_retries &&
        call->peer->state == HTTP_CLIENT_CIRCUIT_CLOSED) {
        uint64_t backoff = client->config.retry_base_ms << (call->attempts - 1);
        uint64_t delay = (uint64_t)(random_unit() * (double)backoff); /* full jitter */
        if (loop_now_ms() + delay < call->deadline_ms) {
            loop_timer_start(&call->backoff, delay, on_backoff, call);
            return;
        }
    }
    finish(call, status, code, error);
}

static void observe(call_t *call, const char *status_code)
{
    double seconds = (double)(loop_now_ns() - call->attempt_started_ns) / 1e9;
    metrics_histogram_observe(request_duration, (const char *const[]){call->peer->name, call->method, status_code},
                              seconds);
}

/* A transfer is over: judge the attempt. */
static void on_transfer_done(void *owner, CURL *easy, CURLcode result)
{
    http_client_t *client = owner;
    call_t *call = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    curl_loop_remove(client->curl, easy);
    curl_easy_cleanup(easy);
    call->easy = NULL;
    if (result == CURLE_OK) {
        char status[8];
        snprintf(status, sizeof(status), "%ld", code);
        observe(call, status);
        bool server_error = code >= 500;
        record_outcome(client, call, !server_error);
        if (server_error && code != 501)
            retry_or_finish(call, HTTP_CLIENT_OK, (int)code, NULL);
        else
            finish(call, HTTP_CLIENT_OK, (int)code, NULL);
        return;
    }
    bool timeout = result == CURLE_OPERATION_TIMEDOUT;
    observe(call, timeout ? "timeout" : "error");
    const char *error = call->too_large ? "the response is too large" : curl_easy_strerror(result);
    record_outcome(client, call, false);
    if (timeout && loop_now_ms() >= call->deadline_ms)
        finish(call, HTTP_CLIENT_TIMEOUT, 0, "timed out");
    else
        retry_or_finish(call, timeout ? HTTP_CLIENT_TIMEOUT : HTTP_CLIENT_UNAVAILABLE, 0, error);
}

/* --- the client -------------------------------------------------------------------- */

http_client_t *http_client_create(h2o_evloop_t *loop, const http_client_config_t *config)
{
    http_client_t *client = calloc(1, sizeof(*client));
    if (client == NULL)
        return NULL;
    client->config = *config;
    client->curl = curl_loop_create(loop, on_transfer_done, client);
    if (client->curl == NULL) {
        free(client);
        return NULL;
    }
    return client;
}

void http_client_destroy(http_client_t *client)
{
    while (client->calls != NULL) {
        call_t *call = client->calls;
        if (call->easy != NULL) {
            curl_loop_remove(client->curl, call->easy);
            curl_easy_cleanup(call->easy);
            call->easy = NULL;
        }
        finish(call, HTTP_CLIENT_UNAVAILABLE, 0, "shutting down");
    }
    curl_loop_destroy(client->curl);
    while (client->peers != NULL) {
        peer_t *peer = client->peers;
        client->peers = peer->next;
        free(peer);
    }
    free(client);
}

size_t http_client_pending(const http_client_t *client)
{
    return client->pending;
}

static char *copy_of(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* Whether `value` may go into a header line as it is (curl sends custom
 * headers unchecked: a CR or LF would start another header). */
static bool header_safe(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; p != NULL && *p != '\0'; p++)
        if (*p < ' ' || *p == 0x7f)
            return false;
    return true;
}

static struct curl_slist *build_headers(const call_t *call)
{
    char line[512];
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    snprintf(line, sizeof(line), "traceparent: %s", call->traceparent);
    headers = curl_slist_append(headers, line);
    if (call->body != NULL)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    if (call->idempotency_key != NULL) {
        snprintf(line, sizeof(line), "Idempotency-Key: %s", call->idempotency_key);
        headers = curl_slist_append(headers, line);
    }
    if (call->authorization != NULL) {
        char *auth = malloc(strlen(call->authorization) + 32);
        if (auth != NULL) {
            sprintf(auth, "Authorization: %s", call->authorization);
            headers = curl_slist_append(headers, auth);
            free(auth);
        }
    }
    return headers;
}

void http_client_send(http_client_t *client, const http_call_t *request, const trace_context_t *trace,
                      http_client_fn cb, void *data)
{
    call_t *call = calloc(1, sizeof(*call));
    peer_t *peer = call != NULL ? find_peer(client, request->peer) : NULL;
    if (peer == NULL) {
        free(call);
        http_response_t response = {.status = HTTP_CLIENT_UNAVAILABLE, .body = "", .error = "out of memory"};
        cb(data, &response);
        return;
    }
    call->client = client;
    call->peer = peer;
    snprintf(call->method, sizeof(call->method), "%s", request->method);
    call->url = copy_of(request->url);
    if (request->body != NULL && (call->body = malloc(request->body_len + 1)) != NULL) {
        memcpy(call->body, request->body, request->body_len);
        call->body[request->body_len] = '\0';
        call->body_len = request->body_len;
    }
    call->idempotency_key = copy_of(request->idempotency_key);
    call->authorization = copy_of(request->authorization);
    call->retryable = strcmp(call->method, "GET") == 0 || call->idempotency_key != NULL;
    trace_context_t child;
    if (trace != NULL)
        trace_start_child_span(&child, trace);
    else
        trace_start_server_span(&child, NULL, 0);
    trace_format_traceparent(&child, call->traceparent);
    call->headers = build_headers(call);
    call->deadline_ms = loop_now_ms() + (request->timeout_ms > 0 ? request->timeout_ms : client->config.timeout_ms);
    call->cb = cb;
    call->data = data;
    call->next = client->calls;
    if (client->calls != NULL)
        client->calls->prev = call;
    client->calls = call;
    client->pending++;
    if (call->url == NULL || (request->body != NULL && call->body == NULL)) {
        finish(call, HTTP_CLIENT_UNAVAILABLE, 0, "out of memory");
        return;
    }
    if (!header_safe(call->idempotency_key) || !header_safe(call->authorization)) {
        finish(call, HTTP_CLIENT_UNAVAILABLE, 0, "a header value holds a control character");
        return;
    }
    if (!admit(peer, &call->probe)) {
        finish(call, HTTP_CLIENT_UNAVAILABLE, 0, "circuit open");
        return;
    }
    start_attempt(call);
}
