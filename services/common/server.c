/* server.c - worker threads, listeners and graceful shutdown. */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>

#include "auth.h"
#include "faults_admin.h"
#include "faults_refresh.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "process_metrics.h"
#include "request_guard.h"
#include "work_pool.h"

#ifndef OMS_VERSION
#define OMS_VERSION "dev"
#endif
#ifndef OMS_REVISION
#define OMS_REVISION "unknown"
#endif

#define DRAIN_CHECK_MS          25
#define SERVICE_NAME_CHARACTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* Lab defaults, published in this file: fine on a lab machine, and said so
 * in the log when a service runs with them. */
#define DEFAULT_ADMIN_TOKEN "lab-admin-token-change-me"
#define DEFAULT_JWT_SECRET  "lab-jwt-secret-change-me-0123456789abcdef"

/* One worker thread: the worker (loop and resources, worker.h) and what
 * serving HTTP on it takes. */
typedef struct server_thread {
    worker_t worker;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    size_t connections;        /* open client connections */
    bool accept_paused;        /* the listener is not read: at max_connections or out of descriptors */
    loop_timer_t accept_retry; /* after EMFILE/ENFILE: when to try accepting again */
    uint64_t accept_backoff_ms;
    chore_t fault_refresh;
    outbox_relay_t *outbox; /* worker 0 of a service with an outbox */
    /* shutdown */
    h2o_multithread_receiver_t shutdown_receiver;
    loop_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    bool stopped;
    pthread_t thread;
} server_thread_t;

/* The h2o handler: every path goes to the router. */
typedef struct root_handler {
    h2o_handler_t super;
    http_server_t http;
} root_handler_t;

/* Set once in server_run, before the threads start; read-only afterwards. */
static server_config_t active_config;
static h2o_globalconf_t globalconf;
static const service_definition_t *active_service;
static worker_settings_t worker_settings;
static server_thread_t *server_threads;
static pthread_barrier_t threads_ready; /* every worker listens and can be told to stop */

/* Raises the soft limit on open files to the hard one (as nginx's
 * worker_rlimit_nofile and Go's runtime do: the soft default of 1024 is a
 * relic) and returns it. */
static size_t descriptor_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 1024;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            getrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > (1 << 20) ? (size_t)1 << 20 : (size_t)limit.rlim_cur;
}

