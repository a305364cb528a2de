/* jwt.c - HS256 JSON Web Tokens: signing and verification.
 *
 * OpenSSL computes the HMAC (digest.h), the base64 and the constant-time
 * comparison; jansson reads the JSON. The
 * token's own header is never trusted to choose how it is verified: the
 * only accepted algorithm is HS256 with the configured key.
 */
#include "jwt.h"

#include "digest.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGNATURE_LEN    32 /* SHA-256 */
#define MAX_FUTURE_IAT_S 60 /* clock skew tolerated between services */

/* The fixed header of every token this code signs. */
static const char token_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

const char *jwt_status_name(jwt_status_t status)
{
    switch (status) {
    case JWT_VALID: return "valid";
    case JWT_MALFORMED: return "malformed";
    case JWT_BAD_ALGORITHM: return "bad_algorithm";
    case JWT_BAD_SIGNATURE: return "bad_signature";
    case JWT_BAD_CLAIMS: return "bad_claims";
    case JWT_EXPIRED: return "expired";
    case JWT_NOT_YET_VALID: return "not_yet_valid";
    }
    return "malformed";
}

/* The claim's spelling of each role, indexed by jwt_role_t. */
static const char *const role_names[JWT_ROLE_COUNT] = {
    [JWT_ROLE_CUSTOMER] = "customer",
    [JWT_ROLE_ADMIN] = "admin",
    [JWT_ROLE_SERVICE] = "service",
};

const char *jwt_role_name(jwt_role_t role)
{
    return (unsigned)role < JWT_ROLE_COUNT ? role_names[role] : "unknown";
}

int jwt_role_parse(const char *name, jwt_role_t *role)
{
    for (unsigned i = 0; i < JWT_ROLE_COUNT; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *role = (jwt_role_t)i;
            return 0;
        }
    }
    return -1;
}

/* --- base64url (RFC 4648 section 5, no padding) ---------------------------- */

/* Encodes `len` bytes; returns the encoded length, or -1 if `out` (which
 * gets a NUL) is too small. */
static int base64url_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
    char encoded[JWT_TOKEN_MAX + 4];
    if (len > JWT_TOKEN_MAX / 4 * 3)
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
    if (len % 4 == 1 || len > JWT_TOKEN_MAX)
        return -1;
    char standard[JWT_TOKEN_MAX + 4];
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
    char canonical[JWT_TOKEN_MAX + 4];
    if (base64url_encode(out, (size_t)n, canonical, sizeof(canonical)) != (int)len || memcmp(canonical, in, len) != 0)
        return -1;
    return n;
}

/* --- signing and verification ---------------------------------------------- */

static void sign(const char *secret, const char *input, size_t len, unsigned char signature[SIGNATURE_LEN])
{
    digest_hmac_sha256(secret, input, len, signature);
}

/* A token or user id: 1-63 characters of A-Z a-z 0-9 '-' '_'. */
static bool valid_id(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len >= JWT_ID_MAX)
        return false;
    for (const char *p = id; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_'))
            return false;
    return true;
}

int jwt_sign(const jwt_claims_t *claims, const char *secret, char *out, size_t size)
{
    if (!valid_id(claims->sub) || !valid_id(claims->jti) || claims->exp <= claims->iat ||
        (unsigned)claims->role >= JWT_ROLE_COUNT)
        return -1;
    char *payload = NULL;
    json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:s}", "sub", claims->sub, "role", jwt_role_name(claims->role), "iat",
                            (json_int_t)claims->iat, "exp", (json_int_t)claims->exp, "jti", claims->jti);
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
    unsigned char decoded[JWT_TOKEN_MAX];
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

static jwt_status_t check_header(const char *part, size_t len)
{
    json_t *header = decode_json_part(part, len);
    if (header == NULL)
        return JWT_MALFORMED;
    jwt_status_t status = JWT_VALID;
    const json_t *alg = json_object_get(header, "alg");
    const json_t *typ = json_object_get(header, "typ");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        status = JWT_BAD_ALGORITHM;
    else if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        status = JWT_MALFORMED;
    else if (json_object_get(header, "crit") != NULL) /* extensions we would have to understand */
        status = JWT_MALFORMED;
    json_decref(header);
    return status;
}

static bool read_id(const json_t *payload, const char *name, char out[JWT_ID_MAX])
{
    const json_t *value = json_object_get(payload, name);
    if (!json_is_string(value) || !valid_id(json_string_value(value)))
        return false;
    snprintf(out, JWT_ID_MAX, "%s", json_string_value(value));
    return true;
}

static jwt_status_t read_claims(const char *part, size_t len, int64_t now, jwt_claims_t *claims)
{
    json_t *payload = decode_json_part(part, len);
    if (payload == NULL)
        return JWT_MALFORMED;
    jwt_status_t status = JWT_VALID;
    const json_t *iat = json_object_get(payload, "iat");
    const json_t *exp = json_object_get(payload, "exp");
    const json_t *nbf = json_object_get(payload, "nbf");
    const json_t *role = json_object_get(payload, "role");
    if (!json_is_integer(iat) || !json_is_integer(exp) || (nbf != NULL && !json_is_integer(nbf)) ||
        !json_is_string(role) || jwt_role_parse(json_string_value(role), &claims->role) != 0 ||
        !read_id(payload, "sub", claims->sub) || !read_id(payload, "jti", claims->jti) ||
        json_integer_value(exp) <= json_integer_value(iat))
        status = JWT_BAD_CLAIMS;
    else if (now >= json_integer_value(exp))
        status = JWT_EXPIRED;
    else if ((nbf != NULL && now < json_integer_value(nbf)) || json_integer_value(iat) > now + MAX_FUTURE_IAT_S)
        status = JWT_NOT_YET_VALID;
    if (status == JWT_VALID) {
        claims->iat = json_integer_value(iat);
        claims->exp = json_integer_value(exp);
    }
    json_decref(payload);
    return status;
}

jwt_status_t jwt_verify(const char *token, size_t len, const char *secret, int64_t now, jwt_claims_t *claims)
{
    if (len == 0 || len > JWT_TOKEN_MAX)
        return JWT_MALFORMED;
    const char *first_dot = memchr(token, '.', len);
    const char *second_dot =
        first_dot != NULL ? memchr(first_dot + 1, '.', len - (size_t)(first_dot + 1 - token)) : NULL;
    if (second_dot == NULL || memchr(second_dot + 1, '.', len - (size_t)(second_dot + 1 - token)) != NULL)
        return JWT_MALFORMED;

    jwt_status_t status = check_header(token, (size_t)(first_dot - token));
    if (status != JWT_VALID)
        return status;

    unsigned char expected[SIGNATURE_LEN], given[SIGNATURE_LEN + 3];
    sign(secret, token, (size_t)(second_dot - token), expected);
    const char *signature = second_dot + 1;
    int given_len = base64url_decode(signature, len - (size_t)(signature - token), given, sizeof(given));
    if (given_len != SIGNATURE_LEN || CRYPTO_memcmp(expected, given, SIGNATURE_LEN) != 0)
        return JWT_BAD_SIGNATURE;

    jwt_claims_t read = {0};
    status = read_claims(first_dot + 1, (size_t)(second_dot - first_dot - 1), now, &read);
    if (status == JWT_VALID)
        *claims = read;
    return status;
}
