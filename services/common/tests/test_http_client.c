/* Tests for http_client.c (and step_http) against a small HTTP server on a
 * thread of the test: answers, timeouts that stall nobody else, retries
 * only for idempotent calls, the circuit breaker's three states,
 * keep-alive reuse and `traceparent`. */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "test_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buffer.h"
#include "http_client.h"
#include "metrics.h"
#include "step.h"

/* --- the peer: a thread per connection, keep-alive ------------------------- */

static struct {
    int listener, port;
    pthread_t thread;
    atomic_int requests, connections;
    atomic_int fail_first; /* answer 503 to this many requests first */
    char last_traceparent[64], last_idempotency_key[64], last_method[8];
    pthread_mutex_t lock;
} server = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void header_value(const char *head, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = strcasestr(head, name);
    if (p == NULL)
        return;
    p += strlen(name);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
}

/* Serves one connection's requests: GET /ok, GET /slow?ms=N, anything
 * answers 200 {"ok":true} unless fail_first asks for a 503. */
static void serve(int fd)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        char *end;
        while ((end = memmem(buf, len, "\r\n\r\n", 4)) == NULL) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
            if (n <= 0)
                return;
            len += (size_t)n;
            buf[len] = '\0';
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char length_text[16];
        header_value(buf, "\r\ncontent-length:", length_text, sizeof(length_text));
        size_t body_len = (size_t)atoi(length_text);
        while (len < head_len + body_len) {
            ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
            if (n <= 0)
                return;
            len += (size_t)n;
        }
        pthread_mutex_lock(&server.lock);
        header_value(buf, "\r\ntraceparent:", server.last_traceparent, sizeof(server.last_traceparent));
        header_value(buf, "\r\nidempotency-key:", server.last_idempotency_key, sizeof(server.last_idempotency_key));
        snprintf(server.last_method, sizeof(server.last_method), "%.*s", (int)strcspn(buf, " "), buf);
        pthread_mutex_unlock(&server.lock);
        server.requests++;
        const char *slow = strstr(buf, "/slow?ms=");
        if (slow != NULL && slow < end)
            usleep((useconds_t)atoi(slow + 9) * 1000);
        bool fail = server.fail_first > 0;
        if (fail)
            server.fail_first--;
        const char *body = fail ? "{\"error\":\"busy\"}" : "{\"ok\":true}";
        char response[256];
        int n = snprintf(response, sizeof(response),
                         "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         fail ? "503 Service Unavailable" : "200 OK", strlen(body), body);
        if (write(fd, response, (size_t)n) != n)
            return;
        memmove(buf, buf + head_len + body_len, len - head_len - body_len);
        len -= head_len + body_len;
    }
}

static void *connection_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    serve(fd);
    close(fd);
    return NULL;
}

/* A thread per connection, so that a slow answer holds up only its own. */
static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(server.listener, NULL, NULL);
        if (fd < 0)
            return NULL; /* the listener was shut down */
        server.connections++;
        pthread_t thread;
        if (pthread_create(&thread, NULL, connection_main, (void *)(intptr_t)fd) != 0)
            close(fd);
        else
            pthread_detach(thread);
    }
}