void server_config_load(server_config_t *config, const char *service, int default_port,
                        const char *default_database_url, config_errors_t *errors)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    memset(config, 0, sizeof(*config));
    config->service = service;
    config->version = OMS_VERSION;
    config->listen_address = config_string("LISTEN_ADDRESS", "0.0.0.0");
    struct in_addr probe;
    if (inet_pton(AF_INET, config->listen_address, &probe) != 1)
        config_error(errors, "LISTEN_ADDRESS", "'%s' is not an IPv4 address", config->listen_address);
    config->port = (int)config_long(errors, "PORT", default_port, 1, 65535);
    config->threads = (int)config_long(errors, "THREADS", cores > 0 ? cores : 1, 1, 64);
    /* DATABASE_URL, or else libpq's own PG* variables when any is set. */
    bool libpq_env = getenv("PGHOST") != NULL || getenv("PGDATABASE") != NULL || getenv("PGUSER") != NULL;
    config->database_url =
        config_string_checked(errors, "DATABASE_URL", libpq_env ? "" : default_database_url, 0, 1024);
    char *parse_error = NULL;
    PQconninfoOption *options = PQconninfoParse(config->database_url, &parse_error);
    if (options == NULL) {
        char reason[200];
        pg_message_one_line(parse_error != NULL ? parse_error : "cannot be parsed", reason, sizeof(reason));
        config_error(errors, "DATABASE_URL", "%s", reason);
    }
    PQconninfoFree(options);
    PQfreemem(parse_error);
    char reason[128];
    const char *redis_url = config_string("REDIS_URL", "redis://127.0.0.1:6379/0");
    if (redis_parse_url(redis_url, &config->redis, reason, sizeof(reason)) != 0)
        config_error(errors, "REDIS_URL", "%s", reason);
    config->admin_token = config_string_checked(errors, "ADMIN_TOKEN", DEFAULT_ADMIN_TOKEN, 16, 256);
    /* HS256 wants a key at least as long as its 32-byte output. */
    config->jwt_secret = config_string_checked(errors, "JWT_SECRET", DEFAULT_JWT_SECRET, 32, AUTH_SECRET_MAX);
    /* Loopback (the native gateway) and Docker's default bridge networks
     * (Traefik); a LAN-wide range here would let LAN clients pick their IP. */
    const char *proxies = config_string("TRUSTED_PROXIES", "127.0.0.0/8, ::1, 172.16.0.0/12");
    if (client_networks_parse(proxies, &config->trusted_proxies, reason, sizeof(reason)) != 0)
        config_error(errors, "TRUSTED_PROXIES", "%s", reason);
    config->max_body_bytes = (size_t)config_long(errors, "MAX_BODY_BYTES", 1 << 20, 1024, 64 << 20);
    config->pg_pool_size = (size_t)config_long(errors, "PG_POOL_SIZE", 4, 1, 64);
    config->pg_query_timeout_ms = (uint64_t)config_long(errors, "PG_QUERY_TIMEOUT_MS", 5000, 10, 600000);
    config->redis_timeout_ms = (uint64_t)config_long(errors, "REDIS_TIMEOUT_MS", 500, 10, 60000);
    config->shutdown_timeout_ms = (uint64_t)config_long(errors, "SHUTDOWN_TIMEOUT_MS", 10000, 0, 300000);
    /* Each pool connection needs a descriptor too: by default a worker may
     * hold an equal share of what the pools leave. */
    size_t descriptors = descriptor_limit(), threads = (size_t)config->threads;
    size_t reserved = 64 + threads * (config->pg_pool_size + 16);
    size_t share = descriptors > reserved + threads * 16 ? (descriptors - reserved) / threads : 16;
    config->max_connections =
        (size_t)config_long(errors, "MAX_CONNECTIONS", share < 100000 ? (long)share : 100000, 1, 1000000);
    config->http_client = (http_client_config_t){
        .timeout_ms = (uint64_t)config_long(errors, "HTTP_CLIENT_TIMEOUT_MS", 2000, 10, 600000),
        .max_retries = (int)config_long(errors, "HTTP_CLIENT_RETRIES", 2, 0, 10),
        .retry_base_ms = 50,
        .breaker_failures = (int)config_long(errors, "HTTP_CLIENT_BREAKER_FAILURES", 5, 1, 1000),
        .breaker_open_ms = (uint64_t)config_long(errors, "HTTP_CLIENT_BREAKER_OPEN_MS", 5000, 100, 600000),
    };
    config->broker = (broker_config_t){
        .url = config_string("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        .name = service,
        .heartbeat_s = (int)config_long(errors, "AMQP_HEARTBEAT_S", 10, 1, 600),
        .connect_timeout_ms = (uint64_t)config_long(errors, "AMQP_CONNECT_TIMEOUT_MS", 3000, 100, 60000),
        .confirm_timeout_ms = (uint64_t)config_long(errors, "AMQP_CONFIRM_TIMEOUT_MS", 5000, 100, 600000),
    };
    const char *amqp_problem = broker_url_problem(config->broker.url);
    if (amqp_problem != NULL)
        config_error(errors, "AMQP_URL", "%s", amqp_problem);
    config->outbox = (outbox_config_t){
        .batch_size = (size_t)config_long(errors, "OUTBOX_BATCH_SIZE", 500, 1, BROKER_BATCH_MAX),
        .sweep_interval_ms = (uint64_t)config_long(errors, "OUTBOX_SWEEP_MS", 1000, 10, 600000),
        /* longer than a batch can take (its claim, its confirm, its mark):
         * a relay waiting for a confirm must not lose its lease to another */
        .lease_ms = 30000,
        .retention_hours = (int)config_long(errors, "OUTBOX_RETENTION_HOURS", 24, 1, 24 * 365),
    };
    uint64_t batch_ms = config->broker.confirm_timeout_ms + 2 * config->pg_query_timeout_ms;
    if (config->outbox.lease_ms < 2 * batch_ms)
        config->outbox.lease_ms = 2 * batch_ms;
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = config_choice(errors, "LOG_LEVEL", levels, LOG_INFO);
    const char *service_name = config_string("OTEL_SERVICE_NAME", service);
    if (strlen(service_name) > LOG_SERVICE_MAX || strspn(service_name, SERVICE_NAME_CHARACTERS) != strlen(service_name))
        config_error(errors, "OTEL_SERVICE_NAME", "must be 1 to %d characters of letters, digits, '.', '_' and '-'",
                     LOG_SERVICE_MAX);
    log_init(service_name, (log_level_t)level);
}

/* --- accepting connections ------------------------------------------------ */

#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000

static metrics_family_t *open_connections, *accept_pauses;

