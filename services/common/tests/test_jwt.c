/* Tests for jwt.c: HS256 tokens signed and verified, and every way a token
 * can be wrong refused with the right reason. Includes jwt.c to build
 * hostile tokens with its own base64url and HMAC helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../jwt.c"

#define SECRET "unit-test-secret-0123456789abcdef"
#define NOW    1700001000

/* Made with Python's hmac module, not with this code: header fields in
 * another order, an extra claim, role admin. */
#define FOREIGN_TOKEN                                                                                                  \
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0ZjdhMmMxZS0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEiLCJyb2xlIjoiYW"  \
    "RtaW4iLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwianRpIjoiYWJjMTIzIiwibmFtZSI6ImV4dHJhIGNsYWltcyBhcmUgaWdu"   \
    "b3JlZCJ9.BlF5xDA47Rg6qkw9X4Uhn9CYmMenDXsRbfPxZxk_Sdw"

/* The same, for a service: role service, sub the calling service's name,
 * five minutes of life. */
#define FOREIGN_SERVICE_TOKEN                                                                                          \
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."                                                                            \
    "eyJyb2xlIjoic2VydmljZSIsInN1YiI6Im9yZGVyIiwiaWF0IjoxNzAwMDAwOTAwLCJleHAiOjE3M"                                    \
    "DAwMDEyMDAsImp0aSI6InN2Yy03ZjNhIn0.M4i1tBkWGKXcap3mDj_bGwD5n89j4obtg_YB9LM2IDw"

static jwt_status_t verify(const char *token, jwt_claims_t *claims)
{
    return jwt_verify(token, strlen(token), SECRET, NOW, claims);
}

/* Builds header.payload.signature from raw JSON, signed with `secret`. */
static void forge(const char *header, const char *payload, const char *secret, char *out, size_t size)
{
    int n = base64url_encode((const unsigned char *)header, strlen(header), out, size);
    out[n++] = '.';
    n += base64url_encode((const unsigned char *)payload, strlen(payload), out + n, size - (size_t)n);
    unsigned char signature[SIGNATURE_LEN];
    sign(secret, out, (size_t)n, signature);
    out[n++] = '.';
    base64url_encode(signature, SIGNATURE_LEN, out + n, size - (size_t)n);
}

static const jwt_claims_t customer = {.sub = "7d0c6f0e-2b53-4a51-9d6a-0d3c1f1e0a42",
                                      .jti = "c0ffee",
                                      .role = JWT_ROLE_CUSTOMER,
                                      .iat = NOW - 10,
                                      .exp = NOW + 3600};

static void test_signed_token_verifies(void **state)
{
    (void)state;
    char token[JWT_TOKEN_MAX];
    int len = jwt_sign(&customer, SECRET, token, sizeof(token));
    assert_true(len > 0);
    assert_int_equal((size_t)len, strlen(token));
    assert_null(strchr(token, '=')); /* unpadded */
    jwt_claims_t claims;
    assert_int_equal(verify(token, &claims), JWT_VALID);
    assert_string_equal(claims.sub, customer.sub);
    assert_string_equal(claims.jti, "c0ffee");
    assert_int_equal(claims.role, JWT_ROLE_CUSTOMER);
    assert_int_equal(claims.iat, customer.iat);
    assert_int_equal(claims.exp, customer.exp);
}

static void test_token_from_another_implementation_verifies(void **state)
{
    (void)state;
    jwt_claims_t claims;
    assert_int_equal(jwt_verify(FOREIGN_TOKEN, strlen(FOREIGN_TOKEN), SECRET, 1700000500, &claims), JWT_VALID);
    assert_int_equal(claims.role, JWT_ROLE_ADMIN);
    assert_string_equal(claims.jti, "abc123");
}

static void test_service_tokens_round_trip(void **state)
{
    (void)state;
    jwt_claims_t service = {.sub = "order", .jti = "svc-1", .role = JWT_ROLE_SERVICE, .iat = NOW, .exp = NOW + 300};
    char token[JWT_TOKEN_MAX];
    assert_true(jwt_sign(&service, SECRET, token, sizeof(token)) > 0);
    jwt_claims_t claims;
    assert_int_equal(verify(token, &claims), JWT_VALID);
    assert_int_equal(claims.role, JWT_ROLE_SERVICE);
    assert_string_equal(claims.sub, "order");

    /* the role claim says "service", as another implementation spells it */
    assert_int_equal(verify(FOREIGN_SERVICE_TOKEN, &claims), JWT_VALID);
    assert_int_equal(claims.role, JWT_ROLE_SERVICE);
    assert_string_equal(claims.sub, "order");
    assert_string_equal(claims.jti, "svc-7f3a");
    assert_int_equal(claims.exp - claims.iat, 300);
}