static int start_server(void **state)
{
    (void)state;
    server.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(address);
    if (bind(server.listener, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(server.listener, 16) != 0 ||
        getsockname(server.listener, (struct sockaddr *)&address, &len) != 0)
        return -1;
    server.port = ntohs(address.sin_port);
    if (http_client_global_init() != 0)
        return -1;
    return pthread_create(&server.thread, NULL, server_main, NULL);
}

static int stop_server(void **state)
{
    (void)state;
    shutdown(server.listener, SHUT_RDWR);
    pthread_join(server.thread, NULL);
    close(server.listener);
    return 0;
}

/* --- the client's side ------------------------------------------------------- */

static const http_client_config_t config = {
    .timeout_ms = 2000, .max_retries = 2, .retry_base_ms = 20, .breaker_failures = 3, .breaker_open_ms = 300};

typedef struct answer {
    bool done;
    int count;
    http_response_t response;
    char body[256];
    uint64_t at_ms;
} answer_t;

static void on_answer(void *data, const http_response_t *response)
{
    answer_t *answer = data;
    answer->count++;
    answer->done = true;
    answer->response = *response;
    snprintf(answer->body, sizeof(answer->body), "%s", response->body);
    answer->response.body = answer->body;
    answer->at_ms = loop_now_ms();
}

static void wait_for(h2o_evloop_t *loop, const answer_t *answer)
{
    for (int i = 0; i < 2000 && !answer->done; i++)
        h2o_evloop_run(loop, 10);
    assert_true(answer->done);
}

static char *url(const char *path)
{
    static char text[128];
    snprintf(text, sizeof(text), "http://127.0.0.1:%d%s", server.port, path);
    return text;
}

static void reset_server(void)
{
    server.requests = 0;
    server.connections = 0;
    server.fail_first = 0;
}

static void test_a_call_is_answered_with_the_callers_trace(void **state)
{
    (void)state;
    reset_server();
    h2o_evloop_t *loop = test_loop_new();
    http_client_t *client = http_client_create(loop, &config);
    trace_context_t caller;
    trace_start_server_span(&caller, NULL, 0);
    answer_t answer = {0};
    http_call_t call = {.peer = "svc", .method = "POST", .url = url("/ok"), .body = "{\"a\":1}", .body_len = 7};
    http_client_send(client, &call, &caller, on_answer, &answer);
    assert_int_equal(http_client_pending(client), 1);
    wait_for(loop, &answer);
    assert_int_equal(answer.response.status, HTTP_CLIENT_OK);
    assert_int_equal(answer.response.code, 200);
    assert_string_equal(answer.body, "{\"ok\":true}");
    assert_int_equal(answer.count, 1);
    assert_int_equal(http_client_pending(client), 0);
    pthread_mutex_lock(&server.lock);
    trace_context_t sent;
    assert_int_equal(trace_parse_traceparent(server.last_traceparent, strlen(server.last_traceparent), &sent), 0);
    assert_string_equal(sent.trace_id, caller.trace_id);     /* the same trace */
    assert_string_not_equal(sent.parent_id, caller.span_id); /* a child span of its own */
    assert_string_equal(server.last_method, "POST");
    pthread_mutex_unlock(&server.lock);
    http_client_destroy(client);
    test_loop_free(loop);
}

static void test_connections_are_kept_alive(void **state)
{
    (void)state;
    reset_server();
    h2o_evloop_t *loop = test_loop_new();
    http_client_t *client = http_client_create(loop, &config);
    for (int i = 0; i < 5; i++) {
        answer_t answer = {0};
        http_call_t call = {.peer = "svc", .method = "GET", .url = url("/ok")};
        http_client_send(client, &call, NULL, on_answer, &answer);
        wait_for(loop, &answer);
        assert_int_equal(answer.response.code, 200);
    }
    assert_int_equal(server.requests, 5);
    assert_int_equal(server.connections, 1);
    http_client_destroy(client);
    test_loop_free(loop);
}

static void test_a_slow_peer_fails_at_the_timeout_and_stalls_nobody(void **state)
{
    (void)state;
    reset_server();
    h2o_evloop_t *loop = test_loop_new();
    http_client_t *client = http_client_create(loop, &config);
    answer_t slow = {0};
    uint64_t sent = loop_now_ms();
    http_call_t call = {.peer = "slowpoke", .method = "POST", .url = url("/slow?ms=3000"), .timeout_ms = 300};
    http_client_send(client, &call, NULL, on_answer, &slow);
    answer_t quick = {0}; /* another call meanwhile is answered first */
    http_call_t other = {.peer = "svc", .method = "GET", .url = url("/ok")};
    http_client_send(client, &other, NULL, on_answer, &quick);
    /* meanwhile the loop keeps running: a timer fires on time */
    uint64_t tick_ms = 0;
    while (!slow.done && loop_now_ms() - sent < 10000) {
        h2o_evloop_run(loop, 10);
        if (tick_ms == 0 && loop_now_ms() - sent >= 100)
            tick_ms = loop_now_ms() - sent;
    }
    assert_true(slow.done);
    assert_true(quick.done && quick.response.code == 200 && quick.at_ms <= slow.at_ms);
    assert_int_equal(slow.response.status, HTTP_CLIENT_TIMEOUT);
    assert_true(slow.at_ms - sent >= 300);
    assert_true(slow.at_ms - sent < 2500); /* its timeout, not the peer's 3 s */
    assert_true(tick_ms > 0 && tick_ms < 300);
    assert_int_equal(slow.response.attempts, 1); /* a POST without a key is not retried */
    http_client_destroy(client);
    test_loop_free(loop);
}

static void test_only_idempotent_calls_are_retried(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    http_client_t *client = http_client_create(loop, &config);
    struct {
        const char *method, *key;
        int expected_code, expected_requests;
    } cases[] = {
        {"GET", NULL, 200, 2},        /* retried after the 503 */
        {"POST", NULL, 503, 1},       /* not idempotent: the 503 stands */
        {"POST", "order-42", 200, 2}, /* idempotent by its key */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reset_server();
        server.fail_first = 1;
        answer_t answer = {0};
        http_call_t call = {
            .peer = "flaky", .method = cases[i].method, .url = url("/ok"), .idempotency_key = cases[i].key};
        http_client_send(client, &call, NULL, on_answer, &answer);
        wait_for(loop, &answer);
        assert_int_equal(answer.response.status, HTTP_CLIENT_OK);
        assert_int_equal(answer.response.code, cases[i].expected_code);
        assert_int_equal(server.requests, cases[i].expected_requests);
        assert_int_equal(answer.response.attempts, cases[i].expected_requests);
        if (cases[i].key != NULL) {
            pthread_mutex_lock(&server.lock);
            assert_string_equal(server.last_idempotency_key, cases[i].key);
            pthread_mutex_unlock(&server.lock);
        }
    }
    /* retries stop after max_retries */
    reset_server();
    server.fail_first = 10;
    answer_t answer = {0};
    http_call_t call = {.peer = "flaky2", .method = "GET", .url = url("/ok")};
    http_client_send(client, &call, NULL, on_answer, &answer);
    wait_for(loop, &answer);
    assert_int_equal(answer.response.code, 503);
    assert_int_equal(server.requests, 1 + config.max_retries);
    http_client_destroy(client);
    test_loop_free(loop);
}

static bool gauge_shows(const char *peer, int state)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "http_client_circuit_state{peer=\"%s\"} %d", peer, state);
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    bool found = out.data != NULL && strstr(out.data, needle) != NULL;
    buffer_free(&out);
    return found;
}

