/* auth.c - the per-request authorization check and token revocation. */
#include "auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define STATIC_ADMIN_SUB "admin-token"

static metrics_family_t *verifications;

void auth_metrics_register(void)
{
    static const char *const outcome[] = {"outcome", NULL};
    verifications =
        metrics_counter("oms_auth_verifications_total",
                        "Bearer token checks by outcome (valid, expired, revoked, forbidden, ...).", outcome);
}

static void count(const char *outcome)
{
    metrics_counter_add(verifications, (const char *const[]){outcome}, 1);
}

/* --- the per-request check ------------------------------------------------- */

typedef struct auth_check {
    http_request_t *r;
    jwt_claims_t claims;
    auth_next_fn next;
} auth_check_t;

/* Compares in time independent of where the strings first differ. */
static bool equal_constant_time(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0;
}

static void refuse(http_request_t *r, int status, const char *code, const char *outcome, const char *message)
{
    count(outcome);
    if (status == 401)
        http_add_header(r, "www-authenticate", "Bearer error=\"invalid_token\"");
    context_warn(&r->super, "request refused", LOG_STRING("reason", outcome), LOG_STRING("route", r->route),
                 LOG_STRING("client", r->client));
    http_respond_error(r, status, code, "%s", message);
}

static void on_revocation_checked(void *data, const redisReply *reply, const char *error)
{
    auth_check_t *check = data;
    http_request_t *r = check->r;
    if (context_is_cancelled(&r->super))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        count("unavailable");
        context_unavailable(&r->super, "redis",
                            reply == NULL                      ? error
                            : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                               : "unexpected reply to the revocation check");
        return;
    }
    const redisReply *denied = reply->element[0], *revoked_at = reply->element[1];
    bool revoked = denied->type != REDIS_REPLY_NIL ||
                   (revoked_at->type == REDIS_REPLY_STRING && check->claims.iat <= strtoll(revoked_at->str, NULL, 10));
    if (revoked) {
        refuse(r, 401, "token_revoked", "revoked", "the token has been revoked; log in again");
        return;
    }
    count("valid");
    check->next(r, &check->claims);
}

void auth_require(http_request_t *r, jwt_role_t role, auth_next_fn next)
{
    size_t len;
    const char *header = http_header(r, "authorization", &len);
    if (header == NULL || len <= 7 || strncasecmp(header, "Bearer ", 7) != 0) {
        count("missing");
        http_add_header(r, "www-authenticate", "Bearer");
        http_respond_error(r, 401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)");
        return;
    }
    const char *token = header + 7;
    len -= 7;
    auth_check_t *check = context_alloc(&r->super, sizeof(*check));
    check->r = r;
    check->next = next;

    const char *admin_token = r->server->admin_token;
    if (role == JWT_ROLE_ADMIN && equal_constant_time(token, len, admin_token, strlen(admin_token))) {
        count("admin_token");
        snprintf(check->claims.sub, sizeof(check->claims.sub), "%s", STATIC_ADMIN_SUB);
        check->claims.role = JWT_ROLE_ADMIN;
        next(r, &check->claims);
        return;
    }

    jwt_status_t status = jwt_verify(token, len, r->server->jwt_secret, (int64_t)time(NULL), &check->claims);
    if (status != JWT_VALID) {
        char message[96];
        snprintf(message, sizeof(message), "the token is not valid (%s)", jwt_status_name(status));
        refuse(r, 401, "invalid_token", jwt_status_name(status), message);
        return;
    }
    if (check->claims.role < role) {
        refuse(r, 403, "forbidden", "forbidden", "this endpoint needs the admin role");
        return;
    }

    char denied_key[sizeof(AUTH_DENIED_PREFIX) + JWT_ID_MAX], revoked_key[sizeof(AUTH_REVOKED_PREFIX) + JWT_ID_MAX];
    snprintf(denied_key, sizeof(denied_key), AUTH_DENIED_PREFIX "%s", check->claims.jti);
    snprintf(revoked_key, sizeof(revoked_key), AUTH_REVOKED_PREFIX "%s", check->claims.sub);
    const char *argv[] = {"MGET", denied_key, revoked_key};
    step_redis_raw(&r->super, 3, argv, NULL, on_revocation_checked, check);
}

void auth_revoke_token(context_t *c, const jwt_claims_t *token, int64_t now, step_redis_fn next, void *data)
{
    char key[sizeof(AUTH_DENIED_PREFIX) + JWT_ID_MAX], ttl[24];
    snprintf(key, sizeof(key), AUTH_DENIED_PREFIX "%s", token->jti);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(token->exp > now ? token->exp - now : 1));
    const char *argv[] = {"SET", key, "1", "EX", ttl};
    step_redis(c, 5, argv, NULL, next, data);
}

void auth_revoke_user(context_t *c, const char *sub, int64_t now, int64_t ttl_seconds, step_redis_reply_fn done,
                      void *data)
{
    char key[sizeof(AUTH_REVOKED_PREFIX) + JWT_ID_MAX], at[24], ttl[24];
    snprintf(key, sizeof(key), AUTH_REVOKED_PREFIX "%s", sub);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_seconds > 0 ? ttl_seconds : 1));
    const char *argv[] = {"SET", key, at, "EX", ttl};
    step_redis_raw(c, 5, argv, NULL, done, data);
}