static void accept_metrics_register(void)
{
    static const char *const reason[] = {"reason", NULL};
    open_connections = metrics_gauge("http_server_open_connections", "Client connections open right now.", NULL);
    accept_pauses = metrics_counter("http_server_accept_pauses_total",
                                    "Times a worker stopped accepting: at MAX_CONNECTIONS (limit) or out of file "
                                    "descriptors (descriptors).",
                                    reason);
}

static void on_accept(h2o_socket_t *listener, const char *err);

/* Stops reading the listener; the first pause of an episode is logged. */
static void pause_accepting(server_thread_t *thread, const char *reason, int error)
{
    h2o_socket_read_stop(thread->listener);
    if (!thread->accept_paused) {
        thread->accept_paused = true;
        metrics_counter_add(accept_pauses, (const char *const[]){reason}, 1);
        log_warn(NULL, "not accepting connections", LOG_STRING("reason", reason),
                 LOG_INT("worker", thread->worker.index), LOG_INT("connections", thread->connections),
                 LOG_INT("max_connections", active_config.max_connections),
                 LOG_STRING("error", error != 0 ? strerror(error) : ""));
    }
}

static void resume_accepting(server_thread_t *thread)
{
    if (thread->listener != NULL && !thread->worker.stopping)
        h2o_socket_read_start(thread->listener, on_accept);
}

static void on_accept_retry(loop_timer_t *timer)
{
    resume_accepting(timer->data);
}

static void on_connection_closed(void *data)
{
    server_thread_t *thread = data;
    thread->connections--;
    metrics_gauge_add(open_connections, NULL, -1);
    if (thread->accept_paused && !loop_timer_is_active(&thread->accept_retry))
        resume_accepting(thread);
}

static uint64_t next_backoff(uint64_t backoff_ms)
{
    if (backoff_ms == 0)
        return ACCEPT_BACKOFF_MIN_MS;
    return backoff_ms * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS : backoff_ms * 2;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    server_thread_t *thread = listener->data;
    if (err != NULL)
        return;
    while (thread->connections < active_config.max_connections) {
        errno = 0;
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the pending connection stays in the backlog, so the
                 * listener stays readable: wait instead of spinning */
                int error = errno;
                pause_accepting(thread, "descriptors", error);
                thread->accept_backoff_ms = next_backoff(thread->accept_backoff_ms);
                loop_timer_start(&thread->accept_retry, thread->accept_backoff_ms, on_accept_retry, thread);
            } else if (thread->accept_paused) {
                /* the backlog is empty with room to spare: the episode is over */
                thread->accept_paused = false;
                thread->accept_backoff_ms = 0;
                log_info(NULL, "accepting connections again", LOG_INT("worker", thread->worker.index),
                         LOG_INT("connections", thread->connections));
            }
            return;
        }
        thread->connections++;
        metrics_gauge_add(open_connections, NULL, 1);
        sock->on_close.cb = on_connection_closed;
        sock->on_close.data = thread;
        request_guard_accept(&thread->accept_ctx, sock, globalconf.http1.req_timeout);
    }
    pause_accepting(thread, "limit", 0);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    root_handler_t *handler = (root_handler_t *)self;
    server_thread_t *thread = H2O_STRUCT_FROM_MEMBER(server_thread_t, ctx, req->conn->ctx);
    return http_dispatch(&handler->http, &thread->worker, req);
}

static int open_listener(const server_config_t *config)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)config->port)};
    inet_pton(AF_INET, config->listen_address, &addr.sin_addr);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --- graceful shutdown ---------------------------------------------------- */

static void on_drain_timer(loop_timer_t *timer);

/* Stops the loop once no unit of work is alive and no backend call is in
 * flight, or at the deadline. */
static void check_drained(server_thread_t *thread)
{
    worker_t *worker = &thread->worker;
    bool drained = worker->busy == 0 && worker_pending(worker) + work_pool_pending(worker) == 0;
    if (drained || loop_now_ms() >= thread->drain_deadline_ms) {
        if (!drained)
            log_warn(NULL, "shutdown deadline reached", LOG_INT("worker", worker->index),
                     LOG_INT("active_requests", worker->active_requests), LOG_INT("busy", worker->busy));
        thread->stopped = true;
        return;
    }
    loop_timer_start(&thread->drain_timer, DRAIN_CHECK_MS, on_drain_timer, thread);
}

static void on_drain_timer(loop_timer_t *timer)
{
    check_drained(timer->data);
}

