/* Tests for http.c: dispatch (routes, path and query checks, faults, the
 * client leaving), DESIGN's error shape, and steps answered once. Requests
 * run through http_dispatch on a real h2o loop, without sockets
 * (http_double.h); the worker declares no backends, so a step that needs
 * one fails at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buffer.h"
#include "http.h"
#include "http_double.h"
#include "metrics.h"
#include "step.h"

static int handled; /* handler runs */
static int next_steps;

static void echo(http_request_t *r)
{
    handled++;
    const char *id = http_path_param(r, "id");
    const char *q = http_query_param(r, "q");
    http_respond_json(r, 200, json_pack("{s:s,s:s?}", "id", id, "q", q));
}

static void on_rows(void *data, const PGresult *result)
{
    (void)result;
    next_steps++;
    http_respond_json_text(data, 200, "{}", 2);
}

static void needs_database(http_request_t *r)
{
    handled++;
    step_query(&r->super, "anything", NULL, on_rows, r);
}

static void reads_body(http_request_t *r)
{
    handled++;
    json_t *body = http_read_json_body(r);
    if (body != NULL)
        http_respond_json(r, 201, body);
}

static void reads_limit(http_request_t *r)
{
    handled++;
    long limit;
    if (http_query_long(r, "limit", 20, 1, 100, &limit))
        http_respond_json(r, 200, json_pack("{s:i}", "limit", (int)limit));
}

static void reads_page(http_request_t *r)
{
    handled++;
    http_page_t page;
    if (http_query_page(r, 20, 100, &page))
        http_respond_json(r, 200, json_pack("{s:s,s:s}", "limit", page.limit_text, "offset", page.offset_text));
}

static void answers_twice(http_request_t *r)
{
    handled++;
    http_respond_error(r, 409, "conflict", "first %d", 1);
    http_respond_json_text(r, 200, "{}", 2); /* ignored: answered already */
    context_fail(&r->super, 500, "internal", "also ignored");
}

static void adds_header(http_request_t *r)
{
    handled++;
    http_add_header(r, "retry-after", "7");
    http_respond_error_details(r, 429, "too_many", "slow down", json_pack("{s:i}", "retry_after_seconds", 7));
}

static http_request_t *waiting; /* the request keeps_waiting took */

static void keeps_waiting(http_request_t *r)
{
    handled++;
    waiting = r;
    context_hold(&r->super); /* the test looks at it after h2o let go */
}

static const router_route_t routes[] = {
    {"GET", "/api/items/{id}", echo},    {"GET", "/api/db", needs_database},   {"POST", "/api/body", reads_body},
    {"GET", "/api/list", reads_limit},   {"GET", "/api/twice", answers_twice}, {"GET", "/api/page", reads_page},
    {"GET", "/api/header", adds_header}, {"GET", "/internal/{id}", echo},      {"GET", "/api/wait", keeps_waiting},
};

static const worker_settings_t settings = {.service = "svc"};
static client_networks_t proxies;
static http_server_t server = {.service = "svc", .trusted_proxies = &proxies};
static worker_t worker;

static int setup_group(void **state)
{
    (void)state;
    char error[128];
    http_metrics_register();
    log_init("svc", LOG_ERROR);
    if (client_networks_parse("127.0.0.0/8", &proxies, error, sizeof(error)) != 0)
        return -1;
    server.router = router_create(routes, sizeof(routes) / sizeof(routes[0]), error, sizeof(error));
    return server.router != NULL && worker_open(&worker, 0, h2o_evloop_create(), &settings) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    handled = next_steps = 0;
    worker.faults.count = 0;
    return 0;
}

