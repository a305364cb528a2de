/* main.c - the user service: configuration, routes, run.
 *
 * Port 8004, PostgreSQL schema `users`, Redis for login limits and the
 * token deny-list. Password hashing runs on a background pool
 * (HASH_THREADS) so that logins never stall the event loops.
 */
#include <malloc.h>
#include <unistd.h>

#include "log.h"
#include "user.h"
#include "work_pool.h"

user_config_t user_config;

static const router_route_t routes[] = {
    {"POST", "/api/users/register", registration_handle}, {"POST", "/api/users/login", login_handle},
    {"POST", "/api/users/logout", logout_handle},         {"GET", "/api/users/me", accounts_handle_me},
    {"GET", "/api/users", accounts_handle_list},          {"GET", "/api/users/{id}", accounts_handle_get},
    {"PATCH", "/api/users/{id}", accounts_handle_update},
};

/* Worker 0 also prunes old login attempts. */
static chore_t attempts_retention;

static int init_worker(worker_t *worker)
{
    if (worker->index == 0)
        attempts_start_retention(&attempts_retention, worker);
    return 0;
}

static void dispose_worker(worker_t *worker)
{
    login_limiter_dispose();
    if (worker->index == 0)
        chore_stop(&attempts_retention);
}

static const service_definition_t user_service = {
    .name = "user",
    .resources = WORKER_POSTGRES | WORKER_REDIS | WORKER_BROKER,
    .routes = routes,
    .route_count = sizeof(routes) / sizeof(routes[0]),
    .statements = user_statements,
    .statement_count = 0, /* set in main: the array's size lives in queries.c */
    .outbox_schema = "users",
    .register_metrics = user_metrics_register,
    .init_worker = init_worker,
    .dispose_worker = dispose_worker,
};

int main(void)
{
    config_errors_t errors = {0};
    server_config_t config;
    server_config_load(&config, "user", 8004,
                       "postgresql://users:users-lab-password@127.0.0.1:5432/oms?gssencmode=disable", &errors);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    user_config = (user_config_t){
        .token_ttl_seconds = config_long(&errors, "JWT_TTL_SECONDS", 3600, 60, 7 * 86400),
        .login_window_ms = 1000 * config_long(&errors, "LOGIN_WINDOW_SECONDS", 300, 1, 86400),
        .max_failures_per_email = (int)config_long(&errors, "LOGIN_MAX_FAILURES_PER_EMAIL", 5, 1, 1000),
        .max_failures_per_ip = (int)config_long(&errors, "LOGIN_MAX_FAILURES_PER_IP", 20, 1, 100000),
        /* OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane (~35 ms here) */
        .argon2_memory_kib = (uint32_t)config_long(&errors, "ARGON2_MEMORY_KIB", 19456, 8, 4 * 1024 * 1024),
        .argon2_iterations = (uint32_t)config_long(&errors, "ARGON2_ITERATIONS", 2, 1, 100),
        .argon2_parallelism = (uint32_t)config_long(&errors, "ARGON2_PARALLELISM", 1, 1, 16),
        .attempts_retention_days = (int)config_long(&errors, "LOGIN_ATTEMPTS_RETENTION_DAYS", 30, 1, 3650),
        .cache_ttl_seconds = (int)config_long(&errors, "USER_CACHE_TTL_SECONDS", 60, 1, 86400),
    };
    long hash_threads = config_long(&errors, "HASH_THREADS", cores > 0 ? cores : 1, 1, 64);
    long hash_queue = config_long(&errors, "HASH_QUEUE_MAX", 256, 1, 100000);
    config_exit_on_error(&errors, "user");

    /* Each argon2id hash allocates ARGON2_MEMORY_KIB. A fixed mmap threshold
     * makes glibc return those blocks to the system when a hash ends;
     * otherwise it raises the threshold after the first one and keeps ~20 MB
     * per hashing thread resident forever. */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    if (passwords_init() != 0 || work_pool_start((size_t)hash_threads, (size_t)hash_queue, 5) != 0)
        return 1;
    service_definition_t service = user_service;
    service.statement_count = user_statement_count;
    int status = server_run(&service, &config);
    work_pool_stop();
    return status;
}