static void on_shutdown_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    server_thread_t *thread = H2O_STRUCT_FROM_MEMBER(server_thread_t, shutdown_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        free(message);
    }
    if (thread->worker.stopping)
        return;
    thread->worker.stopping = true; /* chores start no new runs */
    /* Stop accepting; connections already accepted finish their requests,
     * which h2o answers with "Connection: close". */
    h2o_context_request_shutdown(&thread->ctx);
    loop_timer_stop(&thread->accept_retry);
    h2o_socket_read_stop(thread->listener);
    h2o_socket_close(thread->listener);
    thread->listener = NULL;
    chore_stop(&thread->fault_refresh);
    thread->drain_deadline_ms = loop_now_ms() + active_config.shutdown_timeout_ms;
    check_drained(thread);
}

/* --- worker threads -------------------------------------------------------- */

static void *thread_main(void *arg)
{
    server_thread_t *thread = arg;
    worker_t *worker = &thread->worker;
    h2o_evloop_t *loop = h2o_evloop_create();
    if (worker_open(worker, worker->index, loop, &worker_settings) != 0 || work_pool_attach(worker) != 0)
        exit(1);
    h2o_context_init(&thread->ctx, loop, &globalconf);
    thread->accept_ctx.ctx = &thread->ctx;
    thread->accept_ctx.hosts = globalconf.hosts;
    h2o_multithread_register_receiver(worker->queue, &thread->shutdown_receiver, on_shutdown_message);
    if (worker->redis != NULL)
        faults_refresh_start(&thread->fault_refresh, worker);
    if (active_service->init_worker != NULL && active_service->init_worker(worker) != 0) {
        log_error(NULL, "service worker initialisation failed", LOG_INT("worker", worker->index));
        exit(1);
    }
    if (active_service->outbox_schema != NULL && worker->index == 0 &&
        (thread->outbox = outbox_relay_start(worker, &active_config.outbox)) == NULL)
        exit(1);

    int fd = open_listener(&active_config);
    if (fd < 0) {
        log_error(NULL, "cannot listen", LOG_STRING("address", active_config.listen_address),
                  LOG_INT("port", active_config.port), LOG_STRING("reason", strerror(errno)));
        exit(1);
    }
    thread->listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    thread->listener->data = thread;
    h2o_socket_read_start(thread->listener, on_accept);
    pthread_barrier_wait(&threads_ready);

    while (!thread->stopped)
        h2o_evloop_run(loop, INT32_MAX);

    outbox_relay_stop(thread->outbox);
    if (active_service->dispose_worker != NULL)
        active_service->dispose_worker(worker);
    loop_timer_stop(&thread->drain_timer);
    h2o_multithread_unregister_receiver(worker->queue, &thread->shutdown_receiver);
    work_pool_detach(worker);
    worker_close(worker);
    return NULL;
}

/* The routes every service serves besides its own. */
static const router_route_t common_routes[] = {
    {"GET", "/health/live", health_handle_live},       {"GET", "/health/ready", health_handle_ready},
    {"GET", "/metrics", health_handle_metrics},        {"GET", "/admin/faults", faults_admin_handle_get},
    {"PUT", "/admin/faults", faults_admin_handle_put},
};

static router_t *build_router(const service_definition_t *service)
{
    size_t common = sizeof(common_routes) / sizeof(common_routes[0]);
    size_t count = common + service->route_count;
    router_route_t *routes = calloc(count, sizeof(*routes));
    if (routes == NULL)
        return NULL;
    memcpy(routes, common_routes, sizeof(common_routes));
    memcpy(routes + common, service->routes, service->route_count * sizeof(*routes));
    char error[256];
    router_t *router = router_create(routes, count, error, sizeof(error));
    if (router == NULL)
        log_error(NULL, "invalid route table", LOG_STRING("reason", error));
    return router; /* routes live as long as the process */
}

/* The service's statements, the health ping, and the outbox relay's. */
static pg_statement_t *build_statements(const service_definition_t *service, size_t *count)
{
    static const pg_statement_t ping = {HEALTH_PING_STATEMENT, "SELECT 1", 0};
    size_t outbox = service->outbox_schema != NULL ? OUTBOX_STATEMENT_COUNT : 0;
    *count = service->statement_count + 1 + outbox;
    pg_statement_t *statements = calloc(*count, sizeof(*statements));
    if (statements == NULL)
        return NULL;
    statements[0] = ping;
    memcpy(statements + 1, service->statements, service->statement_count * sizeof(*statements));
    if (outbox > 0 && outbox_statements(&active_config.outbox, statements + 1 + service->statement_count) != 0) {
        log_error(NULL, "invalid outbox schema", LOG_STRING("schema", service->outbox_schema));
        free(statements);
        return NULL;
    }
    return statements;
}