/* Runs `method target` (and `body`, JSON when not NULL) to its answer. */
static json_t *exchange(http_double_t *d, const char *method, const char *target, const char *body)
{
    http_double_init(d, method, target, "127.0.0.1");
    if (body != NULL) {
        http_double_header(d, "content-type", "application/json");
        http_double_body(d, body, strlen(body));
    }
    http_dispatch(&server, &worker, &d->req);
    for (int i = 0; i < 500 && !d->responded; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_true(d->responded);
    json_t *doc = json_loads(d->body != NULL ? d->body : "", 0, NULL);
    assert_non_null(doc);
    const char *type = http_double_response_header(d, "content-type");
    assert_non_null(type);
    assert_string_equal(type, "application/json");
    assert_string_equal(http_double_response_header(d, "cache-control"), "no-store");
    assert_int_equal(d->req.res.content_length, d->body_len);
    return doc;
}

/* The error code of a DESIGN error body, which must be well shaped. */
static const char *error_code(json_t *doc)
{
    json_t *error = json_object_get(doc, "error");
    assert_true(json_is_object(error));
    assert_true(json_is_string(json_object_get(error, "message")));
    assert_true(json_is_string(json_object_get(error, "code")));
    return json_string_value(json_object_get(error, "code"));
}

static void done(http_double_t *d, json_t *doc)
{
    json_decref(doc);
    http_double_dispose(d);
    assert_int_equal(worker.busy, 0); /* the request's context is gone */
    assert_int_equal(worker.active_requests, 0);
}

static void test_a_route_runs_with_its_parameters(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/items/A%20B?q=x%2By+z", NULL);
    assert_int_equal(d.status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "A B");
    assert_string_equal(json_string_value(json_object_get(doc, "q")), "x+y z");
    assert_int_equal(handled, 1);
    done(&d, doc);
}

static void test_the_trace_is_continued_and_returned(void **state)
{
    (void)state;
    http_double_t d;
    http_double_init(&d, "GET", "/api/items/1", "127.0.0.1");
    http_double_header(&d, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    http_dispatch(&server, &worker, &d.req);
    assert_true(d.responded);
    const char *traceparent = http_double_response_header(&d, "traceparent");
    assert_non_null(traceparent);
    assert_int_equal(strlen(traceparent), TRACE_TRACEPARENT_LEN);
    assert_memory_equal(traceparent, "00-0af7651916cd43dd8448eb211c80319c-", 36);
    assert_memory_not_equal(traceparent + 36, "b7ad6b7169203331", 16); /* our own span */
    http_double_dispose(&d);
}

static void test_unknown_paths_and_methods(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/nothing", NULL);
    assert_int_equal(d.status, 404);
    assert_string_equal(error_code(doc), "not_found");
    done(&d, doc);
    doc = exchange(&d, "DELETE", "/api/items/1", NULL);
    assert_int_equal(d.status, 405);
    assert_string_equal(error_code(doc), "method_not_allowed");
    assert_string_equal(http_double_response_header(&d, "allow"), "GET");
    assert_int_equal(handled, 0);
    done(&d, doc);
}

static void test_control_characters_in_parameters_are_refused(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/items/a%00b", NULL);
    assert_int_equal(d.status, 400);
    assert_string_equal(error_code(doc), "invalid_request");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "field")), "id");
    done(&d, doc);
    doc = exchange(&d, "GET", "/api/items/1?q=%1b[31m", NULL);
    assert_int_equal(d.status, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "field")), "q");
    done(&d, doc);
    doc = exchange(&d, "GET", "/api/items/1?q=%ff", NULL); /* not UTF-8 */
    assert_int_equal(d.status, 400);
    assert_int_equal(handled, 0);
    done(&d, doc);
}

static void test_query_numbers_are_checked(void **state)
{
    (void)state;
    const char *bad[] = {"/api/list?limit=0", "/api/list?limit=101", "/api/list?limit=1x",
                         "/api/list?limit=", "/api/list?limit=99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_double_t d;
        json_t *doc = exchange(&d, "GET", bad[i], NULL);
        assert_int_equal(d.status, 400);
        assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "field")), "limit");
        done(&d, doc);
    }
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/list", NULL);
    assert_int_equal(json_integer_value(json_object_get(doc, "limit")), 20); /* the fallback */
    done(&d, doc);
    doc = exchange(&d, "GET", "/api/list?limit=100", NULL);
    assert_int_equal(json_integer_value(json_object_get(doc, "limit")), 100);
    done(&d, doc);
}

