/* main.c - the order service: configuration, routes, run.
 *
 * Port 8001, PostgreSQL schema `orders`; calls inventory (reservations)
 * and payment (charges) over HTTP with service tokens; events leave
 * through the outbox to RabbitMQ.
 */
#include <string.h>

#include "order.h"

order_config_t order_config;

static const router_route_t routes[] = {
    {"POST", "/api/orders", orders_handle_create},
    {"GET", "/api/orders", orders_handle_list},
    {"GET", "/api/orders/{id}", orders_handle_get},
    {"POST", "/api/orders/{id}/cancel", orders_handle_cancel},
};

/* Worker 0 also recovers unfinished sagas for the process. */
static chore_t recovery;

static int init_worker(worker_t *worker)
{
    if (worker->index == 0)
        recovery_start(&recovery, worker);
    return 0;
}

static void dispose_worker(worker_t *worker)
{
    if (worker->index == 0)
        chore_stop(&recovery);
}

static const service_definition_t order_service = {
    .name = "order",
    .resources = WORKER_POSTGRES | WORKER_REDIS | WORKER_HTTP_CLIENT | WORKER_BROKER,
    .routes = routes,
    .route_count = sizeof(routes) / sizeof(routes[0]),
    .statements = order_statements,
    .statement_count = 0, /* set in main: the array's size lives in queries.c */
    .outbox_schema = "orders",
    .register_metrics = order_metrics_register,
    .init_worker = init_worker,
    .dispose_worker = dispose_worker,
};

int main(void)
{
    config_errors_t errors = {0};
    server_config_t config;
    server_config_load(&config, "order", 8001,
                       "postgresql://orders:orders-lab-password@127.0.0.1:5432/oms?gssencmode=disable", &errors);
    order_config = (order_config_t){
        .inventory_url = config_string_checked(&errors, "INVENTORY_URL", "http://127.0.0.1:8002", 8, 200),
        .payment_url = config_string_checked(&errors, "PAYMENT_URL", "http://127.0.0.1:8003", 8, 200),
        .pending_timeout_s = (int)config_long(&errors, "ORDER_PENDING_TIMEOUT_S", 60, 5, 3600),
        .lease_s = (int)config_long(&errors, "ORDER_SAGA_LEASE_S", 15, 2, 600),
        .response_timeout_ms = (uint64_t)config_long(&errors, "ORDER_RESPONSE_TIMEOUT_MS", 10000, 100, 120000),
        .payment_timeout_ms = (uint64_t)config_long(&errors, "ORDER_PAYMENT_TIMEOUT_MS", 5000, 100, 120000),
        .step_attempts = (int)config_long(&errors, "ORDER_STEP_ATTEMPTS", 3, 1, 20),
        .recovery_interval_ms = (uint64_t)config_long(&errors, "ORDER_RECOVERY_INTERVAL_MS", 1000, 50, 600000),
    };
    const char *const urls[][2] = {{"INVENTORY_URL", order_config.inventory_url},
                                   {"PAYMENT_URL", order_config.payment_url}};
    for (size_t i = 0; i < 2; i++) {
        size_t len = strlen(urls[i][1]);
        if (strncmp(urls[i][1], "http://", 7) != 0 || urls[i][1][len - 1] == '/')
            config_error(&errors, urls[i][0], "must be http://host:port, without a trailing '/'");
    }
    /* a saga's lease must outlast its longest call, or recovery would
     * take over orders whose saga is only waiting */
    if ((uint64_t)order_config.lease_s * 1000 < 2 * order_config.payment_timeout_ms)
        config_error(&errors, "ORDER_SAGA_LEASE_S", "must be at least twice ORDER_PAYMENT_TIMEOUT_MS");
    config_exit_on_error(&errors, "order");

    service_definition_t service = order_service;
    service.statement_count = order_statement_count;
    return server_run(&service, &config);
}