static void test_altered_or_foreign_key_tokens_are_refused(void **state)
{
    (void)state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims;
    jwt_sign(&customer, "another-secret-0123456789abcdefghij", token, sizeof(token));
    assert_int_equal(verify(token, &claims), JWT_BAD_SIGNATURE);

    /* Promote ourselves to admin by editing the payload, keep the signature. */
    char forged[JWT_TOKEN_MAX], original[JWT_TOKEN_MAX];
    jwt_sign(&customer, SECRET, original, sizeof(original));
    forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
          "{\"sub\":\"7d0c6f0e-2b53-4a51-9d6a-0d3c1f1e0a42\",\"role\":\"admin\",\"iat\":1700000990,"
          "\"exp\":1700004600,\"jti\":\"c0ffee\"}",
          SECRET, forged, sizeof(forged));
    strcpy(strrchr(forged, '.'), strrchr(original, '.'));
    assert_int_equal(verify(forged, &claims), JWT_BAD_SIGNATURE);

    /* One flipped character of the signature. */
    jwt_sign(&customer, SECRET, token, sizeof(token));
    char *last = token + strlen(token) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_equal(verify(token, &claims), JWT_BAD_SIGNATURE);
}

static void test_other_algorithms_are_refused(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"HS512\"}",
        "{\"alg\":\"RS256\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":[\"HS256\"]}",
    };
    const char *payload = "{\"sub\":\"u1\",\"role\":\"admin\",\"iat\":1700000990,\"exp\":1700004600,\"jti\":\"j1\"}";
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char token[JWT_TOKEN_MAX];
        jwt_claims_t claims;
        forge(headers[i], payload, SECRET, token, sizeof(token));
        assert_int_equal(verify(token, &claims), JWT_BAD_ALGORITHM);
        /* the unsigned form "header.payload." too */
        strrchr(token, '.')[1] = '\0';
        assert_int_equal(verify(token, &claims), JWT_BAD_ALGORITHM);
    }
}

static void test_expiry_and_not_before(void **state)
{
    (void)state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t claims;
    jwt_claims_t expired = customer;
    expired.iat = NOW - 3600;
    expired.exp = NOW; /* expires exactly now */
    jwt_sign(&expired, SECRET, token, sizeof(token));
    assert_int_equal(verify(token, &claims), JWT_EXPIRED);
    assert_int_equal(jwt_verify(token, strlen(token), SECRET, NOW - 1, &claims), JWT_VALID);

    const char *header = "{\"alg\":\"HS256\"}";
    forge(header,
          "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700000990,\"exp\":1700004600,\"jti\":\"j1\",\"nbf\":"
          "1700002000}",
          SECRET, token, sizeof(token));
    assert_int_equal(verify(token, &claims), JWT_NOT_YET_VALID);
    forge(header, "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700009999,\"exp\":1700019999,\"jti\":\"j1\"}", SECRET,
          token, sizeof(token));
    assert_int_equal(verify(token, &claims), JWT_NOT_YET_VALID);
}

static void test_bad_claims_are_refused(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"role\":\"customer\",\"iat\":1700000990,\"exp\":1700004600,\"jti\":\"j1\"}",            /* no sub */
        "{\"sub\":\"u1\",\"role\":\"root\",\"iat\":1700000990,\"exp\":1700004600,\"jti\":\"j1\"}", /* role */
        "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700000990,\"exp\":\"1700004600\",\"jti\":\"j1\"}",
        "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700000990,\"exp\":1700004600.5,\"jti\":\"j1\"}",
        "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700000990,\"exp\":1700004600}", /* no jti */
        "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700000990,\"exp\":1700004600,\"jti\":\"a:b\"}",
        "{\"sub\":\"u1\",\"role\":\"customer\",\"iat\":1700004600,\"exp\":1700004600,\"jti\":\"j1\"}", /* exp<=iat */
        "{\"sub\":\"u1\",\"role\":\"customer\",\"exp\":1700004600,\"jti\":\"j1\"}",                    /* no iat */
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char token[JWT_TOKEN_MAX];
        jwt_claims_t claims;
        forge("{\"alg\":\"HS256\"}", payloads[i], SECRET, token, sizeof(token));
        assert_int_equal(verify(token, &claims), JWT_BAD_CLAIMS);
    }
}

static void test_malformed_tokens_are_refused(void **state)
{
    (void)state;
    char good[JWT_TOKEN_MAX];
    jwt_sign(&customer, SECRET, good, sizeof(good));
    char padded[JWT_TOKEN_MAX + 8], extra_part[JWT_TOKEN_MAX + 8];
    snprintf(padded, sizeof(padded), "%s=", good);
    snprintf(extra_part, sizeof(extra_part), "%s.e30", good);
    char not_json[JWT_TOKEN_MAX];
    forge("{\"alg\":\"HS256\"}", "[1,2,3]", SECRET, not_json, sizeof(not_json));
    char duplicate[JWT_TOKEN_MAX];
    forge("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", SECRET, duplicate, sizeof(duplicate));
    const char *const tokens[] = {
        "", "abc", "a.b", "...", extra_part, padded, not_json, duplicate, "eyJhbGciOiJIUzI1NiJ9.e30.!!!!"};
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        jwt_claims_t claims;
        jwt_status_t status = verify(tokens[i], &claims);
        assert_true(status == JWT_MALFORMED || status == JWT_BAD_SIGNATURE);
        assert_int_not_equal(status, JWT_VALID);
    }
    /* far too long */
    static char huge[JWT_TOKEN_MAX * 2];
    memset(huge, 'a', sizeof(huge) - 1);
    jwt_claims_t claims;
    assert_int_equal(jwt_verify(huge, strlen(huge), SECRET, NOW, &claims), JWT_MALFORMED);
}