static void test_the_breaker_opens_probes_and_closes(void **state)
{
    (void)state;
    h2o_evloop_t *loop = test_loop_new();
    http_client_t *client = http_client_create(loop, &config);
    /* a peer that refuses connections: a bound socket nobody listens on */
    int refusing = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(address);
    assert_int_equal(bind(refusing, (struct sockaddr *)&address, sizeof(address)), 0);
    assert_int_equal(getsockname(refusing, (struct sockaddr *)&address, &len), 0);
    char down[128];
    snprintf(down, sizeof(down), "http://127.0.0.1:%d/ok", ntohs(address.sin_port));
    for (int i = 0; i < config.breaker_failures; i++) {
        answer_t answer = {0};
        http_call_t call = {.peer = "breaker", .method = "POST", .url = down};
        http_client_send(client, &call, NULL, on_answer, &answer);
        wait_for(loop, &answer);
        assert_int_equal(answer.response.status, HTTP_CLIENT_UNAVAILABLE); /* down: fails fast */
    }
    assert_int_equal(http_client_circuit(client, "breaker"), HTTP_CLIENT_CIRCUIT_OPEN);
    assert_true(gauge_shows("breaker", 2));
    /* open: refused before any connection is tried, even to a live address */
    reset_server();
    answer_t refused = {0};
    http_call_t live = {.peer = "breaker", .method = "POST", .url = url("/ok")};
    http_client_send(client, &live, NULL, on_answer, &refused);
    assert_true(refused.done); /* at once */
    assert_string_equal(refused.response.error, "circuit open");
    /* after breaker_open_ms: one probe goes through; its success closes it */
    uint64_t until = loop_now_ms() + config.breaker_open_ms;
    while (loop_now_ms() < until)
        h2o_evloop_run(loop, 10);
    answer_t probe = {0}, second = {0};
    http_client_send(client, &live, NULL, on_answer, &probe);
    assert_int_equal(http_client_circuit(client, "breaker"), HTTP_CLIENT_CIRCUIT_HALF);
    assert_true(gauge_shows("breaker", 1));
    http_client_send(client, &live, NULL, on_answer, &second); /* while probing: refused */
    assert_true(second.done);
    assert_int_equal(second.response.status, HTTP_CLIENT_UNAVAILABLE);
    wait_for(loop, &probe);
    assert_int_equal(probe.response.code, 200);
    assert_int_equal(http_client_circuit(client, "breaker"), HTTP_CLIENT_CIRCUIT_CLOSED);
    assert_true(gauge_shows("breaker", 0));
    assert_int_equal(server.requests, 1);
    /* a failed probe opens it again */
    for (int i = 0; i < config.breaker_failures; i++) {
        answer_t answer = {0};
        http_call_t call = {.peer = "breaker", .method = "POST", .url = down};
        http_client_send(client, &call, NULL, on_answer, &answer);
        wait_for(loop, &answer);
    }
    until = loop_now_ms() + config.breaker_open_ms;
    while (loop_now_ms() < until)
        h2o_evloop_run(loop, 10);
    answer_t failed_probe = {0};
    http_call_t call = {.peer = "breaker", .method = "POST", .url = down};
    http_client_send(client, &call, NULL, on_answer, &failed_probe);
    wait_for(loop, &failed_probe);
    assert_int_equal(http_client_circuit(client, "breaker"), HTTP_CLIENT_CIRCUIT_OPEN);
    close(refusing);
    http_client_destroy(client);
    test_loop_free(loop);
}

