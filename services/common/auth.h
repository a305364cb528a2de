/* auth.h - the per-request authorization check, and revocation.
 *
 * A request to a protected endpoint carries `Authorization: Bearer <token>`;
 * jwt.h verifies the token itself (algorithm, signature, claims, expiry).
 * Then:
 *
 *   4. the role must allow the endpoint (403 otherwise);
 *   5. Redis must not list the token's jti as logged out, nor the user as
 *      revoked since the token was issued (a role change revokes).
 *
 * Step 5 needs Redis; when Redis cannot answer, the request gets 503 rather
 * than trusting a token that may have been revoked.
 */
#ifndef OMS_AUTH_H
#define OMS_AUTH_H

#include <stdint.h>

#include "http.h"
#include "jwt.h"
#include "step.h"

#define AUTH_DENIED_PREFIX  "oms:auth:denied:"  /* + jti: the token was logged out */
#define AUTH_REVOKED_PREFIX "oms:auth:revoked:" /* + sub: tokens issued up to this second are void */

/* Declares oms_auth_verifications_total; call before threads start. */
void auth_metrics_register(void);

/* Called once the caller is authenticated and allowed; `who` lives as long
 * as the request. */
typedef void (*auth_next_fn)(http_request_t *r, const jwt_claims_t *who);

/* Authenticates `Authorization: Bearer <token>` for an endpoint that needs
 * at least `role`, then calls `next`. Answers 401, 403 or 503 itself when
 * the caller may not go on. For JWT_ROLE_ADMIN the static admin token
 * (http_server_t.admin_token) is accepted too (scripts and tests use it;
 * `who->sub` is "admin-token"). */
void auth_require(http_request_t *r, jwt_role_t role, auth_next_fn next);

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