static void test_pages(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/page", NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "limit")), "20");
    assert_string_equal(json_string_value(json_object_get(doc, "offset")), "0");
    done(&d, doc);
    doc = exchange(&d, "GET", "/api/page?offset=1000000&limit=7", NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "limit")), "7");
    assert_string_equal(json_string_value(json_object_get(doc, "offset")), "1000000");
    done(&d, doc);
    doc = exchange(&d, "GET", "/api/page?offset=1000001", NULL);
    assert_int_equal(d.status, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "field")), "offset");
    done(&d, doc);
    doc = exchange(&d, "GET", "/api/page?offset=-1", NULL);
    assert_int_equal(d.status, 400);
    done(&d, doc);
}

static void test_json_bodies(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "POST", "/api/body", "{\"a\":1}");
    assert_int_equal(d.status, 201);
    assert_int_equal(json_integer_value(json_object_get(doc, "a")), 1);
    done(&d, doc);
    doc = exchange(&d, "POST", "/api/body", "{\"a\":");
    assert_int_equal(d.status, 400);
    assert_string_equal(error_code(doc), "invalid_request");
    done(&d, doc);
    doc = exchange(&d, "POST", "/api/body", "[1]"); /* not an object */
    assert_int_equal(d.status, 400);
    done(&d, doc);
    /* a body that is not JSON by its type */
    http_double_init(&d, "POST", "/api/body", "127.0.0.1");
    http_double_header(&d, "content-type", "text/plain");
    http_double_body(&d, "{}", 2);
    http_dispatch(&server, &worker, &d.req);
    assert_int_equal(d.status, 415);
    http_double_dispose(&d);
    http_double_init(&d, "POST", "/api/body", "127.0.0.1");
    http_double_header(&d, "content-type", "application/json-patch+json");
    http_double_body(&d, "{}", 2);
    http_dispatch(&server, &worker, &d.req);
    assert_int_equal(d.status, 415);
    http_double_dispose(&d);
}

static void test_a_request_is_answered_once(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/twice", NULL);
    assert_int_equal(d.status, 409);
    assert_string_equal(error_code(doc), "conflict");
    assert_false(d.sent_after_final);
    done(&d, doc);
}

static void test_headers_and_error_details(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/header", NULL);
    assert_int_equal(d.status, 429);
    assert_string_equal(http_double_response_header(&d, "retry-after"), "7");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "error"), "retry_after_seconds")), 7);
    done(&d, doc);
}

static void test_a_failed_step_is_answered_and_goes_no_further(void **state)
{
    (void)state;
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/db", NULL); /* no PostgreSQL declared */
    assert_int_equal(d.status, 503);
    assert_string_equal(error_code(doc), "dependency_unavailable");
    assert_int_equal(next_steps, 0);
    done(&d, doc);
}

static void set_fault(const char *name, double value)
{
    snprintf(worker.faults.items[worker.faults.count].name, FAULTS_NAME_MAX, "%s", name);
    worker.faults.items[worker.faults.count++].value = value;
}

static void test_error_rate_fails_business_routes_only(void **state)
{
    (void)state;
    set_fault("svc.error_rate", 1);
    http_double_t d;
    json_t *doc = exchange(&d, "GET", "/api/items/1", NULL);
    assert_int_equal(d.status, 500);
    assert_string_equal(error_code(doc), "fault_injected");
    assert_int_equal(handled, 0);
    done(&d, doc);
    doc = exchange(&d, "GET", "/internal/1", NULL); /* not under /api/ */
    assert_int_equal(d.status, 200);
    done(&d, doc);
    worker.faults.count = 0;
    set_fault("other.error_rate", 1); /* another service's flag */
    doc = exchange(&d, "GET", "/api/items/1", NULL);
    assert_int_equal(d.status, 200);
    done(&d, doc);
}

