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
 * An attempt whose password could not be checked is refunded: it must not
 * count. When the check itself got no answer (Redis stalled, the command
 * timed out) the script may still run later, when Redis wakes up, so a
 * refund leaves a per-attempt marker that the check script honours, and is
 * sent again until Redis confirms it: charge and refund commute, and both
 * are idempotent.
 *
 * Keys: oms:login:failures:email:<lower-cased email>
 *       oms:login:failures:ip:<client address>
 *       oms:login:refunded:<attempt id>   (lives one window)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "random.h"
#include "user.h"

#define EMAIL_KEY_PREFIX    "oms:login:failures:email:"
#define IP_KEY_PREFIX       "oms:login:failures:ip:"
#define REFUNDED_KEY_PREFIX "oms:login:refunded:"
#define KEY_MAX             (sizeof(EMAIL_KEY_PREFIX) + USER_EMAIL_MAX + 1)

/* KEYS: email set, ip set, refund marker. ARGV: window ms, email limit,
 * ip limit, attempt id. Returns 0 (counted, go on), -1 (this attempt was
 * refunded already: count nothing) or the ms until the lockout lifts: when a
 * set holds n >= limit entries, entry n - limit (oldest first) must expire
 * for the count to drop below the limit. */
static const char check_script[] =
    "if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end\n"
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
    "for i = 1, 2 do\n"
    "  redis.call('ZADD', KEYS[i], now, ARGV[4])\n"
    "  redis.call('PEXPIRE', KEYS[i], window)\n"
    "end\n"
    "return 0\n";

/* KEYS: email set, ip set, refund marker. ARGV: window ms, attempt id.
 * Takes the attempt out of both sets and leaves a marker that stops the
 * check script from counting it should that run later: whichever of the two
 * Redis runs first, the attempt ends up uncounted. */
static const char refund_script[] = "redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])\n"
                                    "redis.call('ZREM', KEYS[1], ARGV[2])\n"
                                    "redis.call('ZREM', KEYS[2], ARGV[2])\n"
                                    "return 1\n";

#define REFUND_RETRY_MS 250

typedef struct attempt_keys {
    char email[KEY_MAX], ip[KEY_MAX], refunded[sizeof(REFUNDED_KEY_PREFIX) + 17];
    char attempt_id[17];
} attempt_keys_t;

typedef struct limiter_check {
    http_request_t *r;
    login_limiter_fn done;
    void *data;
    attempt_keys_t keys;
} limiter_check_t;

/* A refund being delivered: a chore that sends it every REFUND_RETRY_MS
 * until Redis confirms it or the attempt has left the window anyway. Every
 * pending refund of a thread is on its list, so shutdown can release them. */
typedef struct refund {
    struct refund *next;
    chore_t chore;
    uint64_t give_up_ms;
    bool in_flight, abandoned;
    attempt_keys_t keys;
} refund_t;

static __thread refund_t *pending_refunds;

static void keys_for(const char *email, const char *client_ip, const char *attempt_id, attempt_keys_t *keys)
{
    snprintf(keys->email, sizeof(keys->email), EMAIL_KEY_PREFIX "%s", email);
    snprintf(keys->ip, sizeof(keys->ip), IP_KEY_PREFIX "%s", client_ip[0] != '\0' ? client_ip : "unknown");
    snprintf(keys->refunded, sizeof(keys->refunded), REFUNDED_KEY_PREFIX "%s", attempt_id);
    snprintf(keys->attempt_id, sizeof(keys->attempt_id), "%s", attempt_id);
}

static void window_text(char out[24])
{
    snprintf(out, 24, "%lld", (long long)user_config.login_window_ms);
}

static void refund_free(refund_t *refund)
{
    for (refund_t **p = &pending_refunds; *p != NULL; p = &(*p)->next) {
        if (*p == refund) {
            *p = refund->next;
            break;
        }
    }
    chore_stop(&refund->chore);
    free(refund);
}

/* Runs even after shutdown released the refund (abandoned), to free it. */
static void on_refunded(void *data, const redisReply *reply, const char *error)
{
    refund_t *refund = data;
    refund->in_flight = false;
    if ((reply != NULL && reply->type == REDIS_REPLY_INTEGER) || refund->abandoned) {
        refund_free(refund);
        return;
    }
    if (loop_now_ms() >= refund->give_up_ms) {
        /* past the window the attempt no longer counts anyway */
        log_warn(NULL, "login attempt refund given up", LOG_STRING("attempt", refund->keys.attempt_id),
                 LOG_STRING("reason", reply == NULL                      ? error
                                      : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                         : "reply"));
        refund_free(refund);
    }
    /* else the chore sends it again */
}

