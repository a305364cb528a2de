/* main.c - the notification service: configuration, routes, run.
 *
 * Port 8005, PostgreSQL schema `notifications`. Worker 0 consumes
 * `notification.events` (every delivery a unit of work on its loop,
 * consumer.h) and runs the reclaim sweep and the memory-leak fault; every
 * worker serves the inbox and Alertmanager's webhook, and has its own
 * SMTP connections (mailer.c) and HTTP client (webhooks, the user
 * service).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notification.h"

notification_config_t notification_config;

static const router_route_t routes[] = {
    {"GET", "/api/notifications", inbox_handle_list},
    {"POST", "/api/notifications/{id}/read", inbox_handle_read},
    {"POST", "/api/notifications/alerts", alerts_handle},
};

/* What notification.events is bound to on oms.events. */
static const char *const bindings[] = {"order.*",         "payment.*", "inventory.low_stock", "inventory.out_of_stock",
                                       "user.registered", NULL};

static consumer_t consumer;
static chore_t reclaim, leak;

mailer_t *notification_mailer(const worker_t *worker)
{
    return worker->service_state;
}

static int init_worker(worker_t *worker)
{
    if ((worker->service_state = mailer_create(worker->loop)) == NULL)
        return -1;
    if (worker->index != 0)
        return 0;
    broker_consumer_config_t config = {
        .queue = NOTIFICATION_QUEUE,
        .bindings = bindings,
        .prefetch = notification_config.prefetch,
        .retries = notification_config.retries,
        .retry_delays_ms = notification_config.retry_delays_ms,
    };
    if (consumer_start(&consumer, worker, &config, events_handle, events_settled, NULL) != 0)
        return -1;
    dispatch_start_reclaim(&reclaim, worker);
    leak_start(&leak, worker);
    return 0;
}

static void dispose_worker(worker_t *worker)
{
    if (worker->index == 0) {
        consumer_stop(&consumer);
        chore_stop(&reclaim);
        leak_stop(&leak);
    }
    if (worker->service_state != NULL)
        mailer_destroy(worker->service_state);
    worker->service_state = NULL;
}

static const service_definition_t notification_service = {
    .name = "notification",
    .resources = WORKER_POSTGRES | WORKER_REDIS | WORKER_HTTP_CLIENT | WORKER_BROKER,
    .routes = routes,
    .route_count = sizeof(routes) / sizeof(routes[0]),
    .statements = notification_statements,
    .statement_count = 0, /* set in main: the array's size lives in queries.c */
    .register_metrics = notification_metrics_register,
    .init_worker = init_worker,
    .dispose_worker = dispose_worker,
};

/* NOTIFICATION_RETRY_DELAYS_MS: "1000,5000,30000": one delay per retry. */
static void read_retry_delays(config_errors_t *errors)
{
    const char *text = config_string("NOTIFICATION_RETRY_DELAYS_MS", "1000,5000,30000,120000");
    char copy[256];
    if (strlen(text) >= sizeof(copy)) {
        config_error(errors, "NOTIFICATION_RETRY_DELAYS_MS", "is too long");
        return;
    }
    snprintf(copy, sizeof(copy), "%s", text);
    notification_config.retries = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        long delay;
        if (notification_config.retries == BROKER_RETRIES_MAX || config_parse_long(item, &delay) != 0 || delay < 1 ||
            delay > 86400000) {
            config_error(errors, "NOTIFICATION_RETRY_DELAYS_MS",
                         "must be 0 to %d delays in ms (1..86400000), comma-separated", BROKER_RETRIES_MAX);
            return;
        }
        notification_config.retry_delays_ms[notification_config.retries++] = (uint32_t)delay;
    }
}

static void check_url(config_errors_t *errors, const char *name, const char *url, const char *scheme, bool may_be_empty)
{
    size_t len = strlen(url);
    if (len == 0 && may_be_empty)
        return;
    if (strncmp(url, scheme, strlen(scheme)) != 0 || len <= strlen(scheme) || url[len - 1] == '/')
        config_error(errors, name, "must be %shost:port, without a trailing '/'", scheme);
}

int main(void)
{
    config_errors_t errors = {0};
    server_config_t config;
    server_config_load(&config, "notification", 8005,
                       "postgresql://notifications:notifications-lab-password@127.0.0.1:5432/oms?gssencmode=disable",
                       &errors);
    notification_config = (notification_config_t){
        .smtp_url = config_string_checked(&errors, "SMTP_URL", "smtp://127.0.0.1:1025", 8, 200),
        .smtp_from = config_string_checked(&errors, "SMTP_FROM", "notifications@oms.local", 3, 254),
        .smtp_from_name = config_string_checked(&errors, "SMTP_FROM_NAME", "OMS Lab", 0, 100),
        .smtp_timeout_ms = (uint64_t)config_long(&errors, "SMTP_TIMEOUT_MS", 10000, 100, 120000),
        .smtp_connections = config_long(&errors, "SMTP_CONNECTIONS", 4, 1, 64),
        .webhook_url = config_string_checked(&errors, "WEBHOOK_URL", "", 0, 500),
        .user_url = config_string_checked(&errors, "USER_URL", "http://127.0.0.1:8004", 8, 200),
        .admin_email = config_string_checked(&errors, "NOTIFICATION_ADMIN_EMAIL", "ops@oms.local", 3, 254),
        .alertmanager_token =
            config_string_checked(&errors, "ALERTMANAGER_TOKEN", "lab-alertmanager-token-change-me", 16, 256),
        .prefetch = (uint16_t)config_long(&errors, "NOTIFICATION_PREFETCH", 200, 1, 5000),
        .claim_lease_ms = (uint64_t)config_long(&errors, "NOTIFICATION_CLAIM_LEASE_MS", 30000, 500, 3600000),
        .reclaim_every_ms = (uint64_t)config_long(&errors, "NOTIFICATION_RECLAIM_INTERVAL_MS", 5000, 100, 600000),
    };
    read_retry_delays(&errors);
    check_url(&errors, "SMTP_URL", notification_config.smtp_url, "smtp://", false);
    check_url(&errors, "USER_URL", notification_config.user_url, "http://", false);
    if (strncmp(notification_config.webhook_url, "https://", 8) != 0)
        check_url(&errors, "WEBHOOK_URL", notification_config.webhook_url, "http://", true);
    if (!mailer_address_valid(notification_config.smtp_from))
        config_error(&errors, "SMTP_FROM", "must be a plain address (name@domain)");
    if (!mailer_address_valid(notification_config.admin_email))
        config_error(&errors, "NOTIFICATION_ADMIN_EMAIL", "must be a plain address (name@domain)");
    /* A claim must outlast what it covers (the longest send, email or
     * webhook, then the query that records it), or a slow send would be
     * sent again by the reclaim sweep. */
    uint64_t send_ms = notification_config.smtp_timeout_ms > config.http_client.timeout_ms
                           ? notification_config.smtp_timeout_ms
                           : config.http_client.timeout_ms;
    if (notification_config.claim_lease_ms < 2 * (send_ms + config.pg_query_timeout_ms))
        config_error(&errors, "NOTIFICATION_CLAIM_LEASE_MS",
                     "must be at least twice the longest send (SMTP_TIMEOUT_MS, HTTP_CLIENT_TIMEOUT_MS) plus "
                     "PG_QUERY_TIMEOUT_MS");
    config_exit_on_error(&errors, "notification");

    service_definition_t service = notification_service;
    service.statement_count = notification_statement_count;
    return server_run(&service, &config);
}
