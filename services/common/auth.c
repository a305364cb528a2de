/* auth.c - HS256 JSON Web Tokens and the per-request authorization check.
 *
 * OpenSSL computes the HMAC and the base64; jansson reads the JSON. The
 * token's own header is never trusted to choose how it is verified: the
 * only accepted algorithm is HS256 with the configured key.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "server.h"

#define SIGNATURE_LEN    32 /* SHA-256 */
#define MAX_FUTURE_IAT_S 60 /* clock skew tolerated between services */
#define STATIC_ADMIN_SUB "admin-token"

/* The fixed header of every token this code signs. */
static const char token_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

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

const char *auth_token_status_name(auth_token_status_t status)
{
    switch (status) {
    case AUTH_TOKEN_VALID: return "valid";
    case AUTH_TOKEN_MALFORMED: return "malformed";
    case AUTH_TOKEN_BAD_ALGORITHM: return "bad_algorithm";
    case AUTH_TOKEN_BAD_SIGNATURE: return "bad_signature";
    case AUTH_TOKEN_BAD_CLAIMS: return "bad_claims";
    case AUTH_TOKEN_EXPIRED: return "expired";
    case AUTH_TOKEN_NOT_YET_VALID: return "not_yet_valid";
    }
    return "malformed";
}

const char *auth_role_name(auth_role_t role)
{
    return role == AUTH_ROLE_ADMIN ? "admin" : "customer";
}

int auth_role_parse(const char *name, auth_role_t *role)
{
    if (strcmp(name, "customer") == 0)
        *role = AUTH_ROLE_CUSTOMER;
    else if (strcmp(name, "admin") == 0)
        *role = AUTH_ROLE_ADMIN;
    else
        return -1;
    return 0;
}

/* --- base64url (RFC 4648 section 5, no padding) ---------------------------- */

/* Encodes `len` bytes; returns the encoded length, or -1 if `out` (which
 * gets a NUL) is too small. */
static int base64url_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
    char encoded[AUTH_TOKEN_MAX + 4];
    if (len > AUTH_TOKEN_MAX / 4 * 3)
        return -1;
    int n = EVP_EncodeBlock((unsigned char *)encoded, in, (int)len);
    while (n > 0 && encoded[n - 1] == '=')
        n--;
    if ((size_t)n + 1 > size)
        return -1;
    for (int i = 0; i < n; i++)
        out[i] = encoded[i] == '+' ? '-' : encoded[i] == '/' ? '_' : encoded[i];
    out[n] = '\0';
    return n;
}

/* Decodes unpadded, canonical base64url; returns the decoded length, or -1
 * for a character outside the alphabet, an impossible length, non-zero
 * unused bits or a small `out`. */
static int base64url_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
    if (len % 4 == 1 || len > AUTH_TOKEN_MAX)
        return -1;
    char standard[AUTH_TOKEN_MAX + 4];
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            standard[i] = c;
        else if (c == '-')
            standard[i] = '+';
        else if (c == '_')
            standard[i] = '/';
        else
            return -1;
    }
    size_t pad = (4 - len % 4) % 4;
    memset(standard + len, '=', pad);
    size_t padded = len + pad;
    if (3 * (padded / 4) > size)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)standard, (int)padded);
    if (n < 0)
        return -1;
    n -= (int)pad;
    /* Only the canonical encoding: the last character's unused low bits
     * must be zero, or four different strings would carry one signature. */
    char canonical[AUTH_TOKEN_MAX + 4];
    if (base64url_encode(out, (size_t)n, canonical, sizeof(canonical)) != (int)len || memcmp(canonical, in, len) != 0)
        return -1;
    return n;
}

/* --- signing and verification ---------------------------------------------- */

static void sign(const char *secret, const char *input, size_t len, unsigned char signature[SIGNATURE_LEN])
{
    unsigned int signature_len = SIGNATURE_LEN;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)input, len, signature, &signature_len);
}

/* A token or user id: 1-63 characters of A-Z a-z 0-9 '-' '_'. */
static bool valid_id(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len >= AUTH_ID_MAX)
        return false;
    for (const char *p = id; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_'))
            return false;
    return true;
}

