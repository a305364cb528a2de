/* main.c - the inventory service: configuration, routes, run.
 *
 * Port 8002, PostgreSQL schema `inventory`, Redis for the product cache.
 */
#include "inventory.h"

inventory_config_t inventory_config;

static const router_route_t routes[] = {
    {"GET", "/api/inventory/products", products_handle_list},
    {"POST", "/api/inventory/products", products_handle_create},
    {"GET", "/api/inventory/products/{sku}", products_handle_get},
    {"PATCH", "/api/inventory/products/{sku}", products_handle_update},
    {"POST", "/api/inventory/reservations", reservations_handle_create},
    {"POST", "/api/inventory/reservations/{id}/commit", reservations_handle_commit},
    {"POST", "/api/inventory/reservations/{id}/release", reservations_handle_release},
    {"POST", "/api/inventory/reservations/{id}/restock", reservations_handle_restock},
};

/* Worker 0 also runs the process-wide chores. */
static chore_t expiry_sweep, stock_refresh;

static int init_worker(worker_t *worker)
{
    if (worker->index == 0) {
        reservations_start_sweeper(&expiry_sweep, worker);
        stock_metrics_start(&stock_refresh, worker);
    }
    return 0;
}

static void dispose_worker(worker_t *worker)
{
    if (worker->index == 0) {
        chore_stop(&expiry_sweep);
        chore_stop(&stock_refresh);
    }
}

static const service_definition_t inventory_service = {
    .name = "inventory",
    .resources = WORKER_POSTGRES | WORKER_REDIS | WORKER_BROKER,
    .routes = routes,
    .route_count = sizeof(routes) / sizeof(routes[0]),
    .statements = inventory_statements,
    .statement_count = 0, /* set in main: the array's size lives in queries.c */
    .outbox_schema = "inventory",
    .register_metrics = inventory_metrics_register,
    .init_worker = init_worker,
    .dispose_worker = dispose_worker,
};

int main(void)
{
    config_errors_t errors = {0};
    server_config_t config;
    server_config_load(&config, "inventory", 8002,
                       "postgresql://inventory:inventory-lab-password@127.0.0.1:5432/oms?gssencmode=disable", &errors);
    inventory_config = (inventory_config_t){
        .reservation_ttl_seconds = (int)config_long(&errors, "RESERVATION_TTL_SECONDS", 900, 1, 86400),
        .expiry_sweep_ms = (uint64_t)config_long(&errors, "RESERVATION_SWEEP_INTERVAL_MS", 1000, 50, 600000),
        .cache_ttl_seconds = (int)config_long(&errors, "CACHE_TTL_SECONDS", 30, 1, 86400),
        .stock_refresh_ms = (uint64_t)config_long(&errors, "STOCK_METRICS_INTERVAL_MS", 5000, 100, 600000),
    };
    config_exit_on_error(&errors, "inventory");

    service_definition_t service = inventory_service;
    service.statement_count = inventory_statement_count;
    return server_run(&service, &config);
}
