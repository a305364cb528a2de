/* jwt.h - bearer tokens: HS256 JSON Web Tokens (RFC 7519), signed and
 * verified. Pure functions: no I/O, no clock (the caller says when "now" is).
 *
 * The user service signs a token with the shared JWT_SECRET when a user logs
 * in; every service verifies it locally, without calling the user service:
 *
 *   1. the header must say exactly {"alg":"HS256"}: any other algorithm,
 *      "none" included, is refused (the classic JWT downgrade attack);
 *   2. the signature must match, compared in constant time;
 *   3. exp, iat, sub, role and jti must be present and well formed, and the
 *      token must not have expired.
 *
 * What a request may do with a valid token (its role, revocation) is
 * auth.h's business.
 */
#ifndef OMS_JWT_H
#define OMS_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_TOKEN_MAX 4096
#define JWT_ID_MAX    64 /* sub and jti, with their NUL */

/* Who a token speaks for. Kinds of caller, not ranks: a service may call
 * internal endpoints that no customer may, and no customer endpoint at all,
 * so which roles an endpoint accepts is a set (auth.h), never a comparison. */
typedef enum jwt_role {
    JWT_ROLE_CUSTOMER, /* a user shopping */
    JWT_ROLE_ADMIN,    /* a user running the shop */
    JWT_ROLE_SERVICE,  /* another service of the system calling in; sub is its name */
} jwt_role_t;

#define JWT_ROLE_COUNT 3 /* how many there are: the roles are 0..JWT_ROLE_COUNT-1 */

typedef struct jwt_claims {
    char sub[JWT_ID_MAX]; /* the user's id, or the calling service's name */
    char jti[JWT_ID_MAX]; /* this token's id ("" for the static admin token) */
    jwt_role_t role;
    int64_t iat; /* issued at, seconds since the epoch */
    int64_t exp; /* expires at */
} jwt_claims_t;

typedef enum jwt_status {
    JWT_VALID,
    JWT_MALFORMED,     /* not three base64url parts of JSON objects */
    JWT_BAD_ALGORITHM, /* alg is not HS256 */
    JWT_BAD_SIGNATURE, /* signed with another key, or altered */
    JWT_BAD_CLAIMS,    /* a required claim is missing or malformed */
    JWT_EXPIRED,       /* now >= exp */
    JWT_NOT_YET_VALID, /* nbf or iat lies in the future */
} jwt_status_t;

/* Returns a stable lower-case name for a status ("expired", ...), used as
 * a metric label and in error messages. */
const char *jwt_status_name(jwt_status_t status);

/* "customer" / "admin" / "service" ("unknown" for a value outside the
 * enum); parses the same names, exactly (returns 0, or -1). */
const char *jwt_role_name(jwt_role_t role);
int jwt_role_parse(const char *name, jwt_role_t *role);

/* Writes a signed HS256 token for `claims` into `out` (NUL-terminated).
 * Returns its length, or -1 when `out` is too small or a claim is invalid
 * (an id's shape, exp <= iat, a role outside the enum). */
int jwt_sign(const jwt_claims_t *claims, const char *secret, char *out, size_t size);

/* Checks steps 1-3 above for `token` at time `now` (seconds since the
 * epoch). Fills `claims` only when the token is valid. */
jwt_status_t jwt_verify(const char *token, size_t len, const char *secret, int64_t now, jwt_claims_t *claims);

#endif
