/* auth.h - bearer tokens: signing, verification, revocation, role checks.
 *
 * The user service signs a JSON Web Token (RFC 7519) with HMAC-SHA256 and
 * the shared JWT_SECRET when a user logs in; every service verifies it
 * locally, without calling the user service:
 *
 *   1. the header must say exactly {"alg":"HS256"}: any other algorithm,
 *      "none" included, is refused (the classic JWT downgrade attack);
 *   2. the signature must match, compared in constant time;
 *   3. exp, iat, sub, role and jti must be present and well formed, and the
 *      token must not have expired;
 *   4. the role must allow the endpoint (403 otherwise);
 *   5. Redis must not list the token's jti as logged out, nor the user as
 *      revoked since the token was issued (a role change revokes).
 *
 * Step 5 needs Redis; when Redis cannot answer, the request gets 503 rather
 * than trusting a token that may have been revoked.
 */
#ifndef OMS_AUTH_H
#define OMS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "redis.h"

#define AUTH_DENIED_PREFIX  "oms:auth:denied:"  /* + jti: the token was logged out */
#define AUTH_REVOKED_PREFIX "oms:auth:revoked:" /* + sub: tokens issued up to this second are void */
#define AUTH_TOKEN_MAX      4096
#define AUTH_ID_MAX         64 /* sub and jti, with their NUL */

typedef enum auth_role {
    AUTH_ROLE_CUSTOMER,
    AUTH_ROLE_ADMIN,
} auth_role_t;

typedef struct auth_claims {
    char sub[AUTH_ID_MAX]; /* the user's id */
    char jti[AUTH_ID_MAX]; /* this token's id ("" for the static admin token) */
    auth_role_t role;
    int64_t iat; /* issued at, seconds since the epoch */
    int64_t exp; /* expires at */
} auth_claims_t;

typedef enum auth_token_status {
    AUTH_TOKEN_VALID,
    AUTH_TOKEN_MALFORMED,     /* not three base64url parts of JSON objects */
    AUTH_TOKEN_BAD_ALGORITHM, /* alg is not HS256 */
    AUTH_TOKEN_BAD_SIGNATURE, /* signed with another key, or altered */
    AUTH_TOKEN_BAD_CLAIMS,    /* a required claim is missing or malformed */
    AUTH_TOKEN_EXPIRED,       /* now >= exp */
    AUTH_TOKEN_NOT_YET_VALID, /* nbf or iat lies in the future */
} auth_token_status_t;

/* Returns a stable lower-case name for a status ("expired", ...), used as
 * a metric label and in error messages. */
const char *auth_token_status_name(auth_token_status_t status);

/* "customer" / "admin"; parses the same names (returns 0, or -1). */
const char *auth_role_name(auth_role_t role);
int auth_role_parse(const char *name, auth_role_t *role);

/* Writes a signed HS256 token for `claims` into `out` (NUL-terminated).
 * Returns its length, or -1 when `out` is too small or a claim is invalid. */
int auth_token_sign(const auth_claims_t *claims, const char *secret, char *out, size_t size);

/* Checks steps 1-3 above for `token` at time `now` (seconds since the
 * epoch). Fills `claims` only when the token is valid. Pure: no I/O. */
auth_token_status_t auth_token_verify(const char *token, size_t len, const char *secret, int64_t now,
                                      auth_claims_t *claims);

/* Declares oms_auth_verifications_total; call before threads start. */
void auth_metrics_register(void);

/* Called once the caller is authenticated and allowed; `who` lives as long
 * as the request. */
typedef void (*auth_next_fn)(http_request_t *r, const auth_claims_t *who);

/* Authenticates `Authorization: Bearer <token>` for an endpoint that needs
 * at least `role`, then calls `next`. Answers 401, 403 or 503 itself when
 * the caller may not go on. For AUTH_ROLE_ADMIN the static ADMIN_TOKEN is
 * accepted too (scripts and tests use it; `who->sub` is "admin-token"). */
void auth_require(http_request_t *r, auth_role_t role, auth_next_fn next);

/* Deny-lists one token until it expires (logout). `cb` may be NULL. */
void auth_revoke_token(redis_client_t *redis, const auth_claims_t *token, int64_t now, redis_callback_fn cb,
                       void *data);

/* Voids every token of `sub` issued up to `now` for `ttl_seconds` (at
 * least the longest token lifetime). `cb` may be NULL. */
void auth_revoke_user(redis_client_t *redis, const char *sub, int64_t now, int64_t ttl_seconds, redis_callback_fn cb,
                      void *data);

#endif