int auth_token_sign(const auth_claims_t *claims, const char *secret, char *out, size_t size)
{
    if (!valid_id(claims->sub) || !valid_id(claims->jti) || claims->exp <= claims->iat)
        return -1;
    char *payload = NULL;
    json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:s}", "sub", claims->sub, "role", auth_role_name(claims->role),
                            "iat", (json_int_t)claims->iat, "exp", (json_int_t)claims->exp, "jti", claims->jti);
    if (doc != NULL)
        payload = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (payload == NULL)
        return -1;

    /* header "." payload "." signature, each part base64url-encoded */
    int len = -1;
    int header_len = base64url_encode((const unsigned char *)token_header, strlen(token_header), out, size);
    if (header_len < 0 || (size_t)header_len + 2 > size)
        goto Exit;
    out[header_len] = '.';
    int payload_len = base64url_encode((const unsigned char *)payload, strlen(payload), out + header_len + 1,
                                       size - (size_t)header_len - 1);
    if (payload_len < 0)
        goto Exit;
    size_t signed_len = (size_t)header_len + 1 + (size_t)payload_len;
    if (signed_len + 2 > size)
        goto Exit;
    unsigned char signature[SIGNATURE_LEN];
    sign(secret, out, signed_len, signature);
    out[signed_len] = '.';
    int signature_len = base64url_encode(signature, SIGNATURE_LEN, out + signed_len + 1, size - signed_len - 1);
    if (signature_len >= 0)
        len = (int)signed_len + 1 + signature_len;
Exit:
    free(payload);
    return len;
}

