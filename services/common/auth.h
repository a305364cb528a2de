/* auth.h - the per-request authorization check, revocation, and the
 * tokens services send each other.
 *
 * A request to a protected endpoint carries `Authorization: Bearer <token>`;
 * jwt.h verifies the token itself (algorithm, signature, claims, expiry).
 * Then:
 *
 *   4. the role must be one the endpoint accepts (403 otherwise);
 *   5. Redis must not list the token's jti as logged out, nor its sub (a
 *      user, or a service) as revoked since the token was issued (a role
 *      change revokes).
 *
 * Step 5 needs Redis; when Redis cannot answer, the request gets 503 rather
 * than trusting a token that may have been revoked. It is the same for
 * every kind of token: a leaked service token is revoked like a user's.
 *
 * Every endpoint is meant for one kind of caller, and admins:
 *
 *   customer endpoints  a user's own account and orders: customer and admin
 *                       tokens;
 *   admin endpoints     admin tokens and the static ADMIN_TOKEN;
 *   internal endpoints  what one service calls at another (inventory's
 *                       reservations, payment's charges): service tokens,
 *                       admin tokens and the static ADMIN_TOKEN.
 *
 * A service token is a JWT like a user's, signed with the same JWT_SECRET,
 * with role "service" and the calling service's name as sub. Each service
 * mints its own (auth_service_authorization), short-lived, so one that
 * leaks (into a log, through a proxy) is soon worth nothing; what must
 * stay secret is JWT_SECRET, which every service holds anyway.
 */
#ifndef OMS_AUTH_H
#define OMS_AUTH_H

#include <stdint.h>

#include "http.h"
#include "jwt.h"
#include "step.h"

#define AUTH_DENIED_PREFIX  "oms:auth:denied:"  /* + jti: the token was logged out */
#define AUTH_REVOKED_PREFIX "oms:auth:revoked:" /* + sub: tokens issued up to this second are void */

#define AUTH_SECRET_MAX               512 /* the longest JWT_SECRET, in bytes */
#define AUTH_SERVICE_TOKEN_LIFETIME_S 300 /* a minted service token's exp - iat */

/* Declares oms_auth_verifications_total; call before threads start. */
void auth_metrics_register(void);

/* Called once the caller is authenticated and allowed; `who` lives as long
 * as the request. */
typedef void (*auth_next_fn)(http_request_t *r, const jwt_claims_t *who);

/* Authenticates `Authorization: Bearer <token>` for an endpoint meant for
 * `role` (JWT_ROLE_CUSTOMER, _ADMIN or _SERVICE for an internal endpoint),
 * then calls `next`: a token of that role or an admin token gets through.
 * For admin and internal endpoints so does the static admin token
 * (http_server_t.admin_token: scripts and tests use it; `who->sub` is
 * "admin-token"); not for customer endpoints, which act on the caller's own
 * account and so need a user. Answers itself when the caller may not go
 * on: 401 with WWW-Authenticate (no token, a bad or revoked one), 403 (a
 * valid token of another role), 503 (Redis cannot say). */
void auth_require(http_request_t *r, jwt_role_t role, auth_next_fn next);

/* The Authorization header value ("Bearer <token>") a service sends when it
 * calls a peer (http_call_t.authorization): a service token for `service`
 * signed with `secret`, valid for AUTH_SERVICE_TOKEN_LIFETIME_S. It is kept
 * in a per-thread cache and minted again (new jti, iat now) once less than
 * half its lifetime is left, or for another secret or service. The string
 * is valid until the next call on the same thread (http_client_send copies
 * it). NULL, logged, when it cannot be minted (a service name that is no
 * JWT id, a secret over AUTH_SECRET_MAX). */
const char *auth_service_authorization(const char *secret, const char *service);

/* The same as of `now` (seconds since the epoch) rather than the clock's
 * time: what tests use to see the renewal without waiting for it. */
const char *auth_service_authorization_at(const char *secret, const char *service, int64_t now);

/* auth_service_authorization for the service `worker` runs
 * (worker_settings_t.service), with its settings' JWT secret. */
const char *auth_peer_authorization(const worker_t *worker);

/* Deny-lists one token until it expires (logout) as a step of `c`: `next`
 * runs once Redis has stored it. */
void auth_revoke_token(context_t *c, const jwt_claims_t *token, int64_t now, step_redis_fn next, void *data);

/* Voids every token of `sub` issued up to `now` for `ttl_seconds` (at
 * least the longest token lifetime), as a step of `c`; `done` gets the
 * outcome whatever it is, even when `c` was cancelled (a demotion must
 * take effect whether or not the client waits for it). */
void auth_revoke_user(context_t *c, const char *sub, int64_t now, int64_t ttl_seconds, step_redis_reply_fn done,
                      void *data);

#endif
