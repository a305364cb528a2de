/* fuzz_jwt.c - bearer token (JWT HS256) verification and signing (auth.h).
 *
 * Feeds, from one input:
 *   1. the whole input as a token to jwt_verify();
 *   2. when the input has a line break: line 1 as the header JSON, line 2 as
 *      the payload JSON, the byte after the second line break (optional) as
 *      a tweak. The target encodes both in base64url and signs them with the
 *      key, so verification gets past the signature; the tweak may change
 *      the last character of one part within its unused low bits (the bytes
 *      it decodes to stay the same);
 *   3. the claims that verified, or those the payload names, to
 *      jwt_sign().
 *
 * Asserts:
 *   - no malleability: a token that verifies is canonical, i.e. each part
 *     re-encodes (base64url, no padding) from its decoded bytes to exactly
 *     its own text, so one token has one spelling;
 *   - a token that verifies says alg HS256 (typ JWT if any, no crit), and
 *     the claims handed out are the payload's: sub and jti of 1-63
 *     [A-Za-z0-9_-], role exactly "customer", "admin" or "service" (and
 *     the role handed out is that one), iat < exp, now < exp, nbf <= now,
 *     iat <= now + 60; it fails under another key;
 *   - a canonical, correctly signed token with such a header and claims
 *     verifies (no false refusals);
 *   - jwt_sign() succeeds exactly for valid ids, a role of the enum and
 *     iat < exp, and what it signs verifies to the same claims and is
 *     canonical.
 */
#include <jansson.h>
#include <openssl/hmac.h>

#include "jwt.h"
#include "fuzz_support.h"

#define SECRET "fuzz-jwt-secret"
#define NOW    1700000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t j = 0; j < chars; j++)
            out[n++] = alphabet[(v >> (18 - 6 * j)) & 0x3f];
    }
    out[n] = '\0';
    return n;
}

static int b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(alphabet, c) : NULL;
    return p != NULL ? (int)(p - alphabet) : -1;
}

/* Decodes leniently (unused low bits ignored); -1 for a bad character or length. */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    size_t n = 0;
    uint32_t bits = 0;
    int held = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return -1;
        bits = bits << 6 | (uint32_t)v;
        held += 6;
        if (held >= 8) {
            held -= 8;
            out[n++] = (unsigned char)(bits >> held);
            bits &= (1u << held) - 1;
        }
    }
    return (long)n;
}

/* True when `len` characters are the canonical base64url of what they decode to. */
static bool canonical(const char *part, size_t len)
{
    static unsigned char decoded[JWT_TOKEN_MAX];
    static char again[JWT_TOKEN_MAX + 4];
    long n = b64url_decode(part, len, decoded);
    return n >= 0 && b64url_encode(decoded, (size_t)n, again) == len && memcmp(again, part, len) == 0;
}

/* The reference's own spelling of the roles (README: the `role` claim),
 * not jwt.c's table. */
static const struct {
    const char *name;
    jwt_role_t role;
} roles[] = {{"customer", JWT_ROLE_CUSTOMER}, {"admin", JWT_ROLE_ADMIN}, {"service", JWT_ROLE_SERVICE}};

/* The role a claim names; false for anything else (case and length count). */
static bool reference_role(const json_t *claim, jwt_role_t *role)
{
    if (!json_is_string(claim) || strlen(json_string_value(claim)) != json_string_length(claim))
        return false;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(json_string_value(claim), roles[i].name) == 0) {
            *role = roles[i].role;
            return true;
        }
    }
    return false;
}