static void test_sign_refuses_bad_claims_and_small_buffers(void **state)
{
    (void)state;
    char token[JWT_TOKEN_MAX];
    jwt_claims_t bad = customer;
    strcpy(bad.jti, "has space");
    assert_int_equal(jwt_sign(&bad, SECRET, token, sizeof(token)), -1);
    bad = customer;
    bad.exp = bad.iat;
    assert_int_equal(jwt_sign(&bad, SECRET, token, sizeof(token)), -1);
    bad = customer;
    bad.role = (jwt_role_t)JWT_ROLE_COUNT; /* no role: never signed as some default one */
    assert_int_equal(jwt_sign(&bad, SECRET, token, sizeof(token)), -1);
    int len = jwt_sign(&customer, SECRET, token, sizeof(token));
    for (size_t size = 0; size <= (size_t)len; size += 7)
        assert_int_equal(jwt_sign(&customer, SECRET, token, size), -1);
    assert_int_equal(jwt_sign(&customer, SECRET, token, (size_t)len + 1), len);
}

static void test_base64url_round_trip(void **state)
{
    (void)state;
    unsigned char bytes[256], decoded[256];
    char text[400];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)i;
    for (size_t len = 0; len < 40; len++) {
        int n = base64url_encode(bytes + 200, len, text, sizeof(text));
        assert_true(n >= 0);
        assert_null(strpbrk(text, "+/="));
        assert_int_equal(base64url_decode(text, (size_t)n, decoded, sizeof(decoded)), (int)len);
        assert_memory_equal(decoded, bytes + 200, len);
    }
    assert_int_equal(base64url_decode("abcde", 5, decoded, sizeof(decoded)), -1); /* 5 % 4 == 1 */
    assert_int_equal(base64url_decode("ab+/", 4, decoded, sizeof(decoded)), -1);  /* standard alphabet */
    /* "QQ" is the one encoding of "A": "QR".."QZ" differ only in unused bits */
    assert_int_equal(base64url_decode("QQ", 2, decoded, sizeof(decoded)), 1);
    assert_int_equal(base64url_decode("QR", 2, decoded, sizeof(decoded)), -1);
    assert_int_equal(base64url_decode("QUI", 3, decoded, sizeof(decoded)), 2);
    assert_int_equal(base64url_decode("QUJ", 3, decoded, sizeof(decoded)), -1);
}

static void test_signature_encoding_is_not_malleable(void **state)
{
    (void)state;
    /* A 32-byte HMAC encodes as 43 characters whose last carries two unused
     * bits: flipping them gave three more strings that verified. */
    char token[JWT_TOKEN_MAX];
    int len = jwt_sign(&customer, SECRET, token, sizeof(token));
    jwt_claims_t claims;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *last = strchr(alphabet, token[len - 1]);
    assert_non_null(last);
    int accepted = 0;
    for (int low = 0; low < 4; low++) {
        token[len - 1] = alphabet[((last - alphabet) & ~3) | low];
        accepted += verify(token, &claims) == JWT_VALID;
    }
    assert_int_equal(accepted, 1);
}

static void test_roles_parse(void **state)
{
    (void)state;
    jwt_role_t role;
    assert_int_equal(jwt_role_parse("admin", &role), 0);
    assert_int_equal(role, JWT_ROLE_ADMIN);
    assert_string_equal(jwt_role_name(role), "admin");
    assert_int_equal(jwt_role_parse("customer", &role), 0);
    assert_int_equal(role, JWT_ROLE_CUSTOMER);
    assert_string_equal(jwt_role_name(role), "customer");
    assert_int_equal(jwt_role_parse("service", &role), 0);
    assert_int_equal(role, JWT_ROLE_SERVICE);
    assert_string_equal(jwt_role_name(role), "service");
    assert_int_equal(jwt_role_parse("Admin", &role), -1);
    assert_int_equal(jwt_role_parse("Service", &role), -1);
    assert_int_equal(jwt_role_parse("services", &role), -1);
    assert_int_equal(jwt_role_parse("", &role), -1);
    assert_string_equal(jwt_role_name((jwt_role_t)JWT_ROLE_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_token_verifies),
        cmocka_unit_test(test_token_from_another_implementation_verifies),
        cmocka_unit_test(test_service_tokens_round_trip),
        cmocka_unit_test(test_altered_or_foreign_key_tokens_are_refused),
        cmocka_unit_test(test_other_algorithms_are_refused),
        cmocka_unit_test(test_expiry_and_not_before),
        cmocka_unit_test(test_bad_claims_are_refused),
        cmocka_unit_test(test_malformed_tokens_are_refused),
        cmocka_unit_test(test_sign_refuses_bad_claims_and_small_buffers),
        cmocka_unit_test(test_base64url_round_trip),
        cmocka_unit_test(test_signature_encoding_is_not_malleable),
        cmocka_unit_test(test_roles_parse),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
