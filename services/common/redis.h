/* redis.h - an asynchronous Redis client on a thread's h2o loop.
 *
 * hiredis does the protocol; this file is its event adapter for the h2o
 * loop plus what hiredis 0.14 lacks: a per-command timeout, reconnect with
 * backoff, AUTH/SELECT from REDIS_URL, and metrics. A command that times out
 * drops the connection (Redis answers in order, so every later reply on it
 * would be late too); pending commands then fail and the client reconnects.
 * While disconnected, commands fail at once: callers fall back (for example
 * to PostgreSQL) instead of waiting.
 */
#ifndef OMS_REDIS_H
#define OMS_REDIS_H

#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop_timer.h"

typedef struct redis_target {
    char host[256]; /* a name or an address (IPv6 without brackets) */
    int port;
    char username[128]; /* "" when none: Redis 6 ACL user */
    char password[256]; /* "" when none */
    int database;
} redis_target_t;

/* Parses redis://[[user][:password]@]host[:port][/db] as RFC 3986 reads
 * it: userinfo ends at the authority's last '@' and is percent-decoded,
 * an IPv6 host is bracketed ([::1]), the port and db are plain digits.
 * Returns 0, or -1 with a reason in `error`. */
int redis_parse_url(const char *url, redis_target_t *target, char *error, size_t error_size);

/* Called once per command on the client's thread. `reply` is NULL when the
 * command did not complete (`error` says why); a Redis error reply arrives
 * as a reply of type REDIS_REPLY_ERROR. */
typedef void (*redis_callback_fn)(void *data, const redisReply *reply, const char *error);

typedef struct redis_client redis_client_t;

/* Declares the Redis metrics; call once before threads start. */
void redis_metrics_register(void);

/* Creates a client and starts connecting. Returns NULL on allocation
 * failure. `target` is copied. */
redis_client_t *redis_client_create(h2o_evloop_t *loop, const redis_target_t *target, uint64_t timeout_ms);

/* Disconnects; pending commands fail with "shutting down". */
void redis_client_destroy(redis_client_t *client);

/* Sends a command built from `argc` arguments (binary-safe; argv_len may
 * be NULL for NUL-terminated strings). `cb` may be NULL for fire-and-forget.
 * The callback may run before this returns when the client is down. */
void redis_command_argv(redis_client_t *client, redis_callback_fn cb, void *data, int argc, const char **argv,
                        const size_t *argv_len);

/* True while connected (and authenticated). */
bool redis_client_is_up(const redis_client_t *client);

/* Commands sent and not yet answered. */
size_t redis_client_pending(const redis_client_t *client);

#endif
