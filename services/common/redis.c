/* redis.c - hiredis adapter for the h2o evloop, with timeouts and reconnect. */
#include "redis.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "random.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

typedef struct command {
    redis_client_t *client;
    redis_callback_fn cb;
    void *data;
    char operation[16];
    uint64_t started_ns;
    loop_timer_t timeout;
    bool finished; /* the user callback has run (timeout or reply) */
} command_t;

struct redis_client {
    h2o_evloop_t *loop;
    redis_target_t target;
    uint64_t timeout_ms;
    redisAsyncContext *ac;
    h2o_socket_t *sock;
    bool want_write;
    bool connected;
    bool freeing; /* we are calling redisAsyncFree ourselves */
    bool destroyed;
    unsigned failures;
    size_t pending;
    loop_timer_t reconnect;
    loop_timer_t connect_timeout;
};

static metrics_family_t *operation_duration, *errors_total;

void redis_metrics_register(void)
{
    static const char *const labels[] = {"system", "operation", NULL};
    static const char *const error_labels[] = {"reason", NULL};
    /* The same family as PostgreSQL's; the system label tells them apart. */
    operation_duration = metrics_histogram("db_client_operation_duration_seconds",
                                           "Duration of database operations, queue wait included.", labels,
                                           metrics_duration_buckets, metrics_duration_bucket_count);
    errors_total =
        metrics_counter("redis_client_errors_total", "Redis commands that did not complete, by reason.", error_labels);
}

/* What a host name (or IPv4 address) is made of; '_' for container names. */
#define HOST_CHARACTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

/* Percent-decodes `len` bytes of a URL component into `out` (`size` bytes
 * with the NUL). Returns 0, or -1 for a malformed escape, a decoded NUL or
 * a result that does not fit. */
static int percent_decode(const char *in, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            char hex[3] = {i + 1 < len ? in[i + 1] : '\0', i + 2 < len ? in[i + 2] : '\0', '\0'};
            if (strspn(hex, "0123456789abcdefABCDEF") != 2)
                return -1;
            c = (char)strtol(hex, NULL, 16);
            if (c == '\0')
                return -1;
            i += 2;
        }
        if (n + 1 >= size)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

int redis_parse_url(const char *url, redis_target_t *target, char *error, size_t error_size)
{
    memset(target, 0, sizeof(*target));
    target->port = 6379;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(error, error_size, "must start with redis://");
        return -1;
    }
    /* RFC 3986: the authority runs to the first '/', '?' or '#'; userinfo
     * is what precedes its last '@' (a host never holds one). */
    const char *authority = url + 8;
    size_t authority_len = strcspn(authority, "/?#");
    const char *path = authority + authority_len;
    const char *host = authority;
    for (const char *p = authority; p < path; p++)
        if (*p == '@')
            host = p + 1;
    if (host != authority) {
        const char *userinfo_end = host - 1;
        const char *colon = memchr(authority, ':', (size_t)(userinfo_end - authority));
        const char *user_end = colon != NULL ? colon : userinfo_end;
        if (percent_decode(authority, (size_t)(user_end - authority), target->username, sizeof(target->username)) !=
                0 ||
            (colon != NULL && percent_decode(colon + 1, (size_t)(userinfo_end - colon - 1), target->password,
                                             sizeof(target->password)) != 0)) {
            snprintf(error, error_size, "user name or password is malformed or too long");
            return -1;
        }
    }
    const char *host_end = host, *port = NULL;
    if (*host == '[') { /* an IPv6 literal */
        const char *close = memchr(host, ']', (size_t)(path - host));
        size_t len = close != NULL ? (size_t)(close - host - 1) : 0;
        struct in6_addr probe;
        if (len > 0 && len < INET6_ADDRSTRLEN) {
            memcpy(target->host, host + 1, len);
            target->host[len] = '\0';
        }
        if (close == NULL || inet_pton(AF_INET6, target->host, &probe) != 1) {
            snprintf(error, error_size, "IPv6 host must be an address in brackets, like [::1]");
            return -1;
        }
        host_end = close + 1;
        if (host_end < path && *host_end != ':') {
            snprintf(error, error_size, "unexpected text after the host");
            return -1;
        }
    } else {
        host_end = memchr(host, ':', (size_t)(path - host));
        if (host_end == NULL)
            host_end = path;
        if (percent_decode(host, (size_t)(host_end - host), target->host, sizeof(target->host)) != 0 ||
            target->host[0] == '\0' || strspn(target->host, HOST_CHARACTERS) != strlen(target->host)) {
            snprintf(error, error_size, "host is missing, malformed or too long");
            return -1;
        }
    }
    if (host_end < path && *host_end == ':')
        port = host_end + 1;
    if (port != NULL && port < path) { /* an empty port means the default */
        char digits[8] = "";
        long number;
        if ((size_t)(path - port) < sizeof(digits))
            memcpy(digits, port, (size_t)(path - port));
        if (config_parse_long(digits, &number) != 0 || number < 1 || number > 65535) {
            snprintf(error, error_size, "port must be 1..65535");
            return -1;
        }
        target->port = (int)number;
    }
    if (*path == '?' || *path == '#') {
        snprintf(error, error_size, "query strings and fragments are not supported");
        return -1;
    }
    if (*path == '/' && path[1] != '\0') {
        long db;
        if (path[1] == '-' || config_parse_long(path + 1, &db) != 0 || db > 15) {
            snprintf(error, error_size, "database must be 0..15");
            return -1;
        }
        target->database = (int)db;
    }
    return 0;
}