static bool valid_id(const char *id)
{
    size_t len = strlen(id);
    return len >= 1 && len < JWT_ID_MAX &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

/* Decodes a part and parses it as one JSON object (duplicates refused). */
static json_t *json_part(const char *part, size_t len)
{
    static unsigned char decoded[JWT_TOKEN_MAX];
    long n = len <= JWT_TOKEN_MAX ? b64url_decode(part, len, decoded) : -1;
    json_t *doc = n > 0 ? json_loadb((const char *)decoded, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (doc != NULL && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static bool header_acceptable(const json_t *header)
{
    const json_t *alg = json_object_get(header, "alg"), *typ = json_object_get(header, "typ");
    return json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0 &&
           (typ == NULL || (json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0)) &&
           json_object_get(header, "crit") == NULL;
}

/* The reference claim rules; fills `claims` when they hold. */
static bool claims_acceptable(const json_t *payload, jwt_claims_t *claims)
{
    const json_t *iat = json_object_get(payload, "iat"), *exp = json_object_get(payload, "exp");
    const json_t *nbf = json_object_get(payload, "nbf"), *role = json_object_get(payload, "role");
    const json_t *sub = json_object_get(payload, "sub"), *jti = json_object_get(payload, "jti");
    if (!json_is_integer(iat) || !json_is_integer(exp) || (nbf != NULL && !json_is_integer(nbf)) ||
        !json_is_string(role) || !json_is_string(sub) || !json_is_string(jti))
        return false;
    if (!valid_id(json_string_value(sub)) || !valid_id(json_string_value(jti)))
        return false;
    if (!reference_role(role, &claims->role))
        return false;
    json_int_t issued = json_integer_value(iat), expires = json_integer_value(exp);
    if (expires <= issued || NOW >= expires || issued > NOW + 60 || (nbf != NULL && NOW < json_integer_value(nbf)))
        return false;
    snprintf(claims->sub, sizeof(claims->sub), "%s", json_string_value(sub));
    snprintf(claims->jti, sizeof(claims->jti), "%s", json_string_value(jti));
    claims->iat = issued;
    claims->exp = expires;
    return true;
}

static bool same_claims(const jwt_claims_t *a, const jwt_claims_t *b)
{
    return strcmp(a->sub, b->sub) == 0 && strcmp(a->jti, b->jti) == 0 && a->role == b->role && a->iat == b->iat &&
           a->exp == b->exp;
}

/* What every token that verifies must satisfy. */
static void check_verified(const char *token, size_t len, const jwt_claims_t *claims)
{
    const char *dot1 = memchr(token, '.', len);
    FUZZ_CHECK(dot1 != NULL, "a verified token without '.'");
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    FUZZ_CHECK(dot2 != NULL && memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) == NULL,
               "a verified token that is not three parts");
    const char *parts[3] = {token, dot1 + 1, dot2 + 1};
    size_t lens[3] = {(size_t)(dot1 - token), (size_t)(dot2 - dot1 - 1), len - (size_t)(dot2 + 1 - token)};
    static const char *const names[3] = {"header", "payload", "signature"};
    for (int i = 0; i < 3; i++)
        FUZZ_CHECK(canonical(parts[i], lens[i]),
                   "a token verifies with a non-canonical %s '%s': its unused low bits are not zero, so the same "
                   "token has several spellings",
                   names[i], fuzz_show(parts[i], lens[i]));

    json_t *header = json_part(parts[0], lens[0]), *payload = json_part(parts[1], lens[1]);
    FUZZ_CHECK(header != NULL && header_acceptable(header), "a token verifies with the header '%s'",
               fuzz_show(parts[0], lens[0]));
    jwt_claims_t expected;
    FUZZ_CHECK(payload != NULL && claims_acceptable(payload, &expected), "a token verifies with unacceptable claims");
    FUZZ_CHECK(same_claims(claims, &expected), "claims sub=%s jti=%s iat=%lld exp=%lld are not the payload's",
               claims->sub, claims->jti, (long long)claims->iat, (long long)claims->exp);
    json_decref(header);
    json_decref(payload);

    jwt_claims_t other;
    FUZZ_CHECK(jwt_verify(token, len, "another-secret", NOW, &other) != JWT_VALID,
               "the token also verifies under another key");
}

/* jwt_sign: succeeds exactly for valid claims; its token verifies. */
static void check_sign(const jwt_claims_t *claims)
{
    char token[JWT_TOKEN_MAX + 1];
    int len = jwt_sign(claims, SECRET, token, sizeof(token));
    bool known_role = false;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        known_role |= claims->role == roles[i].role;
    bool signable = valid_id(claims->sub) && valid_id(claims->jti) && claims->exp > claims->iat && known_role;
    FUZZ_CHECK((len >= 0) == signable, "jwt_sign returned %d for sub '%s' jti '%s' role %d iat %lld exp %lld", len,
               fuzz_show(claims->sub, strlen(claims->sub)), fuzz_show(claims->jti, strlen(claims->jti)),
               (int)claims->role, (long long)claims->iat, (long long)claims->exp);
    if (len < 0)
        return;
    FUZZ_CHECK((size_t)len == strlen(token), "length %d for a token of %zu", len, strlen(token));
    jwt_claims_t read;
    jwt_status_t status = jwt_verify(token, (size_t)len, SECRET, claims->iat, &read);
    FUZZ_CHECK(status == JWT_VALID, "a token just signed verifies as %s", jwt_status_name(status));
    FUZZ_CHECK(same_claims(&read, claims), "a token just signed verifies to other claims");
    for (const char *p = token; *p != '\0'; p++)
        FUZZ_CHECK(*p == '.' || b64url_value(*p) >= 0, "signed token has '%c'", *p);
}

/* Encodes header and payload, signs them, applies the tweak, verifies. */
static void check_signed_parts(const char *header, size_t header_len, const char *payload, size_t payload_len,
                               unsigned tweak)
{
    static char token[3 * JWT_TOKEN_MAX];
    if (header_len > JWT_TOKEN_MAX / 2 || payload_len > JWT_TOKEN_MAX / 2)
        return;
    size_t n = b64url_encode((const unsigned char *)header, header_len, token);
    token[n++] = '.';
    size_t payload_at = n;
    n += b64url_encode((const unsigned char *)payload, payload_len, token + n);
    size_t part = tweak & 3, delta = (tweak >> 2) & 15;
    /* the last character of a part of length L carries 0 (L%4==0), 4
     * (L%4==2) or 2 (L%4==3) unused low bits */
    size_t tweak_start = part == 1 ? 0 : payload_at, tweak_end = part == 1 ? payload_at - 1 : n;
    if ((part == 1 || part == 2) && tweak_end > tweak_start) {
        size_t unused = (tweak_end - tweak_start) % 4 == 2 ? 4 : (tweak_end - tweak_start) % 4 == 3 ? 2 : 0;
        if (delta < (1u << unused))
            token[tweak_end - 1] = alphabet[b64url_value(token[tweak_end - 1]) | (int)delta];
    }
    unsigned char signature[32];
    unsigned int signature_len = sizeof(signature);
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)token, n, signature, &signature_len);
    token[n++] = '.';
    size_t signature_at = n;
    n += b64url_encode(signature, sizeof(signature), token + n);
    if (part == 3 && delta < 4) /* 43 characters: 2 unused bits */
        token[n - 1] = alphabet[b64url_value(token[n - 1]) | (int)delta];
    bool tweaked = !canonical(token, payload_at - 1) || !canonical(token + payload_at, signature_at - 1 - payload_at) ||
                   !canonical(token + signature_at, n - signature_at);

    jwt_claims_t claims;
    jwt_status_t status = jwt_verify(token, n, SECRET, NOW, &claims);
    if (status == JWT_VALID)
        check_verified(token, n, &claims);

    json_t *h = json_part(token, payload_at - 1), *p = json_part(token + payload_at, signature_at - 1 - payload_at);
    jwt_claims_t expected;
    if (!tweaked && n <= JWT_TOKEN_MAX && h != NULL && header_acceptable(h) && p != NULL &&
        claims_acceptable(p, &expected))
        FUZZ_CHECK(status == JWT_VALID && same_claims(&claims, &expected),
                   "a canonical, correctly signed token with valid claims is refused as %s", jwt_status_name(status));

    /* signing what the payload names */
    if (p != NULL) {
        jwt_claims_t named = {0};
        const char *sub = json_string_value(json_object_get(p, "sub")),
                   *jti = json_string_value(json_object_get(p, "jti"));
        snprintf(named.sub, sizeof(named.sub), "%s", sub != NULL ? sub : "");
        snprintf(named.jti, sizeof(named.jti), "%s", jti != NULL ? jti : "");
        /* a role the payload does not name well is one outside the enum,
         * which jwt_sign must refuse rather than sign as some default */
        if (!reference_role(json_object_get(p, "role"), &named.role))
            named.role = (jwt_role_t)(sizeof(roles) / sizeof(roles[0]));
        named.iat = json_integer_value(json_object_get(p, "iat"));
        named.exp = json_integer_value(json_object_get(p, "exp"));
        if ((sub == NULL || strlen(sub) < sizeof(named.sub)) && (jti == NULL || strlen(jti) < sizeof(named.jti)))
            check_sign(&named);
    }
    json_decref(h);
    json_decref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    jwt_claims_t claims;
    if (size <= 2 * JWT_TOKEN_MAX && jwt_verify(text, size, SECRET, NOW, &claims) == JWT_VALID) {
        check_verified(text, size, &claims);
        check_sign(&claims);
    }

    fuzz_parts_t parts;
    fuzz_split(data, size, '\n', 3, &parts);
    if (parts.count >= 2) {
        size_t payload_len = parts.len[1];
        unsigned tweak = parts.count == 3 && parts.len[2] > 0 ? (unsigned char)parts.part[2][0] : 0;
        check_signed_parts(parts.part[0], parts.len[0], parts.part[1], payload_len, tweak);
    }
    return 0;
}