static void test_destroy_answers_calls_under_way_once(void **state)
{
    (void)state;
    reset_server();
    h2o_evloop_t *loop = test_loop_new();
    http_client_t *client = http_client_create(loop, &config);
    answer_t answers[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        http_call_t call = {.peer = "svc", .method = "POST", .url = url("/slow?ms=500")};
        http_client_send(client, &call, NULL, on_answer, &answers[i]);
    }
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(loop, 10);
    http_client_destroy(client);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(answers[i].count, 1);
        assert_int_equal(answers[i].response.status, HTTP_CLIENT_UNAVAILABLE);
        assert_string_equal(answers[i].response.error, "shutting down");
    }
    test_loop_free(loop);
}

/* --- step_http: the call as a step of a unit of work ---------------------------- */

typedef struct work {
    context_t super;
    int failures, status, next_runs, code;
    char failure_code[64];
} work_t;

static int released;

static void work_fail(context_t *c, int status, const char *code, const char *message)
{
    work_t *w = (work_t *)c;
    (void)message;
    w->failures++;
    w->status = status;
    snprintf(w->failure_code, sizeof(w->failure_code), "%s", code);
}

static void work_release(context_t *c)
{
    released++;
    free(c);
}

static const context_ops_t work_ops = {work_fail, work_release};

static void on_peer_answer(void *data, const http_response_t *response)
{
    work_t *w = data;
    w->next_runs++;
    w->code = response->code;
}

static work_t *start_work(worker_t *worker)
{
    work_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    context_init(&w->super, &work_ops, worker);
    trace_start_server_span(&w->super.trace, NULL, 0);
    return w;
}

