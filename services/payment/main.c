/* main.c - the payment service: configuration, routes, run.
 *
 * Port 8003, PostgreSQL schema `payments`. Charges go to a simulated card
 * processor (processor.c); every endpoint is internal, for the order
 * service's token or an admin.
 */
#include "payment.h"

payment_config_t payment_config;

static const router_route_t routes[] = {
    {"POST", "/api/payments", charges_handle_create},    {"GET", "/api/payments", payments_handle_list},
    {"GET", "/api/payments/{id}", payments_handle_get},  {"POST", "/api/payments/{id}/refund", refunds_handle_create},
    {"POST", "/api/payments/void", voids_handle_create},
};

/* Worker 0 also runs the process-wide chores. */
static chore_t recovery, key_retention;

static int init_worker(worker_t *worker)
{
    if (worker->index == 0) {
        recovery_start(&recovery, worker);
        idempotency_start_pruning(&key_retention, worker);
    }
    return 0;
}

static void dispose_worker(worker_t *worker)
{
    if (worker->index == 0) {
        chore_stop(&recovery);
        chore_stop(&key_retention);
    }
}

static const service_definition_t payment_service = {
    .name = "payment",
    .resources = WORKER_POSTGRES | WORKER_REDIS | WORKER_BROKER,
    .routes = routes,
    .route_count = sizeof(routes) / sizeof(routes[0]),
    .statements = payment_statements,
    .statement_count = 0, /* set in main: the array's size lives in queries.c */
    .outbox_schema = "payments",
    .register_metrics = payment_metrics_register,
    .init_worker = init_worker,
    .dispose_worker = dispose_worker,
};

int main(void)
{
    config_errors_t errors = {0};
    server_config_t config;
    server_config_load(&config, "payment", 8003,
                       "postgresql://payments:payments-lab-password@127.0.0.1:5432/oms?gssencmode=disable", &errors);
    payment_config = (payment_config_t){
        .processor_latency_ms = (uint64_t)config_long(&errors, "PAYMENT_PROCESSOR_LATENCY_MS", 20, 0, 60000),
        .processor_jitter_ms = (uint64_t)config_long(&errors, "PAYMENT_PROCESSOR_JITTER_MS", 10, 0, 60000),
        .processor_timeout_ms = (uint64_t)config_long(&errors, "PAYMENT_PROCESSOR_TIMEOUT_MS", 2000, 100, 120000),
        .recovery_margin_ms = (uint64_t)config_long(&errors, "PAYMENT_RECOVERY_MARGIN_MS", 5000, 1000, 600000),
        /* at least a day: a client may retry a charge that long after */
        .idempotency_ttl_hours = (int)config_long(&errors, "PAYMENT_IDEMPOTENCY_TTL_HOURS", 24, 24, 8760),
    };
    config_exit_on_error(&errors, "payment");

    service_definition_t service = payment_service;
    service.statement_count = payment_statement_count;
    return server_run(&service, &config);
}