int server_run(const service_definition_t *service, const server_config_t *config)
{
    active_config = *config;
    active_service = service;
    if (service->outbox_schema != NULL) {
        snprintf(active_config.outbox.schema, sizeof(active_config.outbox.schema), "%s", service->outbox_schema);
        unsigned needed = WORKER_POSTGRES | WORKER_BROKER;
        if ((service->resources & needed) != needed) {
            log_error(NULL, "an outbox needs PostgreSQL and RabbitMQ declared");
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN); /* the evloop writes with plain writev */

    http_metrics_register();
    pg_metrics_register();
    redis_metrics_register();
    faults_metrics_register();
    /* Only a service that calls peers initialises libcurl (its TLS
     * backends and connection machinery: about 0.3 MB of resident memory). */
    if ((service->resources & WORKER_HTTP_CLIENT) && http_client_global_init() != 0) {
        log_error(NULL, "libcurl cannot be initialised");
        return 1;
    }
    auth_metrics_register();
    accept_metrics_register();
    process_metrics_register(config->version, OMS_REVISION);
    broker_t *broker = NULL;
    if (service->resources & WORKER_BROKER) {
        broker_metrics_register();
        outbox_metrics_register();
        if ((broker = broker_start(&active_config.broker)) == NULL)
            return 1;
    }
    if (service->register_metrics != NULL)
        service->register_metrics();

    router_t *router = build_router(service);
    size_t statement_count;
    pg_statement_t *statements = build_statements(service, &statement_count);
    if (router == NULL || statements == NULL)
        return 1;
    /* What each worker opens: exactly what the service declared. */
    worker_settings = (worker_settings_t){
        .service = config->service,
        .jwt_secret = config->jwt_secret,
        .resources = service->resources,
        .pg =
            {
                .conninfo = config->database_url,
                .size = config->pg_pool_size,
                .query_timeout_ms = config->pg_query_timeout_ms,
                .max_queue = 4096,
                .statements = statements,
                .statement_count = statement_count,
            },
        .redis = config->redis,
        .redis_timeout_ms = config->redis_timeout_ms,
        .http_client = config->http_client,
        .broker = broker,
    };

    h2o_config_init(&globalconf);
    /* h2o refuses larger bodies itself, before buffering them; its answer
     * is rewritten to JSON by the error filter. */
    globalconf.max_request_entity_size = config->max_body_bytes;
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    root_handler_t *handler = (root_handler_t *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->http = (http_server_t){
        .router = router,
        .service = config->service,
        .trusted_proxies = &active_config.trusted_proxies,
        .admin_token = config->admin_token,
        .jwt_secret = config->jwt_secret,
    };
    http_register_error_filter(path);
    http_register_error_filter(&host->fallback_path);

    /* Workers must not receive SIGTERM/SIGINT: the main thread waits for them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    server_threads = calloc((size_t)config->threads, sizeof(*server_threads));
    if (server_threads == NULL)
        return 1;
    pthread_barrier_init(&threads_ready, NULL, (unsigned)config->threads + 1);
    for (int i = 0; i < config->threads; i++) {
        server_threads[i].worker.index = (size_t)i;
        if (pthread_create(&server_threads[i].thread, NULL, thread_main, &server_threads[i]) != 0) {
            log_error(NULL, "cannot start worker thread");
            return 1;
        }
    }
    pthread_barrier_wait(&threads_ready);
    log_info(NULL, "service started", LOG_STRING("address", config->listen_address), LOG_INT("port", config->port),
             LOG_INT("threads", config->threads), LOG_INT("max_connections", config->max_connections),
             LOG_STRING("version", config->version));
    if (strcmp(config->admin_token, DEFAULT_ADMIN_TOKEN) == 0 || strcmp(config->jwt_secret, DEFAULT_JWT_SECRET) == 0)
        log_warn(NULL, "running with the lab's published ADMIN_TOKEN or JWT_SECRET: anyone can forge admin access;"
                       " set both for anything reachable from outside this machine");

    int signal_number;
    sigwait(&signals, &signal_number);
    log_info(NULL, "shutting down", LOG_STRING("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"),
             LOG_INT("deadline_ms", config->shutdown_timeout_ms));
    for (int i = 0; i < config->threads; i++) {
        h2o_multithread_message_t *message = calloc(1, sizeof(*message));
        if (message == NULL)
            abort();
        h2o_multithread_send_message(&server_threads[i].shutdown_receiver, message);
    }
    for (int i = 0; i < config->threads; i++)
        pthread_join(server_threads[i].thread, NULL);
    broker_stop(broker); /* after the workers: their last batches are answered */
    log_info(NULL, "service stopped");
    return 0;
}