static void start_connect(loop_timer_t *timer);

/* --- the event adapter: hiredis asks, the h2o socket watches ------------ */

static void on_socket_readable(h2o_socket_t *sock, const char *err)
{
    redis_client_t *client = sock->data;
    (void)err;
    redisAsyncHandleRead(client->ac);
}

static void on_socket_writable(h2o_socket_t *sock, const char *err)
{
    redis_client_t *client = sock->data;
    (void)err;
    if (client->want_write && client->ac != NULL)
        redisAsyncHandleWrite(client->ac);
}

static void adapter_add_read(void *privdata)
{
    redis_client_t *client = privdata;
    h2o_socket_read_start(client->sock, on_socket_readable);
}

static void adapter_del_read(void *privdata)
{
    redis_client_t *client = privdata;
    h2o_socket_read_stop(client->sock);
}

static void adapter_add_write(void *privdata)
{
    redis_client_t *client = privdata;
    client->want_write = true;
    if (!h2o_socket_is_writing(client->sock))
        h2o_socket_notify_write(client->sock, on_socket_writable);
}

static void adapter_del_write(void *privdata)
{
    redis_client_t *client = privdata;
    client->want_write = false; /* h2o cannot cancel a write notice; it is ignored */
}

static void adapter_cleanup(void *privdata)
{
    redis_client_t *client = privdata;
    if (client->sock != NULL) {
        h2o_socket_read_stop(client->sock);
        h2o_socket_close(client->sock);
        client->sock = NULL;
    }
    client->want_write = false;
}

/* --- connection lifecycle ---------------------------------------------- */

static void schedule_reconnect(redis_client_t *client)
{
    if (client->destroyed)
        return;
    client->failures++;
    uint64_t backoff = BACKOFF_MIN_MS << (client->failures < 5 ? client->failures - 1 : 4);
    if (backoff > BACKOFF_MAX_MS)
        backoff = BACKOFF_MAX_MS;
    backoff = backoff / 2 + random_u64() % (backoff / 2 + 1);
    loop_timer_start(&client->reconnect, backoff, start_connect, client);
}

static void on_connected(const redisAsyncContext *ac, int status)
{
    redis_client_t *client = ac->data;
    loop_timer_stop(&client->connect_timeout);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns */
        if (client->failures == 0)
            log_warn(NULL, "redis connection failed", LOG_STRING("reason", ac->errstr));
        client->ac = NULL;
        schedule_reconnect(client);
        return;
    }
    client->connected = true;
    if (client->failures > 0)
        log_info(NULL, "redis available again");
    client->failures = 0;
}

static void on_disconnected(const redisAsyncContext *ac, int status)
{
    redis_client_t *client = ac->data;
    (void)status;
    bool was_connected = client->connected;
    client->connected = false;
    client->ac = NULL;
    if (client->freeing)
        return; /* whoever freed the context decides what happens next */
    if (was_connected)
        log_warn(NULL, "redis connection lost", LOG_STRING("reason", ac->errstr));
    schedule_reconnect(client);
}

/* Drops the current context from outside hiredis (timer callbacks only). */
static void drop_connection(redis_client_t *client)
{
    if (client->ac == NULL)
        return;
    client->freeing = true;
    redisAsyncContext *ac = client->ac;
    client->ac = NULL;
    client->connected = false;
    redisAsyncFree(ac); /* runs pending callbacks with NULL replies */
    client->freeing = false;
}

static void on_connect_timeout(loop_timer_t *timer)
{
    redis_client_t *client = timer->data;
    log_warn(NULL, "redis connect timed out");
    drop_connection(client);
    schedule_reconnect(client);
}