static void send_refund(context_t *run, void *data)
{
    refund_t *refund = data;
    char window[24];
    window_text(window);
    const char *argv[] = {"EVAL",          refund_script,         "3",    refund->keys.email,
                          refund->keys.ip, refund->keys.refunded, window, refund->keys.attempt_id};
    refund->in_flight = true;
    step_redis_raw(run, 8, argv, NULL, on_refunded, refund);
}

/* Starts delivering the refund of the attempt `keys` names. */
static void refund_start(worker_t *worker, const attempt_keys_t *keys)
{
    refund_t *refund = calloc(1, sizeof(*refund));
    if (refund == NULL) {
        log_error(NULL, "out of memory: login attempt not refunded", LOG_STRING("attempt", keys->attempt_id));
        return;
    }
    refund->keys = *keys;
    refund->give_up_ms = loop_now_ms() + (uint64_t)user_config.login_window_ms;
    refund->next = pending_refunds;
    pending_refunds = refund;
    chore_start(&refund->chore, worker, "login_refund", 0, REFUND_RETRY_MS, send_refund, refund);
}

static void on_checked(void *data, const redisReply *reply, const char *error)
{
    limiter_check_t *check = data;
    http_request_t *r = check->r;
    bool answered = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    /* No answer (a timeout, a dropped connection) does not mean the script
     * did not run: it may still be on its way to Redis. Take it back. */
    if (!answered)
        refund_start(r->super.worker, &check->keys);
    if (context_is_cancelled(&r->super))
        return;
    if (!answered) {
        const char *reason = reply == NULL ? error : reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
        context_error(&r->super, "login limiter unavailable", LOG_STRING("reason", reason));
        context_unavailable(&r->super, "redis", reason);
        return;
    }
    long long ms = reply->integer;
    check->done(check->data, ms <= 0 ? 0 : (int)((ms + 999) / 1000));
}

void login_limiter_check(http_request_t *r, const char *email, const char *client_ip, char attempt_id[17],
                         login_limiter_fn done, void *data)
{
    limiter_check_t *check = context_alloc(&r->super, sizeof(*check));
    check->r = r;
    check->done = done;
    check->data = data;
    snprintf(attempt_id, 17, "%016" PRIx64, random_u64());
    keys_for(email, client_ip, attempt_id, &check->keys);

    char window[24], email_limit[16], ip_limit[16];
    window_text(window);
    snprintf(email_limit, sizeof(email_limit), "%d", user_config.max_failures_per_email);
    snprintf(ip_limit, sizeof(ip_limit), "%d", user_config.max_failures_per_ip);
    const char *argv[] = {"EVAL", check_script, "3",      check->keys.email, check->keys.ip, check->keys.refunded,
                          window, email_limit,  ip_limit, attempt_id};
    step_redis_raw(&r->super, 10, argv, NULL, on_checked, check);
}

void login_limiter_forgive(worker_t *worker, const char *email, const char *client_ip, const char *attempt_id)
{
    attempt_keys_t keys;
    keys_for(email, client_ip, attempt_id, &keys);
    const char *forget_account[] = {"DEL", keys.email};
    const char *forget_attempt[] = {"ZREM", keys.ip, attempt_id};
    redis_command_argv(worker->redis, NULL, NULL, 2, forget_account, NULL);
    redis_command_argv(worker->redis, NULL, NULL, 3, forget_attempt, NULL);
}

void login_limiter_refund(worker_t *worker, const char *email, const char *client_ip, const char *attempt_id)
{
    attempt_keys_t keys;
    keys_for(email, client_ip, attempt_id, &keys);
    refund_start(worker, &keys);
}

void login_limiter_dispose(void)
{
    refund_t *refund = pending_refunds;
    while (refund != NULL) {
        refund_t *next = refund->next;
        if (refund->in_flight) { /* its reply (or "shutting down") frees it */
            chore_stop(&refund->chore);
            refund->abandoned = true;
        } else {
            refund_free(refund);
        }
        refund = next;
    }
}