/* Decodes one base64url part and parses it as a JSON object (NULL if not). */
static json_t *decode_json_part(const char *part, size_t len)
{
    unsigned char decoded[AUTH_TOKEN_MAX];
    int n = base64url_decode(part, len, decoded, sizeof(decoded));
    if (n <= 0)
        return NULL;
    json_t *doc = json_loadb((const char *)decoded, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (doc != NULL && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static auth_token_status_t check_header(const char *part, size_t len)
{
    json_t *header = decode_json_part(part, len);
    if (header == NULL)
        return AUTH_TOKEN_MALFORMED;
    auth_token_status_t status = AUTH_TOKEN_VALID;
    const json_t *alg = json_object_get(header, "alg");
    const json_t *typ = json_object_get(header, "typ");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        status = AUTH_TOKEN_BAD_ALGORITHM;
    else if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        status = AUTH_TOKEN_MALFORMED;
    else if (json_object_get(header, "crit") != NULL) /* extensions we would have to understand */
        status = AUTH_TOKEN_MALFORMED;
    json_decref(header);
    return status;
}

static bool read_id(const json_t *payload, const char *name, char out[AUTH_ID_MAX])
{
    const json_t *value = json_object_get(payload, name);
    if (!json_is_string(value) || !valid_id(json_string_value(value)))
        return false;
    snprintf(out, AUTH_ID_MAX, "%s", json_string_value(value));
    return true;
}

static auth_token_status_t read_claims(const char *part, size_t len, int64_t now, auth_claims_t *claims)
{
    json_t *payload = decode_json_part(part, len);
    if (payload == NULL)
        return AUTH_TOKEN_MALFORMED;
    auth_token_status_t status = AUTH_TOKEN_VALID;
    const json_t *iat = json_object_get(payload, "iat");
    const json_t *exp = json_object_get(payload, "exp");
    const json_t *nbf = json_object_get(payload, "nbf");
    const json_t *role = json_object_get(payload, "role");
    if (!json_is_integer(iat) || !json_is_integer(exp) || (nbf != NULL && !json_is_integer(nbf)) ||
        !json_is_string(role) || auth_role_parse(json_string_value(role), &claims->role) != 0 ||
        !read_id(payload, "sub", claims->sub) || !read_id(payload, "jti", claims->jti) ||
        json_integer_value(exp) <= json_integer_value(iat))
        status = AUTH_TOKEN_BAD_CLAIMS;
    else if (now >= json_integer_value(exp))
        status = AUTH_TOKEN_EXPIRED;
    else if ((nbf != NULL && now < json_integer_value(nbf)) || json_integer_value(iat) > now + MAX_FUTURE_IAT_S)
        status = AUTH_TOKEN_NOT_YET_VALID;
    if (status == AUTH_TOKEN_VALID) {
        claims->iat = json_integer_value(iat);
        claims->exp = json_integer_value(exp);
    }
    json_decref(payload);
    return status;
}

auth_token_status_t auth_token_verify(const char *token, size_t len, const char *secret, int64_t now,
                                      auth_claims_t *claims)
{
    if (len == 0 || len > AUTH_TOKEN_MAX)
        return AUTH_TOKEN_MALFORMED;
    const char *first_dot = memchr(token, '.', len);
    const char *second_dot =
        first_dot != NULL ? memchr(first_dot + 1, '.', len - (size_t)(first_dot + 1 - token)) : NULL;
    if (second_dot == NULL || memchr(second_dot + 1, '.', len - (size_t)(second_dot + 1 - token)) != NULL)
        return AUTH_TOKEN_MALFORMED;

    auth_token_status_t status = check_header(token, (size_t)(first_dot - token));
    if (status != AUTH_TOKEN_VALID)
        return status;

    unsigned char expected[SIGNATURE_LEN], given[SIGNATURE_LEN + 3];
    sign(secret, token, (size_t)(second_dot - token), expected);
    const char *signature = second_dot + 1;
    int given_len = base64url_decode(signature, len - (size_t)(signature - token), given, sizeof(given));
    if (given_len != SIGNATURE_LEN || CRYPTO_memcmp(expected, given, SIGNATURE_LEN) != 0)
        return AUTH_TOKEN_BAD_SIGNATURE;

    auth_claims_t read = {0};
    status = read_claims(first_dot + 1, (size_t)(second_dot - first_dot - 1), now, &read);
    if (status == AUTH_TOKEN_VALID)
        *claims = read;
    return status;
}

/* --- the per-request check ------------------------------------------------- */

typedef struct auth_check {
    http_request_t *r;
    auth_claims_t claims;
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
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer error=\"invalid_token\""));
    log_warn(&r->trace, "request refused", LOG_STRING("reason", outcome), LOG_STRING("route", r->route),
             LOG_STRING("client", r->client));
    http_respond_error(r, status, code, "%s", message);
}

static void on_revocation_checked(void *data, const redisReply *reply, const char *error)
{
    auth_check_t *check = data;
    http_request_t *r = check->r;
    if (!http_request_resume(r))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        count("unavailable");
        http_respond_unavailable(r, "redis", reply == NULL ? error : "unexpected reply to the revocation check");
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

void auth_require(http_request_t *r, auth_role_t role, auth_next_fn next)
{
    size_t len;
    const char *header = http_header(r, "authorization", &len);
    if (header == NULL || len <= 7 || strncasecmp(header, "Bearer ", 7) != 0) {
        count("missing");
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        http_respond_error(r, 401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)");
        return;
    }
    const char *token = header + 7;
    len -= 7;
    auth_check_t *check = http_request_alloc(r, sizeof(*check));
    check->r = r;
    check->next = next;

    const char *admin_token = server_config()->admin_token;
    if (role == AUTH_ROLE_ADMIN && equal_constant_time(token, len, admin_token, strlen(admin_token))) {
        count("admin_token");
        snprintf(check->claims.sub, sizeof(check->claims.sub), "%s", STATIC_ADMIN_SUB);
        check->claims.role = AUTH_ROLE_ADMIN;
        next(r, &check->claims);
        return;
    }

    auth_token_status_t status =
        auth_token_verify(token, len, server_config()->jwt_secret, (int64_t)time(NULL), &check->claims);
    if (status != AUTH_TOKEN_VALID) {
        char message[96];
        snprintf(message, sizeof(message), "the token is not valid (%s)", auth_token_status_name(status));
        refuse(r, 401, "invalid_token", auth_token_status_name(status), message);
        return;
    }
    if (check->claims.role < role) {
        refuse(r, 403, "forbidden", "forbidden", "this endpoint needs the admin role");
        return;
    }

    char denied_key[sizeof(AUTH_DENIED_PREFIX) + AUTH_ID_MAX], revoked_key[sizeof(AUTH_REVOKED_PREFIX) + AUTH_ID_MAX];
    snprintf(denied_key, sizeof(denied_key), AUTH_DENIED_PREFIX "%s", check->claims.jti);
    snprintf(revoked_key, sizeof(revoked_key), AUTH_REVOKED_PREFIX "%s", check->claims.sub);
    const char *argv[] = {"MGET", denied_key, revoked_key};
    http_request_hold(r); /* first: the callback may run before the call returns */
    redis_command_argv(r->worker->redis, on_revocation_checked, check, 3, argv, NULL);
}

void auth_revoke_token(redis_client_t *redis, const auth_claims_t *token, int64_t now, redis_callback_fn cb, void *data)
{
    char key[sizeof(AUTH_DENIED_PREFIX) + AUTH_ID_MAX], ttl[24];
    snprintf(key, sizeof(key), AUTH_DENIED_PREFIX "%s", token->jti);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(token->exp > now ? token->exp - now : 1));
    const char *argv[] = {"SET", key, "1", "EX", ttl};
    redis_command_argv(redis, cb, data, 5, argv, NULL);
}

void auth_revoke_user(redis_client_t *redis, const char *sub, int64_t now, int64_t ttl_seconds, redis_callback_fn cb,
                      void *data)
{
    char key[sizeof(AUTH_REVOKED_PREFIX) + AUTH_ID_MAX], at[24], ttl[24];
    snprintf(key, sizeof(key), AUTH_REVOKED_PREFIX "%s", sub);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_seconds > 0 ? ttl_seconds : 1));
    const char *argv[] = {"SET", key, at, "EX", ttl};
    redis_command_argv(redis, cb, data, 5, argv, NULL);
}