/* AUTH and SELECT run before anything else on a new connection; a refusal
 * means every later command fails too, so it is logged as an error. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    const redisReply *r = reply;
    (void)ac;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        log_error(NULL, "redis connection setup refused", LOG_STRING("command", privdata),
                  LOG_STRING("reason", r->str));
}

static void start_connect(loop_timer_t *timer)
{
    redis_client_t *client = timer->data;
    redisAsyncContext *ac = redisAsyncConnect(client->target.host, client->target.port);
    if (ac == NULL) {
        schedule_reconnect(client);
        return;
    }
    if (ac->err != 0) {
        if (client->failures == 0)
            log_warn(NULL, "redis connection failed", LOG_STRING("reason", ac->errstr));
        redisAsyncFree(ac);
        schedule_reconnect(client);
        return;
    }
    int fd = dup(ac->c.fd);
    if (fd < 0) {
        redisAsyncFree(ac);
        schedule_reconnect(client);
        return;
    }
    client->ac = ac;
    ac->data = client;
    client->sock = h2o_evloop_socket_create(client->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    client->sock->data = client;
    ac->ev.data = client;
    ac->ev.addRead = adapter_add_read;
    ac->ev.delRead = adapter_del_read;
    ac->ev.addWrite = adapter_add_write;
    ac->ev.delWrite = adapter_del_write;
    ac->ev.cleanup = adapter_cleanup;
    redisAsyncSetConnectCallback(ac, on_connected);
    redisAsyncSetDisconnectCallback(ac, on_disconnected);
    loop_timer_start(&client->connect_timeout, client->timeout_ms, on_connect_timeout, client);
    /* Commands queued before the connection completes go out first, in order. */
    if (client->target.password[0] != '\0') {
        /* Redis 6 ACL users: AUTH user password; otherwise AUTH password */
        const char *with_user[] = {"AUTH", client->target.username, client->target.password};
        const char *without_user[] = {"AUTH", client->target.password};
        bool has_user = client->target.username[0] != '\0';
        redisAsyncCommandArgv(ac, on_setup_reply, "AUTH", has_user ? 3 : 2, has_user ? with_user : without_user, NULL);
    }
    if (client->target.database != 0) {
        char db[8];
        snprintf(db, sizeof(db), "%d", client->target.database);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, on_setup_reply, "SELECT", 2, argv, NULL);
    }
    /* hiredis completes a non-blocking connect on the first writable event */
    adapter_add_write(client);
}

redis_client_t *redis_client_create(h2o_evloop_t *loop, const redis_target_t *target, uint64_t timeout_ms)
{
    redis_client_t *client = calloc(1, sizeof(*client));
    if (client == NULL)
        return NULL;
    client->loop = loop;
    client->target = *target;
    client->timeout_ms = timeout_ms;
    loop_timer_start(&client->reconnect, 0, start_connect, client);
    return client;
}

void redis_client_destroy(redis_client_t *client)
{
    if (client == NULL)
        return;
    client->destroyed = true;
    loop_timer_stop(&client->reconnect);
    loop_timer_stop(&client->connect_timeout);
    drop_connection(client);
    free(client);
}

bool redis_client_is_up(const redis_client_t *client)
{
    return client->connected;
}

size_t redis_client_pending(const redis_client_t *client)
{
    return client->pending;
}

/* --- commands ------------------------------------------------------------ */

static void finish(command_t *cmd, const redisReply *reply, const char *error)
{
    cmd->finished = true;
    loop_timer_stop(&cmd->timeout);
    double seconds = (double)(loop_now_ns() - cmd->started_ns) / 1e9;
    metrics_histogram_observe(operation_duration, (const char *const[]){"redis", cmd->operation}, seconds);
    if (reply == NULL)
        metrics_counter_add(errors_total, (const char *const[]){error}, 1);
    if (cmd->cb != NULL)
        cmd->cb(cmd->data, reply, error);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    command_t *cmd = privdata;
    (void)ac;
    cmd->client->pending--;
    if (!cmd->finished)
        finish(cmd, reply, reply != NULL ? NULL : cmd->client->destroyed ? "shutting down" : "connection lost");
    free(cmd);
}

static void on_command_timeout(loop_timer_t *timer)
{
    command_t *cmd = timer->data;
    redis_client_t *client = cmd->client;
    finish(cmd, NULL, "timeout");
    log_warn(NULL, "redis command timed out", LOG_STRING("operation", cmd->operation),
             LOG_INT("timeout_ms", client->timeout_ms));
    /* cmd is freed by on_reply when hiredis releases it below */
    drop_connection(client);
    schedule_reconnect(client);
}

void redis_command_argv(redis_client_t *client, redis_callback_fn cb, void *data, int argc, const char **argv,
                        const size_t *argv_len)
{
    command_t *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL) {
        if (cb != NULL)
            cb(data, NULL, "out of memory");
        return;
    }
    *cmd = (command_t){.client = client, .cb = cb, .data = data, .started_ns = loop_now_ns()};
    /* The operation label is the command name, upper-cased and bounded. */
    for (size_t i = 0; i + 1 < sizeof(cmd->operation) && argv[0][i] != '\0'; i++)
        cmd->operation[i] = (char)(argv[0][i] >= 'a' && argv[0][i] <= 'z' ? argv[0][i] - 32 : argv[0][i]);
    if (!client->connected || client->ac == NULL) {
        finish(cmd, NULL, "unavailable");
        free(cmd);
        return;
    }
    if (redisAsyncCommandArgv(client->ac, on_reply, cmd, argc, argv, argv_len) != REDIS_OK) {
        finish(cmd, NULL, "unavailable");
        free(cmd);
        return;
    }
    client->pending++;
    loop_timer_start(&cmd->timeout, client->timeout_ms, on_command_timeout, cmd);
}