static void test_a_call_as_a_step(void **state)
{
    (void)state;
    reset_server();
    worker_settings_t settings = {.service = "test", .resources = WORKER_HTTP_CLIENT, .http_client = config};
    worker_t worker;
    assert_int_equal(worker_open(&worker, 0, h2o_evloop_create(), &settings), 0);
    assert_non_null(worker.http);
    http_call_t ok = {.peer = "inventory", .method = "GET", .url = url("/ok")};
    http_call_t failing = {.peer = "inventory", .method = "POST", .url = url("/ok")};

    work_t *w = start_work(&worker); /* answered: the next step runs, with the caller's trace sent on */
    step_http(&w->super, &ok, on_peer_answer, w);
    assert_int_equal(worker_pending(&worker), 1);
    for (int i = 0; i < 1000 && w->next_runs == 0; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(w->next_runs, 1);
    assert_int_equal(w->code, 200);
    pthread_mutex_lock(&server.lock);
    assert_non_null(strstr(server.last_traceparent, w->super.trace.trace_id));
    pthread_mutex_unlock(&server.lock);
    context_release(&w->super);

    server.fail_first = 1; /* a 5xx: the context fails once, naming the peer */
    w = start_work(&worker);
    step_http(&w->super, &failing, on_peer_answer, w);
    for (int i = 0; i < 1000 && w->failures == 0; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(w->failures, 1);
    assert_int_equal(w->status, 503);
    assert_string_equal(w->failure_code, "dependency_unavailable");
    assert_int_equal(w->next_runs, 0);
    context_release(&w->super);

    int before = released; /* cancelled while the call runs: no next step, freed after the answer */
    w = start_work(&worker);
    step_http(&w->super, &ok, on_peer_answer, w);
    context_cancel(&w->super);
    context_release(&w->super);
    assert_int_equal(released, before);
    for (int i = 0; i < 1000 && released == before; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(released, before + 1);
    assert_int_equal(worker.busy, 0);

    h2o_evloop_t *loop = worker.loop;
    worker_close(&worker);
    h2o_evloop_destroy(loop);
}

static int raw_status; /* the last outcome a raw step was given */

static void on_raw_outcome(void *data, const http_response_t *response)
{
    work_t *w = data;
    w->next_runs++;
    w->code = response->code;
    raw_status = response->status;
}

/* step_http_raw: the workflow is given every outcome, a 5xx and a
 * cancelled context included, and the context is never failed for it. */
static void test_a_raw_call_gets_every_outcome(void **state)
{
    (void)state;
    reset_server();
    worker_settings_t settings = {.service = "test", .resources = WORKER_HTTP_CLIENT, .http_client = config};
    worker_t worker;
    assert_int_equal(worker_open(&worker, 0, h2o_evloop_create(), &settings), 0);
    http_call_t call = {.peer = "payment", .method = "POST", .url = url("/ok")};

    server.fail_first = 1; /* a 503 goes to the workflow, not to the context */
    work_t *w = start_work(&worker);
    step_http_raw(&w->super, &call, on_raw_outcome, w);
    for (int i = 0; i < 1000 && w->next_runs == 0; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(w->next_runs, 1);
    assert_int_equal(raw_status, HTTP_CLIENT_OK);
    assert_int_equal(w->code, 503);
    assert_int_equal(w->failures, 0);
    context_release(&w->super);

    int before = released; /* cancelled while the call runs: the outcome still arrives, then the free */
    w = start_work(&worker);
    raw_status = -1;
    step_http_raw(&w->super, &call, on_raw_outcome, w);
    context_cancel(&w->super);
    context_release(&w->super);
    for (int i = 0; i < 1000 && released == before; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(released, before + 1); /* on_raw_outcome read w before it was freed (ASan) */
    assert_int_equal(raw_status, HTTP_CLIENT_OK);
    assert_int_equal(worker.busy, 0);

    h2o_evloop_t *loop = worker.loop;
    worker_close(&worker);
    h2o_evloop_destroy(loop);

    worker_settings_t bare = {.service = "test"}; /* no HTTP client declared: told at once */
    assert_int_equal(worker_open(&worker, 0, h2o_evloop_create(), &bare), 0);
    w = start_work(&worker);
    raw_status = HTTP_CLIENT_OK;
    step_http_raw(&w->super, &call, on_raw_outcome, w);
    assert_int_equal(w->next_runs, 1);
    assert_int_equal(raw_status, HTTP_CLIENT_UNAVAILABLE);
    assert_int_equal(w->failures, 0);
    context_release(&w->super);
    loop = worker.loop;
    worker_close(&worker);
    h2o_evloop_destroy(loop);
}

static void test_an_undeclared_client_is_unavailable(void **state)
{
    (void)state;
    worker_settings_t settings = {.service = "test"};
    worker_t worker;
    assert_int_equal(worker_open(&worker, 0, h2o_evloop_create(), &settings), 0);
    assert_null(worker.http);
    work_t *w = start_work(&worker);
    http_call_t ok = {.peer = "inventory", .method = "GET", .url = url("/ok")};
    step_http(&w->super, &ok, on_peer_answer, w);
    assert_int_equal(w->failures, 1); /* at once */
    assert_int_equal(w->status, 503);
    context_release(&w->super);
    h2o_evloop_t *loop = worker.loop;
    worker_close(&worker);
    h2o_evloop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_call_is_answered_with_the_callers_trace),
        cmocka_unit_test(test_connections_are_kept_alive),
        cmocka_unit_test(test_a_slow_peer_fails_at_the_timeout_and_stalls_nobody),
        cmocka_unit_test(test_only_idempotent_calls_are_retried),
        cmocka_unit_test(test_the_breaker_opens_probes_and_closes),
        cmocka_unit_test(test_destroy_answers_calls_under_way_once),
        cmocka_unit_test(test_a_call_as_a_step),
        cmocka_unit_test(test_a_raw_call_gets_every_outcome),
        cmocka_unit_test(test_an_undeclared_client_is_unavailable),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