static void test_injected_latency_delays_the_handler(void **state)
{
    (void)state;
    set_fault("svc.latency_ms", 30);
    http_double_t d;
    http_double_init(&d, "GET", "/api/items/1", "127.0.0.1");
    uint64_t started = loop_now_ms();
    http_dispatch(&server, &worker, &d.req);
    assert_int_equal(handled, 0);
    for (int i = 0; i < 500 && !d.responded; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(d.status, 200);
    assert_true(loop_now_ms() - started >= 30);
    http_double_dispose(&d);
    assert_int_equal(worker.busy, 0);
}

static bool rendered(const char *needle)
{
    buffer_t out = BUFFER_INIT;
    metrics_render(&out);
    bool found = out.data != NULL && strstr(out.data, needle) != NULL;
    buffer_free(&out);
    return found;
}

static void test_a_client_that_leaves_stops_the_request(void **state)
{
    (void)state;
    set_fault("svc.latency_ms", 50);
    http_double_t d;
    http_double_init(&d, "GET", "/api/items/gone", "127.0.0.1");
    http_dispatch(&server, &worker, &d.req);
    assert_int_equal(worker.busy, 1);
    assert_int_equal(worker.active_requests, 1);
    http_double_dispose(&d); /* the client went away during the delay */
    assert_int_equal(worker.busy, 0);
    assert_int_equal(worker.active_requests, 0);
    for (int i = 0; i < 10; i++)
        h2o_evloop_run(worker.loop, 10);
    assert_int_equal(handled, 0);
    assert_true(rendered("http_server_request_duration_seconds_count{method=\"GET\",route=\"/api/items/{id}\","
                         "status_code=\"499\"} 1"));
}

/* The double's connection, with a socket: one end of a socketpair, the
 * other end being the client. */
static h2o_socket_t *connection_socket;

static h2o_socket_t *double_socket(h2o_conn_t *conn)
{
    (void)conn;
    return connection_socket;
}

static void test_a_waiting_request_sees_its_client_close_the_connection(void **state)
{
    (void)state;
    static const h2o_conn_callbacks_t callbacks = {.get_peername = http_double_peername, .get_socket = double_socket};
    int ends[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, ends), 0);
    connection_socket = h2o_evloop_socket_create(worker.loop, ends[0], H2O_SOCKET_FLAG_DONT_READ);
    http_double_t d;
    http_double_init(&d, "GET", "/api/wait", "127.0.0.1");
    d.conn.callbacks = &callbacks;
    http_dispatch(&server, &worker, &d.req);
    assert_int_equal(handled, 1);
    assert_false(http_client_has_left(waiting));
    close(ends[1]); /* the client gives up */
    assert_true(http_client_has_left(waiting));
    http_double_dispose(&d);
    assert_true(http_client_has_left(waiting)); /* h2o is done with it too */
    context_release(&waiting->super);
    h2o_socket_close(connection_socket);
    assert_int_equal(worker.busy, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_a_route_runs_with_its_parameters, setup),
        cmocka_unit_test_setup(test_the_trace_is_continued_and_returned, setup),
        cmocka_unit_test_setup(test_unknown_paths_and_methods, setup),
        cmocka_unit_test_setup(test_control_characters_in_parameters_are_refused, setup),
        cmocka_unit_test_setup(test_query_numbers_are_checked, setup),
        cmocka_unit_test_setup(test_pages, setup),
        cmocka_unit_test_setup(test_json_bodies, setup),
        cmocka_unit_test_setup(test_a_request_is_answered_once, setup),
        cmocka_unit_test_setup(test_headers_and_error_details, setup),
        cmocka_unit_test_setup(test_a_failed_step_is_answered_and_goes_no_further, setup),
        cmocka_unit_test_setup(test_error_rate_fails_business_routes_only, setup),
        cmocka_unit_test_setup(test_injected_latency_delays_the_handler, setup),
        cmocka_unit_test_setup(test_a_client_that_leaves_stops_the_request, setup),
        cmocka_unit_test_setup(test_a_waiting_request_sees_its_client_close_the_connection, setup),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
