/* auth.c - the per-request authorization check, token revocation, and
 * minting service tokens. */
#include "auth.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "random.h"

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

/* Whether a verified token of role `caller` may use an endpoint meant for
 * `audience`. Roles are kinds of caller, not ranks: an endpoint serves its
 * own audience, and admins, who run the shop, may use every endpoint (an
 * operator releasing a stuck reservation by hand). So a service token
 * opens internal endpoints only, and a customer's never opens one. */
static bool role_allows(jwt_role_t audience, jwt_role_t caller)
{
    return caller == audience || caller == JWT_ROLE_ADMIN;
}

/* The static admin token names no user: it opens admin and internal
 * endpoints, not customer ones, which act on the caller's own account. */
static bool static_admin_token_allows(jwt_role_t audience)
{
    return audience == JWT_ROLE_ADMIN || audience == JWT_ROLE_SERVICE;
}

/* What a 403 tells the caller it would have needed. */
static const char *audience_description(jwt_role_t audience)
{
    switch (audience) {
    case JWT_ROLE_CUSTOMER: return "this endpoint is for customers: it needs a customer or admin token";
    case JWT_ROLE_ADMIN: return "this endpoint needs the admin role";
    case JWT_ROLE_SERVICE: return "this endpoint is internal: it needs a service token or an admin credential";
    }
    return "this endpoint needs another role";
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
    if (static_admin_token_allows(role) && equal_constant_time(token, len, admin_token, strlen(admin_token))) {
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
    if (!role_allows(role, check->claims.role)) {
        char message[160];
        snprintf(message, sizeof(message), "%s, not a %s token", audience_description(role),
                 jwt_role_name(check->claims.role));
        refuse(r, 403, "forbidden", "forbidden", message);
        return;
    }

    char denied_key[sizeof(AUTH_DENIED_PREFIX) + JWT_ID_MAX], revoked_key[sizeof(AUTH_REVOKED_PREFIX) + JWT_ID_MAX];
    snprintf(denied_key, sizeof(denied_key), AUTH_DENIED_PREFIX "%s", check->claims.jti);
    snprintf(revoked_key, sizeof(revoked_key), AUTH_REVOKED_PREFIX "%s", check->claims.sub);
    const char *argv[] = {"MGET", denied_key, revoked_key};
    step_redis_raw(&r->super, 3, argv, NULL, on_revocation_checked, check);
}

/* --- service tokens: what a service sends when it calls a peer ------------- */

/* This thread's service token. Minting costs an HMAC and a JSON document,
 * so a token serves every call of the thread until half its life is gone:
 * a call sent at the last moment still has half the lifetime to arrive,
 * far more than a call's budget (HTTP_CLIENT_TIMEOUT_MS, 2 s by default).
 * Per thread (_Thread_local), so the workers neither share nor lock it. */
typedef struct service_token {
    bool minted;
    char secret[AUTH_SECRET_MAX + 1]; /* what it was signed with and for */
    char service[JWT_ID_MAX];
    int64_t iat;
    char authorization[sizeof("Bearer ") + JWT_TOKEN_MAX]; /* the header value */
} service_token_t;

static _Thread_local service_token_t service_token;

/* True while `cached` may be sent again for `secret` and `service` at `now`:
 * the same key and name, and less than half its lifetime gone (a clock set
 * back before its iat counts as gone: a peer would see it as issued in the
 * future). */
static bool still_fresh(const service_token_t *cached, const char *secret, const char *service, int64_t now)
{
    return cached->minted && strcmp(cached->secret, secret) == 0 && strcmp(cached->service, service) == 0 &&
           now >= cached->iat && now - cached->iat < AUTH_SERVICE_TOKEN_LIFETIME_S / 2;
}

const char *auth_service_authorization_at(const char *secret, const char *service, int64_t now)
{
    service_token_t *cached = &service_token;
    if (still_fresh(cached, secret, service, now))
        return cached->authorization;

    cached->minted = false; /* until the new one is signed */
    jwt_claims_t claims = {.role = JWT_ROLE_SERVICE, .iat = now, .exp = now + AUTH_SERVICE_TOKEN_LIFETIME_S};
    if (strlen(secret) > AUTH_SECRET_MAX || strlen(service) >= sizeof(claims.sub))
        goto Error;
    snprintf(claims.sub, sizeof(claims.sub), "%s", service);
    /* jti: unique, not secret (the signature is what protects the token) */
    snprintf(claims.jti, sizeof(claims.jti), "%016" PRIx64 "%016" PRIx64, random_u64(), random_u64());
    size_t prefix = strlen("Bearer ");
    memcpy(cached->authorization, "Bearer ", prefix);
    if (jwt_sign(&claims, secret, cached->authorization + prefix, sizeof(cached->authorization) - prefix) < 0)
        goto Error;
    snprintf(cached->secret, sizeof(cached->secret), "%s", secret);
    snprintf(cached->service, sizeof(cached->service), "%s", service);
    cached->iat = now;
    cached->minted = true;
    return cached->authorization;

Error:
    log_error(NULL, "cannot mint a service token", LOG_STRING("sub", service),
              LOG_STRING("reason", "the service name is no token id, or the secret is too long"));
    return NULL;
}

const char *auth_service_authorization(const char *secret, const char *service)
{
    return auth_service_authorization_at(secret, service, (int64_t)time(NULL));
}

const char *auth_peer_authorization(const worker_t *worker)
{
    return auth_service_authorization(worker->settings->jwt_secret, worker->settings->service);
}

/* --- revocation ---------------------------------------------------------------- */

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
