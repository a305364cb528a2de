/* login_limiter.c - brute-force protection: failures per account and per
 * client address in sliding windows kept in Redis.
 *
 * Each key is a sorted set of attempt ids scored by time. One Lua script
 * (atomic in Redis, so every service worker sees the same counts) drops
 * entries older than the window, refuses when either set has reached its
 * limit, and otherwise adds the new attempt to both sets *before* the
 * password is checked: fifty simultaneous guesses against one account
 * cannot all slip past a limit of five while their hashes are computing.
 * A successful login then removes its own entry and clears the account's.
 *
 * Keys: oms:login:failures:email:<lower-cased email>
 *       oms:login:failures:ip:<client address>
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "random.h"
#include "user.h"

#define EMAIL_KEY_PREFIX "oms:login:failures:email:"
#define IP_KEY_PREFIX    "oms:login:failures:ip:"
#define KEY_MAX          (sizeof(EMAIL_KEY_PREFIX) + USER_EMAIL_MAX + 1)

/* KEYS: email set, ip set. ARGV: window ms, email limit, ip limit, attempt
 * id. Returns 0 (counted, go on) or the ms until the lockout lifts: when a
 * set holds n >= limit entries, entry n - limit (oldest first) must expire
 * for the count to drop below the limit. */
static const char check_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local window = tonumber(ARGV[1])\n"
    "local function wait(key, limit)\n"
    "  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)\n"
    "  local n = redis.call('ZCARD', key)\n"
    "  if n < limit then return 0 end\n"
    "  local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')\n"
    "  return math.max(1, tonumber(oldest[2]) + window - now)\n"
    "end\n"
    "local ms = math.max(wait(KEYS[1], tonumber(ARGV[2])), wait(KEYS[2], tonumber(ARGV[3])))\n"
    "if ms > 0 then return ms end\n"
    "for _, key in ipairs(KEYS) do\n"
    "  redis.call('ZADD', key, now, ARGV[4])\n"
    "  redis.call('PEXPIRE', key, window)\n"
    "end\n"
    "return 0\n";

typedef struct limiter_check {
    http_request_t *r;
    login_limiter_fn done;
} limiter_check_t;

static void keys_for(const char *email, const char *client_ip, char email_key[KEY_MAX], char ip_key[KEY_MAX])
{
    snprintf(email_key, KEY_MAX, EMAIL_KEY_PREFIX "%s", email);
    snprintf(ip_key, KEY_MAX, IP_KEY_PREFIX "%s", client_ip[0] != '\0' ? client_ip : "unknown");
}

static void on_checked(void *data, const redisReply *reply, const char *error)
{
    limiter_check_t *check = data;
    http_request_t *r = check->r;
    if (!http_request_resume(r))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        const char *reason = reply == NULL ? error : reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
        log_error(&r->trace, "login limiter unavailable", LOG_STRING("reason", reason));
        http_respond_unavailable(r, "redis", reason);
        return;
    }
    long long ms = reply->integer;
    check->done(r, ms <= 0 ? 0 : (int)((ms + 999) / 1000));
}

void login_limiter_check(http_request_t *r, const char *email, const char *client_ip, char attempt_id[17],
                         login_limiter_fn done)
{
    limiter_check_t *check = http_request_alloc(r, sizeof(*check));
    check->r = r;
    check->done = done;
    snprintf(attempt_id, 17, "%016" PRIx64, random_u64());

    char email_key[KEY_MAX], ip_key[KEY_MAX], window[24], email_limit[16], ip_limit[16];
    keys_for(email, client_ip, email_key, ip_key);
    snprintf(window, sizeof(window), "%lld", (long long)user_config.login_window_ms);
    snprintf(email_limit, sizeof(email_limit), "%d", user_config.max_failures_per_email);
    snprintf(ip_limit, sizeof(ip_limit), "%d", user_config.max_failures_per_ip);
    const char *argv[] = {"EVAL", check_script, "2", email_key, ip_key, window, email_limit, ip_limit, attempt_id};
    http_request_hold(r);
    redis_command_argv(r->worker->redis, on_checked, check, 9, argv, NULL);
}

void login_limiter_forgive(server_worker_t *worker, const char *email, const char *client_ip, const char *attempt_id)
{
    char email_key[KEY_MAX], ip_key[KEY_MAX];
    keys_for(email, client_ip, email_key, ip_key);
    const char *forget_account[] = {"DEL", email_key};
    const char *forget_attempt[] = {"ZREM", ip_key, attempt_id};
    redis_command_argv(worker->redis, NULL, NULL, 2, forget_account, NULL);
    redis_command_argv(worker->redis, NULL, NULL, 3, forget_attempt, NULL);
}

void login_limiter_refund(server_worker_t *worker, const char *email, const char *client_ip, const char *attempt_id)
{
    char email_key[KEY_MAX], ip_key[KEY_MAX];
    keys_for(email, client_ip, email_key, ip_key);
    const char *from_account[] = {"ZREM", email_key, attempt_id};
    const char *from_address[] = {"ZREM", ip_key, attempt_id};
    redis_command_argv(worker->redis, NULL, NULL, 3, from_account, NULL);
    redis_command_argv(worker->redis, NULL, NULL, 3, from_address, NULL);
}
