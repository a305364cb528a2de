/* http_proxy.c - a benchmark service: GET /proxy calls one peer through
 * the HTTP client (http_client.h, as a step of the request, step.h) and
 * answers with the peer's status and body. scripts/bench.sh http-client
 * runs wrk against it and against the peer directly; the difference is what
 * a call through the client costs a request.
 *
 *   BENCH_PEER_URL [http://127.0.0.1:8002/api/inventory/products/ELEC-HDPH-001]
 *   PORT [18090], THREADS, HTTP_CLIENT_* as for every service.
 *
 * Not part of the lab's system: it exists to be measured.
 */
#include <stdlib.h>

#include "config.h"
#include "http.h"
#include "server.h"
#include "step.h"

static const char *peer_url;

static void answer(void *data, const http_response_t *response)
{
    http_request_t *r = data;
    http_respond_json_text(r, response->code, response->body, response->body_len);
}

static void handle_proxy(http_request_t *r)
{
    http_call_t call = {.peer = "peer", .method = "GET", .url = peer_url};
    step_http(&r->super, &call, answer, r);
}

static const router_route_t routes[] = {{"GET", "/proxy", handle_proxy}};

int main(void)
{
    config_errors_t errors = {0};
    server_config_t config;
    server_config_load(&config, "bench-proxy", 18090, "", &errors);
    peer_url = config_string("BENCH_PEER_URL", "http://127.0.0.1:8002/api/inventory/products/ELEC-HDPH-001");
    config_exit_on_error(&errors, "bench-proxy");
    service_definition_t service = {
        .name = "bench-proxy",
        .resources = WORKER_HTTP_CLIENT,
        .routes = routes,
        .route_count = sizeof(routes) / sizeof(routes[0]),
    };
    return server_run(&service, &config);
}
